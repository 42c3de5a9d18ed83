-- Reports sent on a schedule (the technicians' digest, the weekly summary), once per period:
-- the row is written in the transaction that queues the mail, so neither a restart nor a
-- second instance sends one twice.
CREATE TABLE scheduled_runs (
    job      TEXT NOT NULL,
    period   TEXT NOT NULL,
    done_at  TEXT NOT NULL,
    PRIMARY KEY (job, period)
);
