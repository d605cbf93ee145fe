-- Tokens revoked because someone reported them leaked (POST /tokens/revoke-leaked):
-- the token row is deleted like any revoked token; this keeps what its owner and the
-- account's superusers need to know (listed on /account/tokens/exposed).
CREATE TABLE exposed_tokens (
    id           TEXT PRIMARY KEY,
    account_id   TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    kind         TEXT NOT NULL CHECK (kind IN ('user', 'automation')),
    -- the owner of a user token; NULL for automation tokens
    user_id      TEXT REFERENCES users(id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    source_url   TEXT,
    created_at   BIGINT NOT NULL,
    reported_at  BIGINT NOT NULL
);
CREATE INDEX exposed_tokens_account ON exposed_tokens(account_id, reported_at);

-- Notices shown to one member on their next page views until dismissed.
CREATE TABLE notices (
    id          TEXT PRIMARY KEY,
    account_id  TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    user_id     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    message     TEXT NOT NULL,
    link        TEXT,
    created_at  BIGINT NOT NULL
);
CREATE INDEX notices_member ON notices(account_id, user_id, created_at);
