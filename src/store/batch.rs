//! [`Batch`], the ingest transaction: folio numbers, the multi-row inserts of a batch of inbound
//! messages and their effects, ticket changes, quarantine.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::outbox::upsert_failing;
use super::statement::{bind_each, list_statement, Insert, ROWS_PER_STATEMENT};
use super::write_tx::WriteTx;
use super::{ts, StoreError};
use crate::desk::decide::{NewTicket, Reply};
use crate::desk::policy::cap_key;
use crate::desk::ticket::Change;
use crate::inbound::mail::InboundMail;

/// A write transaction over a batch of inbound messages.
///
/// The pipeline asks once per batch for what it needs to know ([`Batch::lookup`]), decides for
/// every message in memory, then writes each table with one multi-row statement: a few round
/// trips per batch instead of several per message, and one fsync at commit.
pub struct Batch {
    pub(super) tx: WriteTx,
}

/// A ticket to insert.
pub struct TicketRow<'a> {
    pub folio: String,
    pub ticket: &'a NewTicket,
}

/// A message to insert.
pub struct MessageRow<'a> {
    pub ticket_id: Option<i64>,
    pub source: &'a str,
    pub raw: &'a [u8],
    pub mail: &'a InboundMail,
    pub new_content: &'a str,
    pub automatic_kind: Option<&'static str>,
    pub verdict_reason: &'a str,
    pub decision_reason: &'static str,
    pub author_role: &'static str,
    pub internal: bool,
    pub seen_at: DateTime<Utc>,
}

/// A mail to queue.
pub struct OutboxRow<'a> {
    pub ticket_id: Option<i64>,
    pub reply: &'a Reply,
    pub message_id: String,
    /// The technician's tokenised reply address, for staff notices.
    pub reply_to: Option<String>,
    /// The stored message whose attachments go along.
    pub attachments_of: Option<i64>,
    /// The reply's context with `folio` filled in.
    pub context: String,
}

/// An entry of a ticket's history.
pub struct EventRow {
    pub ticket_id: Option<i64>,
    pub message_row: Option<i64>,
    pub kind: &'static str,
    pub actor: Option<String>,
    pub detail: String,
}

impl Batch {
    /// Reserves `count` consecutive folio numbers of `year`; returns the first.
    pub async fn allocate_folios(&mut self, year: i32, count: usize) -> Result<i64, StoreError> {
        let last: i64 = sqlx::query_scalar(
            "INSERT INTO folio_counter (year, last_seq) VALUES ($1, $2)
             ON CONFLICT (year) DO UPDATE SET last_seq = folio_counter.last_seq + excluded.last_seq RETURNING last_seq",
        )
        .bind(year)
        .bind(count as i64)
        .fetch_one(&mut *self.tx)
        .await?;
        Ok(last - count as i64 + 1)
    }

