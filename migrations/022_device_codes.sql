-- The device authorization grant (RFC 8628, pkg/oauth device.go): each
-- device code a client was given, from the device authorization endpoint
-- until the janitor deletes it after it expires.
--
-- Neither code is stored: device_code_hash is the SHA-256 of the 256-bit
-- device code; user_code_hash is an HMAC of the normalized user code
-- (eight letters, about 34 bits), keyed from LATCHKEY_SECRETS, so that a
-- copy of the table cannot be searched for the codes of pending requests.
-- id is the grant's request ID, which the tokens issued from it share.
--
-- status moves pending -> approved | denied, and approved -> used when the
-- device polls and gets its tokens, each by one conditional UPDATE: a
-- burst of polls gets one answer with tokens. interval_seconds is the
-- device's current polling interval, raised by 5 seconds each time it
-- polls too soon (RFC 8628 §3.5), so that every node holds it to the same.
-- session is what the approval grants: the fosite session (subject, ID
-- token claims) the tokens are issued with.
CREATE TABLE device_codes (
    id               text        PRIMARY KEY,
    device_code_hash bytea       NOT NULL UNIQUE,
    user_code_hash   bytea       NOT NULL UNIQUE,
    client_id        text        NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    scopes           text[]      NOT NULL,
    status           text        NOT NULL DEFAULT 'pending'
                                 CHECK (status IN ('pending', 'approved', 'denied', 'used')),
    interval_seconds integer     NOT NULL,
    last_polled_at   timestamptz,
    user_id          uuid        REFERENCES users (id) ON DELETE CASCADE,
    session          jsonb,
    created_at       timestamptz NOT NULL DEFAULT now(),
    expires_at       timestamptz NOT NULL
);
CREATE INDEX device_codes_expires_at ON device_codes (expires_at);
CREATE INDEX device_codes_pending ON device_codes (client_id) WHERE status = 'pending';

---- create above / drop below ----

DROP TABLE device_codes;
