//! SMTP client: a small pool of long-lived connections with `TCP_NODELAY`.
//!
//! Why not lettre's `AsyncSmtpTransport`: lettre 0.11.23 leaves Nagle's algorithm on, and it writes
//! the final `\r\n.\r\n` as its own small segment, which then waits ~40 ms for the server's delayed
//! ACK: every mail costs 40 ms and four connections top out near 90 mails/s. Its pool also sends a
//! NOOP before every mail. Here lettre still does the SMTP protocol (`AsyncSmtpConnection`); we
//! open the socket ourselves and keep idle connections for reuse.
//!
//! Invariant: the only module that talks SMTP.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use lettre::address::Envelope;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{
    AsyncSmtpConnection, AsyncTokioStream, Certificate, TlsParameters,
};
use lettre::transport::smtp::extension::ClientId;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use crate::config::{MailAuth, SmtpConfig, TlsMode};
use crate::oauth::TokenSource;

/// A set-up problem, naming the configuration key at fault.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("smtp.ca_file: cannot read {path}: {source}")]
    CaFile {
        path: String,
        source: std::io::Error,
    },
    #[error("smtp: {0}")]
    Lettre(#[from] lettre::transport::smtp::Error),
    #[error("smtp: {0}")]
    Tls(#[from] crate::tls::TlsError),
}

/// Why a mail was not sent.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The server refused it for good (5xx): retrying cannot help.
    #[error("{0}")]
    Permanent(String),
    /// Anything else: connection, timeout, 4xx.
    #[error("{0}")]
    Temporary(String),
}

/// Connections idle longer than this are closed rather than reused: servers drop idle clients
/// (Postfix after 300 s), and a dead connection would cost a failed attempt.
const MAX_IDLE: Duration = Duration::from_secs(30);

/// The SMTP server and a pool of idle connections to it.
pub struct SmtpClient {
    host: String,
    port: u16,
    tls: TlsMode,
    timeout: Duration,
    hello: ClientId,
    credentials: Option<Credentials>,
    /// `smtp.auth = "oauth2"`: the login name, and where its token comes from (set with
    /// [`SmtpClient::set_token_source`]).
    oauth_user: Option<String>,
    oauth: OnceLock<Arc<TokenSource>>,
    /// For STARTTLS (lettre upgrades the stream).
    starttls: Option<TlsParameters>,
    /// For implicit TLS (we wrap the stream before the greeting).
    implicit: Option<tokio_rustls::TlsConnector>,
    idle: Mutex<Vec<(AsyncSmtpConnection, Instant)>>,
    /// The most idle connections kept open: this instance's part of `smtp.concurrency`
    /// ([`SmtpClient::keep_idle`]). An idle connection counts against a server's limit on
    /// concurrent connections (Microsoft 365: three per mailbox) as much as a busy one.
    max_idle: AtomicUsize,
}

impl SmtpClient {
    pub fn new(c: &SmtpConfig) -> Result<SmtpClient, SetupError> {
        let (starttls, implicit) = match c.tls {
            TlsMode::None => (None, None),
            TlsMode::StartTls => {
                let mut params = TlsParameters::builder(c.host.clone());
                if let Some(path) = &c.ca_file {
                    let pem = std::fs::read(path).map_err(|source| SetupError::CaFile {
                        path: path.display().to_string(),
                        source,
                    })?;
                    params = params.add_root_certificate(Certificate::from_pem(&pem)?);
                }
                (Some(params.build_rustls()?), None)
            }
            TlsMode::Implicit => (
                None,
                Some(crate::tls::connector(c.ca_file.as_deref(), "smtp.ca_file")?),
            ),
        };
        Ok(SmtpClient {
            host: c.host.clone(),
            port: c.port,
            tls: c.tls,
            timeout: c.timeout,
            hello: ClientId::Domain(c.hello_name.clone()),
            credentials: c
                .username
                .as_ref()
                .filter(|_| c.auth == MailAuth::Password)
                .map(|u| Credentials::new(u.clone(), c.password.0.clone())),
            oauth_user: c.username.clone().filter(|_| c.auth == MailAuth::OAuth2),
            oauth: OnceLock::new(),
            starttls,
            implicit,
            idle: Mutex::new(Vec::new()),
            max_idle: AtomicUsize::new(c.concurrency),
        })
    }

    /// Logs in with tokens from `source` (`smtp.auth = "oauth2"`); set once, before sending.
    pub fn set_token_source(&self, source: Arc<TokenSource>) {
        let _ = self.oauth.set(source);
    }

    /// Sends one message. Reuses an idle connection when there is one.
    pub async fn send(&self, envelope: &Envelope, message: &[u8]) -> Result<(), SendError> {
        let mut conn = match self.take_idle() {
            Some(c) => c,
            None => self.connect().await?,
        };
        let result = tokio::time::timeout(self.timeout, conn.send(envelope, message)).await;
        match result {
            Ok(Ok(_)) => {
                self.put_idle(conn);
                Ok(())
            }
            // lettre has already closed the connection after an error. After a timeout the
            // connection is dropped as it is, never QUIT: the server may be in the middle of
            // DATA or gone, and waiting for its answer could hang the sender.
            Ok(Err(e)) => Err(classify(e)),
            Err(_) => {
                drop(conn);
                Err(SendError::Temporary(format!(
                    "no answer from {}:{} within smtp.timeout",
                    self.host, self.port
                )))
            }
        }
    }

