//! The database: tickets, messages, the outbox, quarantine and mailbox state, on SQLite or
//! PostgreSQL.
//!
//! Invariant: the only module that knows SQL. Every inbound message is stored with its effects
//! (ticket, attachments, queued replies) in one transaction; a batch of messages shares one
//! transaction (one fsync). If a batch breaks a constraint, the pipeline stores its messages one
//! per transaction, so one bad message cannot sink the rest.
//!
//! # Map
//!
//! The public surface is this module, flat (`store::{Store, Batch, …}`); the files split it by
//! concern:
//!
//! - here: the [`Store`] handle (open and migrate, [`Store::begin`] a batch, the site secret,
//!   close), [`StoreError`] and the timestamp format.
//! - `write_tx`: the write transaction every multi-statement write runs in, and why it is not
//!   sqlx's.
//! - `batch`: [`Batch`], the ingest transaction: folio numbers, the multi-row inserts and their
//!   row types ([`TicketRow`], [`MessageRow`], [`OutboxRow`], [`EventRow`]), ticket changes,
//!   quarantine.
//! - `lookup`: [`Batch::lookup`], everything the rules need to know about a batch
//!   ([`crate::desk::known::Lookup`] in, [`crate::desk::known::Known`] out: plain data of the
//!   rules, so the plan stays a pure function).
//! - `outbox`: the sender's side: claiming due mail under a lease, releasing it, recording
//!   delivery results, the attachments a mail carries, addresses that bounce.
//! - `due`: work due at a time (`due_items`): written with the status change that makes it
//!   due ([`Batch::record_life`]), read and done by the sweep in one transaction
//!   ([`Batch::due_items`], [`Batch::write_due`]); survey answers and opt-outs.
//! - `runs`: reports sent on a schedule, once per period (`scheduled_runs`), and the open
//!   tickets a technician's digest lists.
//! - `mailbox`: each IMAP folder's state and the analysis attempts of messages (on SQLite in a
//!   file of their own, [`attempts_url`]).
//! - `queries`: read-only queries for the CLI and the sender's notices (counts, ticket lists,
//!   one ticket in full, a ticket by id).
//! - `report`: the rows of `folio report` (tickets opened and survey answers given in a
//!   period), as `desk::report` sums them up.
//! - `statement`: statements over a list of values, in chunks (`IN (?, ?, …)`).
//!
//! - `instances`: running daemons, their heartbeats and leases (the mailbox's holder); the
//!   "holder is alive" condition outbox claims and leases share.
//! - `status`: what `folio status` reads besides the instances.
//! - `transfer`: `folio export` / `folio import` (JSON lines, streaming).
//! - `scratch`: a fresh database for a test or benchmark (SQLite, or PostgreSQL when
//!   `FOLIO_TEST_POSTGRES` is set).
//!
//! # Two engines
//!
//! [`Store::open`] picks the engine by the URL's scheme ([`Backend`]); both run on sqlx's
//! `Any` driver with one SQL text. `migrations/postgres/` mirrors the SQLite schema's types
//! (RFC 3339 text timestamps in byte order, `BIGINT` integers and 0/1 flags), and placeholders
//! are numbered (`$1`), which both engines read. What differs, in the few places that match on
//! [`Backend`]:
//!
//! - opening: SQLite's file is created and migrated with SQLite's own driver (WAL is a file
//!   setting), its connections set `synchronous` per pool; PostgreSQL's `marks` connections set
//!   `synchronous_commit = off`.
//! - `write_tx`: `BEGIN IMMEDIATE`, or `BEGIN` plus one transaction-scoped advisory lock, so
//!   writers are serial on both.
//! - `outbox::claim_due`: `FOR UPDATE SKIP LOCKED` on PostgreSQL, where senders claim at once.
//! - `lookup::recent_by_domain`: `instr` or `strpos`.
//! - expressions read as yes/no (`flag`): an integer on SQLite, a boolean on PostgreSQL.

mod batch;
mod due;
mod health;
mod instances;
mod lookup;
mod mailbox;
mod outbox;
mod queries;
mod report;
mod runs;
mod statement;
mod status;
mod transfer;
mod write_tx;

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;

use chrono::{DateTime, SecondsFormat, Utc};
use sqlx::any::AnyPoolOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};
use sqlx::{AnyPool, Executor};

pub use batch::{Batch, EventRow, MessageRow, OutboxRow, TicketRow};
pub use health::OutboxHealth;
pub use instances::{Beat, InstanceRow, LeaseRow, NewInstance, MAILBOX_LEASE};
pub use outbox::{FileAttachment, NewMail, OutboxMail, SendResult};
pub use queries::{
    Counts, Satisfaction, TicketDetail, TicketEvent, TicketMail, TicketMessage, TicketSummary,
};
pub use status::{MailFailure, OutboxSummary};
pub use transfer::{Moved, TransferError};

use write_tx::WriteTx;

pub mod plan;
pub mod scratch;

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
    #[error(
        "database.url {url:?}: unknown kind of database (expected sqlite://FILE or postgres://…)"
    )]
    UnknownBackend { url: String },
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

