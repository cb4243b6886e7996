-- Passkeys (WebAuthn credentials), a second factor that cannot be phished:
-- the browser binds each assertion to this site's origin.

-- One row per credential a user registered. credential_id is what the
-- authenticator names it (unique across users: one authenticator key
-- belongs to one account). public_key is COSE-encoded (RFC 9052), as the
-- authenticator gave it; it is no secret. sign_count is the authenticator's
-- signature counter as last seen: a later assertion that does not raise a
-- non-zero count may come from a clone (WebAuthn §6.1.1). backup_eligible
-- says the key may be synced between devices (amr swk rather than hwk);
-- backup_state whether it was, as last seen. name is what the user calls
-- it on their account page.
CREATE TABLE passkeys (
    credential_id    bytea       PRIMARY KEY CHECK (octet_length(credential_id) BETWEEN 1 AND 1023),
    user_id          uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    public_key       bytea       NOT NULL,
    sign_count       bigint      NOT NULL DEFAULT 0 CHECK (sign_count >= 0),
    transports       text[]      NOT NULL DEFAULT '{}',
    backup_eligible  boolean     NOT NULL DEFAULT false,
    backup_state     boolean     NOT NULL DEFAULT false,
    user_verified    boolean     NOT NULL DEFAULT false,
    aaguid           bytea       NOT NULL DEFAULT '\x',
    attestation_type text        NOT NULL DEFAULT 'none',
    name             text        NOT NULL CHECK (char_length(name) BETWEEN 1 AND 64),
    created_at       timestamptz NOT NULL DEFAULT now(),
    last_used_at     timestamptz
);
CREATE INDEX passkeys_user_id ON passkeys (user_id, created_at);

---- create above / drop below ----

DROP TABLE passkeys;
