-- Failed attempts to prove who one is, per account, which throttle the
-- account's next attempts on every node: wrong passwords (kind 'password',
-- keyed by a SHA-256 digest of the lower-cased email, so that an email
-- nobody has is throttled exactly like a real account and nothing tells
-- them apart) and wrong second-factor codes (kind 'code', keyed by the
-- user's sub). Kept a day; the audit log keeps the record. It replaces
-- mfa_failures, whose rows are only a day's throttling state.
CREATE TABLE auth_failures (
    kind       text        NOT NULL,
    key        bytea       NOT NULL,
    at         timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL DEFAULT now() + interval '1 day'
);
CREATE INDEX auth_failures_key ON auth_failures (kind, key, at);
CREATE INDEX auth_failures_expires_at ON auth_failures (expires_at);

DROP TABLE mfa_failures;

---- create above / drop below ----

CREATE TABLE mfa_failures (
    user_id    uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    at         timestamptz NOT NULL DEFAULT now(),
    lockout    boolean     NOT NULL DEFAULT false,
    expires_at timestamptz NOT NULL DEFAULT now() + interval '1 day'
);
CREATE INDEX mfa_failures_user_at ON mfa_failures (user_id, at);
CREATE INDEX mfa_failures_expires_at ON mfa_failures (expires_at);
DROP TABLE auth_failures;
