-- Several `folio run` on one database (PostgreSQL; on SQLite, a restart after a crash).
--
-- Each running daemon registers itself and writes a heartbeat every few seconds, moving
-- `alive_until` ahead; one whose `alive_until` has passed (or that recorded a clean stop) is
-- dead, and what it held is free at once: its outbox claims (`outbox.claimed_by`) and its
-- leases. Timestamps come from each instance's clock: their clocks must agree (NTP) within a
-- few seconds.
CREATE TABLE instances (
    id              TEXT PRIMARY KEY,
    -- FOLIO_INSTANCE_NAME, else host:pid
    name            TEXT NOT NULL,
    host            TEXT NOT NULL,
    pid             INTEGER NOT NULL,
    started_at      TEXT NOT NULL,
    heartbeat_at    TEXT NOT NULL,
    alive_until     TEXT NOT NULL,
    stopped_at      TEXT,
    -- what `folio status` shows: the watched folder as the mailbox's holder last saw it
    folder_waiting  INTEGER,
    last_fetch_at   TEXT,
    last_error      TEXT,
    last_error_at   TEXT
);

-- Exclusive roles, each held by one live instance at a time ("mailbox": the one that reads the
-- watched folder). The holder renews `until` with its heartbeat.
CREATE TABLE leases (
    name    TEXT PRIMARY KEY,
    holder  TEXT NOT NULL,
    until   TEXT NOT NULL,
    since   TEXT NOT NULL
);

-- The instance whose sender claimed the mail (NULL: a process without a heartbeat, whose
-- claim lasts until lease_until).
ALTER TABLE outbox ADD COLUMN claimed_by TEXT;
