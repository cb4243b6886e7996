-- OpenID Connect Back-Channel Logout 1.0 (pkg/logout): which apps each
-- sign-in reached, and the logout tokens owed to them once it ends.

-- One row per sign-in (sid) and app that was issued a code under it: the
-- apps a logout of that sign-in must be told of. It goes with the sign-in
-- (the janitor's expiry too) and with the app.
CREATE TABLE session_clients (
    sid        text        NOT NULL REFERENCES browser_sessions (sid) ON DELETE CASCADE,
    client_id  text        NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (sid, client_id)
);
CREATE INDEX session_clients_client_id ON session_clients (client_id);

-- One row per ended sign-in and app with a backchannel_logout_uri,
-- written in the transaction that ends the sign-in (storage/postgres
-- endSessions). The token itself is signed at each attempt, so that a
-- retry never sends one that has expired; jti stays the same across
-- attempts, so that the app can drop repeats. subject is text, not a
-- reference: a deleted user's apps are still told.
CREATE TABLE logout_outbox (
    id              bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    client_id       text        NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    sid             text        NOT NULL,
    subject         text        NOT NULL,
    jti             uuid        NOT NULL DEFAULT gen_random_uuid(),
    status          text        NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts        integer     NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    claimed_until   timestamptz,
    claim           uuid,
    last_error      text        NOT NULL DEFAULT '',
    last_status     integer     NOT NULL DEFAULT 0,
    created_at      timestamptz NOT NULL DEFAULT now(),
    delivered_at    timestamptz,
    UNIQUE (sid, client_id)
);
CREATE INDEX logout_outbox_due ON logout_outbox (next_attempt_at, id) WHERE status = 'pending';
CREATE INDEX logout_outbox_client_id ON logout_outbox (client_id);
-- The janitor deletes delivered rows a week after delivery.
CREATE INDEX logout_outbox_delivered ON logout_outbox (delivered_at);

---- create above / drop below ----

DROP TABLE logout_outbox;
DROP TABLE session_clients;
