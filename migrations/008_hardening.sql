-- Hardening after an attacker's review (issue 13).

-- Browser sessions are stored under the SHA-256 digest of their token, as
-- scs does with HashTokenInStore (base64url without padding), never under
-- the token itself: a copy of the table signs nobody in. Existing rows are
-- rekeyed the same way, so that browsers signed in before the upgrade stay
-- signed in.
UPDATE sessions
   SET token = rtrim(translate(encode(sha256(convert_to(token, 'UTF8')), 'base64'), '+/', '-_'), '=');

---- create above / drop below ----

-- A digest cannot be turned back into its token: the sessions go, and
-- their users sign in again.
DELETE FROM sessions;
