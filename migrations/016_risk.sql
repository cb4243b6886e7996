-- Risk signals (pkg/risk).
--
-- risk_networks is each user's own history: the networks (an IPv4 /24 or
-- IPv6 /64) they signed in from, where GeoIP put them if the operator has
-- a database, and when. It is written only at a successful sign-in, in
-- its transaction, and forgotten 90 days (the policy's history) after a
-- network was last seen (expires_at, swept by the janitor).
CREATE TABLE risk_networks (
    user_id    uuid             NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    network    cidr             NOT NULL,
    country    text             NOT NULL DEFAULT '',
    latitude   double precision,
    longitude  double precision,
    first_seen timestamptz      NOT NULL DEFAULT now(),
    last_seen  timestamptz      NOT NULL DEFAULT now(),
    expires_at timestamptz      NOT NULL,
    PRIMARY KEY (user_id, network)
);
CREATE INDEX risk_networks_user_last_seen ON risk_networks (user_id, last_seen DESC);
CREATE INDEX risk_networks_expires_at ON risk_networks (expires_at);

-- risk_failures are failed sign-ins by network and account digest (as
-- auth_failures keys them), kept only for the policy's failure window:
-- the spreads of credential stuffing and of an account targeted from many
-- networks are counted from them. Anyone can cause a row, so each lives
-- minutes, and the per-address failure limit bounds how fast they come.
CREATE TABLE risk_failures (
    network    cidr        NOT NULL,
    account    bytea       NOT NULL,
    at         timestamptz NOT NULL DEFAULT clock_timestamp(),
    expires_at timestamptz NOT NULL
);
CREATE INDEX risk_failures_network ON risk_failures (network, at);
CREATE INDEX risk_failures_account ON risk_failures (account, at);
CREATE INDEX risk_failures_expires_at ON risk_failures (expires_at);

-- risk_latches are keys held until a time: a block ("block:net:PREFIX",
-- "block:acct:DIGEST"), honoured by every node, and the once-per-window
-- mark of a signal that acted ("signal:NAME:SCOPE"), so that parallel
-- failures on any number of nodes act on it once.
CREATE TABLE risk_latches (
    key        text        PRIMARY KEY,
    until      timestamptz NOT NULL,
    reason     text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX risk_latches_until ON risk_latches (until);

---- create above / drop below ----

DROP TABLE risk_latches;
DROP TABLE risk_failures;
DROP TABLE risk_networks;
