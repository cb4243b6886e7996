-- Pushed authorization requests (RFC 9126): what a client pushed to
-- /oauth2/par, kept until its request_uri is redeemed once at the
-- authorization endpoint or expires, whichever comes first.
--
-- signature is the SHA-256 (hex) of the request_uri: the request_uri itself,
-- a bearer reference to the request, is never stored. params are the
-- authorization request's parameters, only those Latchkey uses and each
-- within its bound (pkg/oauth authorizeParams), never the client's
-- credentials.
CREATE TABLE oauth_pushed_requests (
    signature  text        PRIMARY KEY,
    client_id  text        NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    params     jsonb       NOT NULL,
    expires_at timestamptz NOT NULL
);
-- Counting a client's live pushes (the cap on what it may hold) and the
-- janitor's sweep.
CREATE INDEX oauth_pushed_requests_client ON oauth_pushed_requests (client_id, expires_at);
CREATE INDEX oauth_pushed_requests_expires_at ON oauth_pushed_requests (expires_at);
