//! The IMAP adapter: connect, capabilities, SELECT, UID SEARCH/FETCH in batches, IDLE or
//! polling, MOVE (or COPY + delete). The mailbox worker ([`crate::daemon::mailbox`]) drives it.
//!
//! Invariant: the only module that knows IMAP. Messages are tracked by UIDVALIDITY + UID, never
//! sequence numbers, and never deleted: only moved. Every command is bounded by
//! `imap.command_timeout` (async-imap has no timeouts of its own).

use std::fmt::Debug;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_imap::extensions::idle::IdleResponse;
use async_imap::types::UnsolicitedResponse;
use futures::TryStreamExt;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use crate::config::{ImapConfig, MailAuth, SaslMechanism, Secret, TlsMode};
use crate::oauth::TokenSource;

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

/// Connects, secures the connection as configured (certificates always verified) and logs in
/// with the password.
pub async fn connect(cfg: &ImapConfig) -> Result<Session, ImapError> {
    connect_as(cfg, None).await
}

/// [`connect`], logging in as `imap.auth` says: with `oauth` when it is `"oauth2"`.
pub async fn connect_as(
    cfg: &ImapConfig,
    oauth: Option<&TokenSource>,
) -> Result<Session, ImapError> {
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
            return login(cfg, oauth, client).await;
        }
    };
    within(t, "greeting", async {
        client
            .read_response()
            .await
            .map_err(async_imap::error::Error::Io)
    })
    .await?;
    login(cfg, oauth, client).await
}

