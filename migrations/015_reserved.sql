-- Placeholder for migration 015, which another branch (the webhooks branch's events)
-- adds. tern refuses a gap in the numbers, and 16 (risk) is this
-- branch's. When the branches meet, the other branch's 015 replaces
-- this file; a database must never be migrated with this one in place.
SELECT 1;

---- create above / drop below ----

SELECT 1;
