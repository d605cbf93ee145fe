-- Account tokens' name search ("name contains", any case) is `LOWER(name) LIKE
-- '%needle%'`. A trigram index on the same expression answers it from the index for a
-- needle of three characters or more, so a search that matches few tokens (or none)
-- no longer reads every token of the account. The planner still walks a sort index
-- instead when the needle matches many tokens and the page fills quickly.
--
-- pg_trgm ships with PostgreSQL and is a trusted extension (PostgreSQL 13 and later):
-- the owner of the database may create it without being a superuser.
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE INDEX tokens_name_trigrams ON tokens USING gin (LOWER(name) gin_trgm_ops);
