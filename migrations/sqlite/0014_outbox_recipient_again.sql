-- Migration 0013 dropped this index as unused; the claim's bounce check reads it: from the
-- addresses failing now (`address_health`) to their pending mail, instead of walking all
-- pending mail (docs/benchmarks.md §8b).
CREATE INDEX outbox_recipient ON outbox (to_address, created_at);
