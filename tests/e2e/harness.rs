//! Test harness: the real mail stack (scripts/mailstack), a real `folio` process per test, and
//! IMAP/SMTP clients to act as requesters. Every test uses fresh addresses (any
//! `<name>@example.test` exists on the stack), so tests run in parallel without sharing state.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use folio::config::{FirstStart, ImapConfig, MailAuth, Secret, TlsMode};
use folio::inbound::imap::Session;
use futures::TryStreamExt;
use lettre::address::Envelope;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use serde_json::Value;

pub const REPO: &str = env!("CARGO_MANIFEST_DIR");

/// Where the mail stack listens.
pub struct Stack {
    pub dir: PathBuf,
    pub imap_port: u16,
    pub imaps_port: u16,
    pub smtp_port: u16,
    /// Postfix's listener with AUTH (through Dovecot: PLAIN, XOAUTH2, OAUTHBEARER).
    pub submission_port: u16,
    pub ca_file: PathBuf,
}

fn env_port(name: &str, default: u16) -> u16 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Starts the mail stack once per test process (idempotent if it already runs).
pub fn stack() -> &'static Stack {
    static STACK: OnceLock<Stack> = OnceLock::new();
    STACK.get_or_init(|| {
        let dir = PathBuf::from(
            std::env::var("FOLIO_MAILSTACK_DIR").unwrap_or_else(|_| "/tmp/folio-mail".into()),
        );
        let stack = Stack {
            imap_port: env_port("FOLIO_MAILSTACK_IMAP_PORT", 1143),
            imaps_port: env_port("FOLIO_MAILSTACK_IMAPS_PORT", 1993),
            smtp_port: env_port("FOLIO_MAILSTACK_SMTP_PORT", 2525),
            submission_port: env_port(
                "FOLIO_MAILSTACK_SUBMISSION_PORT",
                env_port("FOLIO_MAILSTACK_SMTP_PORT", 2525) + 62,
            ),
            ca_file: dir.join("tls/ca.pem"),
            dir,
        };
        stack.script("start");
        stack
    })
}

impl Stack {
    /// A second, private mail stack (own state directory and ports) for tests that take servers
    /// down, so the shared stack other tests use stays up.
    pub fn private(name: &str, first_port: u16) -> Stack {
        let stack = Stack {
            dir: PathBuf::from(format!("/tmp/fm-{name}")),
            imap_port: first_port,
            imaps_port: first_port + 1,
            smtp_port: first_port + 2,
            submission_port: first_port + 2 + 62,
            ca_file: PathBuf::from(format!("/tmp/fm-{name}/tls/ca.pem")),
        };
        stack.script("start");
        stack
    }

    /// Runs `scripts/mailstack <command>` for this stack.
    pub fn script(&self, command: &str) {
        let out = Command::new(format!("{REPO}/scripts/mailstack"))
            .arg(command)
            .env("FOLIO_MAILSTACK_DIR", &self.dir)
            .env("FOLIO_MAILSTACK_IMAP_PORT", self.imap_port.to_string())
            .env("FOLIO_MAILSTACK_IMAPS_PORT", self.imaps_port.to_string())
            .env("FOLIO_MAILSTACK_SMTP_PORT", self.smtp_port.to_string())
            .env(
                "FOLIO_MAILSTACK_SUBMISSION_PORT",
                self.submission_port.to_string(),
            )
            .stdin(Stdio::null())
            .output()
            .expect("run scripts/mailstack");
        assert!(
            out.status.success(),
            "scripts/mailstack {command} failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Stack {
    /// The base64 HS256 key Dovecot checks `oauth-*@example.test` tokens with; `None` where
    /// the stack has no oauth2 passdb (Dovecot 2.4, not set up yet).
    pub fn oauth2_key(&self) -> Option<Vec<u8>> {
        use base64::Engine as _;
        let text =
            std::fs::read_to_string(self.dir.join("dovecot/oauth2-keys/default/HS256/default"))
                .ok()?;
        base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .ok()
    }
}

/// A fresh address at the test domain.
pub fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{prefix}-{}-{n}-{:x}@example.test",
        std::process::id(),
        nanos % 0xffff
    )
}

/// How the folio under test connects to IMAP.
#[derive(Clone, Copy, Debug)]
pub enum ImapMode {
    Plain,
    StartTls,
    Implicit,
}

