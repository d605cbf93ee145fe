-- The two-year sweep looks tokens up by their last activity.
CREATE INDEX tokens_last_activity ON tokens ((COALESCE(last_used_at, created_at)));
