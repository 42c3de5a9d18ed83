//! What the store's unit tests share: a store on a temporary file, a fixed clock, and rows
//! written through the public interface as the pipeline writes them.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use tempfile::TempDir;

use super::statement::ListQuery;
use super::{Backend, MessageRow, OutboxRow, Store, StoreError, TicketRow};
use crate::desk::catalog::{Priority, TicketType};
use crate::desk::decide::{NewTicket, Reply};
use crate::desk::notice::{
    AttachmentList, Confirmation, HelpdeskView, MissingView, Notice, RequesterView,
};
use crate::desk::policy::Policy;
use crate::desk::requester::Requester;
use crate::desk::routing::{Routing, Rule};
use crate::desk::tokens::Tokens;
use crate::inbound::mail::InboundMail;

/// The plan of `sql` with `bind` applied, one line per step: SQLite's `EXPLAIN QUERY PLAN`, or
/// PostgreSQL's `EXPLAIN` with sequential scans and sorts turned off. PostgreSQL picks by
/// statistics, and a test's tables are almost empty: this asks whether an index serves the
/// query (and its order) at all.
pub async fn query_plan(
    store: &Store,
    sql: &str,
    bind: impl FnOnce(ListQuery) -> ListQuery,
) -> String {
    use sqlx::Row;
    let mut conn = store.pool.acquire().await.unwrap();
    let explain = match store.backend() {
        Backend::Sqlite => "EXPLAIN QUERY PLAN",
        Backend::Postgres => {
            for off in ["SET enable_seqscan = off", "SET enable_sort = off"] {
                sqlx::query(off).execute(&mut *conn).await.unwrap();
            }
            "EXPLAIN"
        }
    };
    let query = sqlx::query(sqlx::AssertSqlSafe(format!("{explain} {sql}")));
    let rows = bind(query).fetch_all(&mut *conn).await.unwrap();
    let lines: Vec<String> = rows
        .iter()
        .map(|r| match store.backend() {
            Backend::Sqlite => r.get::<String, _>(3),
            Backend::Postgres => r.get::<String, _>(0),
        })
        .collect();
    lines.join("\n")
}

/// The tests' "now".
pub fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 27, 16, 0, 0).unwrap()
}

/// A migrated store on a file in a fresh temporary folder (kept as long as the `TempDir`).
pub async fn temp_store() -> (TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&super::scratch::database_url(dir.path()))
        .await
        .unwrap();
    (dir, store)
}

fn url_in(dir: &Path) -> String {
    format!("sqlite://{}", dir.join("folio.db").display())
}

/// A store whose database may grow to `pages.load()` pages (`PRAGMA max_page_count`, set on
/// every connection): past it SQLite fails with SQLITE_FULL exactly as on a full disk.
pub async fn store_with_page_cap(dir: &Path, pages: Arc<AtomicU32>) -> Store {
    let on_connect = move || format!("PRAGMA max_page_count = {}", pages.load(Ordering::SeqCst));
    Store::open_with(&url_in(dir), 1, Arc::new(on_connect))
        .await
        .unwrap()
}

/// Applies the current cap to the open connections ("space is freed" or "the disk fills").
pub async fn apply_cap(store: &Store, pages: &AtomicU32) {
    let n = pages.load(Ordering::SeqCst);
    for pool in [&store.pool, &store.marks] {
        sqlx::query(sqlx::AssertSqlSafe(format!("PRAGMA max_page_count = {n}")))
            .execute(pool)
            .await
            .unwrap();
    }
}

pub async fn page_count(store: &Store) -> u32 {
    sqlx::query_scalar::<_, i64>("PRAGMA page_count")
        .fetch_one(&store.pool)
        .await
        .unwrap() as u32
}

/// An inbound mail as the parser makes it.
pub fn mail(message_id: &str, from: &str, subject: &str, body: &str) -> InboundMail {
    let raw = format!(
        "From: {from}\r\nTo: soporte@example.test\r\nSubject: {subject}\r\n\
         Message-ID: <{message_id}>\r\nDate: Fri, 27 Nov 2026 15:00:00 +0000\r\n\r\n{body}\r\n"
    );
    crate::inbound::mail::parse(raw.as_bytes(), 1 << 20)
}

