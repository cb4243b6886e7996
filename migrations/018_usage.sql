-- Usage plans (pkg/usage): named limits an admin assigns to a client or an
-- API key, quota counters every node reserves budget from, and daily
-- usage for reporting.

-- usage_plans are the plans. limits is a JSON array of
-- {"endpoint": "token"|"introspect"|"revoke"|"*", "per_second", "per_minute",
-- "per_day", "per_month"}, validated by pkg/usage; a plan is read whole.
CREATE TABLE usage_plans (
    name        text        PRIMARY KEY,
    description text        NOT NULL DEFAULT '',
    limits      jsonb       NOT NULL DEFAULT '[]',
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- usage_assignments give a subject ("client:ID" or "key:ID") its plan, one
-- plan per subject. No foreign key to clients or API keys: a subject may
-- be assigned before or after it exists, and deleting a plan takes it from
-- its subjects.
CREATE TABLE usage_assignments (
    subject    text        PRIMARY KEY,
    plan       text        NOT NULL REFERENCES usage_plans (name) ON DELETE CASCADE ON UPDATE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX usage_assignments_plan ON usage_assignments (plan);

-- usage_quotas count each quota's budget handed out to nodes in one
-- calendar period (UTC): scope is an endpoint or "*", period "day" or
-- "month", starting at period_start. reserved is what nodes took and have
-- not given back; a node serves calls only from budget it reserved, so
-- reserved never exceeds the quota it was reserved under. last_grant is
-- what the latest reservation added, returned to the node that made it.
CREATE TABLE usage_quotas (
    subject      text   NOT NULL,
    scope        text   NOT NULL,
    period       text   NOT NULL CHECK (period IN ('day', 'month')),
    period_start date   NOT NULL,
    reserved     bigint NOT NULL DEFAULT 0 CHECK (reserved >= 0),
    last_grant   bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (subject, scope, period, period_start)
);
CREATE INDEX usage_quotas_period_start ON usage_quotas (period_start);

-- usage_daily are calls per subject, endpoint and UTC day, for the admin
-- API's usage report: served (answered within the plan) and refused (429
-- for a rate or quota). Nodes add their counts in batches, never per call.
CREATE TABLE usage_daily (
    subject  text   NOT NULL,
    endpoint text   NOT NULL,
    day      date   NOT NULL,
    served   bigint NOT NULL DEFAULT 0,
    refused  bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (subject, day, endpoint)
);
CREATE INDEX usage_daily_day ON usage_daily (day);
