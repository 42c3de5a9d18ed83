//! The mailbox worker: reads the watched folder through the IMAP adapter
//! ([`crate::inbound::imap`]), feeds the pipeline a batch at a time and files each message
//! away by its outcome; reconnects with backoff on any failure.
//!
//! A message is moved to the processed (or quarantine) folder only after the transaction that
//! stored it committed; a crash in between leaves it in the folder, and the retry finds it
//! already stored (by Message-ID or content hash) and only files it away.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::clock::Clock;
use crate::config::{DuringBacklog, FirstStart, ImapConfig};
use crate::daemon::health::Health;
use crate::daemon::instance::ALIVE_FOR;
use crate::daemon::pipeline::{Disposition, Outcome, Pipeline, RawMessage, Started};
use crate::daemon::telemetry::Telemetry;
use crate::heartbeat::Heartbeat;
use crate::inbound::imap::{batches, Connection, ImapError, Sized, BATCH_BYTES};
use crate::oauth::TokenSource;
use crate::outbound::sender::CATCH_UP_LEASE;
use crate::shutdown::Shutdown;
use crate::store::{Store, StoreError};

/// A failure of the mailbox worker; all lead to a reconnect with backoff.
#[derive(Debug, thiserror::Error)]
pub enum MailboxError {
    #[error(transparent)]
    Imap(#[from] ImapError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The mailbox worker: owns one IMAP connection and feeds the pipeline.
pub struct Mailbox {
    cfg: ImapConfig,
    pipeline: Arc<Pipeline>,
    /// Where the folder's UIDVALIDITY and first UID are kept.
    store: Store,
    clock: Arc<dyn Clock>,
    /// `folio run --import-existing`: process mail that predates the first start.
    import_existing: bool,
    /// What `/healthz` and the stall alarm know of this worker.
    health: Arc<Health>,
    /// `/metrics`: messages filed away by verdict, quarantined, tickets opened, reconnects.
    telemetry: Arc<Telemetry>,
    /// `imap.auth = "oauth2"`: where the login's access token comes from.
    oauth: Option<Arc<TokenSource>>,
    /// `smtp.during_backlog`: whether a catch-up holds every instance's senders back.
    during_backlog: DuringBacklog,
    /// Told before every step by when the worker will be back (see [`crate::heartbeat`]);
    /// ready once the first login has selected the folder.
    heartbeat: Heartbeat,
}

/// Where a pass over the watched folder is.
struct Reading<'u> {
    /// The UIDs not looked at yet, in groups of `imap.batch_size`.
    groups: std::slice::Chunks<'u, u32>,
    /// Batches of the current group not fetched yet (split by [`BATCH_BYTES`]).
    chunks: VecDeque<Vec<u32>>,
    /// The next UID to look at once the pass ends.
    next: u32,
}

/// A batch fetched, its analyses started.
struct Fetched {
    uids: Vec<u32>,
    raws: Vec<RawMessage>,
    started: Started,
}

/// A stored batch's messages and where each goes.
type Filed = Vec<(u32, Outcome)>;

/// The watched folder as selected: its UIDVALIDITY and the next UID to look at.
struct Position {
    uidvalidity: u32,
    next_uid: u32,
}

impl Mailbox {
    /// A worker for the folder `cfg` names.
    pub fn new(
        cfg: ImapConfig,
        pipeline: Arc<Pipeline>,
        store: Store,
        clock: Arc<dyn Clock>,
        import_existing: bool,
    ) -> Mailbox {
        Mailbox {
            cfg,
            pipeline,
            store,
            clock,
            import_existing,
            health: Health::new(Telemetry::off()),
            telemetry: Telemetry::off(),
            oauth: None,
            during_backlog: DuringBacklog::Wait,
            heartbeat: Heartbeat::new("mailbox worker"),
        }
    }

    /// The same worker letting senders run beside a catch-up, or not (`smtp.during_backlog`;
    /// without this call they wait).
    pub fn during_backlog(mut self, during: DuringBacklog) -> Mailbox {
        self.during_backlog = during;
        self
    }

    /// The same worker telling `health` what it sees and counting into `telemetry`.
    pub fn observed(mut self, health: Arc<Health>, telemetry: Arc<Telemetry>) -> Mailbox {
        self.health = health;
        self.telemetry = telemetry;
        self
    }

