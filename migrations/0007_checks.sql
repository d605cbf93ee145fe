-- CHECK constraints on the columns the application decodes into enums and flags, so a
-- value the code does not know can never be stored (the code decodes them strictly in
-- db::types). Both databases accept a CHECK only when a table is created, so the
-- tables with such columns are rebuilt: their rows are copied aside, the tables
-- (children first, so no foreign key or cascade fires) dropped, made again with the
-- constraints, filled back, and their indexes made again.
--
-- The schema's conventions, for every migration: times are Unix seconds (BIGINT), ids
-- are text made by the application, flags are BIGINT 0/1 (the Any driver decodes no
-- SQLite BOOLEAN), so the same SQL runs on SQLite and PostgreSQL.

CREATE TABLE copy_accounts AS SELECT id, name, force_2fa, force_sso, created_at FROM accounts;
CREATE TABLE copy_users AS SELECT id, email, name, password_hash, totp_secret, totp_last_step, locked, created_at FROM users;
CREATE TABLE copy_memberships AS SELECT account_id, user_id, role, created_at FROM memberships;
CREATE TABLE copy_services AS SELECT id, account_id, name, created_at FROM services;
CREATE TABLE copy_service_permissions AS SELECT account_id, user_id, service_id, permission FROM service_permissions;
CREATE TABLE copy_tokens AS SELECT id, account_id, kind, user_id, created_by, name, scope, role, tls_access, secret_digest, created_at, expires_at, last_used_at, last_used_ip, last_used_agent, sudo_until FROM tokens;
CREATE TABLE copy_token_services AS SELECT token_id, service_id FROM token_services;
CREATE TABLE copy_recovery_codes AS SELECT user_id, code_digest, created_at, used_at FROM recovery_codes;
CREATE TABLE copy_password_links AS SELECT digest, user_id, created_at, expires_at FROM password_links;

DROP TABLE token_services;
DROP TABLE service_permissions;
DROP TABLE recovery_codes;
DROP TABLE password_links;
DROP TABLE tokens;
DROP TABLE memberships;
DROP TABLE services;
DROP TABLE users;
DROP TABLE accounts;

CREATE TABLE accounts (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    force_2fa   BIGINT NOT NULL DEFAULT 0 CHECK (force_2fa IN (0, 1)),
    force_sso   BIGINT NOT NULL DEFAULT 0 CHECK (force_sso IN (0, 1)),
    created_at  BIGINT NOT NULL
);

CREATE TABLE users (
    id              TEXT PRIMARY KEY,
    email           TEXT NOT NULL UNIQUE,
    name            TEXT NOT NULL,
    -- NULL: the user cannot sign in with a password (e.g. the synthetic legacy-key user).
    password_hash   TEXT,
    totp_secret     TEXT,
    totp_last_step  BIGINT,
    locked          BIGINT NOT NULL DEFAULT 0 CHECK (locked IN (0, 1)),
    created_at      BIGINT NOT NULL
);

CREATE TABLE memberships (
    account_id  TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    user_id     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    role        TEXT NOT NULL CHECK (role IN ('user', 'billing', 'engineer', 'superuser')),
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (account_id, user_id)
);

CREATE TABLE services (
    id          TEXT PRIMARY KEY,
    account_id  TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    UNIQUE (account_id, name)
);

-- An engineer with rows here is limited to these services, with a permission on each;
-- without rows, they work on every service of the account.
CREATE TABLE service_permissions (
    account_id  TEXT NOT NULL,
    user_id     TEXT NOT NULL,
    service_id  TEXT NOT NULL REFERENCES services(id) ON DELETE CASCADE,
    permission  TEXT NOT NULL CHECK (permission IN ('full', 'read_only', 'purge_select', 'purge_all')),
    PRIMARY KEY (account_id, user_id, service_id),
    FOREIGN KEY (account_id, user_id) REFERENCES memberships(account_id, user_id) ON DELETE CASCADE
);