    /// Inserts tickets; returns folio → id.
    pub async fn insert_tickets(
        &mut self,
        rows: &[TicketRow<'_>],
        now: DateTime<Utc>,
    ) -> Result<HashMap<String, i64>, StoreError> {
        let now = ts(now);
        let mut ids = HashMap::with_capacity(rows.len());
        for chunk in rows.chunks(ROWS_PER_STATEMENT) {
            let mut b = Insert::new("INSERT INTO tickets (folio, status, channel, subject, requester_email, requester_name,
                   requester_department, requester_phone, language, referenced_folio, created_at, updated_at,
                   service, ticket_type, priority, assignee, opened_by, routing)", ROWS_PER_STATEMENT, self.tx.backend());
            for r in chunk {
                let t = r.ticket;
                b.row()
                    .bind(r.folio.clone())
                    .bind("open")
                    .bind(t.channel)
                    .bind(t.subject.clone())
                    .bind(t.requester.email.clone())
                    .bind(t.requester.name.clone())
                    .bind(t.requester.department.clone())
                    .bind(t.requester.phone.clone())
                    .bind(t.language.clone())
                    .bind(t.referenced_folio.clone())
                    .bind(now.clone())
                    .bind(now.clone())
                    .bind(t.routing.service.clone())
                    .bind(t.routing.ticket_type.as_str())
                    .bind(t.routing.priority.as_str())
                    .bind(t.routing.assignee.clone())
                    .bind(t.opened_by.clone())
                    .bind(t.routing.audit_text());
            }
            for r in b
                .build(" RETURNING folio, id", self.tx.backend())?
                .fetch_all(&mut *self.tx)
                .await?
            {
                ids.insert(r.get(0), r.get(1));
            }
        }
        self.insert_participants(rows, &ids).await?;
        Ok(ids)
    }

    /// The participants of new tickets (`ids`: folio → id): each requester and CC'd address.
    async fn insert_participants(
        &mut self,
        rows: &[TicketRow<'_>],
        ids: &HashMap<String, i64>,
    ) -> Result<(), StoreError> {
        let mut people: Vec<(i64, String, &str)> = Vec::new();
        for r in rows {
            let Some(id) = ids.get(&r.folio).copied() else {
                continue;
            };
            let t = r.ticket;
            if !t.requester.email.is_empty() {
                people.push((id, t.requester.email.to_lowercase(), "requester"));
            }
            for p in &t.participants {
                people.push((id, p.clone(), "cc"));
            }
        }
        for chunk in people.chunks(ROWS_PER_STATEMENT) {
            let mut b = Insert::new(
                "INSERT INTO participants (ticket_id, email, role)",
                ROWS_PER_STATEMENT,
                self.tx.backend(),
            );
            for (id, email, role) in chunk {
                b.row().bind(*id).bind(email.clone()).bind(*role);
            }
            b.build(" ON CONFLICT DO NOTHING", self.tx.backend())?
                .execute(&mut *self.tx)
                .await?;
        }
        Ok(())
    }

    /// Applies changes to a ticket.
    pub async fn change_ticket(&mut self, id: i64, changes: &[Change]) -> Result<(), StoreError> {
        for c in changes {
            let (sql, value): (&'static str, String) = match c {
                Change::Status(s) => (
                    "UPDATE tickets SET status = $1 WHERE id = $2",
                    s.as_str().into(),
                ),
                Change::Priority(p) => (
                    "UPDATE tickets SET priority = $1 WHERE id = $2",
                    p.as_str().into(),
                ),
                Change::Service(s) => ("UPDATE tickets SET service = $1 WHERE id = $2", s.clone()),
                Change::Assignee(a) => {
                    ("UPDATE tickets SET assignee = $1 WHERE id = $2", a.clone())
                }
            };
            sqlx::query(sql)
                .bind(value)
                .bind(id)
                .execute(&mut *self.tx)
                .await?;
        }
        Ok(())
    }

    /// Records the round-robin position of groups (`(group, technician)`).
    pub async fn set_cursors(
        &mut self,
        cursors: &HashMap<String, String>,
    ) -> Result<(), StoreError> {
        for (group, tech) in cursors {
            sqlx::query(
                "INSERT INTO assignment_cursor (group_id, technician) VALUES ($1, $2)
                 ON CONFLICT (group_id) DO UPDATE SET technician = excluded.technician",
            )
            .bind(group)
            .bind(tech)
            .execute(&mut *self.tx)
            .await?;
        }
        Ok(())
    }

    /// Marks an address as bouncing until `until`.
    pub async fn mark_failing(
        &mut self,
        email: &str,
        until: DateTime<Utc>,
        error: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        upsert_failing(&mut *self.tx, email, until, error, now).await
    }

    /// Appends to tickets' history.
    pub async fn insert_events(
        &mut self,
        rows: &[EventRow],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let now = ts(now);
        for chunk in rows.chunks(ROWS_PER_STATEMENT / 2) {
            let mut b = Insert::new("INSERT INTO ticket_events (ticket_id, message_row, kind, actor, detail, created_at)", ROWS_PER_STATEMENT / 2, self.tx.backend());
            for e in chunk {
                b.row()
                    .bind(e.ticket_id)
                    .bind(e.message_row)
                    .bind(e.kind)
                    .bind(e.actor.clone())
                    .bind(e.detail.clone())
                    .bind(now.clone());
            }
            b.build("", self.tx.backend())?
                .execute(&mut *self.tx)
                .await?;
        }
        Ok(())
    }

    /// Marks tickets as updated (a message was appended).
    pub async fn touch_tickets(
        &mut self,
        ids: &[i64],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let now = ts(now);
        for chunk in ids.chunks(ROWS_PER_STATEMENT) {
            let query = list_statement(
                "UPDATE tickets SET updated_at = $1 WHERE id IN (",
                chunk.len(),
                ")",
                self.tx.backend(),
            )
            .bind(&now);
            bind_each(query, chunk).execute(&mut *self.tx).await?;
        }
        Ok(())
    }

    /// Inserts messages; returns their row ids in the order given.
    pub async fn insert_messages(
        &mut self,
        rows: &[MessageRow<'_>],
        now: DateTime<Utc>,
    ) -> Result<Vec<i64>, StoreError> {
        let now = ts(now);
        let mut by_key: HashMap<String, i64> = HashMap::with_capacity(rows.len());
        for chunk in rows.chunks(ROWS_PER_STATEMENT / 8) {
            let mut b = Insert::with_binary("INSERT INTO messages (dedup_key, ticket_id, message_id, source, from_email, from_name, subject,
                   body_text, sent_date, automatic_kind, verdict_reason, decision_reason, raw, seen_at, stored_at,
                   new_content, author_role, internal)", ROWS_PER_STATEMENT / 8);
            for r in chunk {
                let m = r.mail;
                b.row()
                    .bind(m.dedup_key())
                    .bind(r.ticket_id)
                    .bind(m.message_id.clone())
                    .bind(r.source.to_string())
                    .bind(m.from_email.clone())
                    .bind(m.from_name.clone())
                    .bind(m.subject.clone())
                    .bind(m.body_text.clone())
                    .bind(m.date.map(ts))
                    .bind(r.automatic_kind)
                    .bind(r.verdict_reason.to_string())
                    .bind(r.decision_reason)
                    .bind(r.raw.to_vec())
                    .bind(ts(r.seen_at))
                    .bind(now.clone())
                    // Most requests quote nothing: store the new content only when it differs.
                    .bind((r.new_content != m.body_text).then(|| r.new_content.to_string()))
                    .bind(r.author_role)
                    .bind(i64::from(r.internal));
            }
            for r in b
                .build(" RETURNING dedup_key, id", self.tx.backend())?
                .fetch_all(&mut *self.tx)
                .await?
            {
                by_key.insert(r.get(0), r.get(1));
            }
        }
        Ok(rows
            .iter()
            .map(|r| by_key.get(&r.mail.dedup_key()).copied().unwrap_or_default())
            .collect())
    }

    /// Inserts attachments of stored messages (`(message row id, attachment)`); content larger
    /// than `max_bytes` is not stored.
    pub async fn insert_attachments(
        &mut self,
        rows: &[(i64, &crate::inbound::mail::Attachment)],
        max_bytes: u64,
    ) -> Result<(), StoreError> {
        for chunk in rows.chunks(ROWS_PER_STATEMENT / 5) {
            let mut b = Insert::with_binary(
                "INSERT INTO attachments (message_row, name, content_type, size, data)",
                ROWS_PER_STATEMENT / 5,
            );
            for (row, a) in chunk {
                b.row()
                    .bind(*row)
                    .bind(a.name.clone())
                    .bind(a.content_type.clone())
                    .bind(a.size as i64)
                    .bind((a.size <= max_bytes).then(|| a.data.clone()));
            }
            b.build("", self.tx.backend())?
                .execute(&mut *self.tx)
                .await?;
        }
        Ok(())
    }

    /// Queues mails.
    pub async fn insert_outbox(
        &mut self,
        rows: &[OutboxRow<'_>],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let now = ts(now);
        for chunk in rows.chunks(ROWS_PER_STATEMENT) {
            let mut b = Insert::new("INSERT INTO outbox (ticket_id, template, language, to_address, message_id, in_reply_to,
                   references_list, context, auto_submitted, status, next_attempt_at, created_at, reply_to,
                   attachments_of, cap_key)", ROWS_PER_STATEMENT, self.tx.backend());
            for r in chunk {
                b.row()
                    .bind(r.ticket_id)
                    .bind(r.reply.template().name())
                    .bind(r.reply.language.clone())
                    .bind(r.reply.to.clone())
                    .bind(r.message_id.clone())
                    .bind(r.reply.in_reply_to.clone())
                    .bind(r.reply.references.join(" "))
                    .bind(r.context.clone())
                    .bind(r.reply.auto_submitted)
                    .bind("pending")
                    .bind(now.clone())
                    .bind(now.clone())
                    .bind(r.reply_to.clone())
                    .bind(r.attachments_of)
                    .bind(cap_key(&r.reply.to));
            }
            b.build("", self.tx.backend())?
                .execute(&mut *self.tx)
                .await?;
        }
        Ok(())
    }

    /// Records a message that cannot be processed. Idempotent per source.
    pub async fn quarantine(
        &mut self,
        source: &str,
        reason: &str,
        raw: &[u8],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO quarantine (source, reason, raw, created_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (source) DO NOTHING",
        )
        .bind(source)
        .bind(reason)
        .bind(raw)
        .bind(ts(now))
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Commits the batch. On failure it is rolled back and the error says why the commit failed.
    pub async fn commit(self) -> Result<(), StoreError> {
        self.tx.commit().await
    }

    /// Abandons the batch, waiting for the rollback (dropping it rolls back in the background).
    pub async fn rollback(self) {
        self.tx.rollback().await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::desk::catalog::Priority;
    use crate::desk::ticket::Status;
    use crate::store::test_support::{mail, message_row, new_ticket, now, open_ticket, temp_store};
    use crate::store::ts;

    #[tokio::test]
    async fn folio_numbers_have_no_gaps_even_when_a_batch_rolls_back() {
        let (_dir, store) = temp_store().await;
        let mut tx = store.begin().await.unwrap();
        assert_eq!(tx.allocate_folios(2026, 1).await.unwrap(), 1);
        assert_eq!(tx.allocate_folios(2026, 3).await.unwrap(), 2);
        tx.commit().await.unwrap();
        let mut tx = store.begin().await.unwrap();
        assert_eq!(tx.allocate_folios(2026, 2).await.unwrap(), 5);
        tx.rollback().await;
        // The rolled-back numbers are handed out again; each year counts on its own.
        let mut tx = store.begin().await.unwrap();
        assert_eq!(tx.allocate_folios(2026, 1).await.unwrap(), 5);
        assert_eq!(tx.allocate_folios(2027, 4).await.unwrap(), 1);
        assert_eq!(tx.allocate_folios(2027, 1).await.unwrap(), 5);
        tx.commit().await.unwrap();
    }

    #[tokio::test]
    async fn hostile_text_round_trips_through_a_multi_row_insert() {
        // On PostgreSQL each column travels as one array literal: a quote, a backslash, a
        // brace, a comma or the word NULL in a value must come back as it was sent.
        let (_dir, store) = temp_store().await;
        let t = new_ticket("ana@example.test", "Printer", None, &[]);
        let m = mail("a@example.test", "ana@example.test", "Printer", "It jams.");
        let id = open_ticket(&store, "HD-1", &t, &m, "r1@x").await.ticket_id;
        let details = [
            "",
            "NULL",
            "null",
            "a \"quoted\" word",
            "C:\\carpeta\\archivo.txt \\",
            "{llaves}, comas, y } sueltas {",
            "línea uno\nlínea dos\r\n\ttab",
            "ñandú 🦤 — «ok»",
            " espacios al borde ",
            "'apóstrofo'; DROP TABLE tickets; --",
        ];
        let rows: Vec<EventRow> = details
            .iter()
            .enumerate()
            .map(|(i, d)| EventRow {
                ticket_id: (i % 2 == 0).then_some(id),
                message_row: None,
                kind: "note",
                actor: (i % 3 != 0).then(|| format!("\"{d}\"@example.test")),
                detail: (*d).to_string(),
            })
            .collect();
        let mut tx = store.begin().await.unwrap();
        tx.insert_events(&rows, now()).await.unwrap();
        tx.commit().await.unwrap();
        let back: Vec<(Option<i64>, Option<String>, String)> = sqlx::query_as(
            "SELECT ticket_id, actor, detail FROM ticket_events WHERE kind = 'note' ORDER BY id",
        )
        .fetch_all(&store.pool)
        .await
        .unwrap();
        let sent: Vec<(Option<i64>, Option<String>, String)> = rows
            .into_iter()
            .map(|r| (r.ticket_id, r.actor, r.detail))
            .collect();
        assert_eq!(back, sent);
    }

    #[tokio::test]
    async fn changes_touches_and_events_show_on_the_ticket() {
        let (_dir, store) = temp_store().await;
        let t = new_ticket("ana@example.test", "Printer", None, &[]);
        let m = mail("a@example.test", "ana@example.test", "Printer", "It jams.");
        let id = open_ticket(&store, "HD-1", &t, &m, "r1@x").await.ticket_id;
        let later = now() + chrono::Duration::hours(2);
        let mut tx = store.begin().await.unwrap();
        tx.change_ticket(
            id,
            &[
                Change::Status(Status::Pending),
                Change::Priority(Priority::Baja),
                Change::Service("red".into()),
                Change::Assignee("tech2@example.test".into()),
            ],
        )
        .await
        .unwrap();
        tx.touch_tickets(&[id], later).await.unwrap();
        tx.insert_events(
            &[EventRow {
                ticket_id: Some(id),
                message_row: None,
                kind: "changed",
                actor: Some("tech2@example.test".into()),
                detail: "status: pending".into(),
            }],
            later,
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
        let d = store.ticket("HD-1").await.unwrap().unwrap();
        assert_eq!(d.ticket.status, "pending");
        assert_eq!(d.ticket.priority, "baja");
        assert_eq!(d.ticket.service.as_deref(), Some("red"));
        assert_eq!(d.ticket.assignee.as_deref(), Some("tech2@example.test"));
        assert_eq!(d.ticket.updated_at, ts(later));
        assert_eq!(d.ticket.created_at, ts(now()));
        assert_eq!(d.events.len(), 1);
        let e = &d.events[0];
        assert_eq!(
            (e.kind.as_str(), e.actor.as_deref(), e.detail.as_str()),
            ("changed", Some("tech2@example.test"), "status: pending")
        );
        assert_eq!(e.created_at, ts(later));
    }

    #[tokio::test]
    async fn inserted_messages_return_their_ids_in_the_order_given() {
        let (_dir, store) = temp_store().await;
        // More than one statement's worth of messages.
        let mails: Vec<_> = (0..ROWS_PER_STATEMENT / 8 + 5)
            .map(|i| mail(&format!("m{i}@x"), "ana@example.test", "Hi", "Body."))
            .collect();
        let rows: Vec<_> = mails.iter().map(|m| message_row(None, m)).collect();
        let mut tx = store.begin().await.unwrap();
        let ids = tx.insert_messages(&rows, now()).await.unwrap();
        tx.commit().await.unwrap();
        assert_eq!(ids.len(), mails.len());
        for (m, id) in mails.iter().zip(&ids) {
            let stored: String = sqlx::query_scalar("SELECT dedup_key FROM messages WHERE id = $1")
                .bind(id)
                .fetch_one(&store.pool)
                .await
                .unwrap();
            assert_eq!(stored, m.dedup_key());
        }
        assert_eq!(store.counts().await.unwrap().messages, mails.len() as i64);
    }

    #[tokio::test]
    async fn a_source_is_quarantined_once() {
        let (_dir, store) = temp_store().await;
        let mut tx = store.begin().await.unwrap();
        tx.quarantine("imap:INBOX:1:1", "unparsable", b"x", now())
            .await
            .unwrap();
        tx.quarantine("imap:INBOX:1:1", "again", b"x", now())
            .await
            .unwrap();
        tx.quarantine("imap:INBOX:1:2", "too big", b"y", now())
            .await
            .unwrap();
        tx.commit().await.unwrap();
        let reasons: Vec<String> = sqlx::query_scalar("SELECT reason FROM quarantine ORDER BY id")
            .fetch_all(&store.pool)
            .await
            .unwrap();
        assert_eq!(reasons, ["unparsable", "too big"]);
        assert_eq!(store.counts().await.unwrap().quarantined, 2);
    }
}
