-- A sender claims the rows it is about to send until lease_until, so two processes sharing the
-- database (the daemon and `folio ingest`, say) never send the same mail. A lease left by a
-- crashed process simply expires.
ALTER TABLE outbox ADD COLUMN lease_until TEXT;
