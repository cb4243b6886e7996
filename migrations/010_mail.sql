-- Mail leaves the database through an outbox: a message is written here in
-- the transaction of the change that causes it (a password reset asked
-- for, an email changed), and a sender on any node delivers it later, with
-- retries. The rendered message is sealed (pkg/seal), because it carries
-- single-use links, and erased once sent.
CREATE TABLE mail_outbox (
    id              bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    template        text        NOT NULL,
    recipient       text        NOT NULL,
    message         bytea,
    status          text        NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'failed')),
    attempts        integer     NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    -- A sender claims a message until this time; another may take it over
    -- only after, if the first died mid-send.
    claimed_until   timestamptz,
    claim           uuid,
    last_error      text        NOT NULL DEFAULT '',
    created_at      timestamptz NOT NULL DEFAULT now(),
    -- When the current run of attempts began: when the message was
    -- written, or when an admin retried it after it failed. A message is
    -- given up on a while after.
    attempts_since  timestamptz NOT NULL DEFAULT now(),
    sent_at         timestamptz
);
CREATE INDEX mail_outbox_due ON mail_outbox (next_attempt_at) WHERE status = 'pending';
CREATE INDEX mail_outbox_status ON mail_outbox (status, id);
-- The janitor deletes sent messages a week after they were sent.
CREATE INDEX mail_outbox_sent ON mail_outbox (sent_at);

-- The single-use links Latchkey mails: password resets, email
-- verifications, invitations and sign-ups. Only the SHA-256 of a link's
-- token is kept. A link is spent by setting used_at, so that a second use
-- can be told apart from a link that never existed.
CREATE TABLE email_links (
    token_hash bytea       PRIMARY KEY,
    purpose    text        NOT NULL CHECK (purpose IN ('reset', 'verify', 'invite', 'signup')),
    -- The user the link acts for; none for a sign-up, whose user does not
    -- exist until the link is followed.
    user_id    uuid        REFERENCES users (id) ON DELETE CASCADE,
    -- The address the link was sent to: for a verification, the address
    -- that becomes the user's when it is followed.
    email      text        NOT NULL,
    -- What following the link needs besides (a sign-up's name and password
    -- hash), sealed.
    payload    bytea,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    used_at    timestamptz
);
CREATE INDEX email_links_user ON email_links (user_id, purpose, created_at);
CREATE INDEX email_links_email ON email_links (lower(email), purpose, created_at);
CREATE INDEX email_links_expiry ON email_links (expires_at);

---- create above / drop below ----

DROP TABLE email_links;
DROP TABLE mail_outbox;
