-- Placeholder for migration 14, which another branch (passkey challenges)
-- adds. tern refuses a gap in the numbers, and 15 (events) is this
-- branch's. When the two branches meet, the other branch's 014 replaces
-- this file; a database must never be migrated with this one in place.
SELECT 1;

---- create above / drop below ----

SELECT 1;
