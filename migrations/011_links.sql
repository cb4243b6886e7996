-- Mails that anyone may ask for (a password reset, a sign-up) are counted
-- per account or address on every node at once, so that a flood of
-- requests sends a bounded number of mails. Each mail sent leaves a row
-- under its key (a purpose and a user's sub, or a digest of an address,
-- never the address), counted for an hour and swept by the janitor after
-- a day.
CREATE TABLE mail_quota (
    key        text        NOT NULL,
    at         timestamptz NOT NULL DEFAULT clock_timestamp(),
    expires_at timestamptz NOT NULL DEFAULT now() + interval '1 day'
);
CREATE INDEX mail_quota_key ON mail_quota (key, at);
CREATE INDEX mail_quota_expires_at ON mail_quota (expires_at);

-- A spent link is kept a while, so that opening it again says it was used
-- rather than that it never existed; the janitor finds spent links by this.
CREATE INDEX email_links_used ON email_links (used_at) WHERE used_at IS NOT NULL;

---- create above / drop below ----

DROP INDEX email_links_used;
DROP TABLE mail_quota;
