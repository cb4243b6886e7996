-- Dynamic client registration (pkg/registration; RFC 7591, RFC 7592).
--
-- registration_tokens are the initial access tokens an admin issues to
-- let someone register clients when LATCHKEY_REGISTRATION is token. Only
-- the token's SHA-256 digest is stored. A registration spends one use
-- with UPDATE ... WHERE uses < max_uses, in the transaction that stores
-- the client, so that parallel registrations on any number of nodes can
-- never spend more uses than there are, and a registration that fails
-- spends none. policy is what clients registered with it may have
-- (grant types, scopes, redirect URI rules). Revoking a token deletes it.
CREATE TABLE registration_tokens (
    id         uuid        PRIMARY KEY,
    digest     bytea       NOT NULL UNIQUE,
    prefix     text        NOT NULL,
    name       text        NOT NULL,
    max_uses   integer     NOT NULL CHECK (max_uses > 0),
    uses       integer     NOT NULL DEFAULT 0 CHECK (uses >= 0 AND uses <= max_uses),
    policy     jsonb       NOT NULL,
    expires_at timestamptz NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- client_registrations are the clients that registered themselves: the
-- digest of each one's registration access token (RFC 7592), the policy
-- it registered under, which its updates are held to, and whether it
-- came through open registration and from which address, which the caps
-- on open registration count. Deleting the client deletes its row, and
-- with it the registration access token.
CREATE TABLE client_registrations (
    client_id        text        PRIMARY KEY REFERENCES clients (id) ON DELETE CASCADE,
    token_digest     bytea       NOT NULL UNIQUE,
    policy           jsonb       NOT NULL,
    open             boolean     NOT NULL,
    initial_token_id uuid        REFERENCES registration_tokens (id) ON DELETE SET NULL,
    registered_from  inet,
    created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX client_registrations_open_from ON client_registrations (registered_from, created_at) WHERE open;

---- create above / drop below ----

DROP TABLE client_registrations;
DROP TABLE registration_tokens;
