-- A queued mail may carry the attachments of a stored inbound message (a requester's files in
-- the technician's notice, a technician's files relayed to the requester). They are read from
-- the attachments table when the mail is sent.
ALTER TABLE outbox ADD COLUMN attachments_of INTEGER REFERENCES messages (id);
