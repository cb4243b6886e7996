-- Event delivery (pkg/events): every audit event can be sent to webhook
-- subscriptions and to a log stream for a SIEM, at least once and in order
-- per subject, from a transactional outbox like mail's (010_mail.sql).

-- A webhook subscription: where events go, which ones, and the secret that
-- signs them (Standard Webhooks), sealed with pkg/seal as every stored
-- secret is. A subscription whose deliveries keep failing is disabled by
-- a node, with the reason, until an admin enables it again.
CREATE TABLE webhooks (
    id              uuid        PRIMARY KEY,
    url             text        NOT NULL,
    description     text        NOT NULL DEFAULT '',
    -- Exact actions ("user.created"), prefixes ("user.*") or "*".
    event_types     text[]      NOT NULL,
    secret          bytea       NOT NULL,
    enabled         boolean     NOT NULL DEFAULT true,
    disabled_reason text        NOT NULL DEFAULT '',
    disabled_at     timestamptz,
    -- Failure bookkeeping: attempts failed in a row, since when every
    -- attempt has failed (NULL while deliveries succeed), and the last
    -- delivery that succeeded.
    consecutive_failures integer NOT NULL DEFAULT 0,
    failing_since   timestamptz,
    last_success_at timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);

-- One row per event and sink: a webhook subscription (webhook_id) or the
-- log stream (sink 'log'). sink is the ordering key's first half, subject
-- (the event's target, else its actor) the second: a row is delivered only
-- once every older row of its sink and subject is delivered or failed.
-- Rows of one subject are inserted under an advisory lock on the subject
-- held until commit, so that their ids follow commit order.
CREATE TABLE event_outbox (
    id              bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    sink            text        NOT NULL,
    webhook_id      uuid        REFERENCES webhooks (id) ON DELETE CASCADE,
    -- The audit event's id: the stable ID receivers de-duplicate by.
    event_id        bigint      NOT NULL,
    event_type      text        NOT NULL,
    subject         text        NOT NULL,
    -- The JSON body as sent; audit events never hold a secret.
    payload         bytea       NOT NULL,
    status          text        NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts        integer     NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    claimed_until   timestamptz,
    claim           uuid,
    last_error      text        NOT NULL DEFAULT '',
    last_status     integer     NOT NULL DEFAULT 0,
    created_at      timestamptz NOT NULL DEFAULT now(),
    -- When the current run of attempts began; a row is given up on a
    -- while after (three days by default).
    attempts_since  timestamptz NOT NULL DEFAULT now(),
    delivered_at    timestamptz,
    CHECK ((sink = 'log') = (webhook_id IS NULL)),
    UNIQUE (sink, event_id)
);
CREATE INDEX event_outbox_due ON event_outbox (next_attempt_at, id) WHERE status = 'pending';
-- The claim's "no older pending row of this sink and subject" check.
CREATE INDEX event_outbox_order ON event_outbox (sink, subject, id) WHERE status = 'pending';
CREATE INDEX event_outbox_webhook ON event_outbox (webhook_id, id);
CREATE INDEX event_outbox_status ON event_outbox (status);
-- The janitor deletes delivered rows a week after delivery.
CREATE INDEX event_outbox_delivered ON event_outbox (delivered_at);

---- create above / drop below ----

DROP TABLE event_outbox;
DROP TABLE webhooks;
