-- Changes to what tokens may do, for the verified-token cache of every process that
-- shares a SQLite file (ops/token_cache.rs): each invalidating transaction adds a row,
-- each process reads the rows past the last it saw a few times a second, and rows
-- older than ten minutes are deleted. PostgreSQL nodes use LISTEN/NOTIFY instead and
-- leave this table empty.
CREATE TABLE token_cache_log (
    seq         BIGINT PRIMARY KEY,
    changes     TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);
