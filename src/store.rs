//! The database: tickets, messages, the outbox, quarantine and mailbox state, on SQLite.
//!
//! Invariant: the only module that knows SQL. Every inbound message is stored with its effects
//! (ticket, attachments, queued replies) in one transaction; a batch of messages shares one
//! transaction (one fsync), with a savepoint per message so one bad message cannot sink the rest.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Datelike, SecondsFormat, Utc};
use serde::Serialize;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, Sqlite, SqlitePool, Transaction};

use crate::decide::{Context, Decision, Reply, TicketAction, TicketRef};
use crate::folio::FolioFormat;
use crate::mail::InboundMail;

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
}

/// What storing one message did.
#[derive(Debug, Clone, Default)]
pub struct Applied {
    pub ticket_id: Option<i64>,
    pub folio: Option<String>,
    pub queued_mails: u32,
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
}

/// A message on a ticket, for `folio tickets show`.
#[derive(Debug, Clone, Serialize)]
pub struct TicketMessage {
    pub message_id: Option<String>,
    pub from_email: Option<String>,
    pub subject: String,
    pub body_text: String,
    pub automatic_kind: Option<String>,
    pub verdict_reason: String,
    pub decision_reason: String,
    pub stored_at: String,
    pub attachments: Vec<serde_json::Value>,
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
    pub messages: Vec<TicketMessage>,
    pub outgoing: Vec<TicketMail>,
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
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await
            .map_err(open_err)?;
        sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
        Ok(Store { pool })
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
        let tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        Ok(Batch { tx })
    }

    /// `(uidvalidity, baseline_uid)` recorded for a folder.
    pub async fn mailbox_state(&self, folder: &str) -> Result<Option<(u32, u32)>, StoreError> {
        let row =
            sqlx::query("SELECT uidvalidity, baseline_uid FROM mailbox_state WHERE folder = ?")
                .bind(folder)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(|r| (r.get::<i64, _>(0) as u32, r.get::<i64, _>(1) as u32)))
    }

    pub async fn set_mailbox_state(
        &self,
        folder: &str,
        uidvalidity: u32,
        baseline_uid: u32,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO mailbox_state (folder, uidvalidity, baseline_uid, updated_at) VALUES (?, ?, ?, ?)
             ON CONFLICT (folder) DO UPDATE SET uidvalidity = excluded.uidvalidity,
               baseline_uid = excluded.baseline_uid, updated_at = excluded.updated_at",
        )
        .bind(folder)
        .bind(uidvalidity as i64)
        .bind(baseline_uid as i64)
        .bind(ts(now))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Pending mails due at `now`, oldest first.
    pub async fn due_mails(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<OutboxMail>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, template, language, to_address, message_id, in_reply_to, references_list,
                    context, auto_submitted, attempts, created_at
             FROM outbox WHERE status = 'pending' AND next_attempt_at <= ? ORDER BY id LIMIT ?",
        )
        .bind(ts(now))
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
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
            })
            .collect())
    }

    /// When the next pending mail falls due, if any.
    pub async fn next_due(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        let t: Option<String> =
            sqlx::query_scalar("SELECT min(next_attempt_at) FROM outbox WHERE status = 'pending'")
                .fetch_one(&self.pool)
                .await?;
        Ok(t.as_deref().and_then(parse_ts))
    }

    /// Records delivery results, all in one transaction.
    pub async fn record_results(
        &self,
        results: &[(i64, SendResult)],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        for (id, result) in results {
            match result {
                SendResult::Sent => {
                    sqlx::query(
                        "UPDATE outbox SET status = 'sent', attempts = attempts + 1, sent_at = ?,
                         last_error = NULL WHERE id = ?",
                    )
                    .bind(ts(now))
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                }
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
                        "UPDATE outbox SET attempts = attempts + 1, last_error = ?, next_attempt_at = ?
                         WHERE id = ?",
                    )
                    .bind(error)
                    .bind(ts(*retry_at))
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                }
            }
        }
        tx.commit().await?;
        Ok(())
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
        (SELECT count(*) FROM messages m WHERE m.ticket_id = t.id), t.id, t.referenced_folio
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
        let ticket = Self::ticket_summary(&r);
        let mut messages = Vec::new();
        for m in sqlx::query(
            "SELECT id, message_id, from_email, subject, body_text, automatic_kind, verdict_reason,
                    decision_reason, stored_at FROM messages WHERE ticket_id = ? ORDER BY id",
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
        Ok(Some(TicketDetail {
            ticket,
            referenced_folio,
            messages,
            outgoing,
        }))
    }

    /// Closes the pool, flushing the WAL.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// A write transaction over a batch of inbound messages.
