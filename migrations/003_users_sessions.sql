-- Users, their browser sessions and consents, and the OpenID Connect state
-- kept between the authorization and token endpoints.

-- sub is a random UUID, never derived from the email, so that changing an
-- email does not change who a user is to every app. Emails are unique
-- regardless of case. Standard claims beyond the common ones (address,
-- phone, picture, locale, ...) live in claims, keyed by their OIDC names.
CREATE TABLE users (
    id             uuid        PRIMARY KEY,
    email          text        NOT NULL,
    email_verified boolean     NOT NULL DEFAULT false,
    name           text        NOT NULL DEFAULT '',
    given_name     text        NOT NULL DEFAULT '',
    family_name    text        NOT NULL DEFAULT '',
    claims         jsonb       NOT NULL DEFAULT '{}',
    password_hash  text,
    disabled       boolean     NOT NULL DEFAULT false,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX users_email ON users (lower(email));

-- The session store of github.com/alexedwards/scs (pgxstore): the browser's
-- cookie holds token, the server holds everything else.
CREATE TABLE sessions (
    token  text        PRIMARY KEY,
    data   bytea       NOT NULL,
    expiry timestamptz NOT NULL
);
CREATE INDEX sessions_expiry_idx ON sessions (expiry);

-- One row per sign-in, named by sid (the ID token's sid claim). A browser
-- session is valid only while its row exists, so deleting the row signs the
-- browser out wherever it is.
CREATE TABLE browser_sessions (
    sid        text        PRIMARY KEY,
    user_id    uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    auth_time  timestamptz NOT NULL,
    amr        text[]      NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    user_agent text        NOT NULL DEFAULT '',
    ip         text        NOT NULL DEFAULT ''
);
CREATE INDEX browser_sessions_user_id ON browser_sessions (user_id);
CREATE INDEX browser_sessions_expires_at ON browser_sessions (expires_at);

-- The scopes a user has allowed a client, so that asking again for them
-- (or fewer) skips the consent page.
CREATE TABLE consents (
    user_id    uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    client_id  text        NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    scopes     text[]      NOT NULL,
    granted_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, client_id)
);
CREATE INDEX consents_client_id ON consents (client_id);

-- The OpenID Connect request behind an authorization code, keyed like the
-- other token tables by a digest, never the code itself.
CREATE TABLE oauth_oidc_sessions (
    LIKE oauth_access_tokens INCLUDING DEFAULTS INCLUDING CONSTRAINTS,
    PRIMARY KEY (signature),
    FOREIGN KEY (client_id) REFERENCES clients (id) ON DELETE CASCADE
);
CREATE INDEX oauth_oidc_sessions_client_id ON oauth_oidc_sessions (client_id);
CREATE INDEX oauth_oidc_sessions_expires_at ON oauth_oidc_sessions (expires_at);

-- Signing a user out everywhere revokes their tokens by subject.
CREATE INDEX oauth_access_tokens_subject ON oauth_access_tokens (subject);
CREATE INDEX oauth_refresh_tokens_subject ON oauth_refresh_tokens (subject);

---- create above / drop below ----

DROP INDEX oauth_refresh_tokens_subject;
DROP INDEX oauth_access_tokens_subject;
DROP TABLE oauth_oidc_sessions;
DROP TABLE consents;
DROP TABLE browser_sessions;
DROP TABLE sessions;
DROP TABLE users;
