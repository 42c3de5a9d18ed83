//! The database: tickets, messages, the outbox, quarantine and mailbox state, on SQLite.
//!
//! Invariant: the only module that knows SQL. Every inbound message is stored with its effects
//! (ticket, attachments, queued replies) in one transaction; a batch of messages shares one
//! transaction (one fsync). If a batch breaks a constraint, the pipeline stores its messages one
//! per transaction, so one bad message cannot sink the rest.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use sqlx::pool::PoolConnection;
use sqlx::sqlite::SqliteConnection;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{QueryBuilder, Row, Sqlite, SqlitePool};

use crate::desk::catalog::Priority;
use crate::desk::decide::{NewTicket, Reply};
use crate::desk::routing::Workload;
use crate::desk::ticket::{Change, Status, TicketRef};
use crate::inbound::mail::InboundMail;

/// A database failure. All are treated as temporary by callers: the message stays in the mailbox
/// and is retried.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database {url}: {source}")]
    Open { url: String, source: sqlx::Error },
    #[error("database {url}: cannot create folder {dir}: {source}")]
    CreateDir {
        url: String,
        dir: String,
        source: std::io::Error,
    },
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database error: {0}")]
    Sql(#[from] sqlx::Error),
}

impl StoreError {
    /// A constraint violation (unique, foreign key, not null, check): the data's fault, not the
    /// database's; anything else is temporary.
    pub fn is_constraint_violation(&self) -> bool {
        matches!(self, StoreError::Sql(sqlx::Error::Database(d))
            if !matches!(d.kind(), sqlx::error::ErrorKind::Other))
    }
}