    /// Logs in with tokens from `source` (`imap.auth = "oauth2"`).
    pub fn with_token_source(mut self, source: Arc<TokenSource>) -> Mailbox {
        self.oauth = Some(source);
        self
    }

    /// The worker's heartbeat, for the watchdog.
    pub fn heartbeat(&self) -> &Heartbeat {
        &self.heartbeat
    }

    /// The longest one step of the worker takes between two beats: a handful of IMAP commands
    /// (connecting and logging in, or fetching, storing and filing one batch away), each bounded
    /// by `imap.command_timeout`, plus a minute for the database and parsing.
    fn step_limit(&self) -> Duration {
        self.cfg.command_timeout * 8 + Duration::from_secs(60)
    }

    /// The longest a wait for mail takes: IDLE until `imap.idle_renew` (or a poll interval),
    /// with its IDLE and DONE commands.
    fn wait_limit(&self) -> Duration {
        self.cfg.idle_renew.max(self.cfg.poll_interval)
            + self.cfg.command_timeout * 2
            + Duration::from_secs(60)
    }

    /// Runs until shutdown, reconnecting with backoff (1 s doubling to 60 s) on any failure.
    pub async fn run(&self, mut shutdown: Shutdown) {
        let mut backoff = Duration::from_secs(1);
        loop {
            self.heartbeat.within(self.step_limit());
            match self.session(&shutdown, &mut backoff).await {
                Ok(()) => {
                    self.heartbeat.idle();
                    return;
                }
                Err(e) => {
                    tracing::error!(error = %e, retry_in = ?backoff, "mailbox connection failed");
                    self.health.disconnected(&e.to_string());
                    self.telemetry.imap_reconnects.increment(1);
                }
            }
            self.heartbeat.within(backoff + Duration::from_secs(60));
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = shutdown.wait() => return,
            }
            backoff = (backoff * 2).min(Duration::from_secs(60));
        }
    }

    /// One connection: sync, file away what slow analyses finished, wait for mail; again until
    /// shutdown.
    async fn session(
        &self,
        shutdown: &Shutdown,
        backoff: &mut Duration,
    ) -> Result<(), MailboxError> {
        let (mut conn, mut at) = self.open().await?;
        self.health.connected();
        self.heartbeat.ready();
        let mut seen_at = self.clock.now();
        loop {
            self.heartbeat.within(self.step_limit());
            let before = at.next_uid;
            at.next_uid = self.sync(&mut conn, &at, seen_at, shutdown).await?;
            self.heartbeat.within(self.step_limit());
            self.file_slow(&mut conn, at.uidvalidity).await?;
            self.health.fetched(self.clock.now());
            // The connection works end to end: the next failure starts the backoff afresh. (Not
            // before: a batch that fails every time must not be retried every second.)
            *backoff = Duration::from_secs(1);
            if shutdown.is_triggered() {
                conn.logout().await;
                return Ok(());
            }
            // A pass that found mail is followed by another: mail that arrived during it may
            // have announced itself only in responses the channel had no room for.
            if conn.new_mail_announced() || at.next_uid != before {
                seen_at = self.clock.now();
                continue;
            }
            let mut sd = shutdown.clone();
            self.heartbeat.within(self.wait_limit());
            let (waited, interrupt) = conn
                .wait(async {
                    tokio::select! {
                        // A slow analysis ended: its message is stored and filed away by the
                        // next pass.
                        _ = self.pipeline.slow_done() => Stop::No,
                        _ = sd.wait() => Stop::Yes,
                    }
                })
                .await?;
            conn = waited;
            // Waiting in IDLE, shutdown ends the session at once; after a poll interval cut
            // short, the next pass notices it and stops between batches.
            if interrupt == Some(Stop::Yes) && conn.idles() {
                conn.logout().await;
                return Ok(());
            }
            seen_at = self.clock.now();
        }
    }

