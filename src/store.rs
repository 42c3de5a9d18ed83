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
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{QueryBuilder, Row, Sqlite, SqlitePool, Transaction};

use crate::decide::{NewTicket, Reply, TicketRef};
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
    /// One connection with `synchronous = NORMAL`, used only to record delivery results. In WAL
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
            .connect_with(options.clone())
            .await
            .map_err(open_err)?;
        sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
        let marks = SqlitePoolOptions::new()
            .max_connections(1)
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
        let tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        Ok(Batch { tx })
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
        let rows = sqlx::query(
            "UPDATE outbox SET lease_until = ?
             WHERE id IN (SELECT id FROM outbox WHERE status = 'pending' AND next_attempt_at <= ?
                          AND (lease_until IS NULL OR lease_until <= ?)
                          -- the order of the outbox_due index (status, next_attempt_at, rowid):
                          -- LIMIT stops early instead of sorting every pending row
                          ORDER BY next_attempt_at, id LIMIT ?)
             RETURNING id, template, language, to_address, message_id, in_reply_to, references_list,
                       context, auto_submitted, attempts, created_at",
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
            })
            .collect();
        mails.sort_by_key(|m| m.id);
        Ok(mails)
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

    /// Records delivery results: the accepted ones with one statement, failures one by one.
    pub async fn record_results(
        &self,
        results: &[(i64, SendResult)],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        // The common case, every mail accepted, is one statement (its own transaction).
        let sent: Vec<i64> = results
            .iter()
            .filter(|(_, r)| matches!(r, SendResult::Sent))
            .map(|(id, _)| *id)
            .collect();
        let mut conn = self.marks.acquire().await?;
        for chunk in sent.chunks(ROWS_PER_STATEMENT) {
            let sql = format!(
                "UPDATE outbox SET status = 'sent', attempts = attempts + 1, sent_at = ?, last_error = NULL
                 WHERE id IN ({})",
                in_list(chunk.len())
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql))
                .persistent(false)
                .bind(ts(now));
            for id in chunk {
                query = query.bind(id);
            }
            query.execute(&mut *conn).await?;
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
                    .execute(&mut *conn)
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
                    .execute(&mut *conn)
                    .await?;
                }
            }
        }
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
    tx: Transaction<'static, Sqlite>,
}

/// What a batch needs looked up.
#[derive(Debug, Default)]
pub struct Lookup<'a> {
    pub dedup_keys: Vec<&'a str>,
    /// Message-IDs the messages answer (In-Reply-To and References).
    pub parent_ids: Vec<&'a str>,
    /// Folios mentioned in subjects and bodies.
    pub folios: Vec<&'a str>,
    /// Reply addresses, for the per-address cap.
    pub addresses: Vec<&'a str>,
    /// Start of the cap's window.
    pub since: DateTime<Utc>,
}

/// What the database knows about a batch.
#[derive(Debug, Default)]
pub struct Known {
    pub dedup_keys: HashSet<String>,
    /// Our outgoing Message-ID → its ticket.
    pub thread_tickets: HashMap<String, TicketRef>,
    /// Folio → ticket.
    pub tickets: HashMap<String, TicketRef>,
    /// Address → mails queued to it within the window.
    pub recent_mails: HashMap<String, u32>,
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
    pub automatic_kind: Option<&'static str>,
    pub verdict_reason: &'a str,
    pub decision_reason: &'static str,
    pub seen_at: DateTime<Utc>,
}

/// A mail to queue.
pub struct OutboxRow<'a> {
    pub ticket_id: Option<i64>,
    pub reply: &'a Reply,
    pub message_id: String,
    /// The reply's context with `folio` filled in.
    pub context: String,
}

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

