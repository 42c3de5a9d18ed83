-- The large text and bytes columns (each message whole, its text, each queued mail's
-- rendering context, attachments) hold a few KB per row, which PostgreSQL compresses as it
-- writes the row. lz4 takes a fraction of the CPU of the default (pglz): the ingest
-- benchmark's message insert went from ~124 to ~80 ms a batch of 500 (docs/benchmarks.md §8).
-- Rows already written keep their compression. A server built without lz4 keeps pglz; one
-- older than PostgreSQL 14 (no per-column compression) fails here: folio needs 14 or newer.
DO $$
BEGIN
    ALTER TABLE messages ALTER COLUMN raw SET COMPRESSION lz4,
                         ALTER COLUMN body_text SET COMPRESSION lz4;
    ALTER TABLE outbox ALTER COLUMN context SET COMPRESSION lz4;
    ALTER TABLE attachments ALTER COLUMN data SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported THEN
    RAISE NOTICE 'this PostgreSQL was built without lz4: large columns keep pglz';
END
$$;