    /// Connects, makes sure the folders exist, selects the watched folder and finds where to
    /// start.
    async fn open(&self) -> Result<(Connection, Position), MailboxError> {
        let cfg = &self.cfg;
        let mut conn = Connection::open(cfg, self.oauth.as_deref()).await?;
        for folder in [&cfg.processed_folder, &cfg.quarantine_folder] {
            conn.ensure_folder(folder).await?;
        }
        let selected = conn.select(&cfg.folder).await?;
        let uidvalidity = selected.uid_validity;
        let next_uid = self
            .baseline(&mut conn, uidvalidity, selected.uid_next)
            .await?;
        tracing::info!(
            folder = %cfg.folder, uidvalidity, from_uid = next_uid, idle = conn.idles(),
            "mailbox ready"
        );
        Ok((
            conn,
            Position {
                uidvalidity,
                next_uid,
            },
        ))
    }

    /// The first UID folio is responsible for, recording it on first contact.
    async fn baseline(
        &self,
        conn: &mut Connection,
        uidvalidity: u32,
        uid_next: Option<u32>,
    ) -> Result<u32, MailboxError> {
        let store = &self.store;
        let folder = &self.cfg.folder;
        let batch_size = self.cfg.batch_size as usize;
        let import = self.import_existing || self.cfg.first_start == FirstStart::ImportExisting;
        let now = self.clock.now();
        Ok(match store.mailbox_state(folder).await? {
            Some((v, b, _)) if v == uidvalidity => {
                if import {
                    1
                } else {
                    b
                }
            }
            Some((v, _, first_start)) => {
                // A new UIDVALIDITY invalidates every UID we knew. What is still in the folder is
                // looked at again (Message-ID / content-hash dedup keeps it to one ticket each),
                // except mail older than the first start, which that start left alone.
                let b = match first_start.filter(|_| !import) {
                    Some(since) => conn.first_uid_since(since, batch_size).await?,
                    None => 1,
                };
                tracing::warn!(folder = %folder, old = v, new = uidvalidity, from_uid = b, "UIDVALIDITY changed; rescanning the folder");
                store.set_mailbox_state(folder, uidvalidity, b, now).await?;
                b
            }
            None => {
                let b = if import {
                    1
                } else {
                    match uid_next {
                        Some(n) => n,
                        // No UIDNEXT from the server: one past the highest UID there is.
                        None => conn.first_uid_since(now, batch_size).await?,
                    }
                };
                if b > 1 {
                    tracing::info!(
                        folder = %folder, left_alone_below_uid = b,
                        "first start: mail already in the folder is left alone (use --import-existing to process it)"
                    );
                }
                store.set_mailbox_state(folder, uidvalidity, b, now).await?;
                b
            }
        })
    }

