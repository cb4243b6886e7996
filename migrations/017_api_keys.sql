-- API keys (pkg/apikey): long-lived credentials that resource servers
-- check by introspection, as they check access tokens. A key belongs to
-- exactly one owner: a client (a service's key, made by an admin) or a
-- user (a personal key, made on the account page). Deleting the owner
-- deletes its keys, so they stop working at once.
--
-- Only the key's SHA-256 digest is stored, under a unique index: checking a
-- key is one indexed lookup. prefix is the key's first characters, shown
-- so that people can tell their keys apart; it is far too short to guess
-- the rest from. Revoking a key deletes its row.
CREATE TABLE api_keys (
    id                uuid        PRIMARY KEY,
    digest            bytea       NOT NULL UNIQUE,
    prefix            text        NOT NULL,
    client_id         text        REFERENCES clients (id) ON DELETE CASCADE,
    user_id           uuid        REFERENCES users (id) ON DELETE CASCADE,
    name              text        NOT NULL,
    scopes            text[]      NOT NULL DEFAULT '{}',
    audience          text[]      NOT NULL DEFAULT '{}',
    allowed_addresses cidr[]      NOT NULL DEFAULT '{}',
    expires_at        timestamptz,
    created_at        timestamptz NOT NULL DEFAULT now(),
    last_used_at      timestamptz,
    last_used_from    inet,
    -- addresses_full_at is when a use from a new address first found the
    -- key's addresses at their cap (pkg/apikey): set once, by one request.
    addresses_full_at timestamptz,
    CHECK ((client_id IS NULL) <> (user_id IS NULL))
);
CREATE INDEX api_keys_client_id ON api_keys (client_id);
CREATE INDEX api_keys_user_id ON api_keys (user_id);

-- api_key_addresses are the addresses each key has been used from, as
-- resource servers report them at introspection: the first use from an
-- address not here is audited (api_key.used_from_new_address). The
-- primary key makes that decision once per address, whatever the number
-- of nodes and parallel requests. A key records at most a capped number
-- of addresses (pkg/apikey), so that a leaked key used from everywhere
-- cannot grow this table, or the audit log, without bound.
CREATE TABLE api_key_addresses (
    key_id     uuid        NOT NULL REFERENCES api_keys (id) ON DELETE CASCADE,
    address    inet        NOT NULL,
    first_seen timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (key_id, address)
);

---- create above / drop below ----

DROP TABLE api_key_addresses;
DROP TABLE api_keys;
