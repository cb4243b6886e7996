-- The admin side: the audit log, and roles for users.

-- Every admin change and security event, written in the transaction of the
-- change it records, so that a change rolled back leaves no event and no
-- change goes unrecorded. actor and target name their kind
-- ("client:ID", "user:SUB", "cli:NAME"); details holds what else matters
-- to the event, never a secret.
CREATE TABLE audit_events (
    id         bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at         timestamptz NOT NULL DEFAULT now(),
    actor      text        NOT NULL,
    action     text        NOT NULL,
    target     text        NOT NULL DEFAULT '',
    ip         text        NOT NULL DEFAULT '',
    request_id text        NOT NULL DEFAULT '',
    details    jsonb       NOT NULL DEFAULT '{}'
);
-- Lists run newest first, by id, under the filters the admin API offers.
CREATE INDEX audit_events_actor ON audit_events (actor, id);
CREATE INDEX audit_events_action ON audit_events (action, id);
CREATE INDEX audit_events_target ON audit_events (target, id);
CREATE INDEX audit_events_at ON audit_events (at);

-- Roles an admin defines and assigns to users; apps allowed the roles scope
-- learn a user's roles in the roles claim.
CREATE TABLE roles (
    name        text        PRIMARY KEY,
    description text        NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE user_roles (
    user_id     uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role        text        NOT NULL REFERENCES roles (name) ON DELETE CASCADE,
    assigned_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, role)
);
CREATE INDEX user_roles_role ON user_roles (role);

---- create above / drop below ----

DROP TABLE user_roles;
DROP TABLE roles;
DROP TABLE audit_events;