/// Timestamps as sortable UTC text.
pub fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn parse_ts(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// Handle to the database.
#[derive(Clone)]
pub struct Store {
    pool: SqlitePool,
    /// One connection with `synchronous = NORMAL`, used only to record delivery results and
    /// analysis attempts. In WAL
    /// mode such a commit survives a process crash (`kill -9`); only a power loss can undo the
    /// last ones, and an undone "sent" mark means the mail goes out again with the same
    /// Message-ID, which a crash at the wrong instant can cause anyway (SMTP has no idempotency).
    /// It never loses a message. Skipping that fsync halves the sender's cost per mail.
    marks: SqlitePool,
}

/// A queued mail due for sending.
#[derive(Debug, Clone)]
pub struct OutboxMail {
    pub id: i64,
    pub template: String,
    pub language: String,
    pub to: String,
    pub message_id: String,
    pub in_reply_to: Option<String>,
    pub references: Vec<String>,
    pub context: serde_json::Value,
    pub auto_submitted: String,
    pub attempts: i64,
    pub created_at: DateTime<Utc>,
    /// Reply-To (a technician's tokenised address), if any.
    pub reply_to: Option<String>,
    /// The stored message whose attachments go with this mail.
    pub attachments_of: Option<i64>,
    /// The ticket it belongs to, if any.
    pub ticket_id: Option<i64>,
}

/// A mail the sender itself queues (a technician notice about a mail that could not be
/// delivered).
#[derive(Debug, Clone)]
pub struct NewMail {
    pub ticket_id: Option<i64>,
    pub template: String,
    pub language: String,
    pub to: String,
    pub message_id: String,
    pub references: Vec<String>,
    pub context: serde_json::Value,
    pub reply_to: Option<String>,
}

/// The result of one delivery attempt.
#[derive(Debug, Clone)]
pub enum SendResult {
    Sent,
    /// Temporary failure: try again at `retry_at`.
    Failed {
        error: String,
        retry_at: DateTime<Utc>,
    },
    /// Permanent failure (the server refused the mail with a 5xx): never retried.
    Rejected {
        error: String,
    },
    /// Temporary failures for longer than `smtp.max_age`: marked failed, never retried. The
    /// first time only (the row is still pending), `event` goes into its ticket's history and
    /// `notice` is queued, so a mail is reported once however often its result is recorded.
    Expired {
        error: String,
        ticket_id: Option<i64>,
        event: String,
        notice: Option<Box<NewMail>>,
    },
}

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

impl Store {
    /// Opens (creating if needed) the database and applies migrations. SQLite runs in WAL mode
    /// with `synchronous = FULL`: a committed ticket survives power loss, which matters because
    /// the IMAP message is moved away right after the commit.
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        Store::open_with(url, 4, |o| o).await
    }

    /// [`Store::open`] with `max_connections` and a hook on the pools' options (tests use it to
    /// cap the database's size).
    async fn open_with(
        url: &str,
        max_connections: u32,
        tune: impl Fn(SqlitePoolOptions) -> SqlitePoolOptions,
    ) -> Result<Store, StoreError> {
        let open_err = |source| StoreError::Open {
            url: url.to_string(),
            source,
        };
        let options = SqliteConnectOptions::from_str(url)
            .map_err(open_err)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(30));
        if let Some(dir) = options.get_filename().parent() {
            if !dir.as_os_str().is_empty() && !dir.exists() {
                std::fs::create_dir_all(dir).map_err(|source| StoreError::CreateDir {
                    url: url.to_string(),
                    dir: dir.display().to_string(),
                    source,
                })?;
            }
        }
        let pool = tune(SqlitePoolOptions::new().max_connections(max_connections))
            .connect_with(options.clone())
            .await
            .map_err(open_err)?;
        sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
        let marks = tune(SqlitePoolOptions::new().max_connections(1))
            .connect_with(options.synchronous(SqliteSynchronous::Normal))
            .await
            .map_err(open_err)?;
        Ok(Store { pool, marks })
    }

    /// The database file, for messages.
    pub fn describe(url: &str) -> String {
        Path::new(
            url.trim_start_matches("sqlite://")
                .trim_start_matches("sqlite:"),
        )
        .display()
        .to_string()
    }

    /// Starts a write transaction (`BEGIN IMMEDIATE`: takes the write lock up front, so
    /// read-then-write never fails with "database is locked").
    pub async fn begin(&self) -> Result<Batch, StoreError> {
        Ok(Batch {
            tx: WriteTx::begin(&self.pool).await?,
        })
    }

    /// What is recorded about a folder: `(uidvalidity, baseline_uid, first_start_at)`.
    pub async fn mailbox_state(
        &self,
        folder: &str,
    ) -> Result<Option<(u32, u32, Option<DateTime<Utc>>)>, StoreError> {
        let row = sqlx::query(
            "SELECT uidvalidity, baseline_uid, first_start_at FROM mailbox_state WHERE folder = ?",
        )
        .bind(folder)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| {
            (
                r.get::<i64, _>(0) as u32,
                r.get::<i64, _>(1) as u32,
                r.get::<Option<String>, _>(2).as_deref().and_then(parse_ts),
            )
        }))
    }

    /// Records a folder's UIDVALIDITY and baseline; `first_start_at` is kept once set.
    pub async fn set_mailbox_state(
        &self,
        folder: &str,
        uidvalidity: u32,
        baseline_uid: u32,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO mailbox_state (folder, uidvalidity, baseline_uid, updated_at, first_start_at)
             VALUES (?, ?, ?, ?, ?)
             ON CONFLICT (folder) DO UPDATE SET uidvalidity = excluded.uidvalidity,
               baseline_uid = excluded.baseline_uid, updated_at = excluded.updated_at",
        )
        .bind(folder)
        .bind(uidvalidity as i64)
        .bind(baseline_uid as i64)
        .bind(ts(now))
        .bind(ts(now))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Claims up to `limit` pending mails due at `now` for `lease`, longest due first. A claimed mail
    /// is not handed to any other sender (in this or another process) until the lease ends, so
    /// it is sent by one sender only; a crashed sender's claims expire.
    pub async fn claim_due(
        &self,
        now: DateTime<Utc>,
        limit: u32,
        lease: Duration,
    ) -> Result<Vec<OutboxMail>, StoreError> {
        let until = now + chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::MAX);
        // Mail queued to an address that hard-bounced since is not sent (it would bounce
        // again); the row says why.
        sqlx::query(
            "UPDATE outbox SET status = 'failed',
               last_error = 'not sent: the address hard-bounced recently (limits.bounce_suppression)'
             WHERE status = 'pending' AND (lease_until IS NULL OR lease_until <= ?)
               AND to_address IN (SELECT email FROM address_health WHERE failing_until > ?)",
        )
        .bind(ts(now))
        .bind(ts(now))
        .execute(&self.marks)
        .await?;
        let rows = sqlx::query(
            "UPDATE outbox SET lease_until = ?
             WHERE id IN (SELECT id FROM outbox WHERE status = 'pending' AND next_attempt_at <= ?
                          AND (lease_until IS NULL OR lease_until <= ?)
                          -- the order of the outbox_due index (status, next_attempt_at, rowid):
                          -- LIMIT stops early instead of sorting every pending row
                          ORDER BY next_attempt_at, id LIMIT ?)
             RETURNING id, template, language, to_address, message_id, in_reply_to, references_list,
                       context, auto_submitted, attempts, created_at, reply_to, attachments_of,
                       ticket_id",
        )
        .bind(ts(until))
        .bind(ts(now))
        .bind(ts(now))
        .bind(limit as i64)
        .fetch_all(&self.marks)
        .await?;
        let mut mails: Vec<OutboxMail> = rows
            .into_iter()
            .map(|r| OutboxMail {
                id: r.get(0),
                template: r.get(1),
                language: r.get(2),
                to: r.get(3),
                message_id: r.get(4),
                in_reply_to: r.get(5),
                references: r
                    .get::<String, _>(6)
                    .split_whitespace()
                    .map(str::to_string)
                    .collect(),
                context: serde_json::from_str(&r.get::<String, _>(7)).unwrap_or_default(),
                auto_submitted: r.get(8),
                attempts: r.get(9),
                created_at: parse_ts(&r.get::<String, _>(10)).unwrap_or_default(),
                reply_to: r.get(11),
                attachments_of: r.get(12),
                ticket_id: r.get(13),
            })
            .collect();
        mails.sort_by_key(|m| m.id);
        Ok(mails)
    }

    /// Clears the lease of claimed mails that were not started (they may be claimed at once).
    pub async fn release_claims(&self, ids: &[i64]) -> Result<(), StoreError> {
        for chunk in ids.chunks(ROWS_PER_STATEMENT) {
            let sql = format!(
                "UPDATE outbox SET lease_until = NULL WHERE status = 'pending' AND id IN ({})",
                in_list(chunk.len())
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).persistent(false);
            for id in chunk {
                query = query.bind(id);
            }
            query.execute(&self.marks).await?;
        }
        Ok(())
    }

    /// When the next pending mail falls due, if any.
    pub async fn next_due(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        let t: Option<String> =
            sqlx::query_scalar(
                "SELECT min(CASE WHEN lease_until > next_attempt_at THEN lease_until ELSE next_attempt_at END)
                 FROM outbox WHERE status = 'pending'",
            )
                .fetch_one(&self.pool)
                .await?;
        Ok(t.as_deref().and_then(parse_ts))
    }

    /// Records delivery results in one transaction: the accepted ones with one statement,
    /// failures one by one.
    pub async fn record_results(
        &self,
        results: &[(i64, SendResult)],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        if results.is_empty() {
            return Ok(());
        }
        let sent: Vec<i64> = results
            .iter()
            .filter(|(_, r)| matches!(r, SendResult::Sent))
            .map(|(id, _)| *id)
            .collect();
        let mark_sent = |chunk: &[i64]| {
            let sql = format!(
                "UPDATE outbox SET status = 'sent', attempts = attempts + 1, sent_at = ?, last_error = NULL
                 WHERE id IN ({})",
                in_list(chunk.len())
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql))
                .persistent(false)
                .bind(ts(now));
            for id in chunk {
                query = query.bind(*id);
            }
            query
        };
        // The common case, every mail accepted, is one statement (its own transaction).
        if sent.len() == results.len() && sent.len() <= ROWS_PER_STATEMENT {
            mark_sent(&sent).execute(&self.marks).await?;
            return Ok(());
        }
        let mut tx = WriteTx::begin(&self.marks).await?;
        for chunk in sent.chunks(ROWS_PER_STATEMENT) {
            mark_sent(chunk).execute(&mut *tx).await?;
        }
        for (id, result) in results {
            match result {
                SendResult::Sent => {}
                SendResult::Rejected { error } => {
                    sqlx::query(
                        "UPDATE outbox SET status = 'failed', attempts = attempts + 1, last_error = ? WHERE id = ?",
                    )
                    .bind(error)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                }
                SendResult::Failed { error, retry_at } => {
                    sqlx::query(
                        "UPDATE outbox SET attempts = attempts + 1, last_error = ?, next_attempt_at = ?,
                         lease_until = NULL WHERE id = ?",
                    )
                    .bind(error)
                    .bind(ts(*retry_at))
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                }
                SendResult::Expired {
                    error,
                    ticket_id,
                    event,
                    notice,
                } => {
                    let changed = sqlx::query(
                        "UPDATE outbox SET status = 'failed', attempts = attempts + 1, last_error = ?,
                         lease_until = NULL WHERE id = ? AND status = 'pending'",
                    )
                    .bind(format!("gave up (smtp.max_age): {error}"))
                    .bind(id)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                    if changed == 0 {
                        continue;
                    }
                    sqlx::query(
                        "INSERT INTO ticket_events (ticket_id, message_row, kind, actor, detail, created_at)
                         VALUES (?, NULL, 'delivery_failed', NULL, ?, ?)",
                    )
                    .bind(ticket_id)
                    .bind(event)
                    .bind(ts(now))
                    .execute(&mut *tx)
                    .await?;
                    if let Some(n) = notice {
                        sqlx::query(
                            "INSERT INTO outbox (ticket_id, template, language, to_address, message_id,
                               in_reply_to, references_list, context, auto_submitted, status,
                               next_attempt_at, created_at, reply_to)
                             VALUES (?, ?, ?, ?, ?, NULL, ?, ?, 'auto-generated', 'pending', ?, ?, ?)",
                        )
                        .bind(n.ticket_id)
                        .bind(&n.template)
                        .bind(&n.language)
                        .bind(&n.to)
                        .bind(&n.message_id)
                        .bind(n.references.join(" "))
                        .bind(n.context.to_string())
                        .bind(ts(now))
                        .bind(ts(now))
                        .bind(&n.reply_to)
                        .execute(&mut *tx)
                        .await?;
                    }
                }
            }
        }
        tx.commit().await
    }

    /// A ticket by its id (for notices the sender writes).
    pub async fn ticket_by_id(&self, id: i64) -> Result<Option<TicketRef>, StoreError> {
        let sql = format!("SELECT {TICKET_REF_COLUMNS} FROM tickets t WHERE t.id = ?");
        Ok(sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(ticket_ref))
    }

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

    const TICKET_COLUMNS: &'static str =
        "SELECT t.folio, t.status, t.channel, t.subject, t.requester_email,
        t.requester_name, t.requester_department, t.requester_phone, t.created_at, t.updated_at,
        (SELECT count(*) FROM messages m WHERE m.ticket_id = t.id), t.id, t.referenced_folio,
        t.service, t.ticket_type, t.priority, t.assignee, t.opened_by, t.routing
        FROM tickets t";

    fn ticket_summary(r: &sqlx::sqlite::SqliteRow) -> TicketSummary {
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

    /// The newest tickets first.
    pub async fn tickets(&self, limit: u32) -> Result<Vec<TicketSummary>, StoreError> {
        let sql = format!("{} ORDER BY t.id DESC LIMIT ?", Self::TICKET_COLUMNS);
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(limit as i64)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(Self::ticket_summary).collect())
    }

    /// One ticket with its messages and outgoing mail.
    pub async fn ticket(&self, folio: &str) -> Result<Option<TicketDetail>, StoreError> {
        let sql = format!("{} WHERE t.folio = ?", Self::TICKET_COLUMNS);
        let Some(r) = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(folio.to_uppercase())
            .fetch_optional(&self.pool)
            .await?
        else {
            return Ok(None);
        };
        let ticket_id: i64 = r.get(11);
        let referenced_folio: Option<String> = r.get(12);
        let routing: Option<String> = r.get(18);
        let ticket = Self::ticket_summary(&r);
        let mut messages = Vec::new();
        for m in sqlx::query(
            "SELECT id, message_id, from_email, subject, body_text, automatic_kind, verdict_reason,
                    decision_reason, stored_at, COALESCE(new_content, body_text), author_role, internal
             FROM messages WHERE ticket_id = ? ORDER BY id",
        )
        .bind(ticket_id)
        .fetch_all(&self.pool)
        .await?
        {
            let attachments = sqlx::query(
                "SELECT name, content_type, size, data IS NOT NULL FROM attachments WHERE message_row = ? ORDER BY id",
            )
            .bind(m.get::<i64, _>(0))
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|a| {
                serde_json::json!({"name": a.get::<String, _>(0), "content_type": a.get::<String, _>(1),
                    "size": a.get::<i64, _>(2), "stored": a.get::<bool, _>(3)})
            })
            .collect();
            messages.push(TicketMessage {
                message_id: m.get(1),
                from_email: m.get(2),
                subject: m.get(3),
                body_text: m.get(4),
                new_content: m.get(9),
                author_role: m.get(10),
                internal: m.get(11),
                automatic_kind: m.get(5),
                verdict_reason: m.get(6),
                decision_reason: m.get(7),
                stored_at: m.get(8),
                attachments,
            });
        }
        let outgoing = sqlx::query(
            "SELECT template, to_address, message_id, status, attempts, last_error, created_at, sent_at
             FROM outbox WHERE ticket_id = ? ORDER BY id",
        )
        .bind(ticket_id)
        .fetch_all(&self.pool)
        .await?
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
        .collect();
        let participants = sqlx::query(
            "SELECT email, role FROM participants WHERE ticket_id = ? ORDER BY role DESC, email",
        )
        .bind(ticket_id)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|p| serde_json::json!({"email": p.get::<String, _>(0), "role": p.get::<String, _>(1)}))
        .collect();
        let events = sqlx::query(
            "SELECT kind, actor, detail, created_at FROM ticket_events WHERE ticket_id = ? ORDER BY id",
        )
        .bind(ticket_id)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|e| TicketEvent {
            kind: e.get(0),
            actor: e.get(1),
            detail: e.get(2),
            created_at: e.get(3),
        })
        .collect();
        Ok(Some(TicketDetail {
            ticket,
            referenced_folio,
            routing,
            participants,
            messages,
            outgoing,
            events,
        }))
    }

    /// Marks an address as failing until `until` (the SMTP server refused it as unknown).
    pub async fn mark_failing(
        &self,
        email: &str,
        until: DateTime<Utc>,
        error: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        sqlx::query(MARK_FAILING)
            .bind(email)
            .bind(ts(until))
            .bind(error)
            .bind(ts(now))
            .execute(&self.marks)
            .await?;
        Ok(())
    }

    /// The stored attachments of a message that one mail may carry: in their order, each that
    /// still fits within `max_files` files and `max_bytes` bytes in all. Returns them and how
    /// many stored files were left out (they stay in the database; the notice lists them by
    /// name). Only the chosen files' content is read.
    pub async fn attachments_capped(
        &self,
        message_row: i64,
        max_files: usize,
        max_bytes: u64,
    ) -> Result<(Vec<crate::outbound::outgoing::FileAttachment>, usize), StoreError> {
        let sizes: Vec<(i64, i64)> = sqlx::query_as(
            "SELECT id, length(data) FROM attachments WHERE message_row = ? AND data IS NOT NULL ORDER BY id",
        )
        .bind(message_row)
        .fetch_all(&self.pool)
        .await?;
        let (chosen, omitted) = choose_within(&sizes, max_files, max_bytes);
        let mut files = Vec::with_capacity(chosen.len());
        for chunk in chosen.chunks(ROWS_PER_STATEMENT) {
            let sql = format!(
                "SELECT name, content_type, data FROM attachments WHERE id IN ({}) ORDER BY id",
                in_list(chunk.len())
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).persistent(false);
            for id in chunk {
                query = query.bind(*id);
            }
            files.extend(query.fetch_all(&self.pool).await?.iter().map(|r| {
                crate::outbound::outgoing::FileAttachment {
                    name: r.get(0),
                    content_type: r.get(1),
                    data: r.get(2),
                }
            }));
        }
        Ok((files, omitted))
    }

    /// For each source, how many attempts at its analysis started and never finished (0 for a
    /// message seen for the first time).
    pub async fn unfinished_attempts(&self, sources: &[&str]) -> Result<Vec<u32>, StoreError> {
        let mut before = HashMap::new();
        for chunk in sources.chunks(ROWS_PER_STATEMENT) {
            let sql = format!(
                "SELECT source, attempts FROM analysis_attempts WHERE source IN ({})",
                in_list(chunk.len())
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).persistent(false);
            for s in chunk {
                query = query.bind(*s);
            }
            for r in query.fetch_all(&self.marks).await? {
                before.insert(r.get::<String, _>(0), r.get::<i64, _>(1));
            }
        }
        Ok(sources
            .iter()
            .map(|s| {
                before
                    .get(*s)
                    .map_or(0, |n| u32::try_from(*n).unwrap_or(u32::MAX))
            })
            .collect())
    }

    /// Records that the analysis of each source starts now. Written with `synchronous =
    /// NORMAL`: the row survives a crash of the process, which is what it is for (a power loss
    /// only forgets an attempt).
    pub async fn begin_attempts(
        &self,
        sources: &[&str],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut tx = self.marks.begin().await?;
        for chunk in sources.chunks(ROWS_PER_STATEMENT) {
            let sql = format!(
                "INSERT INTO analysis_attempts (source, attempts, first_at, last_at) VALUES {}
                 ON CONFLICT (source) DO UPDATE SET attempts = attempts + 1, last_at = excluded.last_at",
                vec!["(?, 1, ?, ?)"; chunk.len()].join(", ")
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).persistent(false);
            for s in chunk {
                query = query.bind(*s).bind(ts(now)).bind(ts(now));
            }
            query.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Forgets the attempts of messages that were stored or quarantined.
    pub async fn end_attempts(&self, sources: &[&str]) -> Result<(), StoreError> {
        for chunk in sources.chunks(ROWS_PER_STATEMENT) {
            let sql = format!(
                "DELETE FROM analysis_attempts WHERE source IN ({})",
                in_list(chunk.len())
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).persistent(false);
            for s in chunk {
                query = query.bind(*s);
            }
            query.execute(&self.marks).await?;
        }
        Ok(())
    }

    /// The site secret that keys folio's tokens (created by the migrations).
    pub async fn site_secret(&self) -> Result<Vec<u8>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT secret FROM site_secret WHERE id = 1")
                .fetch_one(&self.pool)
                .await?,
        )
    }

    /// Closes the pool, flushing the WAL.
    pub async fn close(&self) {
        self.marks.close().await;
        self.pool.close().await;
    }
}

