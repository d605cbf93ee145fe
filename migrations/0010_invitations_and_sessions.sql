-- Invitations (issue 13): a superuser invites an email with a role (and, for an
-- engineer, service permissions); whoever holds the one-time link accepts or declines.
-- Only the SHA-256 digest of the link's secret is stored; accepting, declining or
-- revoking deletes the row (the event log keeps the history). `issued` counts the
-- links made for the invitation, so a re-posted "re-issue" form is recognised as spent.
-- One pending invitation per email and account.
CREATE TABLE invitations (
    id             TEXT PRIMARY KEY,
    account_id     TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    email          TEXT NOT NULL,
    role           TEXT NOT NULL CHECK (role IN ('user', 'billing', 'engineer', 'superuser')),
    -- the inviting superuser; plain text, so that user can be deleted
    invited_by     TEXT,
    secret_digest  TEXT NOT NULL UNIQUE,
    issued         BIGINT NOT NULL DEFAULT 1,
    created_at     BIGINT NOT NULL,
    expires_at     BIGINT NOT NULL,
    UNIQUE (account_id, email)
);

-- An engineer's invitation limited to some services, with the permission on each
-- (none: all services), as service_permissions will hold them once accepted.
CREATE TABLE invitation_services (
    invitation_id  TEXT NOT NULL REFERENCES invitations(id) ON DELETE CASCADE,
    service_id     TEXT NOT NULL REFERENCES services(id) ON DELETE CASCADE,
    permission     TEXT NOT NULL CHECK (permission IN ('full', 'read_only', 'purge_select', 'purge_all')),
    PRIMARY KEY (invitation_id, service_id)
);
CREATE INDEX invitation_services_service ON invitation_services(service_id);

-- Set-password links are replaced by invitations: nothing makes them any more.
DROP TABLE password_links;

-- Sessions are stored under the SHA-256 digest of their id, so a copy of this table
-- holds no usable session. The columns beside the data copy what the Sessions page
-- lists and what ends sessions (a user's, or a member's in one account). The old rows
-- are keyed by the id itself and cannot be converted in SQL on both databases: every
-- browser signs in once more.
DROP TABLE sessions;
CREATE TABLE sessions (
    id_digest       TEXT PRIMARY KEY,
    data            TEXT NOT NULL,
    expiry_date     BIGINT NOT NULL,
    user_id         TEXT,
    account_id      TEXT,
    signed_in_at    BIGINT,
    last_active_at  BIGINT,
    ip              TEXT,
    user_agent      TEXT
);
CREATE INDEX sessions_expiry ON sessions(expiry_date);
CREATE INDEX sessions_user ON sessions(user_id);
