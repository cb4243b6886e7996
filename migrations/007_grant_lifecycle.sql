-- Grants that end when the user's or the app's access ends, and replay
-- protection for private_key_jwt assertions kept per client. Like every
-- migration, it keeps the previous release working on the new schema
-- (docs/production.md, Upgrading): it only adds.

-- Signing a user out everywhere (and disabling, deleting or resetting the
-- password of the user) and withdrawing an app's consent deactivate the
-- user's unused authorization codes, found by subject like their tokens.
CREATE INDEX oauth_authorization_codes_subject ON oauth_authorization_codes (subject);

-- When a refresh token or a code was revoked rather than spent: by RFC 7009
-- revocation, signing the user out everywhere, disabling or deleting them,
-- withdrawing consent, an admin revoking a client's tokens, or the
-- revocation of a family after reuse. Presenting a spent refresh token
-- again is reuse, which revokes its family and is recorded (RFC 9700
-- §4.14.2); presenting a revoked one is only refused. Rows the previous
-- release deactivates stay NULL and count as spent.
ALTER TABLE oauth_refresh_tokens ADD COLUMN revoked_at timestamptz;
ALTER TABLE oauth_authorization_codes ADD COLUMN revoked_at timestamptz;

-- The jti of every private_key_jwt assertion seen, per client, until it
-- expires: a jti is the client's to choose (RFC 7523 §3), so one client's
-- assertions must not use up another's. The primary key is what rejects a
-- replay, even two arriving at once. No foreign key to clients: a client
-- deleted and registered again under the same ID must not have its
-- assertions replayed. oauth_assertion_jtis, keyed by jti alone, stays for
-- the previous release until a later migration drops it.
CREATE TABLE oauth_client_assertion_jtis (
    client_id  text        NOT NULL,
    jti        text        NOT NULL,
    expires_at timestamptz NOT NULL,
    PRIMARY KEY (client_id, jti)
);
CREATE INDEX oauth_client_assertion_jtis_expires_at ON oauth_client_assertion_jtis (expires_at);

---- create above / drop below ----

DROP TABLE oauth_client_assertion_jtis;
ALTER TABLE oauth_authorization_codes DROP COLUMN revoked_at;
ALTER TABLE oauth_refresh_tokens DROP COLUMN revoked_at;
DROP INDEX oauth_authorization_codes_subject;
