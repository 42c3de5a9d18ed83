-- The outbox claim reads pending mail `ORDER BY next_attempt_at, id LIMIT n` so that LIMIT stops
-- after n rows of the `outbox_due` index. SQLite's index carries the row id after its columns;
-- PostgreSQL's did not, so every claim read and sorted all pending rows: 15 ms of a 18 ms
-- claim with 10,000 pending (EXPLAIN ANALYZE), and three instances' senders claiming from one
-- outbox sent slower than one (docs/benchmarks.md §8b). With `id` in the index the claim reads
-- only the rows it takes.
DROP INDEX outbox_due;
CREATE INDEX outbox_due ON outbox (status, next_attempt_at, id);
