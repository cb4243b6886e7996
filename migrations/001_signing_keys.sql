-- Signing keys for ID tokens and JWT access tokens. The private half is
-- sealed with AES-256-GCM (pkg/seal) under a key derived from LATCHKEY_SECRETS;
-- the public half is kept as a JWK so that the JWKS never needs a decryption.
CREATE TABLE signing_keys (
    kid         text        PRIMARY KEY,
    algorithm   text        NOT NULL CHECK (algorithm IN ('RS256', 'ES256')),
    public_jwk  jsonb       NOT NULL,
    private_key bytea       NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    retired_at  timestamptz
);

-- The signing key for an algorithm is its newest key that is not retired.
CREATE INDEX signing_keys_current ON signing_keys (algorithm, created_at DESC)
    WHERE retired_at IS NULL;

---- create above / drop below ----

DROP TABLE signing_keys;
