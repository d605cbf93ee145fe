-- An optional description of a token, set at creation (at most 500 characters).
ALTER TABLE tokens ADD COLUMN description TEXT CHECK (description IS NULL OR length(description) <= 500);
