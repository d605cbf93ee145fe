-- The account's token policy (Security > Token policy). No row: the default policy, which
-- allows everything. NULL max_lifetime_days: no maximum; NULL inactivity_days: the
-- default two calendar years.
CREATE TABLE token_policies (
    account_id                  TEXT PRIMARY KEY REFERENCES accounts(id) ON DELETE CASCADE,
    max_lifetime_days           BIGINT CHECK (max_lifetime_days BETWEEN 1 AND 3650),
    require_expiry              BIGINT NOT NULL DEFAULT 0 CHECK (require_expiry IN (0, 1)),
    no_global_user_tokens       BIGINT NOT NULL DEFAULT 0 CHECK (no_global_user_tokens IN (0, 1)),
    automation_needs_allowlist  BIGINT NOT NULL DEFAULT 0 CHECK (automation_needs_allowlist IN (0, 1)),
    inactivity_days             BIGINT CHECK (inactivity_days BETWEEN 30 AND 730),
    updated_at                  BIGINT NOT NULL
);