/// A yes/no value (`EXISTS …`, `x IS NOT NULL`, a 0/1 flag column): SQLite gives an integer,
/// PostgreSQL a boolean for the expressions.
fn flag(r: &sqlx::any::AnyRow, i: usize) -> bool {
    use sqlx::Row;
    r.try_get::<bool, _>(i)
        .or_else(|_| r.try_get::<i64, _>(i).map(|n| n != 0))
        .unwrap_or(false)
}

fn parse_ts(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// The database engine a store runs on, chosen by `database.url`'s scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// `sqlite://FILE`: one file, one machine (the default).
    Sqlite,
    /// `postgres://…`: a PostgreSQL server, which several instances may share.
    Postgres,
}

impl Backend {
    /// The engine `url` names, if any.
    pub fn of(url: &str) -> Option<Backend> {
        let scheme = url.split_once(':').map(|(s, _)| s.to_ascii_lowercase());
        match scheme.as_deref() {
            Some("sqlite") => Some(Backend::Sqlite),
            Some("postgres" | "postgresql") => Some(Backend::Postgres),
            _ => None,
        }
    }
}

/// More SQL each new connection runs, decided when it opens (tests cap SQLite's size with it).
type OnConnect = Arc<dyn Fn() -> String + Send + Sync>;

/// Handle to the database.
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    /// Where delivery results and analysis attempts are recorded. On SQLite, one connection
    /// with `synchronous = NORMAL`: in WAL mode such a commit survives a process crash (`kill
    /// -9`); only a power loss can undo the last ones, and an undone "sent" mark means the mail
    /// goes out again with the same Message-ID, which a crash at the wrong instant can cause
    /// anyway (SMTP has no idempotency). It never loses a message. Skipping that fsync halves
    /// the sender's cost per mail. On PostgreSQL, connections with `synchronous_commit = off`,
    /// the same trade.
    marks: AnyPool,
    /// Where analysis attempts are recorded (`mailbox`), before each batch's analyses start. On
    /// SQLite, a file of its own beside the database ([`attempts_url`]), with one connection and
    /// `synchronous = NORMAL` like `marks`: a write to the main file waits for the batch being
    /// stored to commit (one writer per file), and the next batch's analyses waited with it
    /// (20-84 ms a batch, a fifth of SQLite's ingest; docs/benchmarks.md §8c). On PostgreSQL
    /// the `marks` pool: rows lock one by one there.
    attempts: AnyPool,
    backend: Backend,
    /// The running instance whose outbox claims this store makes ([`Store::claiming_as`]).
    instance: Option<Arc<str>>,
}

impl Store {
    /// Opens (creating if needed) the database and applies migrations. SQLite runs in WAL mode
    /// with `synchronous = FULL`: a committed ticket survives power loss, which matters because
    /// the IMAP message is moved away right after the commit. PostgreSQL runs with the
    /// server's settings (`synchronous_commit = on` by default: the same guarantee).
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        Store::open_with(url, 4, Arc::new(String::new)).await
    }

    /// [`Store::open`] with `max_connections` and more SQL for new connections to run.
    async fn open_with(
        url: &str,
        max_connections: u32,
        on_connect: OnConnect,
    ) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let backend = Backend::of(url).ok_or_else(|| StoreError::UnknownBackend {
            url: url.to_string(),
        })?;
        let open_err = |source| StoreError::Open {
            url: Store::describe(url),
            source,
        };
        if backend == Backend::Sqlite {
            create_and_migrate_sqlite(url).await?;
        }
        let (settings, marks_settings) = match backend {
            Backend::Sqlite => (
                "PRAGMA synchronous = FULL; PRAGMA busy_timeout = 30000",
                "PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 30000",
            ),
            Backend::Postgres => ("", "SET synchronous_commit = off"),
        };
        let pool = with_settings(
            AnyPoolOptions::new().max_connections(max_connections),
            settings,
            on_connect.clone(),
        )
        .connect(url)
        .await
        .map_err(open_err)?;
        if backend == Backend::Postgres {
            sqlx::migrate!("./migrations/postgres").run(&pool).await?;
        }
        let marks = with_settings(
            AnyPoolOptions::new().max_connections(match backend {
                Backend::Sqlite => 1,
                Backend::Postgres => max_connections,
            }),
            marks_settings,
            on_connect,
        )
        .connect(url)
        .await
        .map_err(open_err)?;
        let attempts = match backend {
            Backend::Sqlite => {
                let url = attempts_url(url);
                create_sqlite_attempts(&url).await?;
                with_settings(
                    AnyPoolOptions::new().max_connections(1),
                    marks_settings,
                    Arc::new(String::new),
                )
                .connect(&url)
                .await
                .map_err(|source| StoreError::Open {
                    url: Store::describe(&url),
                    source,
                })?
            }
            Backend::Postgres => marks.clone(),
        };
        let store = Store {
            pool,
            marks,
            attempts,
            backend,
            instance: None,
        };
        store.fill_cap_keys().await?;
        Ok(store)
    }

    /// The engine this store runs on.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The database, for messages: the file, or the server and database without the password.
    pub fn describe(url: &str) -> String {
        if Backend::of(url) == Some(Backend::Postgres) {
            // Never the password.
            return match sqlx::postgres::PgConnectOptions::from_str(url) {
                Ok(o) => format!(
                    "postgres://{}@{}:{}/{}",
                    o.get_username(),
                    o.get_host(),
                    o.get_port(),
                    o.get_database().unwrap_or_default()
                ),
                Err(_) => "postgres://(unreadable URL)".to_string(),
            };
        }
        Path::new(
            url.trim_start_matches("sqlite://")
                .trim_start_matches("sqlite:"),
        )
        .display()
        .to_string()
    }

    /// Whether the database file `url` names exists already: commands that only read (a
    /// report) refuse to create an empty database and report nothing from it. A server's
    /// database is taken to exist (connecting says otherwise).
    pub fn exists(url: &str) -> bool {
        if Backend::of(url) == Some(Backend::Postgres) {
            return true;
        }
        let file = Store::describe(url);
        let file = file.split('?').next().unwrap_or_default();
        !file.is_empty() && Path::new(file).is_file()
    }

    /// Starts a write transaction (on SQLite `BEGIN IMMEDIATE`: takes the write lock up
    /// front, so read-then-write never fails with "database is locked").
    pub async fn begin(&self) -> Result<Batch, StoreError> {
        Ok(Batch {
            tx: WriteTx::begin(&self.pool, self.backend).await?,
        })
    }

    /// The site secret that keys folio's tokens (created by the migrations).
    pub async fn site_secret(&self) -> Result<Vec<u8>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT secret FROM site_secret WHERE id = 1")
                .fetch_one(&self.pool)
                .await?,
        )
    }

    /// Closes the pools (on SQLite, flushing the WAL).
    pub async fn close(&self) {
        self.attempts.close().await;
        self.marks.close().await;
        self.pool.close().await;
    }
}

