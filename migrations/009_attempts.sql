-- Sign-in attempts are reserved before their secret is checked: each one
-- is recorded in auth_failures first, under an advisory lock on its kind
-- and key, and deleted again, by its id, if it turns out right. Known
-- devices (device cookies) count wrong passwords under the kind
-- 'password-device', keyed by the account's key followed by the device's.
ALTER TABLE auth_failures ADD COLUMN id bigint GENERATED ALWAYS AS IDENTITY;
ALTER TABLE auth_failures ADD PRIMARY KEY (id);

---- create above / drop below ----

ALTER TABLE auth_failures DROP COLUMN id;