    /// Processes every message with UID ≥ `at.next_uid`, a batch at a time; returns the next
    /// UID to look at. Stops between batches when shutdown is triggered.
    async fn sync(
        &self,
        conn: &mut Connection,
        at: &Position,
        seen_at: DateTime<Utc>,
        shutdown: &Shutdown,
    ) -> Result<u32, MailboxError> {
        let batch_size = self.cfg.batch_size as usize;
        // The UIDs waiting, then per group of batch_size their sizes, so a batch never holds
        // more than BATCH_BYTES of mail in memory. (One FETCH of every size at once costs
        // ~6 KB of parser buffers per message.)
        let uids = conn.uids_from(at.next_uid).await?;
        if let Some(first) = uids.first() {
            // Mail waits until this pass files it away; a pass that fails leaves it waiting
            // (what the stall alarm watches).
            let waiting = u32::try_from(uids.len()).unwrap_or(u32::MAX);
            let first = self.source(at.uidvalidity, *first);
            self.health.waiting(waiting, &first, self.clock.now());
        }
        // Catching up on a backlog with `smtp.during_backlog` = wait: ingest goes first, the
        // sender waits (see Pipeline::catching_up), and so do other instances' (the catch-up
        // lease, renewed by the heartbeat while the catch-up lasts, let go of at its end, else
        // running out).
        let catching_up = holds_senders_back(uids.len(), batch_size, self.during_backlog)
            .then(|| self.pipeline.catching_up());
        if catching_up.is_some() {
            let now = self.clock.now();
            let until = now + chrono::Duration::from_std(ALIVE_FOR).unwrap_or_default();
            if let Err(e) = self.store.take_lease(CATCH_UP_LEASE, now, until).await {
                tracing::warn!(error = %e, "could not take the catch-up lease: other instances may send meanwhile");
            }
        }
        let mut reading = Reading {
            groups: uids.chunks(batch_size),
            chunks: VecDeque::new(),
            next: at.next_uid,
        };
        // Two batches in flight: while one is stored (the database's work), the connection
        // files the one before away and fetches the one after, whose analyses start at once.
        // Each message is still moved only after the commit that stored it.
        let mut stored: Option<Filed> = None;
        let mut current = self
            .read_next(conn, at, &mut reading, seen_at, shutdown)
            .await?;
        while let Some(Fetched {
            uids,
            raws,
            started,
        }) = current.take()
        {
            self.heartbeat.within(self.step_limit());
            let storing = self.pipeline.finish(&raws, started);
            let filing_and_reading = async {
                if let Some(filed) = stored.take() {
                    self.file_away(conn, filed.into_iter()).await?;
                }
                self.read_next(conn, at, &mut reading, seen_at, shutdown)
                    .await
            };
            let (outcomes, following) = tokio::join!(storing, filing_and_reading);
            let outcomes = match outcomes {
                Ok(outcomes) => outcomes,
                Err(e) => {
                    if let Ok(Some(f)) = following {
                        self.pipeline.abandon(&f.raws, f.started).await;
                    }
                    return Err(e.into());
                }
            };
            drop(raws);
            // Stored but not filed away if the connection failed: the retry finds them stored.
            current = following?;
            if let Some(last) = uids.last() {
                reading.next = reading.next.max(last + 1);
            }
            stored = Some(uids.into_iter().zip(outcomes).collect());
        }
        if let Some(filed) = stored {
            self.file_away(conn, filed.into_iter()).await?;
        }
        if let Some(guard) = catching_up {
            drop(guard);
            if let Err(e) = self.store.let_go(CATCH_UP_LEASE).await {
                tracing::warn!(error = %e, "could not let go of the catch-up lease; it runs out by itself within 10 s");
            }
        }
        Ok(reading.next)
    }

    /// Fetches the next batch of the pass and starts its analyses; `None` at the end of the
    /// pass (or on shutdown, checked between groups of `imap.batch_size` messages).
    async fn read_next(
        &self,
        conn: &mut Connection,
        at: &Position,
        reading: &mut Reading<'_>,
        seen_at: DateTime<Utc>,
        shutdown: &Shutdown,
    ) -> Result<Option<Fetched>, MailboxError> {
        loop {
            if let Some(chunk) = reading.chunks.pop_front() {
                let (uids, raws): (Vec<u32>, Vec<RawMessage>) = conn
                    .bodies(&chunk)
                    .await?
                    .into_iter()
                    .map(|(uid, bytes)| {
                        let source = self.source(at.uidvalidity, uid);
                        (
                            uid,
                            RawMessage {
                                source,
                                bytes,
                                seen_at,
                            },
                        )
                    })
                    .unzip();
                let started = self.pipeline.start(&raws).await?;
                return Ok(Some(Fetched {
                    uids,
                    raws,
                    started,
                }));
            }
            if shutdown.is_triggered() {
                return Ok(None);
            }
            let Some(group) = reading.groups.next() else {
                return Ok(None);
            };
            self.heartbeat.within(self.step_limit());
            // Too big to process: quarantined from its size alone, without downloading it.
            let max = self.pipeline.max_message_bytes();
            let (sizes, oversize): (Vec<Sized>, Vec<Sized>) = conn
                .sizes(group)
                .await?
                .into_iter()
                .partition(|(_, size)| *size <= max);
            if let Some(last) = self.quarantine_oversize(conn, at, &oversize).await? {
                reading.next = reading.next.max(last + 1);
            }
            reading
                .chunks
                .extend(batches(&sizes, self.cfg.batch_size as usize, BATCH_BYTES));
        }
    }