pub struct Batch {
    tx: Transaction<'static, Sqlite>,
}

/// Everything `Batch::store_message` needs about one message.
pub struct Inbound<'a> {
    /// `imap:<folder>:<uidvalidity>:<uid>` or `stdin`.
    pub source: &'a str,
    pub raw: &'a [u8],
    pub mail: &'a InboundMail,
    pub automatic_kind: Option<&'a str>,
    pub verdict_reason: &'a str,
    pub seen_at: DateTime<Utc>,
}

impl Batch {
    /// Marks the start of one message's work.
    pub async fn savepoint(&mut self) -> Result<(), StoreError> {
        sqlx::query("SAVEPOINT message")
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    /// Keeps the message's work.
    pub async fn release(&mut self) -> Result<(), StoreError> {
        sqlx::query("RELEASE message")
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    /// Undoes the message's work, keeping the rest of the batch.
    pub async fn rollback_to_savepoint(&mut self) -> Result<(), StoreError> {
        sqlx::query("ROLLBACK TO message")
            .execute(&mut *self.tx)
            .await?;
        sqlx::query("RELEASE message")
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    /// The facts `decide` needs about a message.
    pub async fn context(
        &mut self,
        mail: &InboundMail,
        folio_reference: Option<&str>,
        reply_to: Option<&str>,
        cap_window_start: DateTime<Utc>,
    ) -> Result<Context, StoreError> {
        let already_processed = sqlx::query("SELECT 1 FROM messages WHERE dedup_key = ?")
            .bind(mail.dedup_key())
            .fetch_optional(&mut *self.tx)
            .await?
            .is_some();
        if already_processed {
            return Ok(Context {
                already_processed,
                ..Context::default()
            });
        }
        // The message answers one of ours: the newest of its references that we sent.
        let mut thread_ticket = None;
        let parents = mail.in_reply_to.iter().chain(mail.references.iter().rev());
        for id in parents {
            let row = sqlx::query(
                "SELECT t.id, t.folio, t.requester_email FROM outbox o JOIN tickets t ON t.id = o.ticket_id
                 WHERE o.message_id = ?",
            )
            .bind(id)
            .fetch_optional(&mut *self.tx)
            .await?;
            if let Some(r) = row {
                thread_ticket = Some(TicketRef {
                    id: r.get(0),
                    folio: r.get(1),
                    requester_email: r.get(2),
                });
                break;
            }
        }
        let referenced_ticket = match folio_reference {
            Some(folio) => {
                sqlx::query("SELECT id, folio, requester_email FROM tickets WHERE folio = ?")
                    .bind(folio)
                    .fetch_optional(&mut *self.tx)
                    .await?
                    .map(|r| TicketRef {
                        id: r.get(0),
                        folio: r.get(1),
                        requester_email: r.get(2),
                    })
            }
            None => None,
        };
        let recent_mails_to_sender: i64 = match reply_to {
            Some(addr) => {
                sqlx::query_scalar(
                    "SELECT count(*) FROM outbox WHERE to_address = ? AND created_at >= ?",
                )
                .bind(addr.to_lowercase())
                .bind(ts(cap_window_start))
                .fetch_one(&mut *self.tx)
                .await?
            }
            None => 0,
        };
        Ok(Context {
            already_processed,
            thread_ticket,
            referenced_ticket,
            recent_mails_to_sender: recent_mails_to_sender as u32,
        })
    }

    /// Stores a message and carries out its decision: ticket, attachments, queued replies.
    pub async fn store_message(
        &mut self,
        m: &Inbound<'_>,
        decision: &Decision,
        folio_format: &FolioFormat,
        message_id_domain: &str,
        max_attachment_bytes: u64,
        now: DateTime<Utc>,
    ) -> Result<Applied, StoreError> {
        let Decision::Record {
            action,
            reply,
            reason,
        } = decision
        else {
            return Ok(Applied::default());
        };
        let now_text = ts(now);
        let (ticket_id, folio) = match action {
            TicketAction::Open(t) => {
                let seq: i64 = sqlx::query_scalar(
                    "INSERT INTO folio_counter (year, last_seq) VALUES (?, 1)
                     ON CONFLICT (year) DO UPDATE SET last_seq = last_seq + 1 RETURNING last_seq",
                )
                .bind(now.year())
                .fetch_one(&mut *self.tx)
                .await?;
                let folio = folio_format.render(now.year(), seq);
                let id: i64 = sqlx::query_scalar(
                    "INSERT INTO tickets (folio, status, channel, subject, requester_email, requester_name,
                       requester_department, requester_phone, language, referenced_folio, created_at, updated_at)
                     VALUES (?, 'open', 'email', ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                )
                .bind(&folio)
                .bind(&t.subject)
                .bind(&t.requester.email)
                .bind(&t.requester.name)
                .bind(&t.requester.department)
                .bind(&t.requester.phone)
                .bind(&t.language)
                .bind(&t.referenced_folio)
                .bind(&now_text)
                .bind(&now_text)
                .fetch_one(&mut *self.tx)
                .await?;
                (Some(id), Some(folio))
            }
            TicketAction::Append { ticket_id, folio } => {
                sqlx::query("UPDATE tickets SET updated_at = ? WHERE id = ?")
                    .bind(&now_text)
                    .bind(ticket_id)
                    .execute(&mut *self.tx)
                    .await?;
                (Some(*ticket_id), Some(folio.clone()))
            }
            TicketAction::None => (None, None),
        };

        let mail = m.mail;
        let row_id: i64 = sqlx::query_scalar(
            "INSERT INTO messages (dedup_key, ticket_id, message_id, source, from_email, from_name, subject,
               body_text, sent_date, automatic_kind, verdict_reason, decision_reason, raw, seen_at, stored_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(mail.dedup_key())
        .bind(ticket_id)
        .bind(&mail.message_id)
        .bind(m.source)
        .bind(&mail.from_email)
        .bind(&mail.from_name)
        .bind(&mail.subject)
        .bind(&mail.body_text)
        .bind(mail.date.map(ts))
        .bind(m.automatic_kind)
        .bind(m.verdict_reason)
        .bind(reason.as_str())
        .bind(m.raw)
        .bind(ts(m.seen_at))
        .bind(&now_text)
        .fetch_one(&mut *self.tx)
        .await?;
        for a in &mail.attachments {
            sqlx::query(
                "INSERT INTO attachments (message_row, name, content_type, size, data) VALUES (?, ?, ?, ?, ?)",
            )
            .bind(row_id)
            .bind(&a.name)
            .bind(&a.content_type)
            .bind(a.size as i64)
            .bind((a.size <= max_attachment_bytes).then_some(&a.data[..]))
            .execute(&mut *self.tx)
            .await?;
        }

        let mut queued_mails = 0;
        if let (Some(reply), Some(folio)) = (reply, &folio) {
            self.queue(ticket_id, folio, reply, message_id_domain, now)
                .await?;
            queued_mails += 1;
        }
        Ok(Applied {
            ticket_id,
            folio,
            queued_mails,
        })
    }

    async fn queue(
        &mut self,
        ticket_id: Option<i64>,
        folio: &str,
        reply: &Reply,
        domain: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut context = reply.context.clone();
        if let Some(obj) = context.as_object_mut() {
            obj.insert("folio".into(), folio.into());
        }
        let message_id = format!(
            "{}.{}@{}",
            folio.to_lowercase(),
            uuid::Uuid::now_v7().simple(),
            domain
        );
        sqlx::query(
            "INSERT INTO outbox (ticket_id, template, language, to_address, message_id, in_reply_to,
               references_list, context, auto_submitted, status, next_attempt_at, created_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'auto-replied', 'pending', ?, ?)",
        )
        .bind(ticket_id)
        .bind(reply.template)
        .bind(&reply.language)
        .bind(&reply.to)
        .bind(&message_id)
        .bind(&reply.in_reply_to)
        .bind(reply.references.join(" "))
        .bind(context.to_string())
        .bind(ts(now))
        .bind(ts(now))
        .execute(&mut *self.tx)
        .await?;
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

    pub async fn commit(self) -> Result<(), StoreError> {
        self.tx.commit().await?;
        Ok(())
    }
}