/// A write transaction over a batch of inbound messages.
///
/// The pipeline asks once per batch for what it needs to know ([`Batch::lookup`]), decides for
/// every message in memory, then writes each table with one multi-row statement: a few round
/// trips per batch instead of several per message, and one fsync at commit.
pub struct Batch {
    tx: WriteTx,
}

/// A pooled connection inside `BEGIN IMMEDIATE`, which goes back to the pool only in a clean
/// state: committed, or rolled back explicitly.
///
/// Why not sqlx's `Transaction`: after an error that makes SQLite roll the transaction back by
/// itself (SQLITE_FULL on a full disk, SQLITE_IOERR), sqlx's queued rollback fails ("no
/// transaction is active"), its transaction depth stays at 1, and the connection goes back to
/// the pool poisoned: every later `BEGIN` on it fails with "attempted to call begin_with at
/// non-zero transaction depth", hiding the real cause even after the disk has room again.
/// Here a failed `COMMIT` or an unfinished batch is rolled back explicitly, and a connection
/// whose rollback fails for any other reason is closed (the pool opens a fresh one; closing a
/// SQLite connection discards its open transaction).
struct WriteTx {
    /// `None` once committed or rolled back.
    conn: Option<PoolConnection<Sqlite>>,
}

impl WriteTx {
    async fn begin(pool: &SqlitePool) -> Result<WriteTx, StoreError> {
        let mut conn = pool.acquire().await?;
        if let Err(e) = sqlx::query("BEGIN IMMEDIATE").execute(&mut *conn).await {
            rollback_or_close(conn).await;
            return Err(e.into());
        }
        Ok(WriteTx { conn: Some(conn) })
    }

