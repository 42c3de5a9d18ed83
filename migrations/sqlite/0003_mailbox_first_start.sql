-- When folio first saw the folder. After a UIDVALIDITY reset, mail older than this is still the
-- mail the first start deliberately left alone (imap.first_start = "new_only").
ALTER TABLE mailbox_state ADD COLUMN first_start_at TEXT;
