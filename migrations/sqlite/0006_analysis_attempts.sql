-- Analyses of inbound messages that started and have not finished (one row per source, e.g.
-- `imap:INBOX:<uidvalidity>:<uid>`). A row is written before the work and deleted once the
-- message is stored or quarantined; a row still here at the next start means the process died
-- during that work (a crash, `kill -9`, out of memory). Such a message is retried alone, and
-- after two attempts that never finished it is quarantined instead of crashing folio forever.
CREATE TABLE analysis_attempts (
    source      TEXT PRIMARY KEY,
    attempts    INTEGER NOT NULL,
    first_at    TEXT NOT NULL,
    last_at     TEXT NOT NULL
);
