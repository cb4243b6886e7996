-- OAuth 2.0 clients and the token state fosite keeps.

-- A client's metadata is its RFC 7591 document (pkg/client), kept whole in
-- JSONB so that new metadata fields need no migration. Secrets are SHA-256
-- digests of server-generated 256-bit secrets, never the secrets.
CREATE TABLE clients (
    id                         text        PRIMARY KEY,
    name                       text        NOT NULL DEFAULT '',
    metadata                   jsonb       NOT NULL,
    secret_hash                bytea,
    previous_secret_hash       bytea,
    previous_secret_expires_at timestamptz,
    created_at                 timestamptz NOT NULL DEFAULT now(),
    updated_at                 timestamptz NOT NULL DEFAULT now()
);

-- Every token table has the same shape. A token is found by its signature
-- (the part of the token only the server can compute), never stored whole.
-- request_id ties together everything issued from one grant (a family), so
-- that revoking one member can revoke the rest. A row is made inactive, not
-- deleted, when used or revoked, so that reuse is recognised; the janitor
-- deletes rows once they have expired.
CREATE TABLE oauth_access_tokens (
    signature    text        PRIMARY KEY,
    request_id   text        NOT NULL,
    client_id    text        NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    subject      text        NOT NULL DEFAULT '',
    active       boolean     NOT NULL DEFAULT true,
    requested_at timestamptz NOT NULL,
    expires_at   timestamptz NOT NULL,
    request      jsonb       NOT NULL,
    session      jsonb       NOT NULL
);
CREATE INDEX oauth_access_tokens_request_id ON oauth_access_tokens (request_id);
CREATE INDEX oauth_access_tokens_client_id ON oauth_access_tokens (client_id);
CREATE INDEX oauth_access_tokens_expires_at ON oauth_access_tokens (expires_at);

CREATE TABLE oauth_refresh_tokens (
    LIKE oauth_access_tokens INCLUDING DEFAULTS INCLUDING CONSTRAINTS,
    access_token_signature text NOT NULL DEFAULT '',
    PRIMARY KEY (signature),
    FOREIGN KEY (client_id) REFERENCES clients (id) ON DELETE CASCADE
);
CREATE INDEX oauth_refresh_tokens_request_id ON oauth_refresh_tokens (request_id);
CREATE INDEX oauth_refresh_tokens_client_id ON oauth_refresh_tokens (client_id);
CREATE INDEX oauth_refresh_tokens_expires_at ON oauth_refresh_tokens (expires_at);

CREATE TABLE oauth_authorization_codes (
    LIKE oauth_access_tokens INCLUDING DEFAULTS INCLUDING CONSTRAINTS,
    PRIMARY KEY (signature),
    FOREIGN KEY (client_id) REFERENCES clients (id) ON DELETE CASCADE
);
CREATE INDEX oauth_authorization_codes_client_id ON oauth_authorization_codes (client_id);
CREATE INDEX oauth_authorization_codes_expires_at ON oauth_authorization_codes (expires_at);

-- PKCE challenges, keyed by the signature of the code they protect.
CREATE TABLE oauth_pkce_requests (
    LIKE oauth_access_tokens INCLUDING DEFAULTS INCLUDING CONSTRAINTS,
    PRIMARY KEY (signature),
    FOREIGN KEY (client_id) REFERENCES clients (id) ON DELETE CASCADE
);
CREATE INDEX oauth_pkce_requests_client_id ON oauth_pkce_requests (client_id);
CREATE INDEX oauth_pkce_requests_expires_at ON oauth_pkce_requests (expires_at);

-- The jti of every private_key_jwt assertion seen, until it expires. The
-- primary key is what rejects a replay, even two arriving at once.
CREATE TABLE oauth_assertion_jtis (
    jti        text        PRIMARY KEY,
    expires_at timestamptz NOT NULL
);
CREATE INDEX oauth_assertion_jtis_expires_at ON oauth_assertion_jtis (expires_at);

---- create above / drop below ----

DROP TABLE oauth_assertion_jtis;
DROP TABLE oauth_pkce_requests;
DROP TABLE oauth_authorization_codes;
DROP TABLE oauth_refresh_tokens;
DROP TABLE oauth_access_tokens;
DROP TABLE clients;
