//! Read-only queries: the CLI's counts, ticket lists and one ticket in full, a ticket by id
//! for the sender's notices and by folio for previewing them.

use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::Row;

use super::{flag, parse_ts, Store, StoreError};
use crate::desk::catalog::Priority;
use crate::desk::ticket::Status;
use crate::desk::ticket::{Life, TicketRef};

/// A ticket as listed by `folio tickets`.
#[derive(Debug, Clone, Serialize)]
pub struct TicketSummary {
    pub folio: String,
    pub status: String,
    pub channel: String,
    pub subject: String,
    pub requester_email: String,
    pub requester_name: Option<String>,
    pub requester_department: Option<String>,
    pub requester_phone: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    pub messages: i64,
    pub service: Option<String>,
    pub ticket_type: Option<String>,
    pub priority: String,
    pub assignee: Option<String>,
    /// The phone agent or staff member who opened it for the requester.
    pub opened_by: Option<String>,
}

/// A message on a ticket, for `folio tickets show`.
#[derive(Debug, Clone, Serialize)]
pub struct TicketMessage {
    pub message_id: Option<String>,
    pub from_email: Option<String>,
    pub subject: String,
    pub body_text: String,
    /// What the writer typed, quoted history removed.
    pub new_content: Option<String>,
    pub author_role: Option<String>,
    pub internal: bool,
    pub automatic_kind: Option<String>,
    pub verdict_reason: String,
    pub decision_reason: String,
    pub stored_at: String,
    pub attachments: Vec<serde_json::Value>,
}

/// An entry of a ticket's history, for `folio tickets show`.
#[derive(Debug, Clone, Serialize)]
pub struct TicketEvent {
    pub kind: String,
    pub actor: Option<String>,
    pub detail: String,
    pub created_at: String,
}

/// An outgoing mail of a ticket, for `folio tickets show`.
#[derive(Debug, Clone, Serialize)]
pub struct TicketMail {
    pub template: String,
    pub to: String,
    pub message_id: String,
    pub status: String,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub created_at: String,
    pub sent_at: Option<String>,
}

/// A ticket with its history.
#[derive(Debug, Clone, Serialize)]
pub struct TicketDetail {
    #[serde(flatten)]
    pub ticket: TicketSummary,
    pub referenced_folio: Option<String>,
    /// The rules that routed it, one per line.
    pub routing: Option<String>,
    /// The requester and CC'd participants.
    pub participants: Vec<serde_json::Value>,
    pub messages: Vec<TicketMessage>,
    pub outgoing: Vec<TicketMail>,
    pub events: Vec<TicketEvent>,
    /// When it was last resolved and closed, and why it closed (`confirmed`, `technician`,
    /// `no_answer`).
    pub resolved_at: Option<String>,
    pub closed_at: Option<String>,
    pub close_reason: Option<String>,
    /// A technician's first public reply or change of status.
    pub first_response_at: Option<String>,
    /// The requester's answer to the satisfaction survey, if any.
    pub satisfaction: Option<Satisfaction>,
}

/// A survey answer, for `folio tickets show`.
#[derive(Debug, Clone, Serialize)]
pub struct Satisfaction {
    /// 1 to 5.
    pub rating: i64,
    pub comment: Option<String>,
    pub answered_at: String,
}

/// Counters for status output and tests.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Counts {
    pub tickets: i64,
    pub messages: i64,
    pub outbox_pending: i64,
    pub outbox_sent: i64,
    pub quarantined: i64,
}

/// The columns [`ticket_summary`] reads, and the ticket's id, referenced folio and routing.
const TICKET_COLUMNS: &str = "SELECT t.folio, t.status, t.channel, t.subject, t.requester_email,
        t.requester_name, t.requester_department, t.requester_phone, t.created_at, t.updated_at,
        (SELECT count(*) FROM messages m WHERE m.ticket_id = t.id), t.id, t.referenced_folio,
        t.service, t.ticket_type, t.priority, t.assignee, t.opened_by, t.routing,
        t.resolved_at, t.closed_at, t.close_reason, t.first_response_at
        FROM tickets t";

