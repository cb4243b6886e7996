-- Protected resources for RFC 8707 resource indicators (pkg/resource): the
-- APIs a client may ask for a token for by their URI, and the scopes each
-- accepts. Which clients may use a resource is their own audience
-- (clients.metadata), so nothing here refers to clients.
CREATE TABLE resources (
    uri        text        PRIMARY KEY,
    name       text        NOT NULL DEFAULT '',
    scopes     text[]      NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