    fn conn(&mut self) -> &mut SqliteConnection {
        match self.conn.as_mut() {
            Some(c) => c,
            // `commit` and `rollback` consume the WriteTx: no statement can follow them.
            None => unreachable!("statement on a finished transaction"),
        }
    }

    /// Commits; on failure the transaction is rolled back and the COMMIT's error (the real
    /// cause, e.g. "database or disk is full") returned.
    async fn commit(mut self) -> Result<(), StoreError> {
        let Some(mut conn) = self.conn.take() else {
            return Ok(());
        };
        match sqlx::query("COMMIT").execute(&mut *conn).await {
            Ok(_) => Ok(()),
            Err(e) => {
                rollback_or_close(conn).await;
                Err(e.into())
            }
        }
    }

    /// Rolls back, waiting for it (dropping a WriteTx does the same in the background).
    async fn rollback(mut self) {
        if let Some(conn) = self.conn.take() {
            rollback_or_close(conn).await;
        }
    }
}

impl Drop for WriteTx {
    fn drop(&mut self) {
        let Some(mut conn) = self.conn.take() else {
            return;
        };
        // An error (`?`) or a cancelled future left the transaction open. The connection is
        // owned by the task until it is clean, so nothing else can begin on it meanwhile.
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                rt.spawn(rollback_or_close(conn));
            }
            Err(_) => conn.close_on_drop(),
        }
    }
}

