-- The API's hourly write budget: one row per user (or automation token) counting its
-- write requests in the current clock hour. Kept in the database so that every node
-- counts against the same budget; rows of past hours are deleted by the hourly
-- housekeeping.
CREATE TABLE api_write_budget (
    key           TEXT PRIMARY KEY,
    window_start  BIGINT NOT NULL,
    writes        BIGINT NOT NULL CHECK (writes >= 0)
);