/// Settings for one folio under test.
pub struct Options {
    pub imap: ImapMode,
    /// SMTP port folio sends to (a proxy in outage tests).
    pub smtp_port: Option<u16>,
    pub max_auto_replies: u32,
    pub batch_size: u32,
    /// A copy of mail-templates/ the test may edit; default: the repository's own.
    pub templates_dir: Option<PathBuf>,
    /// The folder to watch; default INBOX.
    pub folder: Option<String>,
    /// `log.format`; default text.
    pub log_format: Option<&'static str>,
    /// `imap.idle`; default true.
    pub idle: bool,
    /// `limits.max_message_bytes`; default 50 MiB.
    pub max_message_bytes: u64,
    /// The text of a catalogue file (services, technicians, agents); default: none.
    pub catalog: Option<String>,
    /// `security.trusted_authserv_ids`; default none.
    pub trusted_authserv_ids: Vec<String>,
    /// More sections of the config file (`[calendar]`, `[lifecycle]`, …), as TOML.
    pub extra: String,
    /// `smtp.during_backlog`; default: unset ("auto", which waits for this loopback server).
    pub during_backlog: Option<&'static str>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            imap: ImapMode::Plain,
            smtp_port: None,
            max_auto_replies: 20,
            batch_size: 500,
            templates_dir: None,
            folder: None,
            log_format: None,
            idle: true,
            max_message_bytes: 50 * 1024 * 1024,
            catalog: None,
            trusted_authserv_ids: vec![],
            extra: String::new(),
            during_backlog: None,
        }
    }
}

/// A `folio run` process with its own config, database and log.
pub struct Folio {
    pub hd: String,
    /// Holds the config, database and log; removed when the test ends.
    _dir: tempfile::TempDir,
    pub config: PathBuf,
    pub log: PathBuf,
    child: Option<Child>,
    starts: usize,
    /// More environment for `folio run` (a test of the service's notifications sets
    /// NOTIFY_SOCKET and WATCHDOG_USEC here).
    pub env: Vec<(String, String)>,
}

impl Folio {
    /// Writes a config for help-desk address `hd` on the shared stack; does not start the process.
    pub fn new(hd: &str, opts: Options) -> Folio {
        Folio::new_on(stack(), hd, opts)
    }

    /// Like [`Folio::new`], on the given stack.
    pub fn new_on(s: &Stack, hd: &str, opts: Options) -> Folio {
        let dir = tempfile::tempdir().expect("tempdir");
        let (tls, port) = match opts.imap {
            ImapMode::Plain => ("none", s.imap_port),
            ImapMode::StartTls => ("starttls", s.imap_port),
            ImapMode::Implicit => ("implicit", s.imaps_port),
        };
        let config = dir.path().join("folio.toml");
        let text = format!(
            r#"[imap]
host = "{host}"
port = {port}
tls = "{tls}"
ca_file = "{ca}"
username = "{hd}"
password = "secret"
folder = "{folder}"
idle = {idle}
poll_interval = "1s"
command_timeout = "20s"
batch_size = {batch}

[smtp]
host = "127.0.0.1"
port = {smtp}
tls = "none"
from = "Mesa de Ayuda <{hd}>"
timeout = "10s"
{during_backlog}

[database]
url = "{db}"

[templates]
dir = "{templates}"

[limits]
max_auto_replies_per_address = {cap}
max_auto_replies_per_hour = {hourly}
max_message_bytes = {max_message_bytes}

[security]
trusted_authserv_ids = {trusted:?}

{catalog}
{extra}
[log]
level = "info"
format = "{log_format}"
"#,
            trusted = opts.trusted_authserv_ids,
            // Scheduled reports only where a test asks for them: a test that runs across 08:00
            // on a weekday must not get the technicians' digest in the middle.
            extra = if opts.extra.contains("[schedule]") {
                opts.extra.clone()
            } else {
                format!(
                    "{}\n[schedule]\ntechnician_digest = \"0 0 0 1 1 * 2099\"\n",
                    opts.extra
                )
            },
            catalog = match &opts.catalog {
                Some(text) => {
                    let path = dir.path().join("catalog.toml");
                    std::fs::write(&path, text).expect("write catalog");
                    format!("[catalog]\nfile = \"{}\"\n", path.display())
                }
                None => String::new(),
            },
            host = if tls == "none" {
                "127.0.0.1"
            } else {
                "localhost"
            },
            ca = s.ca_file.display(),
            batch = opts.batch_size,
            during_backlog = opts
                .during_backlog
                .map(|d| format!("during_backlog = \"{d}\""))
                .unwrap_or_default(),
            smtp = opts.smtp_port.unwrap_or(s.smtp_port),
            db = folio::store::scratch::database_url(dir.path()),
            cap = opts.max_auto_replies,
            // A test that lifts the per-address cap (the benchmarks: 10,000 requests in minutes)
            // lifts the hourly cap on all mail with it; others keep the default.
            hourly = (opts.max_auto_replies.saturating_mul(100)).clamp(2_000, 10_000_000),
            folder = opts.folder.as_deref().unwrap_or("INBOX"),
            log_format = opts.log_format.unwrap_or("text"),
            idle = opts.idle,
            max_message_bytes = opts.max_message_bytes,
            templates = opts
                .templates_dir
                .clone()
                .unwrap_or_else(|| PathBuf::from(REPO).join("mail-templates"))
                .display(),
        );
        std::fs::write(&config, text).expect("write config");
        let log = dir.path().join("folio.log");
        Folio {
            hd: hd.to_string(),
            _dir: dir,
            config,
            log,
            child: None,
            starts: 0,
            env: Vec::new(),
        }
    }

