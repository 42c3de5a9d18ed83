-- folio's SQLite schema. Timestamps are UTC RFC 3339 text with milliseconds
-- ("2026-11-27T03:27:37.123Z"), so they sort and compare as text.

-- Per IMAP folder: the UIDVALIDITY seen and the first UID folio is responsible for
-- (mail below it was already there at the first start and is left alone).
CREATE TABLE mailbox_state (
    folder        TEXT PRIMARY KEY,
    uidvalidity   INTEGER NOT NULL,
    baseline_uid  INTEGER NOT NULL,
    updated_at    TEXT NOT NULL
);

-- Gap-free folio sequence per year, advanced inside the ticket's transaction.
CREATE TABLE folio_counter (
    year      INTEGER PRIMARY KEY,
    last_seq  INTEGER NOT NULL
);

CREATE TABLE tickets (
    id                    INTEGER PRIMARY KEY,
    folio                 TEXT NOT NULL UNIQUE,
    status                TEXT NOT NULL,
    channel               TEXT NOT NULL,
    subject               TEXT NOT NULL,
    requester_email       TEXT NOT NULL,
    requester_name        TEXT,
    requester_department  TEXT,
    requester_phone       TEXT,
    language              TEXT NOT NULL,
    -- a folio the opening mail mentioned but was not allowed to append to
    referenced_folio      TEXT,
    created_at            TEXT NOT NULL,
    updated_at            TEXT NOT NULL
);
CREATE INDEX tickets_requester ON tickets (requester_email);

-- Every inbound message, kept whole, with the verdict and decision and their reasons.
CREATE TABLE messages (
    id               INTEGER PRIMARY KEY,
    -- "mid:<Message-ID>" or "sha256:<content hash>": a message seen twice is stored once
    dedup_key        TEXT NOT NULL UNIQUE,
    ticket_id        INTEGER REFERENCES tickets (id),
    message_id       TEXT,
    source           TEXT NOT NULL,
    from_email       TEXT,
    from_name        TEXT,
    subject          TEXT NOT NULL,
    body_text        TEXT NOT NULL,
    sent_date        TEXT,
    automatic_kind   TEXT,
    verdict_reason   TEXT NOT NULL,
    decision_reason  TEXT NOT NULL,
    raw              BLOB NOT NULL,
    -- when folio noticed the message (IMAP EXISTS / poll / stdin)
    seen_at          TEXT NOT NULL,
    stored_at        TEXT NOT NULL
);
CREATE INDEX messages_ticket ON messages (ticket_id);

CREATE TABLE attachments (
    id            INTEGER PRIMARY KEY,
    message_row   INTEGER NOT NULL REFERENCES messages (id),
    name          TEXT NOT NULL,
    content_type  TEXT NOT NULL,
    size          INTEGER NOT NULL,
    -- NULL when larger than limits.max_attachment_bytes
    data          BLOB
);
CREATE INDEX attachments_message ON attachments (message_row);

-- Transactional outbox: nothing is sent except through this table. Rows are rendered at send
-- time, so a template fix applies to mail already queued.
CREATE TABLE outbox (
    id               INTEGER PRIMARY KEY,
    ticket_id        INTEGER REFERENCES tickets (id),
    template         TEXT NOT NULL,
    language         TEXT NOT NULL,
    to_address       TEXT NOT NULL,
    message_id       TEXT NOT NULL UNIQUE,
    in_reply_to      TEXT,
    references_list  TEXT NOT NULL,
    context          TEXT NOT NULL,
    auto_submitted   TEXT NOT NULL,
    status           TEXT NOT NULL CHECK (status IN ('pending', 'sent', 'failed')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  TEXT NOT NULL,
    last_error       TEXT,
    created_at       TEXT NOT NULL,
    sent_at          TEXT
);
CREATE INDEX outbox_due ON outbox (status, next_attempt_at);
CREATE INDEX outbox_recipient ON outbox (to_address, created_at);

-- Messages that could not be processed; the original also goes to the quarantine folder.
CREATE TABLE quarantine (
    id          INTEGER PRIMARY KEY,
    source      TEXT NOT NULL UNIQUE,
    reason      TEXT NOT NULL,
    raw         BLOB NOT NULL,
    created_at  TEXT NOT NULL
);