async fn login(
    cfg: &ImapConfig,
    oauth: Option<&TokenSource>,
    client: async_imap::Client<Box<dyn Io>>,
) -> Result<Session, ImapError> {
    if cfg.auth == MailAuth::OAuth2 {
        return authenticate(cfg, oauth, client).await;
    }
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

/// SASL `AUTHENTICATE` with an access token from `oauth` (`oauth2.mechanism`).
async fn authenticate(
    cfg: &ImapConfig,
    oauth: Option<&TokenSource>,
    client: async_imap::Client<Box<dyn Io>>,
) -> Result<Session, ImapError> {
    let refused = |message: String| ImapError::Login {
        user: cfg.username.clone(),
        message,
    };
    let Some(source) = oauth else {
        return Err(refused(
            "imap.auth is \"oauth2\" but no token source was set up".into(),
        ));
    };
    let token = tokio::time::timeout(cfg.command_timeout, source.token())
        .await
        .map_err(|_| ImapError::Timeout("the OAuth2 token endpoint"))?
        .map_err(|e| refused(e.to_string()))?;
    let mechanism = source.mechanism();
    let sasl = Sasl::new(
        mechanism,
        crate::oauth::sasl::initial_response(mechanism, &cfg.username, &token, &cfg.host, cfg.port),
    );
    let challenge = sasl.challenge.clone();
    match tokio::time::timeout(
        cfg.command_timeout,
        client.authenticate(mechanism.name(), sasl),
    )
    .await
    {
        Ok(Ok(session)) => Ok(session),
        Ok(Err((e, _))) => {
            let said = challenge.lock().unwrap_or_else(|p| p.into_inner()).take();
            Err(refused(match said {
                Some(s) if !s.is_empty() => format!("{} {e} (server said {s})", mechanism.name()),
                _ => format!("{} {e}", mechanism.name()),
            }))
        }
        Err(_) => Err(ImapError::Timeout("AUTHENTICATE")),
    }
}

/// async-imap's side of `AUTHENTICATE`: sends the initial response at the first (empty)
/// continuation; any later continuation is the server's error status, acknowledged so the
/// server can answer NO, and kept for the error message.
struct Sasl {
    mechanism: SaslMechanism,
    initial: Option<Secret>,
    /// The server's error challenge, if it sent one.
    challenge: Arc<Mutex<Option<String>>>,
}

impl Sasl {
    fn new(mechanism: SaslMechanism, initial: Secret) -> Self {
        Sasl {
            mechanism,
            initial: Some(initial),
            challenge: Arc::new(Mutex::new(None)),
        }
    }
}

impl async_imap::Authenticator for Sasl {
    type Response = Vec<u8>;

    fn process(&mut self, challenge: &[u8]) -> Vec<u8> {
        match self.initial.take() {
            Some(initial) => initial.0.into_bytes(),
            None => {
                let mut kept = self.challenge.lock().unwrap_or_else(|p| p.into_inner());
                *kept = Some(crate::oauth::sasl::describe_challenge(challenge));
                self.mechanism.error_ack().to_vec()
            }
        }
    }
}

/// A message's UID and size in bytes.
pub type Sized = (u32, u64);

/// Most bytes of mail one batch holds in memory (a single larger message still forms a batch).
/// The mailbox worker holds two batches at once (one stored while the next is fetched), so
/// the mail in memory stays within 32 MiB.
pub const BATCH_BYTES: u64 = 16 * 1024 * 1024;

/// Splits `(uid, size)` pairs into batches of at most `max_count` messages and `max_bytes` bytes.
pub fn batches(found: &[(u32, u64)], max_count: usize, max_bytes: u64) -> Vec<Vec<u32>> {
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

/// What the server offers that folio uses.
struct Capabilities {
    idle: bool,
    r#move: bool,
    uidplus: bool,
}

/// The selected folder: its UIDVALIDITY and, if the server said, the next UID it will assign.
#[derive(Debug, Clone, Copy)]
pub struct Selected {
    pub uid_validity: u32,
    pub uid_next: Option<u32>,
}

/// A logged-in IMAP connection, with what its server can do and the timeouts it runs under.
pub struct Connection {
    session: Session,
    caps: Capabilities,
    /// `imap.command_timeout`: bounds every command.
    timeout: Duration,
    /// `imap.idle_renew`.
    idle_renew: Duration,
    /// `imap.poll_interval`, when IDLE is off or not offered.
    poll_interval: Duration,
}

impl Connection {
    /// Connects and logs in ([`connect_as`]) and asks what the server can do.
    pub async fn open(
        cfg: &ImapConfig,
        oauth: Option<&TokenSource>,
    ) -> Result<Connection, ImapError> {
        let mut session = connect_as(cfg, oauth).await?;
        let caps = within(cfg.command_timeout, "CAPABILITY", session.capabilities()).await?;
        Ok(Connection {
            session,
            caps: Capabilities {
                idle: cfg.idle && caps.has_str("IDLE"),
                r#move: caps.has_str("MOVE"),
                uidplus: caps.has_str("UIDPLUS"),
            },
            timeout: cfg.command_timeout,
            idle_renew: cfg.idle_renew,
            poll_interval: cfg.poll_interval,
        })
    }

    /// Whether new mail is awaited in IDLE (configured and offered) rather than by polling.
    pub fn idles(&self) -> bool {
        self.caps.idle
    }

    /// Creates `folder` unless it exists.
    pub async fn ensure_folder(&mut self, folder: &str) -> Result<(), ImapError> {
        let session = &mut self.session;
        let names = within(self.timeout, "LIST", async {
            let stream = session.list(Some(""), Some(folder)).await?;
            stream.try_collect::<Vec<_>>().await
        })
        .await?;
        if names.iter().any(|n| n.name() == folder) {
            return Ok(());
        }
        within(self.timeout, "CREATE", self.session.create(folder)).await?;
        tracing::info!(folder, "created folder");
        Ok(())
    }

    /// Selects `folder`.
    pub async fn select(&mut self, folder: &str) -> Result<Selected, ImapError> {
        let selected = within(self.timeout, "SELECT", self.session.select(folder)).await?;
        Ok(Selected {
            uid_validity: selected
                .uid_validity
                .ok_or_else(|| ImapError::NoUidValidity(folder.to_string()))?,
            uid_next: selected.uid_next,
        })
    }

    /// The UIDs ≥ `from` in the selected folder, sorted.
    pub async fn uids_from(&mut self, from: u32) -> Result<Vec<u32>, ImapError> {
        // "n:*" always matches the highest UID, even below n.
        let search = self.session.uid_search(format!("UID {from}:*"));
        let found = within(self.timeout, "UID SEARCH", search).await?;
        let mut uids: Vec<u32> = found.into_iter().filter(|u| *u >= from).collect();
        uids.sort_unstable();
        Ok(uids)
    }

    /// The sizes of the messages `uids` (sorted), by UID.
    pub async fn sizes(&mut self, uids: &[u32]) -> Result<Vec<Sized>, ImapError> {
        let session = &mut self.session;
        let sized = within(self.timeout, "UID FETCH", async {
            let stream = session
                .uid_fetch(uid_set(uids), "(UID RFC822.SIZE)")
                .await?;
            stream.try_collect::<Vec<_>>().await
        })
        .await?;
        // Only the UIDs asked for: async-imap passes unsolicited FETCH responses (another
        // client changing flags meanwhile) through the same stream.
        let mut sizes: Vec<Sized> = sized
            .iter()
            .filter_map(|f| Some((f.uid?, u64::from(f.size.unwrap_or(0)))))
            .filter(|(uid, _)| uids.binary_search(uid).is_ok())
            .collect();
        sizes.sort_unstable();
        sizes.dedup_by_key(|(uid, _)| *uid);
        Ok(sizes)
    }

    /// The messages `uids` (sorted), whole, by UID; fetching marks them `\Seen`.
    pub async fn bodies(&mut self, uids: &[u32]) -> Result<Vec<(u32, Vec<u8>)>, ImapError> {
        let session = &mut self.session;
        let fetched = within(self.timeout, "UID FETCH", async {
            let stream = session
                // BODY[] (not BODY.PEEK[]) sets \Seen as it fetches: one round trip
                // fewer than a separate STORE. Nothing relies on \Seen to find work.
                .uid_fetch(uid_set(uids), "(UID BODY[])")
                .await?;
            stream.try_collect::<Vec<_>>().await
        })
        .await?;
        let mut bodies: Vec<(u32, Vec<u8>)> = Vec::with_capacity(fetched.len());
        for f in &fetched {
            if let (Some(uid), Some(body)) = (f.uid, f.body()) {
                if uids.binary_search(&uid).is_err() || bodies.iter().any(|(u, _)| *u == uid) {
                    continue;
                }
                bodies.push((uid, body.to_vec()));
            }
        }
        bodies.sort_by_key(|(uid, _)| *uid);
        Ok(bodies)
    }

    /// The lowest UID of a message that arrived at or after `since` (by INTERNALDATE), or one
    /// past the highest UID when there is none. The server narrows the candidates to the days
    /// since (`SEARCH SINCE` compares dates only); their exact times are fetched `batch_size`
    /// at a time.
    pub async fn first_uid_since(
        &mut self,
        since: chrono::DateTime<chrono::Utc>,
        batch_size: usize,
    ) -> Result<u32, ImapError> {
        let t = self.timeout;
        let session = &mut self.session;
        // INTERNALDATE has whole seconds: a message of the same second counts as new.
        let since = chrono::SubsecRound::trunc_subsecs(since, 0);
        let day = since.format("%d-%b-%Y").to_string();
        let found = within(t, "UID SEARCH", session.uid_search(format!("SINCE {day}"))).await?;
        let mut candidates: Vec<u32> = found.into_iter().collect();
        candidates.sort_unstable();
        for group in candidates.chunks(batch_size) {
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

    /// Moves messages (already `\Seen` from the fetch) to `folder`; never deletes them.
    pub async fn move_to(&mut self, uids: &[u32], folder: &str) -> Result<(), ImapError> {
        if uids.is_empty() {
            return Ok(());
        }
        let (t, session) = (self.timeout, &mut self.session);
        let set = uid_set(uids);
        if self.caps.r#move {
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
            if self.caps.uidplus {
                within(t, "UID EXPUNGE", async {
                    let stream = session.uid_expunge(&set).await?;
                    stream.try_collect::<Vec<_>>().await
                })
                .await?;
            }
        }
        Ok(())
    }

    /// Whether the server announced new mail (EXISTS, RECENT) since the last look.
    pub fn new_mail_announced(&mut self) -> bool {
        // async-imap keeps unsolicited responses in a bounded channel; folio re-syncs by UID
        // instead of relying on their content. But an EXISTS that arrived during a sync means
        // new mail: look again before waiting, or it would wait for the next one.
        let mut new_mail = false;
        while let Ok(r) = self.session.unsolicited_responses.try_recv() {
            new_mail |= matches!(
                r,
                UnsolicitedResponse::Exists(_) | UnsolicitedResponse::Recent(_)
            );
        }
        new_mail
    }

    /// Waits for mail: in IDLE until the server reports a change or `imap.idle_renew` passes,
    /// or (without IDLE) for `imap.poll_interval`; either cut short when `interrupt` resolves.
    /// Returns the connection, and `interrupt`'s value if it cut the wait short.
    pub async fn wait<T>(
        self,
        interrupt: impl std::future::Future<Output = T>,
    ) -> Result<(Connection, Option<T>), ImapError> {
        if !self.caps.idle {
            tokio::select! {
                _ = tokio::time::sleep(self.poll_interval) => Ok((self, None)),
                v = interrupt => Ok((self, Some(v))),
            }
        } else {
            self.idle(interrupt).await
        }
    }

    async fn idle<T>(
        self,
        interrupt: impl std::future::Future<Output = T>,
    ) -> Result<(Connection, Option<T>), ImapError> {
        let Connection {
            session,
            caps,
            timeout: t,
            idle_renew,
            poll_interval,
        } = self;
        let mut handle = session.idle();
        within(t, "IDLE", handle.init()).await?;
        let mut interrupted = None;
        {
            // async-imap restarts its own timeout on every response, including the server's
            // "* OK Still here" keep-alives, so the renewal deadline is kept here.
            let (wait, _interrupt) = handle.wait_with_timeout(idle_renew);
            tokio::select! {
                r = wait => {
                    if let IdleResponse::NewData(data) = r? {
                        tracing::debug!(response = ?data.parsed(), "IDLE: server reported a change");
                    }
                }
                _ = tokio::time::sleep(idle_renew) => {}
                v = interrupt => interrupted = Some(v),
            }
        }
        let session = within(t, "DONE", handle.done()).await?;
        let conn = Connection {
            session,
            caps,
            timeout: t,
            idle_renew,
            poll_interval,
        };
        Ok((conn, interrupted))
    }

    /// Logs out, waiting at most 5 seconds for the server.
    pub async fn logout(mut self) {
        let _ = tokio::time::timeout(Duration::from_secs(5), self.session.logout()).await;
    }
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

    #[test]
    fn the_sasl_authenticator_answers_the_error_challenge_and_keeps_it() {
        use async_imap::Authenticator;
        for (m, ack) in [
            (SaslMechanism::Xoauth2, &b""[..]),
            (SaslMechanism::OAuthBearer, &b"\x01"[..]),
        ] {
            let mut a = Sasl::new(m, Secret("first".into()));
            let kept = a.challenge.clone();
            assert_eq!(a.process(b""), b"first");
            assert_eq!(a.process(br#" {"status":"401"} "#), ack);
            assert_eq!(kept.lock().unwrap().as_deref(), Some(r#"{"status":"401"}"#));
        }
    }
}