#[cfg(test)]
mod test_support;

/// Pool options whose connections run `settings` and then `more` (SQL) when they open.
fn with_settings(
    options: AnyPoolOptions,
    settings: &'static str,
    more: OnConnect,
) -> AnyPoolOptions {
    options.after_connect(move |conn, _| {
        let more = more();
        Box::pin(async move {
            for sql in [settings, more.as_str()] {
                if !sql.is_empty() {
                    conn.execute(sqlx::AssertSqlSafe(sql.to_string())).await?;
                }
            }
            Ok(())
        })
    })
}

/// The database holding `analysis_attempts` for the database `url`: on SQLite the file
/// `<database file>-attempts` beside it (query parameters kept), on PostgreSQL `url` itself.
/// It holds only the analyses running or cut short by a crash; a backup need not include it.
pub fn attempts_url(url: &str) -> String {
    if Backend::of(url) != Some(Backend::Sqlite) {
        return url.to_string();
    }
    match url.split_once('?') {
        Some((file, query)) => format!("{file}-attempts?{query}"),
        None => format!("{url}-attempts"),
    }
}

/// Creates SQLite's attempts file ([`attempts_url`]) in WAL mode with its one table, if missing.
/// Not a migration: the file holds only transient rows, and a lost file loses only the count of
/// analyses a crash cut short.
async fn create_sqlite_attempts(url: &str) -> Result<(), StoreError> {
    let pool = create_sqlite_file(url).await?;
    // The same columns as PostgreSQL's table (migrations/postgres/0001_initial.sql).
    let created = pool
        .execute(
            "CREATE TABLE IF NOT EXISTS analysis_attempts (
                 source      TEXT PRIMARY KEY,
                 attempts    INTEGER NOT NULL,
                 first_at    TEXT NOT NULL,
                 last_at     TEXT NOT NULL
             )",
        )
        .await;
    pool.close().await;
    created.map_err(|source| StoreError::Open {
        url: url.to_string(),
        source,
    })?;
    Ok(())
}

/// Creates the SQLite file (and its folder) if missing, switches it to WAL (a setting kept in
/// the file) and applies the migrations, with SQLite's own driver: its options can create the
/// file, which the `Any` driver's URL cannot ask for.
async fn create_and_migrate_sqlite(url: &str) -> Result<(), StoreError> {
    let pool = create_sqlite_file(url).await?;
    let migrated = sqlx::migrate!("./migrations/sqlite").run(&pool).await;
    pool.close().await;
    Ok(migrated?)
}

/// One connection to the SQLite file `url`, created (with its folder) if missing and switched to
/// WAL, for the set-up the `Any` pools cannot do.
async fn create_sqlite_file(url: &str) -> Result<sqlx::SqlitePool, StoreError> {
    let open_err = |source| StoreError::Open {
        url: url.to_string(),
        source,
    };
    let options = SqliteConnectOptions::from_str(url)
        .map_err(open_err)?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .foreign_keys(true)
        .busy_timeout(std::time::Duration::from_secs(30));
    if let Some(dir) = options.get_filename().parent() {
        if !dir.as_os_str().is_empty() && !dir.exists() {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::CreateDir {
                url: url.to_string(),
                dir: dir.display().to_string(),
                source,
            })?;
        }
    }
    SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await
        .map_err(open_err)
}