fn ticket_summary(r: &AnyRow) -> TicketSummary {
    TicketSummary {
        folio: r.get(0),
        status: r.get(1),
        channel: r.get(2),
        subject: r.get(3),
        requester_email: r.get(4),
        requester_name: r.get(5),
        requester_department: r.get(6),
        requester_phone: r.get(7),
        created_at: r.get(8),
        updated_at: r.get(9),
        messages: r.get(10),
        service: r.get(13),
        ticket_type: r.get(14),
        priority: r.get(15),
        assignee: r.get(16),
        opened_by: r.get(17),
    }
}

/// The columns [`ticket_ref`] reads, in order.
pub(super) const TICKET_REF_COLUMNS: &str =
    "t.id, t.folio, t.status, t.subject, t.requester_email, t.requester_name,
    t.assignee, t.priority, t.service, t.language, t.created_at, t.updated_at,
    (SELECT m.message_id FROM messages m WHERE m.ticket_id = t.id ORDER BY m.id LIMIT 1),
    t.resolved_at, t.closed_at, t.survey_sent_at, t.survey_retried,
    EXISTS (SELECT 1 FROM satisfaction s WHERE s.ticket_id = t.id),
    t.first_response_at, t.sla_paused_at, t.sla_paused_seconds,
    t.response_breached_at IS NOT NULL, t.resolution_breached_at IS NOT NULL";

/// How many columns [`TICKET_REF_COLUMNS`] has: a query that selects more after them reads
/// those from this index on.
pub(super) const TICKET_REF_LEN: usize = 23;

/// A ticket as the rules see it, from [`TICKET_REF_COLUMNS`] (its participants left empty).
pub(super) fn ticket_ref(r: &AnyRow) -> TicketRef {
    TicketRef {
        id: r.get(0),
        folio: r.get(1),
        status: Status::parse(&r.get::<String, _>(2)),
        subject: r.get(3),
        requester_email: r.get(4),
        requester_name: r.get(5),
        participants: vec![],
        assignee: r.get(6),
        priority: Priority::parse(&r.get::<String, _>(7)).unwrap_or(Priority::Media),
        service: r.get::<Option<String>, _>(8).unwrap_or_default(),
        language: r.get(9),
        created_at: parse_ts(&r.get::<String, _>(10)).unwrap_or_default(),
        updated_at: parse_ts(&r.get::<String, _>(11)).unwrap_or_default(),
        opening_message_id: r.get(12),
        life: Life {
            resolved_at: r.get::<Option<String>, _>(13).as_deref().and_then(parse_ts),
            closed_at: r.get::<Option<String>, _>(14).as_deref().and_then(parse_ts),
            survey_sent_at: r.get::<Option<String>, _>(15).as_deref().and_then(parse_ts),
            survey_retried: flag(r, 16),
            survey_answered: flag(r, 17),
            first_response_at: r.get::<Option<String>, _>(18).as_deref().and_then(parse_ts),
            sla_paused_at: r.get::<Option<String>, _>(19).as_deref().and_then(parse_ts),
            sla_paused_seconds: r.get(20),
            response_breached: flag(r, 21),
            resolution_breached: flag(r, 22),
        },
    }
}