impl Batch {
    /// Looks up, in a few queries, everything `decide` needs for a batch.
    pub async fn lookup(&mut self, q: &Lookup<'_>) -> Result<Known, StoreError> {
        let mut known = Known::default();
        for keys in q.dedup_keys.chunks(ROWS_PER_STATEMENT) {
            let sql = format!(
                "SELECT dedup_key FROM messages WHERE dedup_key IN ({})",
                in_list(keys.len())
            );
            let mut query =
                sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(sql)).persistent(false);
            for k in keys {
                query = query.bind(*k);
            }
            known
                .dedup_keys
                .extend(query.fetch_all(&mut *self.tx).await?);
        }
        for ids in q.parent_ids.chunks(ROWS_PER_STATEMENT) {
            let sql = format!(
                "SELECT o.message_id, t.id, t.folio, t.requester_email FROM outbox o
                 JOIN tickets t ON t.id = o.ticket_id WHERE o.message_id IN ({})",
                in_list(ids.len())
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).persistent(false);
            for id in ids {
                query = query.bind(*id);
            }
            for r in query.fetch_all(&mut *self.tx).await? {
                known.thread_tickets.insert(
                    r.get(0),
                    TicketRef {
                        id: r.get(1),
                        folio: r.get(2),
                        requester_email: r.get(3),
                    },
                );
            }
        }
        for folios in q.folios.chunks(ROWS_PER_STATEMENT) {
            let sql = format!(
                "SELECT id, folio, requester_email FROM tickets WHERE folio IN ({})",
                in_list(folios.len())
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).persistent(false);
            for f in folios {
                query = query.bind(*f);
            }
            for r in query.fetch_all(&mut *self.tx).await? {
                known.tickets.insert(
                    r.get(1),
                    TicketRef {
                        id: r.get(0),
                        folio: r.get(1),
                        requester_email: r.get(2),
                    },
                );
            }
        }
        let since = ts(q.since);
        for addrs in q.addresses.chunks(ROWS_PER_STATEMENT) {
            let sql = format!(
                "SELECT to_address, count(*) FROM outbox WHERE created_at >= ? AND to_address IN ({})
                 GROUP BY to_address",
                in_list(addrs.len())
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql))
                .persistent(false)
                .bind(&since);
            for a in addrs {
                query = query.bind(*a);
            }
            for r in query.fetch_all(&mut *self.tx).await? {
                known
                    .recent_mails
                    .insert(r.get(0), r.get::<i64, _>(1) as u32);
            }
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
                   requester_department, requester_phone, language, referenced_folio, created_at, updated_at) ",
            );
            b.push_values(chunk, |mut v, r| {
                let t = r.ticket;
                v.push_bind(r.folio.clone())
                    .push_bind("open")
                    .push_bind("email")
                    .push_bind(t.subject.clone())
                    .push_bind(t.requester.email.clone())
                    .push_bind(t.requester.name.clone())
                    .push_bind(t.requester.department.clone())
                    .push_bind(t.requester.phone.clone())
                    .push_bind(t.language.clone())
                    .push_bind(t.referenced_folio.clone())
                    .push_bind(now.clone())
                    .push_bind(now.clone());
            });
            b.push(" RETURNING folio, id");
            for r in b.build().persistent(false).fetch_all(&mut *self.tx).await? {
                ids.insert(r.get(0), r.get(1));
            }
        }
        Ok(ids)
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
        for chunk in rows.chunks(ROWS_PER_STATEMENT / 5) {
            let mut b = QueryBuilder::<Sqlite>::new(
                "INSERT INTO messages (dedup_key, ticket_id, message_id, source, from_email, from_name, subject,
                   body_text, sent_date, automatic_kind, verdict_reason, decision_reason, raw, seen_at, stored_at) ",
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
                    .push_bind(now.clone());
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
        rows: &[(i64, &crate::mail::Attachment)],
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
                   references_list, context, auto_submitted, status, next_attempt_at, created_at) ",
            );
            b.push_values(chunk, |mut v, r| {
                v.push_bind(r.ticket_id)
                    .push_bind(r.reply.template)
                    .push_bind(r.reply.language.clone())
                    .push_bind(r.reply.to.clone())
                    .push_bind(r.message_id.clone())
                    .push_bind(r.reply.in_reply_to.clone())
                    .push_bind(r.reply.references.join(" "))
                    .push_bind(r.context.clone())
                    .push_bind("auto-replied")
                    .push_bind("pending")
                    .push_bind(now.clone())
                    .push_bind(now.clone());
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

    pub async fn commit(self) -> Result<(), StoreError> {
        self.tx.commit().await?;
        Ok(())
    }
}
