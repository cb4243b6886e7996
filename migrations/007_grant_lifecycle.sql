-- Grants that end when the user's or the app's access ends. Like every
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

---- create above / drop below ----

ALTER TABLE oauth_authorization_codes DROP COLUMN revoked_at;
ALTER TABLE oauth_refresh_tokens DROP COLUMN revoked_at;
DROP INDEX oauth_authorization_codes_subject;