    /// Starts `folio run` and waits until its mailbox is ready.
    pub async fn start(&mut self, extra: &[&str]) {
        self.launch(extra);
        let want = self.starts;
        let log = self.log.clone();
        wait_for(
            &format!("folio start #{want} ready"),
            Duration::from_secs(30),
            || {
                let log = log.clone();
                async move {
                    let text = std::fs::read_to_string(&log).unwrap_or_default();
                    (text.matches("mailbox ready").count() >= want).then_some(())
                }
            },
        )
        .await;
    }

    /// Starts `folio run` without waiting for anything.
    pub fn launch(&mut self, extra: &[&str]) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("open log");
        let child = Command::new(env!("CARGO_BIN_EXE_folio"))
            .arg("--config")
            .arg(&self.config)
            .arg("run")
            .args(extra)
            .env_remove("RUST_LOG")
            .envs(self.env.iter().cloned())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("spawn folio");
        self.child = Some(child);
        self.starts += 1;
    }

    /// Sends `signal` (`HUP`, `TERM`, …) to the running `folio run`.
    pub fn signal(&self, signal: &str) {
        let c = self.child.as_ref().expect("folio is running");
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(c.id().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{signal} failed");
    }

    /// Whether the process is still running.
    pub fn running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| c.try_wait().expect("wait").is_none())
    }

    /// SIGKILL: the crash test's "power cut" for the process.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM and wait for a clean exit; returns the exit status.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        let mut c = self.child.take().expect("folio is running");
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(c.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = c.try_wait().expect("wait") {
                return status;
            }
            if Instant::now() > deadline {
                let _ = c.kill();
                panic!(
                    "folio did not stop within 20 s of SIGTERM:\n{}",
                    self.log_text()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Runs a folio subcommand with this config; returns stdout (panics on failure).
    pub fn cli(&self, args: &[&str]) -> String {
        let out = Command::new(env!("CARGO_BIN_EXE_folio"))
            .arg("--config")
            .arg(&self.config)
            .args(args)
            .output()
            .expect("run folio");
        assert!(
            out.status.success(),
            "folio {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `folio tickets show FOLIO --json`.
    pub fn show(&self, folio: &str) -> Value {
        serde_json::from_str(&self.cli(&["tickets", "show", folio, "--json"]))
            .expect("tickets show prints JSON")
    }

    /// Waits for the first ticket and returns its folio.
    pub async fn first_folio(&self) -> String {
        wait_for("a ticket", Duration::from_secs(30), || async {
            self.tickets()
                .first()
                .and_then(|t| t["folio"].as_str().map(str::to_string))
        })
        .await
    }

    /// `folio tickets list --json`.
    pub fn tickets(&self) -> Vec<Value> {
        let text = self.cli(&["tickets", "list", "--json", "--limit", "100000"]);
        serde_json::from_str::<Value>(&text)
            .expect("tickets list prints JSON")
            .as_array()
            .cloned()
            .expect("a JSON array")
    }
}

/// One more `folio run` on a [`Folio`]'s config (same database, same mailbox), named by
/// `FOLIO_INSTANCE_NAME`, with its own log: the several-instances tests.
pub struct Instance {
    pub name: String,
    pub log: PathBuf,
    child: Option<Child>,
}

impl Folio {
    /// Starts another `folio run` on this config as instance `name`; does not wait for it.
    pub fn spawn_instance(&self, name: &str) -> Instance {
        let log = self.config.with_file_name(format!("{name}.log"));
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .expect("open log");
        let child = Command::new(env!("CARGO_BIN_EXE_folio"))
            .arg("--config")
            .arg(&self.config)
            .arg("run")
            .env_remove("RUST_LOG")
            .env("FOLIO_INSTANCE_NAME", name)
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("log"))
            .stderr(file)
            .spawn()
            .expect("spawn folio");
        Instance {
            name: name.to_string(),
            log,
            child: Some(child),
        }
    }

    /// `folio status --json`.
    pub fn status(&self) -> Value {
        serde_json::from_str(&self.cli(&["status", "--json"])).expect("status prints JSON")
    }

    /// The name of the live instance holding the mailbox, if any.
    pub fn mailbox_holder(&self) -> Option<String> {
        self.status()["instances"]
            .as_array()?
            .iter()
            .find(|i| i["holds_mailbox"] == Value::Bool(true))
            .and_then(|i| i["name"].as_str().map(str::to_string))
    }
}

impl Instance {
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGKILL.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM and wait for a clean exit (panics after 30 s).
    pub fn stop(&mut self) -> std::process::ExitStatus {
        let mut c = self.child.take().expect("the instance is running");
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(c.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = c.try_wait().expect("wait") {
                return status;
            }
            if Instant::now() > deadline {
                let _ = c.kill();
                panic!("instance {} did not stop within 30 s of SIGTERM", self.name);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        self.kill9();
        if std::thread::panicking() {
            eprintln!("---- instance {} log ----\n{}", self.name, self.log_text());
        }
    }
}

impl Drop for Folio {
    fn drop(&mut self) {
        self.kill9();
        if std::thread::panicking() {
            eprintln!("---- folio log ({}) ----\n{}", self.hd, self.log_text());
        }
    }
}

/// Polls `check` every 100 ms until it yields a value; panics after `limit`.
pub async fn wait_for<T, F, Fut>(what: &str, limit: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        if Instant::now() > deadline {
            panic!("timed out after {limit:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A plain RFC 5322 message.
pub fn message(from: &str, to: &str, subject: &str, body: &str, message_id: &str) -> Vec<u8> {
    format!(
        "From: {from}\r\nTo: {to}\r\nSubject: {subject}\r\nDate: Fri, 27 Nov 2026 10:00:00 -0600\r\n\
         Message-ID: <{message_id}>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\
         Content-Transfer-Encoding: 8bit\r\n\r\n{body}\r\n"
    )
    .into_bytes()
}

/// `from` writes a plain request to `to` over SMTP; returns its Message-ID.
pub async fn ask(from: &str, to: &str, subject: &str, body: &str) -> String {
    let id = message_id();
    send(from, to, &message(from, to, subject, body, &id)).await;
    id
}

/// A fresh Message-ID (without brackets).
pub fn message_id() -> String {
    unique("m").replace("@example.test", "@client.example.test")
}

/// Sends raw bytes over SMTP to the shared stack. An empty `from` is the null sender of bounces.
pub async fn send(from: &str, to: &str, raw: &[u8]) {
    send_on(stack(), from, to, raw).await
}

/// Sends raw bytes over SMTP to the given stack.
pub async fn send_on(s: &Stack, from: &str, to: &str, raw: &[u8]) {
    let transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous("127.0.0.1")
        .port(s.smtp_port)
        .build();
    let envelope = Envelope::new(
        (!from.is_empty()).then(|| from.parse().expect("from")),
        vec![to.parse().expect("to")],
    )
    .expect("envelope");
    transport
        .send_raw(&envelope, raw)
        .await
        .expect("SMTP send to the stack");
}

/// An IMAP session as `user` (plain, loopback) on the shared stack.
pub async fn imap(user: &str) -> Session {
    imap_on(stack(), user).await
}

/// An IMAP session as `user` on the given stack.
pub async fn imap_on(s: &Stack, user: &str) -> Session {
    let cfg = ImapConfig {
        host: "127.0.0.1".into(),
        port: s.imap_port,
        tls: TlsMode::None,
        username: user.into(),
        password: Secret("secret".into()),
        folder: "INBOX".into(),
        processed_folder: "Procesados".into(),
        quarantine_folder: "Cuarentena".into(),
        poll_interval: Duration::from_secs(1),
        idle: true,
        idle_renew: Duration::from_secs(60),
        command_timeout: Duration::from_secs(20),
        ca_file: None,
        first_start: FirstStart::NewOnly,
        batch_size: 100,
        auth: MailAuth::Password,
    };
    folio::inbound::imap::connect(&cfg)
        .await
        .expect("IMAP login to the stack")
}

/// Every message in `folder` of `user` (empty if the folder does not exist).
pub async fn fetch_all(user: &str, folder: &str) -> Vec<Vec<u8>> {
    let mut s = imap(user).await;
    let out = match s.examine(folder).await {
        Ok(mb) if mb.exists > 0 => {
            let fetches: Vec<_> = s
                .uid_fetch("1:*", "(UID BODY.PEEK[])")
                .await
                .expect("fetch")
                .try_collect()
                .await
                .expect("fetch");
            fetches
                .iter()
                .filter_map(|f| f.body().map(<[u8]>::to_vec))
                .collect()
        }
        _ => Vec::new(),
    };
    let _ = s.logout().await;
    out
}

/// Number of messages in `folder` of `user`.
pub async fn count(user: &str, folder: &str) -> u32 {
    count_on(stack(), user, folder).await
}

/// Number of messages in `folder` of `user` on the given stack.
pub async fn count_on(stack: &Stack, user: &str, folder: &str) -> u32 {
    let mut s = imap_on(stack, user).await;
    let n = s.examine(folder).await.map(|m| m.exists).unwrap_or(0);
    let _ = s.logout().await;
    n
}

/// Appends messages straight into a folder (as a delivery agent would), one APPEND each.
pub async fn append(user: &str, folder: &str, messages: &[Vec<u8>]) {
    let mut s = imap(user).await;
    for m in messages {
        s.append(folder, None, None, m).await.expect("APPEND");
    }
    let _ = s.logout().await;
}

/// Appends one message with an explicit INTERNALDATE (as `"01-Jan-2026 10:00:00 +0000"`).
pub async fn append_dated(user: &str, folder: &str, message: &[u8], date: &str) {
    let mut s = imap(user).await;
    s.append(folder, None, Some(&format!("\"{date}\"")), message)
        .await
        .expect("APPEND");
    let _ = s.logout().await;
}

/// A fixture file's bytes.
pub fn fixture(path: &str) -> Vec<u8> {
    std::fs::read(Path::new(REPO).join("tests/fixtures/mail").join(path))
        .unwrap_or_else(|e| panic!("fixture {path}: {e}"))
}

/// Replaces the first header `name:` (and its folded continuation lines) with `name: value`.
pub fn with_header(raw: &[u8], name: &str, value: &str) -> Vec<u8> {
    let text = String::from_utf8_lossy(raw).into_owned();
    let mut out = String::new();
    let mut replaced = false;
    let mut skipping = false;
    let mut in_headers = true;
    for line in text.split_inclusive('\n') {
        if in_headers && (line == "\n" || line == "\r\n") {
            in_headers = false;
            if !replaced {
                out.push_str(&format!("{name}: {value}\r\n"));
                replaced = true;
            }
        }
        if in_headers && skipping && (line.starts_with(' ') || line.starts_with('\t')) {
            continue;
        }
        skipping = false;
        if in_headers
            && !replaced
            && line
                .to_lowercase()
                .starts_with(&format!("{}:", name.to_lowercase()))
        {
            out.push_str(&format!("{name}: {value}\r\n"));
            replaced = true;
            skipping = true;
            continue;
        }
        out.push_str(line);
    }
    out.into_bytes()
}

/// Parsed confirmations (or any mail) for assertions.
pub fn parse(raw: &[u8]) -> folio::inbound::mail::InboundMail {
    folio::inbound::mail::parse(raw, u64::MAX)
}

/// Waits (up to `limit`) until `user`'s INBOX holds an answer (`In-Reply-To`) to `n` distinct
/// messages; returns every mail there, parsed.
pub async fn answers_to(
    user: &str,
    n: usize,
    limit: Duration,
) -> Vec<folio::inbound::mail::InboundMail> {
    wait_for(
        &format!("answers to {n} requests for {user}"),
        limit,
        || async {
            let all = fetch_all(user, "INBOX").await;
            let parsed: Vec<_> = all.iter().map(|m| parse(m)).collect();
            let answered: std::collections::HashSet<String> = parsed
                .iter()
                .filter_map(|m| m.in_reply_to.clone())
                .collect();
            (answered.len() == n).then_some(parsed)
        },
    )
    .await
}

/// How many of `answers` (to `n` requests) are resends; panics unless every resend reuses its
/// Message-ID (SMTP has no idempotency: a resend is the same mail again, never a new one).
pub fn resends(answers: &[folio::inbound::mail::InboundMail], n: usize) -> usize {
    let mut per_request: std::collections::HashMap<String, std::collections::HashSet<String>> =
        std::collections::HashMap::new();
    for a in answers {
        per_request
            .entry(a.in_reply_to.clone().unwrap_or_default())
            .or_default()
            .insert(a.message_id.clone().unwrap_or_default());
    }
    assert!(
        per_request.values().all(|ids| ids.len() == 1),
        "a resend reuses the Message-ID"
    );
    answers.len() - n
}
