-- Challenges of passwordless passkey sign-ins that have been answered.
--
-- The sign-in page begins a passwordless ceremony on every showing, for
-- anyone, so its session data (the challenge) is not stored here: the
-- browser carries it, sealed (pkg/signin). What the server must remember
-- is only that a challenge was answered, so that the same answer cannot
-- sign in twice. A row is written only for a verified answer of a
-- registered passkey, so only a passkey's holder causes one. digest is
-- the SHA-256 of the challenge; expires_at is when the ceremony would
-- have expired anyway, after which the janitor deletes the row.
CREATE TABLE passkey_challenges (
    digest     bytea       PRIMARY KEY CHECK (octet_length(digest) = 32),
    expires_at timestamptz NOT NULL
);
CREATE INDEX passkey_challenges_expires_at ON passkey_challenges (expires_at);

---- create above / drop below ----

DROP TABLE passkey_challenges;