/// Rolls a connection's transaction back; if that fails, closes the connection instead of
/// returning it to the pool.
async fn rollback_or_close(mut conn: PoolConnection<Sqlite>) {
    match sqlx::query("ROLLBACK").execute(&mut *conn).await {
        Ok(_) => {}
        // SQLite already rolled back by itself (it does after SQLITE_FULL, SQLITE_IOERR, …):
        // the connection is clean.
        Err(sqlx::Error::Database(d)) if d.message().contains("no transaction is active") => {}
        Err(error) => {
            tracing::warn!(%error, "database: rollback failed; closing that connection");
            if let Err(error) = conn.close().await {
                tracing::warn!(%error, "database: closing the connection failed");
            }
        }
    }
}

impl std::ops::Deref for WriteTx {
    type Target = SqliteConnection;
    fn deref(&self) -> &SqliteConnection {
        match self.conn.as_ref() {
            Some(c) => c,
            None => unreachable!("statement on a finished transaction"),
        }
    }
}

impl std::ops::DerefMut for WriteTx {
    fn deref_mut(&mut self) -> &mut SqliteConnection {
        self.conn()
    }
}

/// What a batch needs looked up.
#[derive(Debug, Default)]
pub struct Lookup<'a> {
    pub dedup_keys: Vec<&'a str>,
    /// Message-IDs the messages answer or report on (In-Reply-To, References, a DSN's
    /// original): looked up among the mails we sent.
    pub parent_ids: Vec<&'a str>,
    /// Folios mentioned in subjects and bodies, and those of our verified Message-IDs.
    pub folios: Vec<String>,
    /// Addresses mail may be queued to, for the per-address cap.
    pub addresses: Vec<&'a str>,
    /// Senders who asked for their tickets (`mis folios`).
    pub senders: Vec<&'a str>,
    /// Start of the per-address cap's window.
    pub since: DateTime<Utc>,
    /// Start of the hourly caps' window.
    pub hour_ago: DateTime<Utc>,
    pub now: DateTime<Utc>,
}

/// A mail we sent, as a reply or bounce refers to it.
#[derive(Debug, Clone)]
pub struct SentMail {
    pub outbox_id: i64,
    pub to: String,
    pub ticket_id: Option<i64>,
}

/// What the database knows about a batch.
#[derive(Debug, Default)]
pub struct Known {
    pub dedup_keys: HashSet<String>,
    /// Our outgoing Message-ID → that mail.
    pub sent: HashMap<String, SentMail>,
    /// Folio → ticket (every ticket the batch refers to).
    pub tickets: HashMap<String, TicketRef>,
    /// Ticket id → folio.
    pub folio_of: HashMap<i64, String>,
    /// Address ([`crate::desk::policy::cap_key`]: its `+tag` removed) → mails queued to it (and
    /// to its +tagged forms) within the window.
    pub recent_mails: HashMap<String, u32>,
    /// Domain → mails queued to it within the last hour.
    pub recent_domains: HashMap<String, u32>,
    /// Mails queued within the last hour.
    pub recent_total: u32,
    /// Addresses not to mail (they bounced).
    pub failing: HashSet<String>,
    pub workload: Workload,
    /// Sender → their active tickets (as requester or participant), newest first.
    pub sender_tickets: HashMap<String, Vec<TicketRef>>,
}

impl Known {
    /// The ticket with this id, if the batch looked it up.
    pub fn ticket_by_id(&self, id: i64) -> Option<&TicketRef> {
        self.folio_of.get(&id).and_then(|f| self.tickets.get(f))
    }
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

/// Records a hard bounce of an address (`email`, `failing_until`, `last_error`, `updated_at`).
const MARK_FAILING: &str =
    "INSERT INTO address_health (email, failing_until, bounces, last_error, updated_at)
     VALUES (?, ?, 1, ?, ?)
     ON CONFLICT (email) DO UPDATE SET failing_until = excluded.failing_until,
       bounces = bounces + 1, last_error = excluded.last_error, updated_at = excluded.updated_at";

/// Rows per multi-row statement: keeps the bound parameters far below SQLite's limit (32,766).
const ROWS_PER_STATEMENT: usize = 500;

fn in_list(n: usize) -> String {
    let mut s = String::with_capacity(n * 3);
    for i in 0..n {
        if i > 0 {
            s.push_str(", ");
        }
        s.push('?');
    }
    s
}

/// Of `(id, size)` in order, the ids of those that fit within `max_files` and `max_bytes` in
/// all (a file too large to fit is skipped, smaller ones after it may still go), and how many
/// were left out.
fn choose_within(sizes: &[(i64, i64)], max_files: usize, max_bytes: u64) -> (Vec<i64>, usize) {
    let mut chosen = Vec::new();
    let mut bytes = 0u64;
    for &(id, size) in sizes {
        let size = size.max(0) as u64;
        if chosen.len() < max_files && bytes.saturating_add(size) <= max_bytes {
            bytes += size;
            chosen.push(id);
        }
    }
    let omitted = sizes.len() - chosen.len();
    (chosen, omitted)
}

/// The columns [`ticket_ref`] reads, in order.
const TICKET_REF_COLUMNS: &str =
    "t.id, t.folio, t.status, t.subject, t.requester_email, t.requester_name,
    t.assignee, t.priority, t.service, t.language, t.created_at, t.updated_at,
    (SELECT m.message_id FROM messages m WHERE m.ticket_id = t.id ORDER BY m.id LIMIT 1)";

fn ticket_ref(r: &sqlx::sqlite::SqliteRow) -> TicketRef {
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
    }
}