    /// Keeps at most `n` idle connections open from now on, closing any beyond.
    pub fn keep_idle(&self, n: usize) {
        self.max_idle.store(n, Ordering::Relaxed);
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        // The oldest go first (closing the socket; the server sees a disconnect, as with QUIT).
        let excess = idle.len().saturating_sub(n);
        idle.drain(..excess);
    }

    fn take_idle(&self) -> Option<AsyncSmtpConnection> {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        while let Some((conn, since)) = idle.pop() {
            if since.elapsed() < MAX_IDLE && !conn.has_broken() {
                return Some(conn);
            }
            // Too old: dropped (closing the socket); the server sees a disconnect, as with QUIT.
        }
        None
    }

    // Shell: an idle connection's age is a monotonic duration on this process's timer.
    #[allow(clippy::disallowed_methods)]
    fn put_idle(&self, conn: AsyncSmtpConnection) {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < self.max_idle.load(Ordering::Relaxed) {
            idle.push((conn, Instant::now()));
        }
    }

    async fn connect(&self) -> Result<AsyncSmtpConnection, SendError> {
        let fail = |what: &str, e: &dyn std::fmt::Display| {
            SendError::Temporary(format!("{what} {}:{}: {e}", self.host, self.port))
        };
        let work = async {
            let tcp = TcpStream::connect((self.host.as_str(), self.port))
                .await
                .map_err(|e| fail("cannot connect to", &e))?;
            tcp.set_nodelay(true)
                .map_err(|e| fail("cannot set TCP_NODELAY for", &e))?;
            let stream: Box<dyn AsyncTokioStream> = match &self.implicit {
                Some(connector) => Box::new(TlsTcp(
                    crate::tls::handshake(connector, &self.host, tcp)
                        .await
                        .map_err(|e| fail("TLS with", &e))?,
                )),
                None => Box::new(tcp),
            };
            let mut conn = AsyncSmtpConnection::connect_with_transport(stream, &self.hello)
                .await
                .map_err(classify)?;
            if self.tls == TlsMode::StartTls {
                if let Some(params) = &self.starttls {
                    conn.starttls(params.clone(), &self.hello)
                        .await
                        .map_err(|e| fail("STARTTLS with", &e))?;
                }
            }
            if let Some(creds) = &self.credentials {
                conn.auth(&[Mechanism::Plain, Mechanism::Login], creds)
                    .await
                    .map_err(classify)?;
            }
            if let Some(user) = &self.oauth_user {
                self.authenticate(&mut conn, user).await?;
            }
            Ok(conn)
        };
        match tokio::time::timeout(self.timeout, work).await {
            Ok(r) => r,
            Err(_) => Err(fail("no answer within smtp.timeout from", &"timeout")),
        }
    }
}

impl SmtpClient {
    /// SASL with an access token. Sent as a raw `AUTH` line: lettre 0.11 has no OAUTHBEARER,
    /// and its XOAUTH2 cannot answer the server's error challenge (so the server's reason is
    /// lost). Every failure here is temporary: a refused token says nothing about the mail.
    async fn authenticate(
        &self,
        conn: &mut AsyncSmtpConnection,
        user: &str,
    ) -> Result<(), SendError> {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD;
        let fail = |m: String| {
            SendError::Temporary(format!(
                "smtp {}:{} login as {user:?}: {m}",
                self.host, self.port
            ))
        };
        let Some(source) = self.oauth.get() else {
            return Err(fail(
                "smtp.auth is \"oauth2\" but no token source was set up".into(),
            ));
        };
        let token = source.token().await.map_err(|e| fail(e.to_string()))?;
        let mechanism = source.mechanism();
        let initial =
            crate::oauth::sasl::initial_response(mechanism, user, &token, &self.host, self.port);
        let line = SecretLine(format!(
            "AUTH {} {}\r\n",
            mechanism.name(),
            b64.encode(&initial.0)
        ));
        let response = conn
            .command(line)
            .await
            .map_err(|e| fail(format!("{} refused: {e}", mechanism.name())))?;
        if !response.has_code(334) {
            return Ok(());
        }
        // The server's error status (JSON); acknowledge it so it sends its final answer.
        let said = response
            .message()
            .next()
            .and_then(|m| b64.decode(m.trim()).ok())
            .map(|c| crate::oauth::sasl::describe_challenge(&c))
            .unwrap_or_default();
        let ack = SecretLine(format!("{}\r\n", b64.encode(mechanism.error_ack())));
        let final_answer = match conn.command(ack).await {
            Ok(r) => format!("{:?}", r.code()),
            Err(e) => e.to_string(),
        };
        Err(fail(format!(
            "{} refused: {final_answer} (server said {said})",
            mechanism.name()
        )))
    }
}

/// A command line holding a token: written to the server, never shown (lettre's `tracing`
/// feature, which logs written lines, is off).
struct SecretLine(String);

impl std::fmt::Display for SecretLine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn classify(e: lettre::transport::smtp::Error) -> SendError {
    if e.is_permanent() {
        SendError::Permanent(e.to_string())
    } else {
        SendError::Temporary(e.to_string())
    }
}

/// A TLS stream lettre can drive (implicit TLS: the handshake happens before the greeting).
#[derive(Debug)]
struct TlsTcp(tokio_rustls::client::TlsStream<TcpStream>);

impl AsyncTokioStream for TlsTcp {
    fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.0.get_ref().0.peer_addr()
    }
}

impl AsyncRead for TlsTcp {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for TlsTcp {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}
