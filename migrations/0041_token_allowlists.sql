-- A token's address allowlist: normalised CIDR ranges, space-separated (NULL: any
-- address), and when a call from outside it was last recorded as an event (at most one
-- event per token per minute, across every node).
ALTER TABLE tokens ADD COLUMN allowed_cidrs TEXT;
ALTER TABLE tokens ADD COLUMN address_refused_at BIGINT;
