-- Each user's token-expiry calendar link (/account/tokens/expiry.ics?key=…): only the
-- SHA-256 digest of its key is kept. Regenerating replaces the row; revoking deletes it.
CREATE TABLE expiry_calendars (
    user_id     TEXT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    key_digest  TEXT NOT NULL UNIQUE,
    created_at  BIGINT NOT NULL
);