impl Batch {
    /// Rows of `sql` (which ends in `IN (`) for `values`, in chunks.
    async fn rows_in<V: AsRef<str>>(
        &mut self,
        sql: &str,
        tail: &str,
        values: &[V],
    ) -> Result<Vec<sqlx::sqlite::SqliteRow>, StoreError> {
        let mut out = Vec::new();
        for chunk in values.chunks(ROWS_PER_STATEMENT) {
            let sql = format!("{sql}{}){tail}", in_list(chunk.len()));
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).persistent(false);
            for v in chunk {
                query = query.bind(v.as_ref().to_string());
            }
            out.extend(query.fetch_all(&mut *self.tx).await?);
        }
        Ok(out)
    }

    /// Looks up, in a few queries, everything `decide` needs for a batch.
    pub async fn lookup(&mut self, q: &Lookup<'_>) -> Result<Known, StoreError> {
        let mut known = Known::default();
        for r in self
            .rows_in(
                "SELECT dedup_key FROM messages WHERE dedup_key IN (",
                "",
                &q.dedup_keys,
            )
            .await?
        {
            known.dedup_keys.insert(r.get(0));
        }
        let mut ticket_ids: Vec<String> = Vec::new();
        for r in self
            .rows_in(
                "SELECT message_id, id, to_address, ticket_id FROM outbox WHERE message_id IN (",
                "",
                &q.parent_ids,
            )
            .await?
        {
            let sent = SentMail {
                outbox_id: r.get(1),
                to: r.get(2),
                ticket_id: r.get(3),
            };
            if let Some(t) = sent.ticket_id {
                ticket_ids.push(t.to_string());
            }
            known.sent.insert(r.get(0), sent);
        }
        let mut rows = self
            .rows_in(
                &format!("SELECT {TICKET_REF_COLUMNS} FROM tickets t WHERE t.folio IN ("),
                "",
                &q.folios,
            )
            .await?;
        rows.extend(
            self.rows_in(
                &format!("SELECT {TICKET_REF_COLUMNS} FROM tickets t WHERE t.id IN ("),
                "",
                &ticket_ids,
            )
            .await?,
        );
        let mut by_sender: Vec<(String, TicketRef)> = Vec::new();
        for r in self
            .rows_in(
                &format!(
                    "SELECT {TICKET_REF_COLUMNS}, p.email FROM tickets t JOIN participants p ON p.ticket_id = t.id
                     WHERE t.status IN ('open', 'pending') AND p.email IN ("
                ),
                " ORDER BY t.id DESC",
                &q.senders,
            )
            .await?
        {
            by_sender.push((r.get(13), ticket_ref(&r)));
        }
        for r in &rows {
            let t = ticket_ref(r);
            known.folio_of.insert(t.id, t.folio.clone());
            known.tickets.insert(t.folio.clone(), t);
        }
        // Participants of every ticket the batch refers to.
        let ids: Vec<String> = known.folio_of.keys().map(i64::to_string).collect();
        for r in self
            .rows_in(
                "SELECT ticket_id, email FROM participants WHERE role = 'cc' AND ticket_id IN (",
                " ORDER BY email",
                &ids,
            )
            .await?
        {
            let id: i64 = r.get(0);
            if let Some(t) = known
                .folio_of
                .get(&id)
                .cloned()
                .and_then(|f| known.tickets.get_mut(&f))
            {
                t.participants.push(r.get(1));
            }
        }
        for (sender, t) in by_sender {
            let list = known.sender_tickets.entry(sender).or_default();
            if list.len() < 50 {
                list.push(t);
            }
        }

        // The per-address cap counts bob@x together with bob+1@x, bob+2@x, …: each base
        // address is looked up as itself and as the index range of its +tagged forms
        // ("bob+" ≤ to_address < "bob,"), whose domain is checked here.
        let since = ts(q.since);
        let mut bases: Vec<String> = q
            .addresses
            .iter()
            .map(|a| crate::desk::policy::cap_key(a))
            .filter(|a| a.contains('@'))
            .collect();
        bases.sort_unstable();
        bases.dedup();
        for chunk in bases.chunks(ROWS_PER_STATEMENT / 3) {
            let terms = vec!["to_address = ? OR (to_address >= ? AND to_address < ?)"; chunk.len()];
            let sql = format!(
                "SELECT to_address, count(*) FROM outbox WHERE created_at >= ? AND ({})
                 GROUP BY to_address",
                terms.join(" OR ")
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql))
                .persistent(false)
                .bind(&since);
            for b in chunk {
                let local = b.rsplit_once('@').map_or(b.as_str(), |(l, _)| l);
                query = query
                    .bind(b.clone())
                    .bind(format!("{local}+"))
                    .bind(format!("{local},"));
            }
            let wanted: HashSet<&String> = chunk.iter().collect();
            for r in query.fetch_all(&mut *self.tx).await? {
                let key = crate::desk::policy::cap_key(&r.get::<String, _>(0));
                if wanted.contains(&key) {
                    *known.recent_mails.entry(key).or_default() += r.get::<i64, _>(1) as u32;
                }
            }
        }
        // The hourly caps: per recipient domain, and in all.
        for r in sqlx::query(
            "SELECT lower(substr(to_address, instr(to_address, '@') + 1)), count(*) FROM outbox
             WHERE created_at >= ? GROUP BY 1",
        )
        .bind(ts(q.hour_ago))
        .fetch_all(&mut *self.tx)
        .await?
        {
            let n = r.get::<i64, _>(1) as u32;
            known.recent_total += n;
            known.recent_domains.insert(r.get(0), n);
        }
        known.failing =
            sqlx::query_scalar("SELECT email FROM address_health WHERE failing_until > ?")
                .bind(ts(q.now))
                .fetch_all(&mut *self.tx)
                .await?
                .into_iter()
                .collect();
        for r in sqlx::query(
            "SELECT assignee, count(*) FROM tickets WHERE assignee IS NOT NULL
             AND status IN ('open', 'pending') GROUP BY assignee",
        )
        .fetch_all(&mut *self.tx)
        .await?
        {
            known
                .workload
                .open
                .insert(r.get(0), r.get::<i64, _>(1) as u32);
        }
        for r in sqlx::query("SELECT group_id, technician FROM assignment_cursor")
            .fetch_all(&mut *self.tx)
            .await?
        {
            known.workload.last_assigned.insert(r.get(0), r.get(1));
        }
        Ok(known)
    }

    /// Reserves `count` consecutive folio numbers of `year`; returns the first.
    pub async fn allocate_folios(&mut self, year: i32, count: usize) -> Result<i64, StoreError> {
        let last: i64 = sqlx::query_scalar(
            "INSERT INTO folio_counter (year, last_seq) VALUES (?, ?)
             ON CONFLICT (year) DO UPDATE SET last_seq = last_seq + excluded.last_seq RETURNING last_seq",
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
            let mut b = QueryBuilder::<Sqlite>::new(
                "INSERT INTO tickets (folio, status, channel, subject, requester_email, requester_name,
                   requester_department, requester_phone, language, referenced_folio, created_at, updated_at,
                   service, ticket_type, priority, assignee, opened_by, routing) ",
            );
            b.push_values(chunk, |mut v, r| {
                let t = r.ticket;
                v.push_bind(r.folio.clone())
                    .push_bind("open")
                    .push_bind(t.channel)
                    .push_bind(t.subject.clone())
                    .push_bind(t.requester.email.clone())
                    .push_bind(t.requester.name.clone())
                    .push_bind(t.requester.department.clone())
                    .push_bind(t.requester.phone.clone())
                    .push_bind(t.language.clone())
                    .push_bind(t.referenced_folio.clone())
                    .push_bind(now.clone())
                    .push_bind(now.clone())
                    .push_bind(t.routing.service.clone())
                    .push_bind(t.routing.ticket_type.as_str())
                    .push_bind(t.routing.priority.as_str())
                    .push_bind(t.routing.assignee.clone())
                    .push_bind(t.opened_by.clone())
                    .push_bind(t.routing.rules.join("\n"));
            });
            b.push(" RETURNING folio, id");
            for r in b.build().persistent(false).fetch_all(&mut *self.tx).await? {
                ids.insert(r.get(0), r.get(1));
            }
        }
        // Participants: the requester and the CC'd addresses.
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
            let mut b =
                QueryBuilder::<Sqlite>::new("INSERT INTO participants (ticket_id, email, role) ");
            b.push_values(chunk, |mut v, (id, email, role)| {
                v.push_bind(*id).push_bind(email.clone()).push_bind(*role);
            });
            b.push(" ON CONFLICT DO NOTHING");
            b.build().persistent(false).execute(&mut *self.tx).await?;
        }
        Ok(ids)
    }

    /// Applies changes to a ticket.
    pub async fn change_ticket(&mut self, id: i64, changes: &[Change]) -> Result<(), StoreError> {
        for c in changes {
            let (sql, value): (&'static str, String) = match c {
                Change::Status(s) => (
                    "UPDATE tickets SET status = ? WHERE id = ?",
                    s.as_str().into(),
                ),
                Change::Priority(p) => (
                    "UPDATE tickets SET priority = ? WHERE id = ?",
                    p.as_str().into(),
                ),
                Change::Service(s) => ("UPDATE tickets SET service = ? WHERE id = ?", s.clone()),
                Change::Assignee(a) => ("UPDATE tickets SET assignee = ? WHERE id = ?", a.clone()),
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
                "INSERT INTO assignment_cursor (group_id, technician) VALUES (?, ?)
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
        sqlx::query(MARK_FAILING)
            .bind(email)
            .bind(ts(until))
            .bind(error)
            .bind(ts(now))
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    /// Appends to tickets' history.
    pub async fn insert_events(
        &mut self,
        rows: &[EventRow],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let now = ts(now);
        for chunk in rows.chunks(ROWS_PER_STATEMENT / 2) {
            let mut b = QueryBuilder::<Sqlite>::new(
                "INSERT INTO ticket_events (ticket_id, message_row, kind, actor, detail, created_at) ",
            );
            b.push_values(chunk, |mut v, e| {
                v.push_bind(e.ticket_id)
                    .push_bind(e.message_row)
                    .push_bind(e.kind)
                    .push_bind(e.actor.clone())
                    .push_bind(e.detail.clone())
                    .push_bind(now.clone());
            });
            b.build().persistent(false).execute(&mut *self.tx).await?;
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
            let sql = format!(
                "UPDATE tickets SET updated_at = ? WHERE id IN ({})",
                in_list(chunk.len())
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql))
                .persistent(false)
                .bind(&now);
            for id in chunk {
                query = query.bind(id);
            }
            query.execute(&mut *self.tx).await?;
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
            let mut b = QueryBuilder::<Sqlite>::new(
                "INSERT INTO messages (dedup_key, ticket_id, message_id, source, from_email, from_name, subject,
                   body_text, sent_date, automatic_kind, verdict_reason, decision_reason, raw, seen_at, stored_at,
                   new_content, author_role, internal) ",
            );
            b.push_values(chunk, |mut v, r| {
                let m = r.mail;
                v.push_bind(m.dedup_key())
                    .push_bind(r.ticket_id)
                    .push_bind(m.message_id.clone())
                    .push_bind(r.source.to_string())
                    .push_bind(m.from_email.clone())
                    .push_bind(m.from_name.clone())
                    .push_bind(m.subject.clone())
                    .push_bind(m.body_text.clone())
                    .push_bind(m.date.map(ts))
                    .push_bind(r.automatic_kind)
                    .push_bind(r.verdict_reason.to_string())
                    .push_bind(r.decision_reason)
                    .push_bind(r.raw.to_vec())
                    .push_bind(ts(r.seen_at))
                    .push_bind(now.clone())
                    // Most requests quote nothing: store the new content only when it differs.
                    .push_bind((r.new_content != m.body_text).then(|| r.new_content.to_string()))
                    .push_bind(r.author_role)
                    .push_bind(r.internal);
            });
            b.push(" RETURNING dedup_key, id");
            for r in b.build().persistent(false).fetch_all(&mut *self.tx).await? {
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
            let mut b = QueryBuilder::<Sqlite>::new(
                "INSERT INTO attachments (message_row, name, content_type, size, data) ",
            );
            b.push_values(chunk, |mut v, (row, a)| {
                v.push_bind(*row)
                    .push_bind(a.name.clone())
                    .push_bind(a.content_type.clone())
                    .push_bind(a.size as i64)
                    .push_bind((a.size <= max_bytes).then(|| a.data.clone()));
            });
            b.build().persistent(false).execute(&mut *self.tx).await?;
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
            let mut b = QueryBuilder::<Sqlite>::new(
                "INSERT INTO outbox (ticket_id, template, language, to_address, message_id, in_reply_to,
                   references_list, context, auto_submitted, status, next_attempt_at, created_at, reply_to,
                   attachments_of) ",
            );
            b.push_values(chunk, |mut v, r| {
                v.push_bind(r.ticket_id)
                    .push_bind(r.reply.template().name())
                    .push_bind(r.reply.language.clone())
                    .push_bind(r.reply.to.clone())
                    .push_bind(r.message_id.clone())
                    .push_bind(r.reply.in_reply_to.clone())
                    .push_bind(r.reply.references.join(" "))
                    .push_bind(r.context.clone())
                    .push_bind(r.reply.auto_submitted)
                    .push_bind("pending")
                    .push_bind(now.clone())
                    .push_bind(now.clone())
                    .push_bind(r.reply_to.clone())
                    .push_bind(r.attachments_of);
            });
            b.build().persistent(false).execute(&mut *self.tx).await?;
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
            "INSERT INTO quarantine (source, reason, raw, created_at) VALUES (?, ?, ?, ?)
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

    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Arc;

    use chrono::TimeZone;

    use super::*;

    /// A store whose database may grow to `pages.load()` pages (`PRAGMA max_page_count`, set on
    /// every connection): past it SQLite fails with SQLITE_FULL exactly as on a full disk.
    async fn store_with_page_cap(dir: &Path, pages: Arc<AtomicU32>) -> Store {
        let url = format!("sqlite://{}", dir.join("folio.db").display());
        Store::open_with(&url, 1, move |o| {
            let pages = pages.clone();
            o.after_connect(move |conn, _| {
                let n = pages.load(Ordering::SeqCst);
                Box::pin(async move {
                    sqlx::query(sqlx::AssertSqlSafe(format!("PRAGMA max_page_count = {n}")))
                        .execute(conn)
                        .await?;
                    Ok(())
                })
            })
        })
        .await
        .unwrap()
    }

    /// Applies the current cap to the open connections ("space is freed" or "the disk fills").
    async fn apply_cap(store: &Store, pages: &AtomicU32) {
        let n = pages.load(Ordering::SeqCst);
        for pool in [&store.pool, &store.marks] {
            sqlx::query(sqlx::AssertSqlSafe(format!("PRAGMA max_page_count = {n}")))
                .execute(pool)
                .await
                .unwrap();
        }
    }

    async fn page_count(store: &Store) -> u32 {
        sqlx::query_scalar::<_, i64>("PRAGMA page_count")
            .fetch_one(&store.pool)
            .await
            .unwrap() as u32
    }

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 27, 16, 0, 0).unwrap()
    }

    /// One batch's writes: a quarantined message of `size` bytes.
    async fn write_batch(store: &Store, source: &str, size: usize) -> Result<(), StoreError> {
        let mut tx = store.begin().await?;
        tx.quarantine(source, "test", &vec![b'x'; size], now())
            .await?;
        tx.commit().await
    }

    #[test]
    fn notice_files_stop_at_either_cap() {
        let sizes = [(1, 400), (2, 700), (3, 100), (4, 0), (5, 50)];
        // Bytes: 700 does not fit after 400 (cap 1000); the smaller ones after it do.
        assert_eq!(choose_within(&sizes, 10, 1000), (vec![1, 3, 4, 5], 1));
        // Files: two at most.
        assert_eq!(choose_within(&sizes, 2, u64::MAX), (vec![1, 2], 3));
        assert_eq!(choose_within(&[], 2, 10), (vec![], 0));
    }

    #[tokio::test]
    async fn a_full_disk_leaves_a_clean_connection_and_the_retry_commits_once_space_is_freed() {
        let dir = tempfile::tempdir().unwrap();
        let pages = Arc::new(AtomicU32::new(1 << 30));
        let store = store_with_page_cap(dir.path(), pages.clone()).await;
        pages.store(page_count(&store).await + 4, Ordering::SeqCst);
        apply_cap(&store, &pages).await;

        let first = write_batch(&store, "a", 1 << 20).await.unwrap_err();
        assert!(first.to_string().contains("full"), "{first}");
        // Still full: the retry reports the real cause again, not a leftover transaction.
        let again = write_batch(&store, "a", 1 << 20).await.unwrap_err();
        assert!(again.to_string().contains("full"), "{again}");

        pages.store(1 << 30, Ordering::SeqCst);
        apply_cap(&store, &pages).await;
        write_batch(&store, "a", 1 << 20).await.unwrap();
        assert_eq!(store.counts().await.unwrap().quarantined, 1);
    }

    #[tokio::test]
    async fn a_full_disk_while_recording_results_reports_the_cause_and_the_retry_records_once() {
        let dir = tempfile::tempdir().unwrap();
        let pages = Arc::new(AtomicU32::new(1 << 30));
        let store = store_with_page_cap(dir.path(), pages.clone()).await;
        sqlx::query(
            "INSERT INTO outbox (template, language, to_address, message_id, references_list, context,
               auto_submitted, status, next_attempt_at, created_at)
             VALUES ('confirmation', 'es', 'ana@example.test', 'm1@x', '', '{}', 'auto-replied',
               'pending', '2026-11-20T00:00:00.000Z', '2026-11-20T00:00:00.000Z')",
        )
        .execute(&store.pool)
        .await
        .unwrap();
        pages.store(page_count(&store).await + 4, Ordering::SeqCst);
        apply_cap(&store, &pages).await;
        // Giving up on the mail queues a notice: too big for the space left.
        let expired = SendResult::Expired {
            error: "451 try later".into(),
            ticket_id: None,
            event: "gave up".into(),
            notice: Some(Box::new(NewMail {
                ticket_id: None,
                template: "delivery_failed".into(),
                language: "es".into(),
                to: "tech1@example.test".into(),
                message_id: "n1@x".into(),
                references: vec![],
                context: serde_json::json!({ "error": "x".repeat(1 << 20) }),
                reply_to: None,
            })),
        };
        let results = [(1, expired)];
        for _ in 0..2 {
            let e = store.record_results(&results, now()).await.unwrap_err();
            assert!(e.to_string().contains("full"), "{e}");
        }
        pages.store(1 << 30, Ordering::SeqCst);
        apply_cap(&store, &pages).await;
        store.record_results(&results, now()).await.unwrap();
        // Recorded again (a retry after an unknown outcome): nothing is added twice.
        store.record_results(&results, now()).await.unwrap();
        let statuses: Vec<(String, String)> =
            sqlx::query_as("SELECT message_id, status FROM outbox ORDER BY id")
                .fetch_all(&store.pool)
                .await
                .unwrap();
        assert_eq!(
            statuses,
            [
                ("m1@x".to_string(), "failed".to_string()),
                ("n1@x".to_string(), "pending".to_string())
            ]
        );
        let events: i64 = sqlx::query_scalar("SELECT count(*) FROM ticket_events")
            .fetch_one(&store.pool)
            .await
            .unwrap();
        assert_eq!(events, 1);
    }
}
