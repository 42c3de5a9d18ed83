-- Conversations: routing, staff, participants, ticket history, bounce suppression.

-- The site secret that keys folio's Message-ID and staff reply-address tokens (HMAC-SHA256).
-- Random per database, created once; every instance on this database shares it.
CREATE TABLE site_secret (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    secret  BLOB NOT NULL
);
INSERT INTO site_secret (id, secret) VALUES (1, randomblob(32));

-- Routing: service id, "incidente"/"solicitud", "baja"/"media"/"alta"/"critica", the assigned
-- technician's address, the phone agent or staff member who opened it for the requester, and
-- the rules that decided the routing (one per line).
ALTER TABLE tickets ADD COLUMN service TEXT;
ALTER TABLE tickets ADD COLUMN ticket_type TEXT;
ALTER TABLE tickets ADD COLUMN priority TEXT NOT NULL DEFAULT 'media';
ALTER TABLE tickets ADD COLUMN assignee TEXT;
ALTER TABLE tickets ADD COLUMN opened_by TEXT;
ALTER TABLE tickets ADD COLUMN routing TEXT;
CREATE INDEX tickets_assignee ON tickets (assignee, status);

-- Who receives public replies: the requester and (configurable) the CC'd addresses of the
-- opening mail.
CREATE TABLE participants (
    ticket_id  INTEGER NOT NULL REFERENCES tickets (id),
    email      TEXT NOT NULL,
    role       TEXT NOT NULL CHECK (role IN ('requester', 'cc')),
    PRIMARY KEY (ticket_id, email)
);
CREATE INDEX participants_email ON participants (email);
INSERT INTO participants (ticket_id, email, role)
    SELECT id, requester_email, 'requester' FROM tickets WHERE requester_email <> '';

-- The text the writer typed (quoted history removed), who wrote it relative to the ticket,
-- and whether it is internal (notes, commands, unauthenticated staff mail).
ALTER TABLE messages ADD COLUMN new_content TEXT;
ALTER TABLE messages ADD COLUMN author_role TEXT;
ALTER TABLE messages ADD COLUMN internal INTEGER NOT NULL DEFAULT 0;

-- Staff notices carry the technician's tokenised reply address.
ALTER TABLE outbox ADD COLUMN reply_to TEXT;

-- A ticket's history besides messages: routing decisions, changes and who made them,
-- security events, bounces. ticket_id is NULL for events about no ticket.
CREATE TABLE ticket_events (
    id           INTEGER PRIMARY KEY,
    ticket_id    INTEGER REFERENCES tickets (id),
    message_row  INTEGER REFERENCES messages (id),
    kind         TEXT NOT NULL,
    actor        TEXT,
    detail       TEXT NOT NULL,
    created_at   TEXT NOT NULL
);
CREATE INDEX ticket_events_ticket ON ticket_events (ticket_id);
CREATE INDEX ticket_events_kind ON ticket_events (kind, created_at);

-- Round-robin position per technician group.
CREATE TABLE assignment_cursor (
    group_id    TEXT PRIMARY KEY,
    technician  TEXT NOT NULL
);

-- Addresses that hard-bounced: folio sends them nothing until failing_until.
CREATE TABLE address_health (
    email          TEXT PRIMARY KEY,
    failing_until  TEXT NOT NULL,
    bounces        INTEGER NOT NULL,
    last_error     TEXT,
    updated_at     TEXT NOT NULL
);
