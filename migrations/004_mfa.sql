-- Second factors: TOTP (RFC 6238) and recovery codes.

-- A user's TOTP factor. secret is sealed with AES-256-GCM (pkg/seal) under
-- LATCHKEY_SECRETS and bound to the user, like the signing keys. A factor
-- counts only once confirmed with a code. last_step is the 30-second time
-- step of the last code accepted: only a later step is accepted, so no
-- code works twice.
CREATE TABLE totp_factors (
    user_id      uuid        PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    secret       bytea       NOT NULL,
    confirmed_at timestamptz,
    last_step    bigint      NOT NULL DEFAULT 0,
    created_at   timestamptz NOT NULL DEFAULT now()
);

-- Recovery codes: 80 random bits each, shown once, kept as SHA-256
-- digests; a used code keeps its row, marked, until the set is replaced.
CREATE TABLE recovery_codes (
    user_id uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    digest  bytea       NOT NULL,
    used_at timestamptz,
    PRIMARY KEY (user_id, digest)
);

-- Failed second-factor attempts, which throttle the user's next ones.
-- lockout marks the failure that reached the limit. Kept a day, for the
-- record.
CREATE TABLE mfa_failures (
    user_id    uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    at         timestamptz NOT NULL DEFAULT now(),
    lockout    boolean     NOT NULL DEFAULT false,
    expires_at timestamptz NOT NULL DEFAULT now() + interval '1 day'
);
CREATE INDEX mfa_failures_user_at ON mfa_failures (user_id, at);
CREATE INDEX mfa_failures_expires_at ON mfa_failures (expires_at);

---- create above / drop below ----

DROP TABLE mfa_failures;
DROP TABLE recovery_codes;
DROP TABLE totp_factors;