    /// Quarantines messages too big to process, unread; returns the highest UID of them.
    async fn quarantine_oversize(
        &self,
        conn: &mut Connection,
        at: &Position,
        oversize: &[Sized],
    ) -> Result<Option<u32>, MailboxError> {
        if oversize.is_empty() {
            return Ok(None);
        }
        let max = self.pipeline.max_message_bytes();
        let sources: Vec<(String, String)> = oversize
            .iter()
            .map(|(uid, size)| {
                (
                    self.source(at.uidvalidity, *uid),
                    format!("message of {size} bytes exceeds limits.max_message_bytes ({max}); left in the quarantine folder unread"),
                )
            })
            .collect();
        self.pipeline.quarantine_unread(&sources).await?;
        let uids: Vec<u32> = oversize.iter().map(|(uid, _)| *uid).collect();
        conn.move_to(&uids, &self.cfg.quarantine_folder).await?;
        self.telemetry.quarantined.increment(uids.len() as u64);
        self.health.filed(self.clock.now());
        Ok(uids.iter().max().copied())
    }

    /// Stores the messages whose slow analysis has ended and files them away. Their UIDs are
    /// below the next UID to look at, so the next pass does not see them again.
    async fn file_slow(&self, conn: &mut Connection, uidvalidity: u32) -> Result<(), MailboxError> {
        let ended = self.pipeline.finish_slow().await?;
        let prefix = self.source_prefix(uidvalidity);
        // A message read under an earlier UIDVALIDITY is found again under the new one and
        // recognised as stored.
        let ours = ended.into_iter().filter_map(|(source, o)| {
            let uid = source.strip_prefix(&prefix)?.parse::<u32>().ok()?;
            Some((uid, o))
        });
        self.file_away(conn, ours).await
    }

    /// Moves each message to the folder its outcome calls for (in UID order); a deferred one
    /// stays where it is until its analysis ends ([`Mailbox::file_slow`]).
    async fn file_away(
        &self,
        conn: &mut Connection,
        outcomes: impl Iterator<Item = (u32, Outcome)>,
    ) -> Result<(), MailboxError> {
        let (mut processed, mut quarantined) = (Vec::new(), Vec::new());
        let mut filed = Vec::new();
        for (uid, o) in outcomes {
            match o.disposition {
                Disposition::Processed => processed.push(uid),
                Disposition::Quarantined(_) => quarantined.push(uid),
                Disposition::Deferred => continue,
            }
            filed.push(o);
        }
        processed.sort_unstable();
        quarantined.sort_unstable();
        conn.move_to(&processed, &self.cfg.processed_folder).await?;
        conn.move_to(&quarantined, &self.cfg.quarantine_folder)
            .await?;
        // Counted once filed away: a message stored but not moved (the move failed) is found
        // again as a duplicate and counted when it leaves the folder (its ticket, opened by
        // the first try, is then not counted as opened).
        for o in &filed {
            match o.disposition {
                Disposition::Quarantined(_) => self.telemetry.quarantined.increment(1),
                _ => self.telemetry.processed(o.verdict_kind),
            }
            if o.opened {
                self.telemetry.tickets_opened.increment(1);
            }
        }
        if !filed.is_empty() {
            self.health.filed(self.clock.now());
        }
        Ok(())
    }

    /// The pipeline's name for a message of the watched folder.
    fn source(&self, uidvalidity: u32, uid: u32) -> String {
        format!("{}{uid}", self.source_prefix(uidvalidity))
    }

    /// What the names of the watched folder's messages under `uidvalidity` start with.
    fn source_prefix(&self, uidvalidity: u32) -> String {
        format!("imap:{}:{uidvalidity}:", self.cfg.folder)
    }
}

/// Why a wait for mail was cut short.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    /// Shutdown.
    Yes,
    /// A slow analysis ended.
    No,
}

/// Whether a pass that found `waiting` messages holds every instance's senders back until it
/// ends: a backlog (more than one batch) while `smtp.during_backlog` resolved to wait.
fn holds_senders_back(waiting: usize, batch_size: usize, during: DuringBacklog) -> bool {
    during == DuringBacklog::Wait && waiting > batch_size
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_backlog_holds_senders_back_and_only_when_told_to_wait() {
        use DuringBacklog::{Send, Wait};
        assert!(!holds_senders_back(0, 500, Wait));
        assert!(
            !holds_senders_back(500, 500, Wait),
            "one batch is no backlog"
        );
        assert!(holds_senders_back(501, 500, Wait));
        assert!(holds_senders_back(10_000, 500, Wait));
        assert!(!holds_senders_back(10_000, 500, Send));
        assert!(!holds_senders_back(501, 500, Send));
    }
}
