-- Rolling a token: the new token names the one it replaced (plain text: the old row is
-- deleted when its overlap ends); the old token names its successor and expires when
-- the overlap ends (`expires_at`), then the hourly housekeeping deletes it.
ALTER TABLE tokens ADD COLUMN rolled_from TEXT;
ALTER TABLE tokens ADD COLUMN replaced_by TEXT;
CREATE INDEX tokens_rolled_over ON tokens(expires_at) WHERE replaced_by IS NOT NULL;

-- The digests of rolled secrets, kept for 90 days after their overlap ends so that a
-- use after it is recognised (401 as for an expired token, and a
-- `token.rotated_secret_used` event at most once a minute per secret: `noted_at`).
CREATE TABLE retired_secrets (
    secret_digest TEXT PRIMARY KEY,
    token_id      TEXT NOT NULL,
    account_id    TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    user_id       TEXT,
    name          TEXT NOT NULL,
    replaced_by   TEXT NOT NULL,
    retired_at    BIGINT NOT NULL,
    noted_at      BIGINT
);
CREATE INDEX retired_secrets_retired ON retired_secrets(retired_at);
