-- Trusted devices: browsers on which a user ticked "Don't ask again on
-- this browser" at the second-factor step, and which then skip that step
-- when the user signs in with their password, until expires_at.
--
-- The browser's cookie holds a random 256-bit secret, sealed (pkg/trust);
-- the row holds its SHA-256 digest, never the secret, so that a copy of
-- the table yields no cookie that works. id is what the account page and
-- the admin API name the device by. label is what the browser called
-- itself when trusted (pkg/device.Describe), for its owner to recognise.
CREATE TABLE trusted_devices (
    id           uuid        PRIMARY KEY,
    user_id      uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    digest       bytea       NOT NULL UNIQUE,
    label        text        NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL
);
CREATE INDEX trusted_devices_user_id ON trusted_devices (user_id);
CREATE INDEX trusted_devices_expires_at ON trusted_devices (expires_at);

---- create above / drop below ----

DROP TABLE trusted_devices;
