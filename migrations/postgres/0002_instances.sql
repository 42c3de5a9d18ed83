-- Several `folio run` on one database (PostgreSQL; on SQLite, a restart after a crash).
--
-- Each running daemon registers itself and writes a heartbeat every few seconds, moving
-- `alive_until` ahead; one whose `alive_until` has passed (or that recorded a clean stop) is
-- dead, and what it held is free at once: its outbox claims (`outbox.claimed_by`) and its
-- leases. Timestamps come from each instance's clock: their clocks must agree (NTP) within a
-- few seconds.
CREATE TABLE instances (
    id              TEXT COLLATE "C" PRIMARY KEY,
    -- FOLIO_INSTANCE_NAME, else host:pid
    name            TEXT COLLATE "C" NOT NULL,
    host            TEXT COLLATE "C" NOT NULL,
    pid             BIGINT NOT NULL,
    started_at      TEXT COLLATE "C" NOT NULL,
    heartbeat_at    TEXT COLLATE "C" NOT NULL,
    alive_until     TEXT COLLATE "C" NOT NULL,
    stopped_at      TEXT COLLATE "C",
    -- what `folio status` shows: the watched folder as the mailbox's holder last saw it
    folder_waiting  BIGINT,
    last_fetch_at   TEXT COLLATE "C",
    last_error      TEXT COLLATE "C",
    last_error_at   TEXT COLLATE "C"
);

-- Exclusive roles, each held by one live instance at a time ("mailbox": the one that reads the
-- watched folder). The holder renews `until` with its heartbeat.
CREATE TABLE leases (
    name    TEXT COLLATE "C" PRIMARY KEY,
    holder  TEXT COLLATE "C" NOT NULL,
    until   TEXT COLLATE "C" NOT NULL,
    since   TEXT COLLATE "C" NOT NULL
);

-- The instance whose sender claimed the mail (NULL: a process without a heartbeat, whose
-- claim lasts until lease_until).
ALTER TABLE outbox ADD COLUMN claimed_by TEXT COLLATE "C";