impl Store {
    /// How many tickets, messages, pending and sent mails and quarantined messages there are.
    pub async fn counts(&self) -> Result<Counts, StoreError> {
        let r = sqlx::query(
            "SELECT (SELECT count(*) FROM tickets), (SELECT count(*) FROM messages),
                    (SELECT count(*) FROM outbox WHERE status = 'pending'),
                    (SELECT count(*) FROM outbox WHERE status = 'sent'),
                    (SELECT count(*) FROM quarantine)",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(Counts {
            tickets: r.get(0),
            messages: r.get(1),
            outbox_pending: r.get(2),
            outbox_sent: r.get(3),
            quarantined: r.get(4),
        })
    }

    /// The newest tickets first.
    pub async fn tickets(&self, limit: u32) -> Result<Vec<TicketSummary>, StoreError> {
        let sql = format!("{TICKET_COLUMNS} ORDER BY t.id DESC LIMIT $1");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(limit as i64)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(ticket_summary).collect())
    }

    /// One ticket with its messages and outgoing mail.
    pub async fn ticket(&self, folio: &str) -> Result<Option<TicketDetail>, StoreError> {
        let sql = format!("{TICKET_COLUMNS} WHERE t.folio = $1");
        let Some(r) = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(folio.to_uppercase())
            .fetch_optional(&self.pool)
            .await?
        else {
            return Ok(None);
        };
        let ticket_id: i64 = r.get(11);
        Ok(Some(TicketDetail {
            ticket: ticket_summary(&r),
            referenced_folio: r.get(12),
            routing: r.get(18),
            participants: self.participants_of(ticket_id).await?,
            messages: self.messages_of(ticket_id).await?,
            outgoing: self.outgoing_of(ticket_id).await?,
            events: self.events_of(ticket_id).await?,
            resolved_at: r.get(19),
            closed_at: r.get(20),
            close_reason: r.get(21),
            first_response_at: r.get(22),
            satisfaction: self.satisfaction_of(ticket_id).await?,
        }))
    }

    async fn satisfaction_of(&self, ticket_id: i64) -> Result<Option<Satisfaction>, StoreError> {
        Ok(sqlx::query_as::<_, (i64, Option<String>, String)>(
            "SELECT rating, comment, answered_at FROM satisfaction WHERE ticket_id = $1",
        )
        .bind(ticket_id)
        .fetch_optional(&self.pool)
        .await?
        .map(|(rating, comment, answered_at)| Satisfaction {
            rating,
            comment,
            answered_at,
        }))
    }

    /// A ticket by its id (for notices the sender writes).
    pub async fn ticket_by_id(&self, id: i64) -> Result<Option<TicketRef>, StoreError> {
        let sql = format!("SELECT {TICKET_REF_COLUMNS} FROM tickets t WHERE t.id = $1");
        Ok(sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(ticket_ref))
    }

    /// A ticket by its folio, as the rules see it (for `folio templates preview --ticket`).
    pub async fn ticket_by_folio(&self, folio: &str) -> Result<Option<TicketRef>, StoreError> {
        let sql = format!("SELECT {TICKET_REF_COLUMNS} FROM tickets t WHERE t.folio = $1");
        Ok(sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(folio.to_uppercase())
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(ticket_ref))
    }

    /// The rows `sql` selects for one ticket or message (`id`, its one parameter).
    async fn rows_of(&self, sql: &'static str, id: i64) -> Result<Vec<AnyRow>, StoreError> {
        Ok(sqlx::query(sql).bind(id).fetch_all(&self.pool).await?)
    }

    /// A ticket's messages, oldest first, with their attachments.
    async fn messages_of(&self, ticket_id: i64) -> Result<Vec<TicketMessage>, StoreError> {
        let rows = self
            .rows_of(
            "SELECT id, message_id, from_email, subject, body_text, automatic_kind, verdict_reason,
                    decision_reason, stored_at, COALESCE(new_content, body_text), author_role, internal
             FROM messages WHERE ticket_id = $1 ORDER BY id",
            ticket_id,
            )
            .await?;
        let mut messages = Vec::with_capacity(rows.len());
        for m in rows {
            messages.push(TicketMessage {
                message_id: m.get(1),
                from_email: m.get(2),
                subject: m.get(3),
                body_text: m.get(4),
                new_content: m.get(9),
                author_role: m.get(10),
                internal: flag(&m, 11),
                automatic_kind: m.get(5),
                verdict_reason: m.get(6),
                decision_reason: m.get(7),
                stored_at: m.get(8),
                attachments: self.attachments_of(m.get(0)).await?,
            });
        }
        Ok(messages)
    }

    /// A stored message's attachments: name, type, size and whether the content was kept.
    async fn attachments_of(&self, message_row: i64) -> Result<Vec<serde_json::Value>, StoreError> {
        let rows = self
            .rows_of(
            "SELECT name, content_type, size, data IS NOT NULL FROM attachments WHERE message_row = $1 ORDER BY id",
            message_row,
            )
            .await?;
        Ok(rows
            .iter()
            .map(|a| {
                serde_json::json!({"name": a.get::<String, _>(0), "content_type": a.get::<String, _>(1),
                    "size": a.get::<i64, _>(2), "stored": flag(a, 3)})
            })
            .collect())
    }

    /// A ticket's outgoing mail, in the order queued.
    async fn outgoing_of(&self, ticket_id: i64) -> Result<Vec<TicketMail>, StoreError> {
        let rows = self
            .rows_of(
            "SELECT template, to_address, message_id, status, attempts, last_error, created_at, sent_at
             FROM outbox WHERE ticket_id = $1 ORDER BY id",
            ticket_id,
            )
            .await?;
        Ok(rows
            .iter()
            .map(|o| TicketMail {
                template: o.get(0),
                to: o.get(1),
                message_id: o.get(2),
                status: o.get(3),
                attempts: o.get(4),
                last_error: o.get(5),
                created_at: o.get(6),
                sent_at: o.get(7),
            })
            .collect())
    }

    /// A ticket's requester and CC'd participants.
    async fn participants_of(&self, ticket_id: i64) -> Result<Vec<serde_json::Value>, StoreError> {
        let rows = self
            .rows_of(
            "SELECT email, role FROM participants WHERE ticket_id = $1 ORDER BY role DESC, email",
            ticket_id,
            )
            .await?;
        Ok(rows
            .iter()
            .map(|p| serde_json::json!({"email": p.get::<String, _>(0), "role": p.get::<String, _>(1)}))
            .collect())
    }

    /// A ticket's history, oldest first.
    async fn events_of(&self, ticket_id: i64) -> Result<Vec<TicketEvent>, StoreError> {
        let rows = self
            .rows_of(
            "SELECT kind, actor, detail, created_at FROM ticket_events WHERE ticket_id = $1 ORDER BY id",
            ticket_id,
            )
            .await?;
        Ok(rows
            .iter()
            .map(|e| TicketEvent {
                kind: e.get(0),
                actor: e.get(1),
                detail: e.get(2),
                created_at: e.get(3),
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::store::test_support::{mail, new_ticket, now, open_ticket, temp_store};
    use crate::store::ts;

    #[tokio::test]
    async fn counts_and_tickets_read_back_what_a_batch_wrote() {
        let (_dir, store) = temp_store().await;
        let c = store.counts().await.unwrap();
        assert_eq!((c.tickets, c.messages, c.outbox_pending), (0, 0, 0));
        let t1 = new_ticket(
            "ana@example.test",
            "Printer",
            Some("tech1@example.test"),
            &[],
        );
        let t2 = new_ticket("bob@example.test", "VPN", None, &["carl@example.test"]);
        let m1 = mail("a@example.test", "ana@example.test", "Printer", "It jams.");
        let m2 = mail("b@example.test", "bob@example.test", "VPN", "No tunnel.");
        open_ticket(&store, "2026-000001", &t1, &m1, "r1@x").await;
        open_ticket(&store, "2026-000002", &t2, &m2, "r2@x").await;
        let c = store.counts().await.unwrap();
        assert_eq!(
            (
                c.tickets,
                c.messages,
                c.outbox_pending,
                c.outbox_sent,
                c.quarantined
            ),
            (2, 2, 2, 0, 0)
        );
        let list = store.tickets(10).await.unwrap();
        let folios: Vec<&str> = list.iter().map(|t| t.folio.as_str()).collect();
        assert_eq!(folios, ["2026-000002", "2026-000001"]);
        let ana = &list[1];
        assert_eq!(
            (
                ana.status.as_str(),
                ana.channel.as_str(),
                ana.subject.as_str()
            ),
            ("open", "email", "Printer")
        );
        assert_eq!(ana.requester_email, "ana@example.test");
        assert_eq!(ana.requester_name.as_deref(), Some("Ana"));
        assert_eq!(ana.messages, 1);
        assert_eq!(ana.service.as_deref(), Some("correo"));
        assert_eq!(ana.ticket_type.as_deref(), Some("incidente"));
        assert_eq!(ana.priority, "alta");
        assert_eq!(ana.assignee.as_deref(), Some("tech1@example.test"));
        assert_eq!(ana.created_at, ts(now()));
        assert_eq!(store.tickets(1).await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn a_ticket_in_full_has_its_messages_mail_participants_and_routing() {
        let (_dir, store) = temp_store().await;
        let t = new_ticket("Ana@Example.test", "VPN", None, &["carl@example.test"]);
        let m = mail("a@example.test", "Ana@Example.test", "VPN", "No tunnel.");
        open_ticket(&store, "HD-2026-000007", &t, &m, "r1@x").await;
        // The folio is found whatever its case.
        let d = store.ticket("hd-2026-000007").await.unwrap().unwrap();
        assert_eq!(d.ticket.folio, "HD-2026-000007");
        assert_eq!(
            d.routing.as_deref(),
            Some(
                "service correo: no keyword matched (assignment.default_service)\n\
                 priority alta: the service's default"
            )
        );
        assert_eq!(d.referenced_folio, None);
        assert_eq!(
            d.participants,
            [
                serde_json::json!({"email": "ana@example.test", "role": "requester"}),
                serde_json::json!({"email": "carl@example.test", "role": "cc"}),
            ]
        );
        assert_eq!(d.messages.len(), 1);
        let msg = &d.messages[0];
        assert_eq!(msg.message_id.as_deref(), Some("a@example.test"));
        assert_eq!(msg.subject, "VPN");
        assert_eq!(msg.new_content.as_deref(), Some(msg.body_text.as_str()));
        assert_eq!(msg.decision_reason, "new_ticket");
        assert!(msg.attachments.is_empty());
        assert_eq!(d.outgoing.len(), 1);
        let out = &d.outgoing[0];
        assert_eq!(
            (
                out.template.as_str(),
                out.to.as_str(),
                out.message_id.as_str()
            ),
            ("confirmation", "Ana@Example.test", "r1@x")
        );
        assert_eq!((out.status.as_str(), out.attempts), ("pending", 0));
        assert!(d.events.is_empty());
        assert!(store.ticket("HD-2026-999999").await.unwrap().is_none());
    }

    #[tokio::test]
    async fn ticket_by_id_reads_the_ticket_as_the_rules_see_it() {
        let (_dir, store) = temp_store().await;
        let t = new_ticket(
            "ana@example.test",
            "Printer",
            Some("tech1@example.test"),
            &[],
        );
        let m = mail("a@example.test", "ana@example.test", "Printer", "It jams.");
        let opened = open_ticket(&store, "2026-000001", &t, &m, "r1@x").await;
        let r = store.ticket_by_id(opened.ticket_id).await.unwrap().unwrap();
        assert_eq!(r.folio, "2026-000001");
        assert_eq!(r.status, Status::Open);
        assert_eq!(r.priority, Priority::Alta);
        assert_eq!(r.service, "correo");
        assert_eq!(r.language, "es");
        assert_eq!(r.assignee.as_deref(), Some("tech1@example.test"));
        assert_eq!(r.created_at, now());
        assert_eq!(r.opening_message_id.as_deref(), Some("a@example.test"));
        assert!(store
            .ticket_by_id(opened.ticket_id + 1)
            .await
            .unwrap()
            .is_none());
    }

    #[tokio::test]
    async fn ticket_by_folio_is_the_ticket_by_id_of_that_folio() {
        let (_dir, store) = temp_store().await;
        let t = new_ticket("ana@example.test", "Printer", None, &[]);
        let m = mail("a@example.test", "ana@example.test", "Printer", "It jams.");
        let opened = open_ticket(&store, "HD-2026-000007", &t, &m, "r1@x").await;
        let by_id = store.ticket_by_id(opened.ticket_id).await.unwrap();
        // Typed by an admin: the case of the prefix does not matter.
        let by_folio = store.ticket_by_folio("hd-2026-000007").await.unwrap();
        assert!(by_folio.is_some());
        assert_eq!(by_folio, by_id);
        assert!(store
            .ticket_by_folio("HD-2026-000008")
            .await
            .unwrap()
            .is_none());
    }
}
