-- Account tokens' name search ("name contains", any case) through an FTS5 index of the
-- names' trigrams: for a needle of three characters or more it finds the few tokens
-- whose names contain it without testing every token of the account
-- (db/account_token_list.rs decides when to use it). PostgreSQL has its own index
-- (postgres/0053).
--
-- The FTS index cannot point at `tokens` rows directly: their rowids are implicit (the
-- key is a TEXT id) and VACUUM, or a backup's VACUUM INTO, may renumber them. So the
-- names are copied to `token_names`, whose INTEGER PRIMARY KEY is a stable rowid, and
-- the index reads its text from there (an external-content FTS5 table). Triggers keep
-- both in step with `tokens`, renames and deletions (also by ON DELETE CASCADE) too.
--
-- A transaction begun deferred whose first statement writes `tokens` (and so this
-- index) failed at once with "database is locked" beside concurrent token writes, the
-- busy timeout notwithstanding: every transaction on SQLite is begun IMMEDIATE
-- (`Db::begin`).
CREATE TABLE token_names (
    id          INTEGER PRIMARY KEY,
    token_id    TEXT NOT NULL UNIQUE,
    account_id  TEXT NOT NULL,
    name        TEXT NOT NULL
);

-- Case-insensitive trigrams (the tokenizer folds case, beyond ASCII too); the search
-- still tests the candidates with the same LIKE as without the index, so the results
-- are the same.
CREATE VIRTUAL TABLE token_name_trigrams USING fts5(
    name, content = 'token_names', content_rowid = 'id', tokenize = 'trigram'
);

CREATE TRIGGER token_names_indexed AFTER INSERT ON token_names BEGIN
    INSERT INTO token_name_trigrams (rowid, name) VALUES (new.id, new.name);
END;
CREATE TRIGGER token_names_unindexed AFTER DELETE ON token_names BEGIN
    INSERT INTO token_name_trigrams (token_name_trigrams, rowid, name)
        VALUES ('delete', old.id, old.name);
END;
CREATE TRIGGER token_names_reindexed AFTER UPDATE OF name ON token_names BEGIN
    INSERT INTO token_name_trigrams (token_name_trigrams, rowid, name)
        VALUES ('delete', old.id, old.name);
    INSERT INTO token_name_trigrams (rowid, name) VALUES (new.id, new.name);
END;

CREATE TRIGGER tokens_name_added AFTER INSERT ON tokens BEGIN
    INSERT INTO token_names (token_id, account_id, name)
        VALUES (new.id, new.account_id, new.name);
END;
CREATE TRIGGER tokens_name_changed AFTER UPDATE OF name ON tokens BEGIN
    UPDATE token_names SET name = new.name WHERE token_id = new.id;
END;
CREATE TRIGGER tokens_name_removed AFTER DELETE ON tokens BEGIN
    DELETE FROM token_names WHERE token_id = old.id;
END;

-- The tokens stored before this migration.
INSERT INTO token_names (token_id, account_id, name) SELECT id, account_id, name FROM tokens;
