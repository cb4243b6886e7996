-- Reserved for the passkeys branch, which adds migration 012. Migrations
-- must be numbered without gaps, and trusted devices (013) were built
-- alongside passkeys: this empty step keeps the numbering whole until the
-- two branches meet, when the passkeys file replaces this one.
SELECT 1;

---- create above / drop below ----

SELECT 1;
