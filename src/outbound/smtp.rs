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
use std::sync::Mutex;
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

use crate::config::{SmtpConfig, TlsMode};

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
    /// For STARTTLS (lettre upgrades the stream).
    starttls: Option<TlsParameters>,
    /// For implicit TLS (we wrap the stream before the greeting).
    implicit: Option<tokio_rustls::TlsConnector>,
    idle: Mutex<Vec<(AsyncSmtpConnection, Instant)>>,
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
                .map(|u| Credentials::new(u.clone(), c.password.0.clone())),
            starttls,
            implicit,
            idle: Mutex::new(Vec::new()),
        })
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
        idle.push((conn, Instant::now()));
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
            Ok(conn)
        };
        match tokio::time::timeout(self.timeout, work).await {
            Ok(r) => r,
            Err(_) => Err(fail("no answer within smtp.timeout from", &"timeout")),
        }
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