/// A new e-mail ticket from `requester`, routed to `assignee`, CC'ing `participants`.
pub fn new_ticket(
    requester: &str,
    subject: &str,
    assignee: Option<&str>,
    participants: &[&str],
) -> NewTicket {
    NewTicket {
        requester: Requester {
            email: requester.to_string(),
            name: Some("Ana".into()),
            ..Requester::default()
        },
        subject: subject.to_string(),
        language: "es".into(),
        referenced_folio: None,
        channel: "email",
        opened_by: None,
        participants: participants.iter().map(|p| p.to_string()).collect(),
        routing: Routing {
            service: "correo".into(),
            ticket_type: TicketType::Incidente,
            priority: Priority::Alta,
            assignee: assignee.map(str::to_string),
            rules: vec![
                Rule::DefaultService {
                    service: "correo".into(),
                    service_name: "Correo".into(),
                },
                Rule::DefaultPriority {
                    priority: Priority::Alta,
                },
            ],
        },
    }
}

/// A confirmation to `to`.
pub fn reply(to: &str) -> Reply {
    let requester = Requester {
        email: to.to_string(),
        name: None,
        department: None,
        phone: None,
    };
    let policy = Policy::with_defaults("helpdesk@example.test", Tokens::new(b"t".to_vec()));
    let confirmation = Confirmation {
        subject: "x".into(),
        reply_subject: "Re: x".into(),
        summary: "x".into(),
        quoted: true,
        channel: "email",
        agent_copy: false,
        missing_fields: vec![],
        requester: RequesterView::from(&requester),
        missing: MissingView::from(&requester),
        files: AttachmentList::default(),
        helpdesk: HelpdeskView::of(&policy),
    };
    Reply {
        notice: Notice::Confirmation(confirmation),
        language: "es".into(),
        to: to.to_string(),
        in_reply_to: Some("in@example.test".into()),
        references: vec!["in@example.test".into()],
        staff: None,
        auto_submitted: "auto-replied",
        with_attachments: false,
    }
}

/// What [`open_ticket`] wrote.
pub struct Opened {
    pub ticket_id: i64,
    pub message_row: i64,
}

/// Opens ticket `folio` from `mail` as the pipeline does (ticket, message, confirmation with
/// Message-ID `reply_id` to the sender) in one batch.
pub async fn open_ticket(
    store: &Store,
    folio: &str,
    ticket: &NewTicket,
    mail: &InboundMail,
    reply_id: &str,
) -> Opened {
    let mut tx = store.begin().await.unwrap();
    let ids = tx
        .insert_tickets(
            &[TicketRow {
                folio: folio.to_string(),
                ticket,
            }],
            now(),
        )
        .await
        .unwrap();
    let ticket_id = ids[folio];
    let rows = tx
        .insert_messages(&[message_row(Some(ticket_id), mail)], now())
        .await
        .unwrap();
    let answer = reply(&ticket.requester.email);
    tx.insert_outbox(&[outbox_row(Some(ticket_id), &answer, reply_id)], now())
        .await
        .unwrap();
    tx.commit().await.unwrap();
    Opened {
        ticket_id,
        message_row: rows[0],
    }
}

/// `mail` as a stored message of `ticket_id`.
pub fn message_row(ticket_id: Option<i64>, mail: &InboundMail) -> MessageRow<'_> {
    MessageRow {
        ticket_id,
        source: "imap:INBOX:1:1",
        raw: b"raw",
        mail,
        new_content: &mail.body_text,
        automatic_kind: None,
        verdict_reason: "human",
        decision_reason: "new_ticket",
        author_role: "requester",
        internal: false,
        seen_at: now(),
    }
}

/// `reply` queued with Message-ID `message_id`.
pub fn outbox_row<'a>(ticket_id: Option<i64>, reply: &'a Reply, message_id: &str) -> OutboxRow<'a> {
    OutboxRow {
        ticket_id,
        reply,
        message_id: message_id.to_string(),
        reply_to: None,
        attachments_of: None,
        context: "{}".into(),
    }
}

/// Queues a mail with no ticket to `to`, due at once.
pub async fn queue(store: &Store, message_id: &str, to: &str) -> Result<(), StoreError> {
    let answer = reply(to);
    let mut tx = store.begin().await?;
    tx.insert_outbox(&[outbox_row(None, &answer, message_id)], now())
        .await?;
    tx.commit().await
}
