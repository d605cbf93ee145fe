-- Superusers: one-time set-password links, and indexes for the Account tokens page.

-- A link to set the password of a user a superuser added. Only the SHA-256 digest of
-- the link's secret is stored; using the link deletes the row.
CREATE TABLE password_links (
    digest      TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL
);
CREATE INDEX password_links_user ON password_links(user_id);

-- Account tokens are listed a page at a time, sorted by creation, last use or expiry,
-- newest or oldest first, continuing after the last (key, id) shown. Each sort key has
-- an index that starts (account_id, key, id), so a page is a short index range scan.
-- NULLs are given a value (never used: 0; never expires: year 10000) so both databases
-- order them alike and keyset comparisons never meet a NULL. The indexes also carry the
-- filtered columns (type, scope, expiry, name): SQLite then tests the filters on index
-- entries and reads a table row only for a match, so a rare filter or a search costs a
-- walk through the index, not a row lookup per token. The old (account_id, created_at)
-- index is a prefix of the new one.
DROP INDEX tokens_account_created;
CREATE INDEX tokens_account_created
    ON tokens(account_id, created_at, id, kind, scope, expires_at, name);
CREATE INDEX tokens_account_last_used
    ON tokens(account_id, (COALESCE(last_used_at, 0)), id, kind, scope, expires_at, name);
CREATE INDEX tokens_account_expires
    ON tokens(account_id, (COALESCE(expires_at, 253402300800)), id, kind, scope, name);
