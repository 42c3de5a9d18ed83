-- The per-address reply cap counts each recipient's mail of the last day, bob@x together with
-- Bob+1@x, bob+2@x, …: `cap_key` is that shared key (`desk::policy::cap_key`: lower case, the
-- local part without its +tag), stored with the row so the count is one indexed `IN (…)` per
-- batch. Looking the +tagged forms up as ranges of `to_address` instead cost ~100 ms a batch
-- on PostgreSQL (one `OR` of 500 parameters, planned every time) and missed mixed case.
--
-- Rows written before this migration (or imported without it) get their key when the store
-- opens (`Store::fill_cap_keys`): the key needs the address's last '@', which SQL cannot
-- find portably.
ALTER TABLE outbox ADD COLUMN cap_key TEXT;
CREATE INDEX outbox_cap ON outbox (cap_key, created_at);
-- Its one reader was the look-up this replaces.
DROP INDEX outbox_recipient;
