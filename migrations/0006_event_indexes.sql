-- The event log is read newest first within one account, often narrowed by type, actor,
-- service or token; each narrowing has an index that ends in the time.
CREATE INDEX events_account_type ON events(account_id, event_type, created_at);
CREATE INDEX events_account_actor ON events(account_id, actor_id, created_at);
CREATE INDEX events_account_service ON events(account_id, service_id, created_at);
CREATE INDEX events_account_token ON events(account_id, token_id, created_at);
