-- Service levels (`[sla]`): when a technician first answered (a public reply or a change of
-- status), the resolution clock standing still (while waiting on the requester, or resolved
-- until a reopening) and how long it stood still before, and which targets were breached: each
-- escalates once per ticket.
ALTER TABLE tickets ADD COLUMN first_response_at TEXT;
ALTER TABLE tickets ADD COLUMN sla_paused_at TEXT;
ALTER TABLE tickets ADD COLUMN sla_paused_seconds INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tickets ADD COLUMN response_breached_at TEXT;
ALTER TABLE tickets ADD COLUMN resolution_breached_at TEXT;
