//! The mailbox: IMAP connection, the fetch → process → file-away loop, IDLE and polling.
//!
//! Invariant: the only module that knows IMAP. Messages are tracked by UIDVALIDITY + UID, never
//! sequence numbers. A message is moved to the processed (or quarantine) folder only after the
//! transaction that stored it committed; a crash in between leaves it in the folder, and the
//! retry finds it already stored (by Message-ID or content hash) and only files it away.

use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

use async_imap::extensions::idle::IdleResponse;
use async_imap::types::UnsolicitedResponse;
use futures::TryStreamExt;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use crate::config::{FirstStart, ImapConfig, TlsMode};
use crate::daemon::pipeline::{Disposition, Pipeline, RawMessage};
use crate::daemon::shutdown::Shutdown;
use crate::store::StoreError;

/// Any byte stream an IMAP session can run over (plain TCP or TLS).
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send + Debug {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + Debug> Io for T {}

/// A logged-in IMAP session.
pub type Session = async_imap::Session<Box<dyn Io>>;

/// A mailbox failure; all lead to a reconnect with backoff.
#[derive(Debug, thiserror::Error)]
pub enum ImapError {
    #[error("imap {host}:{port}: cannot connect: {source}")]
    Connect {
        host: String,
        port: u16,
        source: std::io::Error,
    },
    #[error("imap: {0}")]
    Tls(#[from] crate::tls::TlsError),
    #[error("imap: login as {user:?} refused: {message}")]
    Login { user: String, message: String },
    #[error("imap: {0}")]
    Protocol(#[from] async_imap::error::Error),
    #[error("imap: no answer to {0} within imap.command_timeout")]
    Timeout(&'static str),
    #[error("imap: folder {0:?} has no UIDVALIDITY")]
    NoUidValidity(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

async fn within<T, E: Into<ImapError>>(
    limit: Duration,
    what: &'static str,
    fut: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, ImapError> {
    match tokio::time::timeout(limit, fut).await {
        Ok(r) => r.map_err(Into::into),
        Err(_) => Err(ImapError::Timeout(what)),
    }
}

async fn tls_wrap(cfg: &ImapConfig, tcp: TcpStream) -> Result<Box<dyn Io>, ImapError> {
    let connector = crate::tls::connector(cfg.ca_file.as_deref(), "imap.ca_file")?;
    let stream = within(cfg.command_timeout, "TLS handshake", async {
        crate::tls::handshake(&connector, &cfg.host, tcp).await
    })
    .await?;
    Ok(Box::new(stream))
}

/// Connects, secures the connection as configured (certificates always verified) and logs in.
pub async fn connect(cfg: &ImapConfig) -> Result<Session, ImapError> {
    let t = cfg.command_timeout;
    let tcp = within(t, "connect", async {
        TcpStream::connect((cfg.host.as_str(), cfg.port))
            .await
            .map_err(|source| ImapError::Connect {
                host: cfg.host.clone(),
                port: cfg.port,
                source,
            })
    })
    .await?;
    let _ = tcp.set_nodelay(true);
    let mut client = match cfg.tls {
        TlsMode::Implicit => async_imap::Client::new(tls_wrap(cfg, tcp).await?),
        TlsMode::None => async_imap::Client::new(Box::new(tcp) as Box<dyn Io>),
        TlsMode::StartTls => {
            let mut plain = async_imap::Client::new(tcp);
            within(t, "greeting", async {
                plain
                    .read_response()
                    .await
                    .map_err(async_imap::error::Error::Io)
            })
            .await?;
            within(
                t,
                "STARTTLS",
                plain.run_command_and_check_ok("STARTTLS", None),
            )
            .await?;
            // No second greeting after STARTTLS (RFC 3501 6.2.1).
            let client = async_imap::Client::new(tls_wrap(cfg, plain.into_inner()).await?);
            return login(cfg, client).await;
        }
    };
    within(t, "greeting", async {
        client
            .read_response()
            .await
            .map_err(async_imap::error::Error::Io)
    })
    .await?;
    login(cfg, client).await
}

async fn login(
    cfg: &ImapConfig,
    client: async_imap::Client<Box<dyn Io>>,
) -> Result<Session, ImapError> {
    match tokio::time::timeout(
        cfg.command_timeout,
        client.login(&cfg.username, &cfg.password.0),
    )
    .await
    {
        Ok(Ok(session)) => Ok(session),
        Ok(Err((e, _))) => Err(ImapError::Login {
            user: cfg.username.clone(),
            message: e.to_string(),
        }),
        Err(_) => Err(ImapError::Timeout("LOGIN")),
    }
}

/// A message's UID and size in bytes.
type Sized = (u32, u64);

/// Most bytes of mail one batch holds in memory (a single larger message still forms a batch).
const BATCH_BYTES: u64 = 32 * 1024 * 1024;

/// Splits `(uid, size)` pairs into batches of at most `max_count` messages and `max_bytes` bytes.
fn batches(found: &[(u32, u64)], max_count: usize, max_bytes: u64) -> Vec<Vec<u32>> {
    let mut out: Vec<Vec<u32>> = Vec::new();
    let mut bytes = 0;
    for &(uid, size) in found {
        match out.last_mut() {
            Some(b) if b.len() < max_count && bytes + size <= max_bytes => {
                b.push(uid);
                bytes += size;
            }
            _ => {
                out.push(vec![uid]);
                bytes = size;
            }
        }
    }
    out
}

/// `1:3,5,7:9` for a sorted list of UIDs.
pub fn uid_set(uids: &[u32]) -> String {
    let mut out = String::new();
    let mut i = 0;
    while i < uids.len() {
        let start = uids[i];
        let mut end = start;
        while i + 1 < uids.len() && uids[i + 1] == end + 1 {
            i += 1;
            end = uids[i];
        }
        if !out.is_empty() {
            out.push(',');
        }
        if start == end {
            out.push_str(&start.to_string());
        } else {
            out.push_str(&format!("{start}:{end}"));
        }
        i += 1;
    }
    out
}

/// The mailbox worker: owns one IMAP connection and feeds the pipeline.
pub struct Mailbox {
    pub cfg: ImapConfig,
    pub pipeline: Arc<Pipeline>,
    /// `folio run --import-existing`: process mail that predates the first start.
    pub import_existing: bool,
}

struct Capabilities {
    idle: bool,
    r#move: bool,
    uidplus: bool,
}

impl Mailbox {
    /// Runs until shutdown, reconnecting with backoff (1 s doubling to 60 s) on any failure.
    pub async fn run(&self, mut shutdown: Shutdown) {
        let mut backoff = Duration::from_secs(1);
        loop {
            match self.session(&shutdown, &mut backoff).await {
                Ok(()) => return,
                Err(e) => {
                    tracing::error!(error = %e, retry_in = ?backoff, "mailbox connection failed");
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = shutdown.wait() => return,
            }
            backoff = (backoff * 2).min(Duration::from_secs(60));
        }
    }

    async fn session(&self, shutdown: &Shutdown, backoff: &mut Duration) -> Result<(), ImapError> {
        let cfg = &self.cfg;
        let t = cfg.command_timeout;
        let mut session = connect(cfg).await?;
        let caps = within(t, "CAPABILITY", session.capabilities()).await?;
        let caps = Capabilities {
            idle: cfg.idle && caps.has_str("IDLE"),
            r#move: caps.has_str("MOVE"),
            uidplus: caps.has_str("UIDPLUS"),
        };
        for folder in [&cfg.processed_folder, &cfg.quarantine_folder] {
            ensure_folder(&mut session, folder, t).await?;
        }
        let selected = within(t, "SELECT", session.select(&cfg.folder)).await?;
        let uidvalidity = selected
            .uid_validity
            .ok_or_else(|| ImapError::NoUidValidity(cfg.folder.clone()))?;
        let mut next_uid = self
            .baseline(&mut session, uidvalidity, selected.uid_next)
            .await?;
        tracing::info!(
            folder = %cfg.folder, uidvalidity, from_uid = next_uid, idle = caps.idle,
            "mailbox ready"
        );

        let mut seen_at = self.pipeline.clock.now();
        loop {
            let before = next_uid;
            next_uid = self
                .sync(
                    &mut session,
                    &caps,
                    uidvalidity,
                    next_uid,
                    seen_at,
                    shutdown,
                )
                .await?;
            self.file_slow(&mut session, &caps, uidvalidity).await?;
            // The connection works end to end: the next failure starts the backoff afresh. (Not
            // before: a batch that fails every time must not be retried every second.)
            *backoff = Duration::from_secs(1);
            if shutdown.is_triggered() {
                let _ = tokio::time::timeout(Duration::from_secs(5), session.logout()).await;
                return Ok(());
            }
            // async-imap keeps unsolicited responses in a bounded channel; we re-sync by UID
            // instead of relying on their content. But an EXISTS that arrived during the sync
            // means new mail: look again before waiting, or it would wait for the next one.
            let mut new_mail = false;
            while let Ok(r) = session.unsolicited_responses.try_recv() {
                new_mail |= matches!(
                    r,
                    UnsolicitedResponse::Exists(_) | UnsolicitedResponse::Recent(_)
                );
            }
            // A pass that found mail is followed by another: mail that arrived during it may
            // have announced itself only in responses the channel above had no room for.
            if new_mail || next_uid != before {
                seen_at = self.pipeline.clock.now();
                continue;
            }
            session = if caps.idle {
                match self.idle(session, shutdown).await? {
                    Some(s) => s,
                    None => return Ok(()),
                }
            } else {
                let mut sd = shutdown.clone();
                tokio::select! {
                    _ = tokio::time::sleep(cfg.poll_interval) => {}
                    _ = self.pipeline.slow_done.notified() => {}
                    _ = sd.wait() => {}
                }
                session
            };
            seen_at = self.pipeline.clock.now();
        }
    }

    /// The first UID folio is responsible for, recording it on first contact.
    async fn baseline(
        &self,
        session: &mut Session,
        uidvalidity: u32,
        uid_next: Option<u32>,
    ) -> Result<u32, ImapError> {
        let store = &self.pipeline.store;
        let folder = &self.cfg.folder;
        let import = self.import_existing || self.cfg.first_start == FirstStart::ImportExisting;
        let now = self.pipeline.clock.now();
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
                    Some(since) => self.first_uid_since(session, since).await?,
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
                        None => self.first_uid_since(session, now).await?,
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

    /// The lowest UID of a message that arrived at or after `since` (by INTERNALDATE), or one
    /// past the highest UID when there is none. The server narrows the candidates to the days
    /// since (`SEARCH SINCE` compares dates only); their exact times are fetched a batch at a time.
    async fn first_uid_since(
        &self,
        session: &mut Session,
        since: chrono::DateTime<chrono::Utc>,
    ) -> Result<u32, ImapError> {
        let t = self.cfg.command_timeout;
        // INTERNALDATE has whole seconds: a message of the same second counts as new.
        let since = chrono::SubsecRound::trunc_subsecs(since, 0);
        let day = since.format("%d-%b-%Y").to_string();
        let found = within(t, "UID SEARCH", session.uid_search(format!("SINCE {day}"))).await?;
        let mut candidates: Vec<u32> = found.into_iter().collect();
        candidates.sort_unstable();
        for group in candidates.chunks(self.cfg.batch_size as usize) {
            let dated = within(t, "UID FETCH", async {
                let stream = session
                    .uid_fetch(uid_set(group), "(UID INTERNALDATE)")
                    .await?;
                stream.try_collect::<Vec<_>>().await
            })
            .await?;
            let first = dated
                .iter()
                .filter(|f| f.internal_date().is_some_and(|d| d >= since))
                .filter_map(|f| f.uid)
                .filter(|uid| group.binary_search(uid).is_ok())
                .min();
            if let Some(uid) = first {
                return Ok(uid);
            }
        }
        let all = within(t, "UID SEARCH", session.uid_search("ALL")).await?;
        Ok(all.into_iter().max().map_or(1, |u| u + 1))
    }

    /// Processes every message with UID ≥ `from`, a batch at a time; returns the next UID to look
    /// at. Stops between batches when shutdown is triggered.
    async fn sync(
        &self,
        session: &mut Session,
        caps: &Capabilities,
        uidvalidity: u32,
        from: u32,
        seen_at: chrono::DateTime<chrono::Utc>,
        shutdown: &Shutdown,
    ) -> Result<u32, ImapError> {
        let cfg = &self.cfg;
        let t = cfg.command_timeout;
        // The UIDs waiting ("n:*" always matches the highest UID, even below n), then per group
        // of batch_size their sizes, so a batch never holds more than BATCH_BYTES of mail in
        // memory. (One FETCH of every size at once costs ~6 KB of parser buffers per message.)
        let found = within(t, "UID SEARCH", session.uid_search(format!("UID {from}:*"))).await?;
        let mut uids: Vec<u32> = found.into_iter().filter(|u| *u >= from).collect();
        uids.sort_unstable();
        // Catching up on a backlog: ingest goes first, the sender waits (see Pipeline::catching_up).
        let _catching_up =
            (uids.len() > cfg.batch_size as usize).then(|| self.pipeline.catching_up());
        let mut next = from;
        for group in uids.chunks(cfg.batch_size as usize) {
            if shutdown.is_triggered() {
                break;
            }
            let sized = within(t, "UID FETCH", async {
                let stream = session
                    .uid_fetch(uid_set(group), "(UID RFC822.SIZE)")
                    .await?;
                stream.try_collect::<Vec<_>>().await
            })
            .await?;
            // Only the UIDs asked for: async-imap passes unsolicited FETCH responses (another
            // client changing flags meanwhile) through the same stream.
            let mut sizes: Vec<(u32, u64)> = sized
                .iter()
                .filter_map(|f| Some((f.uid?, u64::from(f.size.unwrap_or(0)))))
                .filter(|(uid, _)| group.binary_search(uid).is_ok())
                .collect();
            drop(sized);
            sizes.sort_unstable();
            sizes.dedup_by_key(|(uid, _)| *uid);
            // Too big to process: quarantined from its size alone, without downloading it.
            let max = self.pipeline.limits.max_message_bytes;
            let (sizes, oversize): (Vec<Sized>, Vec<Sized>) =
                sizes.into_iter().partition(|(_, size)| *size <= max);
            if !oversize.is_empty() {
                let sources: Vec<(String, String)> = oversize
                    .iter()
                    .map(|(uid, size)| {
                        (
                            format!("imap:{}:{uidvalidity}:{uid}", cfg.folder),
                            format!("message of {size} bytes exceeds limits.max_message_bytes ({max}); left in the quarantine folder unread"),
                        )
                    })
                    .collect();
                self.pipeline.quarantine_unread(&sources).await?;
                let uids: Vec<u32> = oversize.iter().map(|(uid, _)| *uid).collect();
                file_away(session, caps, &uids, &cfg.quarantine_folder, t).await?;
                next = next.max(uids.iter().max().map_or(next, |u| u + 1));
            }
            for chunk in batches(&sizes, cfg.batch_size as usize, BATCH_BYTES) {
                let chunk = &chunk[..];
                let fetched = within(t, "UID FETCH", async {
                    let stream = session
                        // BODY[] (not BODY.PEEK[]) sets \Seen as it fetches: one round trip
                        // fewer than a separate STORE. Nothing relies on \Seen to find work.
                        .uid_fetch(uid_set(chunk), "(UID BODY[])")
                        .await?;
                    stream.try_collect::<Vec<_>>().await
                })
                .await?;
                let mut batch = Vec::with_capacity(fetched.len());
                for f in &fetched {
                    if let (Some(uid), Some(body)) = (f.uid, f.body()) {
                        if chunk.binary_search(&uid).is_err()
                            || batch.iter().any(|(u, _): &(u32, RawMessage)| *u == uid)
                        {
                            continue;
                        }
                        batch.push((
                            uid,
                            RawMessage {
                                source: format!("imap:{}:{uidvalidity}:{uid}", cfg.folder),
                                bytes: body.to_vec(),
                                seen_at,
                            },
                        ));
                    }
                }
                drop(fetched);
                batch.sort_by_key(|(uid, _)| *uid);
                let (batch_uids, raws): (Vec<u32>, Vec<RawMessage>) = batch.into_iter().unzip();
                let outcomes = self.pipeline.process(&raws).await?;
                drop(raws);
                let mut processed = Vec::new();
                let mut quarantined = Vec::new();
                for (uid, o) in batch_uids.iter().zip(&outcomes) {
                    match o.disposition {
                        Disposition::Processed => processed.push(*uid),
                        Disposition::Quarantined(_) => quarantined.push(*uid),
                        // Left in the folder; `file_slow` moves it when its analysis ends.
                        Disposition::Deferred => {}
                    }
                }
                file_away(session, caps, &processed, &cfg.processed_folder, t).await?;
                file_away(session, caps, &quarantined, &cfg.quarantine_folder, t).await?;
                next = chunk.last().map(|u| u + 1).unwrap_or(next);
            }
        }
        Ok(next)
    }

    /// Stores the messages whose slow analysis has ended and files them away. Their UIDs are
    /// below the next UID to look at, so the next pass does not see them again.
    async fn file_slow(
        &self,
        session: &mut Session,
        caps: &Capabilities,
        uidvalidity: u32,
    ) -> Result<(), ImapError> {
        let ended = self.pipeline.finish_slow().await?;
        let prefix = format!("imap:{}:{uidvalidity}:", self.cfg.folder);
        let (mut processed, mut quarantined) = (Vec::new(), Vec::new());
        for (source, o) in ended {
            // A message read under an earlier UIDVALIDITY is found again under the new one and
            // recognised as stored.
            let Some(uid) = source
                .strip_prefix(&prefix)
                .and_then(|u| u.parse::<u32>().ok())
            else {
                continue;
            };
            match o.disposition {
                Disposition::Processed => processed.push(uid),
                Disposition::Quarantined(_) => quarantined.push(uid),
                Disposition::Deferred => {}
            }
        }
        processed.sort_unstable();
        quarantined.sort_unstable();
        let t = self.cfg.command_timeout;
        file_away(session, caps, &processed, &self.cfg.processed_folder, t).await?;
        file_away(session, caps, &quarantined, &self.cfg.quarantine_folder, t).await
    }

    /// Waits in IDLE until the server reports a change, a slow analysis ends, `idle_renew`
    /// passes, or shutdown.
    /// Returns the session, or `None` on shutdown.
    async fn idle(
        &self,
        session: Session,
        shutdown: &Shutdown,
    ) -> Result<Option<Session>, ImapError> {
        let t = self.cfg.command_timeout;
        let mut handle = session.idle();
        within(t, "IDLE", handle.init()).await?;
        let mut sd = shutdown.clone();
        let woke = {
            // async-imap restarts its own timeout on every response, including the server's
            // "* OK Still here" keep-alives, so the renewal deadline is kept here.
            let (wait, _interrupt) = handle.wait_with_timeout(self.cfg.idle_renew);
            tokio::select! {
                r = wait => Some(r?),
                _ = tokio::time::sleep(self.cfg.idle_renew) => Some(IdleResponse::Timeout),
                // A slow analysis ended: its message is stored and filed away by the next pass.
                _ = self.pipeline.slow_done.notified() => Some(IdleResponse::ManualInterrupt),
                _ = sd.wait() => None,
            }
        };
        if let Some(IdleResponse::NewData(data)) = &woke {
            tracing::debug!(response = ?data.parsed(), "IDLE: server reported a change");
        }
        let session = within(t, "DONE", handle.done()).await?;
        if woke.is_none() {
            let mut session = session;
            let _ = tokio::time::timeout(Duration::from_secs(5), session.logout()).await;
            return Ok(None);
        }
        Ok(Some(session))
    }
}

async fn ensure_folder(session: &mut Session, folder: &str, t: Duration) -> Result<(), ImapError> {
    let names = within(t, "LIST", async {
        let stream = session.list(Some(""), Some(folder)).await?;
        stream.try_collect::<Vec<_>>().await
    })
    .await?;
    if names.iter().any(|n| n.name() == folder) {
        return Ok(());
    }
    within(t, "CREATE", session.create(folder)).await?;
    tracing::info!(folder, "created folder");
    Ok(())
}

/// Moves messages (already `\Seen` from the fetch) to `folder`; never deletes them.
async fn file_away(
    session: &mut Session,
    caps: &Capabilities,
    uids: &[u32],
    folder: &str,
    t: Duration,
) -> Result<(), ImapError> {
    if uids.is_empty() {
        return Ok(());
    }
    let set = uid_set(uids);
    if caps.r#move {
        within(t, "UID MOVE", session.uid_mv(&set, folder)).await?;
    } else {
        within(t, "UID COPY", session.uid_copy(&set, folder)).await?;
        within(t, "UID STORE", async {
            let stream = session.uid_store(&set, "+FLAGS.SILENT (\\Deleted)").await?;
            stream.try_collect::<Vec<_>>().await
        })
        .await?;
        // Without UIDPLUS, EXPUNGE would also remove messages others marked \Deleted in this
        // folder: leave the originals flagged for the owner's client to expunge.
        if caps.uidplus {
            within(t, "UID EXPUNGE", async {
                let stream = session.uid_expunge(&set).await?;
                stream.try_collect::<Vec<_>>().await
            })
            .await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_bound_count_and_bytes() {
        let found = [(1, 10), (2, 10), (3, 10), (4, 100), (5, 1)];
        assert_eq!(
            batches(&found, 2, 1000),
            vec![vec![1, 2], vec![3, 4], vec![5]]
        );
        assert_eq!(
            batches(&found, 10, 25),
            vec![vec![1, 2], vec![3], vec![4], vec![5]]
        );
        assert!(batches(&[], 10, 25).is_empty());
    }

    #[test]
    fn uid_sets_compress_runs() {
        assert_eq!(uid_set(&[1, 2, 3, 5, 7, 8]), "1:3,5,7:8");
        assert_eq!(uid_set(&[4]), "4");
        assert_eq!(uid_set(&[]), "");
    }
}