-- A user token has an owner and carries the owner's role; an automation token has no
-- owner, a role of its own (never superuser), and may manage TLS.
CREATE TABLE tokens (
    id              TEXT PRIMARY KEY,
    account_id      TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    kind            TEXT NOT NULL CHECK (kind IN ('user', 'automation')),
    user_id         TEXT REFERENCES users(id),
    -- who created the token; plain text, so the creator of an automation token can be deleted
    created_by      TEXT,
    name            TEXT NOT NULL,
    scope           TEXT NOT NULL,
    role            TEXT,
    tls_access      BIGINT NOT NULL DEFAULT 0 CHECK (tls_access IN (0, 1)),
    secret_digest   TEXT NOT NULL UNIQUE,
    created_at      BIGINT NOT NULL,
    expires_at      BIGINT,
    last_used_at    BIGINT,
    last_used_ip    TEXT,
    last_used_agent TEXT,
    sudo_until      BIGINT,
    CHECK (
        (kind = 'user' AND user_id IS NOT NULL AND role IS NULL AND tls_access = 0)
        OR (kind = 'automation' AND user_id IS NULL AND role IN ('user', 'billing', 'engineer'))
    )
);

CREATE TABLE token_services (
    token_id    TEXT NOT NULL REFERENCES tokens(id) ON DELETE CASCADE,
    service_id  TEXT NOT NULL REFERENCES services(id) ON DELETE CASCADE,
    PRIMARY KEY (token_id, service_id)
);

CREATE TABLE recovery_codes (
    user_id     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    code_digest TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    used_at     BIGINT,
    PRIMARY KEY (user_id, code_digest)
);

CREATE TABLE password_links (
    digest      TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL
);

INSERT INTO accounts (id, name, force_2fa, force_sso, created_at)
    SELECT id, name, force_2fa, force_sso, created_at FROM copy_accounts;
INSERT INTO users (id, email, name, password_hash, totp_secret, totp_last_step, locked, created_at)
    SELECT id, email, name, password_hash, totp_secret, totp_last_step, locked, created_at FROM copy_users;
INSERT INTO memberships (account_id, user_id, role, created_at)
    SELECT account_id, user_id, role, created_at FROM copy_memberships;
INSERT INTO services (id, account_id, name, created_at)
    SELECT id, account_id, name, created_at FROM copy_services;
INSERT INTO service_permissions (account_id, user_id, service_id, permission)
    SELECT account_id, user_id, service_id, permission FROM copy_service_permissions;
INSERT INTO tokens (id, account_id, kind, user_id, created_by, name, scope, role, tls_access, secret_digest, created_at, expires_at, last_used_at, last_used_ip, last_used_agent, sudo_until)
    SELECT id, account_id, kind, user_id, created_by, name, scope, role, tls_access, secret_digest, created_at, expires_at, last_used_at, last_used_ip, last_used_agent, sudo_until FROM copy_tokens;
INSERT INTO token_services (token_id, service_id)
    SELECT token_id, service_id FROM copy_token_services;
INSERT INTO recovery_codes (user_id, code_digest, created_at, used_at)
    SELECT user_id, code_digest, created_at, used_at FROM copy_recovery_codes;
INSERT INTO password_links (digest, user_id, created_at, expires_at)
    SELECT digest, user_id, created_at, expires_at FROM copy_password_links;

DROP TABLE copy_accounts;
DROP TABLE copy_users;
DROP TABLE copy_memberships;
DROP TABLE copy_services;
DROP TABLE copy_service_permissions;
DROP TABLE copy_tokens;
DROP TABLE copy_token_services;
DROP TABLE copy_recovery_codes;
DROP TABLE copy_password_links;

-- The indexes of 0001, 0003 and 0005, as they were.
CREATE INDEX memberships_user ON memberships(user_id);
CREATE INDEX tokens_owner ON tokens(account_id, user_id, created_at);
CREATE INDEX token_services_service ON token_services(service_id);
CREATE INDEX password_links_user ON password_links(user_id);
CREATE INDEX tokens_account_created
    ON tokens(account_id, created_at, id, kind, scope, expires_at, name);
CREATE INDEX tokens_account_last_used
    ON tokens(account_id, (COALESCE(last_used_at, 0)), id, kind, scope, expires_at, name);
CREATE INDEX tokens_account_expires
    ON tokens(account_id, (COALESCE(expires_at, 253402300800)), id, kind, scope, name);
CREATE INDEX tokens_last_activity ON tokens ((COALESCE(last_used_at, created_at)));
