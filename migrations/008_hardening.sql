-- Hardening after an attacker's review (issue 13).

-- Browser sessions are stored under the SHA-256 digest of their token, as
-- scs does with HashTokenInStore (base64url without padding), never under
-- the token itself: a copy of the table signs nobody in. Existing rows are
-- rekeyed the same way, so that browsers signed in before the upgrade stay
-- signed in.
UPDATE sessions
   SET token = rtrim(translate(encode(sha256(convert_to(token, 'UTF8')), 'base64'), '+/', '-_'), '=');

-- When each client's secret was last rotated. An admin API token issued
-- before it no longer works, so that rotating a leaked secret also ends the
-- tokens it obtained. NULL: never rotated.
ALTER TABLE clients ADD COLUMN secret_rotated_at timestamptz;

---- create above / drop below ----

ALTER TABLE clients DROP COLUMN secret_rotated_at;

-- A digest cannot be turned back into its token: the sessions go, and
-- their users sign in again.
DELETE FROM sessions;
