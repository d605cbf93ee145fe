-- Users who are not people: the per-account "Global API Token" user that owns imported
-- legacy API keys. They hold the superuser role (legacy keys had the whole account's
-- powers) but never count as a superuser for the rule that an account keeps one.
ALTER TABLE users ADD COLUMN synthetic BIGINT NOT NULL DEFAULT 0 CHECK (synthetic IN (0, 1));

-- Such users made before this migration: no password, in the reserved legacy domain.
UPDATE users SET synthetic = 1
 WHERE password_hash IS NULL AND email LIKE 'global-api-token@%.legacy.invalid';
