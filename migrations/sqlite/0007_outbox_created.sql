-- The hourly caps on automatic mail (per outside domain, and in all) count the outbox rows of
-- the last hour for every batch: without this index that is a scan of the whole outbox.
CREATE INDEX outbox_created ON outbox (created_at);
