-- A ticket's whole life: validation, closure, the satisfaction survey, and the work that is due
-- at a time rather than caused by a mail (reminders, closing unanswered resolutions, surveys).

-- When the ticket was last resolved and closed, and why it closed: `confirmed` (the requester
-- validated the solution), `technician` (#cerrar), `no_answer` (nobody answered the resolution
-- within lifecycle.auto_close_after).
ALTER TABLE tickets ADD COLUMN resolved_at TEXT;
ALTER TABLE tickets ADD COLUMN closed_at TEXT;
ALTER TABLE tickets ADD COLUMN close_reason TEXT;
-- The satisfaction survey: when it went out, whether the one gentle retry after an unreadable
-- answer was sent. One survey per ticket, ever.
ALTER TABLE tickets ADD COLUMN survey_sent_at TEXT;
ALTER TABLE tickets ADD COLUMN survey_retried INTEGER NOT NULL DEFAULT 0;

-- The requester's answer to the survey: one per ticket.
CREATE TABLE satisfaction (
    ticket_id    INTEGER PRIMARY KEY REFERENCES tickets (id),
    rating       INTEGER NOT NULL CHECK (rating BETWEEN 1 AND 5),
    comment      TEXT,
    message_row  INTEGER REFERENCES messages (id),
    answered_at  TEXT NOT NULL
);

-- Addresses that asked for no more surveys ("no más encuestas"), lower case.
CREATE TABLE survey_opt_outs (
    email       TEXT PRIMARY KEY,
    created_at  TEXT NOT NULL
);

-- What is due, and when: written in the same transaction as the change that makes it due
-- (resolving a ticket queues its reminder and its closing), done in one transaction with its
-- effects (so exactly once across crashes), cancelled when the ticket's status changes first.
CREATE TABLE due_items (
    id           INTEGER PRIMARY KEY,
    ticket_id    INTEGER NOT NULL REFERENCES tickets (id),
    kind         TEXT NOT NULL,
    due_at       TEXT NOT NULL,
    status       TEXT NOT NULL DEFAULT 'pending'
                 CHECK (status IN ('pending', 'done', 'cancelled')),
    -- what doing it did (`sent`, `closed`, `obsolete: …`), for the history
    outcome      TEXT,
    created_at   TEXT NOT NULL,
    finished_at  TEXT
);
-- A sweep with nothing due reads one entry of this index.
CREATE INDEX due_items_pending ON due_items (due_at) WHERE status = 'pending';
CREATE INDEX due_items_ticket ON due_items (ticket_id, status);
