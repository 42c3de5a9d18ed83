//! Configuration: `config/folio.toml` parsed raw (serde, unknown keys rejected), then validated into a
//! typed [`Config`]. Every problem is collected and reported with the file and the key at fault, so
//! `folio check-config` shows them all at once.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// `helpdesk.name` when not set.
pub const DEFAULT_HELPDESK_NAME: &str = "Mesa de Ayuda";
/// `helpdesk.institution` when not set.
pub const DEFAULT_INSTITUTION: &str =
    "Dirección General de Sistemas y Tecnologías de la Información";
/// `helpdesk.phone` when not set.
pub const DEFAULT_PHONE: &str = "(722) 2769600 ext. 60100";
/// `limits.max_auto_replies_per_address` when not set.
pub const DEFAULT_MAX_AUTO_REPLIES: u32 = 20;
/// `limits.max_auto_replies_per_domain_per_hour` when not set.
pub const DEFAULT_MAX_AUTO_REPLIES_PER_DOMAIN_PER_HOUR: u32 = 100;
/// `limits.max_auto_replies_per_hour` when not set.
pub const DEFAULT_MAX_AUTO_REPLIES_PER_HOUR: u32 = 2_000;
/// `limits.max_listed_attachments` when not set.
pub const DEFAULT_MAX_LISTED_ATTACHMENTS: u32 = 20;
/// `templates.language` when not set.
pub const DEFAULT_LANGUAGE: &str = "es";

/// A configuration problem, naming the file and key at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: cannot read: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Syntax { path: PathBuf, message: String },
    #[error("{}", .issues.join("\n"))]
    Invalid { issues: Vec<String> },
}

/// How a connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    /// TLS from the first byte (IMAPS 993, SMTPS 465).
    Implicit,
    /// Plain connection upgraded with STARTTLS before login.
    StartTls,
    /// No TLS at all: accepted only for loopback hosts.
    None,
}

/// What to do with mail already in the folder the first time folio sees a mailbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FirstStart {
    /// Leave existing mail alone; only mail arriving after the first start is processed.
    NewOnly,
    /// Process everything already in the folder.
    ImportExisting,
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// A secret that never shows up in `Debug` output or logs.
#[derive(Clone, Default)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_empty() { "\"\"" } else { "\"***\"" })
    }
}

/// Validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file this was read from (for messages).
    pub path: PathBuf,
    pub imap: ImapConfig,
    pub smtp: SmtpConfig,
    pub database: DatabaseConfig,
    pub templates: TemplatesConfig,
    pub helpdesk: HelpdeskConfig,
    pub limits: LimitsConfig,
    pub directory: DirectoryConfig,
    pub catalog: CatalogConfig,
    pub tickets: TicketsConfig,
    pub security: SecurityConfig,
    pub log: LogConfig,
}

#[derive(Debug, Clone)]
pub struct ImapConfig {
    pub host: String,
    pub port: u16,
    pub tls: TlsMode,
    pub username: String,
    pub password: Secret,
    pub folder: String,
    pub processed_folder: String,
    pub quarantine_folder: String,
    pub poll_interval: Duration,
    /// Use IDLE when the server offers it (false: always poll).
    pub idle: bool,
    pub idle_renew: Duration,
    pub command_timeout: Duration,
    pub ca_file: Option<PathBuf>,
    pub first_start: FirstStart,
    pub batch_size: u32,
}

#[derive(Debug, Clone)]
pub struct SmtpConfig {
    pub host: String,
    pub port: u16,
    pub tls: TlsMode,
    pub username: Option<String>,
    pub password: Secret,
    /// The help desk's address (`Mesa de Ayuda <helpdesk@…>`), used as From.
    pub from_name: String,
    pub from_address: String,
    pub ca_file: Option<PathBuf>,
    pub concurrency: usize,
    pub timeout: Duration,
    pub hello_name: String,
    /// How long a mail the server keeps refusing temporarily (4xx, no connection) is retried
    /// before it is marked failed (like Postfix's `maximal_queue_lifetime`).
    pub max_age: Duration,
}

#[derive(Debug, Clone)]
pub struct DatabaseConfig {
    pub url: String,
}

#[derive(Debug, Clone)]
pub struct TemplatesConfig {
    pub dir: PathBuf,
    pub language: String,
}

#[derive(Debug, Clone)]
pub struct HelpdeskConfig {
    pub name: String,
    pub institution: String,
    pub phone: String,
    pub folio_format: String,
    /// Extra addresses that are ours (aliases): mail from them is never answered.
    pub own_addresses: Vec<String>,
    /// `helpdesk.domains`: the institution's own mail domains (lower case; default: the
    /// domain of `smtp.from`). Other domains are "outside": their own hourly cap, and
    /// confirmations that quote nothing the sender wrote.
    pub domains: Vec<String>,
    /// `helpdesk.quote_outside_domains`: confirmations to outside domains quote the request
    /// anyway (default false).
    pub quote_outside_domains: bool,
}

#[derive(Debug, Clone)]
pub struct LimitsConfig {
    pub max_auto_replies_per_address: u32,
    pub auto_reply_window: Duration,
    pub max_attachment_bytes: u64,
    pub max_message_bytes: u64,
    /// How long folio sends nothing to an address after it hard-bounced.
    pub bounce_suppression: Duration,
    /// Automatic mails per hour to one outside domain.
    pub max_auto_replies_per_domain_per_hour: u32,
    /// Automatic mails per hour in all.
    pub max_auto_replies_per_hour: u32,
    /// Attachment names a mail lists before "and N more".
    pub max_listed_attachments: u32,
    /// The most attachment bytes one technician notice carries; the rest are listed by name.
    pub max_notice_attachment_bytes: u64,
    /// The most files one technician notice carries; the rest are listed by name.
    pub max_notice_attachments: usize,
    /// The longest the analysis (MIME parsing, HTML to text, classification) of one message may
    /// take; past it the message is quarantined with the reason.
    pub analysis_deadline: Duration,
    /// Messages with more MIME parts than this are quarantined.
    pub max_mime_parts: u64,
}

impl Default for LimitsConfig {
    /// The documented defaults (what `[limits]` means when it is empty).
    fn default() -> Self {
        struct NoEnv;
        impl Env for NoEnv {
            fn var(&self, _: &str) -> Option<String> {
                None
            }
        }
        let mut v = Validator {
            path: Path::new("(defaults)"),
            issues: Vec::new(),
        };
        // The other sections' missing keys are reported to `v` and ignored here.
        v.validate(RawConfig::default(), &NoEnv).limits
    }
}

#[derive(Debug, Clone)]
pub struct DirectoryConfig {
    pub file: Option<PathBuf>,
}

/// `[catalog]`: the services, technicians and agents file.
#[derive(Debug, Clone)]
pub struct CatalogConfig {
    /// `None`: no services or staff (every ticket unassigned, no commands).
    pub file: Option<PathBuf>,
}

/// `[tickets]`
#[derive(Debug, Clone)]
pub struct TicketsConfig {
    /// CC'd addresses of an opening mail become participants who receive public replies.
    pub cc_participants: bool,
}

/// `[security]`
#[derive(Debug, Clone)]
pub struct SecurityConfig {
    /// authserv-ids whose `Authentication-Results` headers are trusted as proof of a
    /// technician's identity (DKIM/SPF pass aligned with the From domain).
    pub trusted_authserv_ids: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct LogConfig {
    pub format: LogFormat,
    pub level: String,
}

// ---- raw form, exactly as written in the file ----

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    imap: RawImap,
    #[serde(default)]
    smtp: RawSmtp,
    #[serde(default)]
    database: RawDatabase,
    #[serde(default)]
    templates: RawTemplates,
    #[serde(default)]
    helpdesk: RawHelpdesk,
    #[serde(default)]
    limits: RawLimits,
    #[serde(default)]
    directory: RawDirectory,
    #[serde(default)]
    catalog: RawDirectory,
    #[serde(default)]
    tickets: RawTickets,
    #[serde(default)]
    security: RawSecurity,
    #[serde(default)]
    log: RawLog,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawTickets {
    cc_participants: Option<bool>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawSecurity {
    trusted_authserv_ids: Option<Vec<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawImap {
    host: Option<String>,
    port: Option<i64>,
    tls: Option<String>,
    username: Option<String>,
    password: Option<String>,
    password_file: Option<PathBuf>,
    folder: Option<String>,
    processed_folder: Option<String>,
    quarantine_folder: Option<String>,
    poll_interval: Option<String>,
    idle: Option<bool>,
    idle_renew: Option<String>,
    command_timeout: Option<String>,
    ca_file: Option<PathBuf>,
    first_start: Option<String>,
    batch_size: Option<i64>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawSmtp {
    host: Option<String>,
    port: Option<i64>,
    tls: Option<String>,
    username: Option<String>,
    password: Option<String>,
    password_file: Option<PathBuf>,
    from: Option<String>,
    ca_file: Option<PathBuf>,
    concurrency: Option<i64>,
    timeout: Option<String>,
    hello_name: Option<String>,
    max_age: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawDatabase {
    url: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawTemplates {
    dir: Option<PathBuf>,
    language: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawHelpdesk {
    name: Option<String>,
    institution: Option<String>,
    phone: Option<String>,
    folio_format: Option<String>,
    own_addresses: Option<Vec<String>>,
    domains: Option<Vec<String>>,
    quote_outside_domains: Option<bool>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    max_auto_replies_per_address: Option<i64>,
    auto_reply_window: Option<String>,
    max_attachment_bytes: Option<i64>,
    max_message_bytes: Option<i64>,
    bounce_suppression: Option<String>,
    analysis_deadline: Option<String>,
    max_mime_parts: Option<i64>,
    max_notice_attachment_bytes: Option<i64>,
    max_notice_attachments: Option<i64>,
    max_auto_replies_per_domain_per_hour: Option<i64>,
    max_auto_replies_per_hour: Option<i64>,
    max_listed_attachments: Option<i64>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawDirectory {
    file: Option<PathBuf>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawLog {
    format: Option<String>,
    level: Option<String>,
}

/// Where secrets from the environment come from; injected so tests need not touch the process env.
pub trait Env {
    fn var(&self, name: &str) -> Option<String>;
}

/// The real process environment.
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok().filter(|v| !v.is_empty())
    }
}

impl Config {
    /// Reads and validates the configuration file.
    pub fn load(path: &Path, env: &dyn Env) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(path, &text, env)
    }

    /// Validates configuration text; `path` is used only in messages.
    pub fn parse(path: &Path, text: &str, env: &dyn Env) -> Result<Config, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError::Syntax {
            path: path.to_owned(),
            message: e.to_string().trim_end().to_string(),
        })?;
        let mut v = Validator {
            path,
            issues: Vec::new(),
        };
        let config = v.validate(raw, env);
        if v.issues.is_empty() {
            Ok(config)
        } else {
            Err(ConfigError::Invalid { issues: v.issues })
        }
    }
}

struct Validator<'a> {
    path: &'a Path,
    issues: Vec<String>,
}

impl Validator<'_> {
    fn issue(&mut self, key: &str, message: impl std::fmt::Display) {
        self.issues
            .push(format!("{}: {key}: {message}", self.path.display()));
    }

    fn duration(&mut self, key: &str, value: Option<String>, default: &str) -> Duration {
        let text = value.unwrap_or_else(|| default.to_string());
        match humantime::parse_duration(text.trim()) {
            Ok(d) if !d.is_zero() => d,
            Ok(_) => {
                self.issue(key, "must be greater than zero");
                Duration::from_secs(1)
            }
            Err(e) => {
                self.issue(
                    key,
                    format!(
                        "expected a duration like \"30s\", \"5m\" or \"24h\", got {text:?} ({e})"
                    ),
                );
                Duration::from_secs(1)
            }
        }
    }

    fn port(&mut self, key: &str, value: Option<i64>, default: u16) -> u16 {
        match value {
            None => default,
            Some(p) if (1..=65535).contains(&p) => p as u16,
            Some(p) => {
                self.issue(key, format!("expected 1-65535, got {p}"));
                default
            }
        }
    }

    fn positive(&mut self, key: &str, value: Option<i64>, default: i64, max: i64) -> i64 {
        match value {
            None => default,
            Some(n) if n >= 1 && n <= max => n,
            Some(n) => {
                self.issue(key, format!("expected 1-{max}, got {n}"));
                default
            }
        }
    }

    fn tls(&mut self, key: &str, value: Option<String>) -> TlsMode {
        match value.as_deref().unwrap_or("implicit") {
            "implicit" => TlsMode::Implicit,
            "starttls" => TlsMode::StartTls,
            "none" => TlsMode::None,
            other => {
                self.issue(
                    key,
                    format!("expected \"implicit\", \"starttls\" or \"none\", got {other:?}"),
                );
                TlsMode::Implicit
            }
        }
    }

    fn required(&mut self, key: &str, value: Option<String>) -> String {
        match value {
            Some(v) if !v.trim().is_empty() => v.trim().to_string(),
            _ => {
                self.issue(key, "is required");
                String::new()
            }
        }
    }

    /// A secret from, in order: the environment variable, the `*_file`, the inline value.
    fn secret(
        &mut self,
        key: &str,
        inline: Option<String>,
        file: Option<PathBuf>,
        env_name: &str,
        env: &dyn Env,
    ) -> Secret {
        if let Some(v) = env.var(env_name) {
            return Secret(v);
        }
        if let Some(file) = file {
            return match std::fs::read_to_string(&file) {
                Ok(s) => Secret(s.trim_end_matches(['\r', '\n']).to_string()),
                Err(e) => {
                    self.issue(
                        &format!("{key}_file"),
                        format!("cannot read {}: {e}", file.display()),
                    );
                    Secret::default()
                }
            };
        }
        Secret(inline.unwrap_or_default())
    }

    fn no_tls_only_for_loopback(&mut self, key: &str, tls: TlsMode, host: &str) {
        if tls == TlsMode::None && !is_loopback(host) {
            self.issue(
                key,
                format!(
                    "\"none\" is allowed only for a loopback host (127.0.0.1, ::1, localhost), not {host:?}; \
                     use \"implicit\" or \"starttls\""
                ),
            );
        }
    }

    fn ca_file(&mut self, key: &str, file: Option<PathBuf>) -> Option<PathBuf> {
        if let Some(f) = &file {
            if !f.is_file() {
                self.issue(key, format!("{} does not exist", f.display()));
            }
        }
        file
    }

    fn validate(&mut self, raw: RawConfig, env: &dyn Env) -> Config {
        // [imap]
        let i = raw.imap;
        let imap_tls = self.tls("imap.tls", i.tls);
        let imap_host = self.required("imap.host", i.host);
        self.no_tls_only_for_loopback("imap.tls", imap_tls, &imap_host);
        let imap_default_port = if imap_tls == TlsMode::Implicit {
            993
        } else {
            143
        };
        let imap_password = self.secret(
            "imap.password",
            i.password,
            i.password_file,
            "FOLIO_IMAP_PASSWORD",
            env,
        );
        let username = self.required("imap.username", i.username);
        if imap_password.0.is_empty() {
            self.issue(
                "imap.password",
                "is required (or imap.password_file, or the FOLIO_IMAP_PASSWORD environment variable)",
            );
        }
        let first_start = match i.first_start.as_deref().unwrap_or("new_only") {
            "new_only" => FirstStart::NewOnly,
            "import_existing" => FirstStart::ImportExisting,
            other => {
                self.issue(
                    "imap.first_start",
                    format!("expected \"new_only\" or \"import_existing\", got {other:?}"),
                );
                FirstStart::NewOnly
            }
        };
        let idle_renew = self.duration("imap.idle_renew", i.idle_renew, "25m");
        if idle_renew >= Duration::from_secs(29 * 60) {
            self.issue(
                "imap.idle_renew",
                "must be under 29m (RFC 2177: servers may drop an IDLE after 30 minutes)",
            );
        }
        let imap = ImapConfig {
            port: self.port("imap.port", i.port, imap_default_port),
            host: imap_host,
            tls: imap_tls,
            username,
            password: imap_password,
            folder: i.folder.unwrap_or_else(|| "INBOX".into()),
            processed_folder: i.processed_folder.unwrap_or_else(|| "Procesados".into()),
            quarantine_folder: i.quarantine_folder.unwrap_or_else(|| "Cuarentena".into()),
            poll_interval: self.duration("imap.poll_interval", i.poll_interval, "60s"),
            idle: i.idle.unwrap_or(true),
            idle_renew,
            command_timeout: self.duration("imap.command_timeout", i.command_timeout, "120s"),
            ca_file: self.ca_file("imap.ca_file", i.ca_file),
            first_start,
            batch_size: self.positive("imap.batch_size", i.batch_size, 500, 5000) as u32,
        };

        // [smtp]
        let s = raw.smtp;
        let smtp_tls = self.tls("smtp.tls", s.tls);
        let smtp_host = self.required("smtp.host", s.host);
        self.no_tls_only_for_loopback("smtp.tls", smtp_tls, &smtp_host);
        let smtp_default_port = match smtp_tls {
            TlsMode::Implicit => 465,
            TlsMode::StartTls => 587,
            TlsMode::None => 25,
        };
        // Default From: the help desk's name and the mailbox's login, when that is an address.
        let helpdesk_name = raw
            .helpdesk
            .name
            .clone()
            .unwrap_or_else(|| DEFAULT_HELPDESK_NAME.into());
        let from_text = match s.from {
            Some(f) => self.required("smtp.from", Some(f)),
            None if imap.username.contains('@') => format!("{helpdesk_name} <{}>", imap.username),
            None => {
                self.issue(
                    "smtp.from",
                    "is required (imap.username is not an address to default to)",
                );
                String::new()
            }
        };
        let (from_name, from_address) = match parse_mailbox(&from_text) {
            Some(pair) => pair,
            None => {
                if !from_text.is_empty() {
                    self.issue(
                        "smtp.from",
                        format!("expected an address like \"Mesa de Ayuda <helpdesk@example.gob.mx>\", got {from_text:?}"),
                    );
                }
                (String::new(), String::new())
            }
        };
        let smtp_password = self.secret(
            "smtp.password",
            s.password,
            s.password_file,
            "FOLIO_SMTP_PASSWORD",
            env,
        );
        let hello_name = s.hello_name.unwrap_or_else(|| {
            from_address
                .rsplit_once('@')
                .map(|(_, d)| d.to_string())
                .unwrap_or_else(|| "localhost".into())
        });
        let smtp = SmtpConfig {
            port: self.port("smtp.port", s.port, smtp_default_port),
            host: smtp_host,
            tls: smtp_tls,
            username: s.username.filter(|u| !u.is_empty()),
            password: smtp_password,
            from_name,
            from_address,
            ca_file: self.ca_file("smtp.ca_file", s.ca_file),
            concurrency: self.positive("smtp.concurrency", s.concurrency, 4, 64) as usize,
            timeout: self.duration("smtp.timeout", s.timeout, "60s"),
            hello_name,
            max_age: self.duration("smtp.max_age", s.max_age, "5d"),
        };

        // [database]
        let url = raw
            .database
            .url
            .unwrap_or_else(|| "sqlite://var/folio.db".into());
        if !url.starts_with("sqlite:") {
            self.issue(
                "database.url",
                format!("only sqlite: URLs are supported in this version, got {url:?}"),
            );
        }
        let database = DatabaseConfig { url };

        // [templates]
        let dir = raw
            .templates
            .dir
            .unwrap_or_else(|| PathBuf::from("mail-templates"));
        let language = raw
            .templates
            .language
            .unwrap_or_else(|| DEFAULT_LANGUAGE.into());
        if !dir.join(&language).is_dir() {
            self.issue(
                "templates.language",
                format!("no template folder {}", dir.join(&language).display()),
            );
        }
        let templates = TemplatesConfig { dir, language };

        // [helpdesk]
        let h = raw.helpdesk;
        let folio_format = h
            .folio_format
            .unwrap_or_else(|| crate::desk::folio::DEFAULT_FORMAT.into());
        if let Err(e) = crate::desk::folio::FolioFormat::parse(&folio_format) {
            self.issue("helpdesk.folio_format", e);
        }
        let mut own_addresses: Vec<String> = h
            .own_addresses
            .unwrap_or_default()
            .into_iter()
            .map(|a| a.trim().to_lowercase())
            .collect();
        if !smtp.from_address.is_empty() {
            own_addresses.push(smtp.from_address.to_lowercase());
        }
        if imap.username.contains('@') {
            own_addresses.push(imap.username.to_lowercase());
        }
        own_addresses.sort();
        own_addresses.dedup();
        let domains: Vec<String> = match h.domains {
            Some(list) => list
                .into_iter()
                .map(|d| d.trim().trim_start_matches('@').to_lowercase())
                .filter(|d| {
                    let ok = !d.is_empty() && !d.contains(['@', ' ']);
                    if !ok {
                        self.issue("helpdesk.domains", format!("{d:?} is not a mail domain"));
                    }
                    ok
                })
                .collect(),
            None => smtp
                .from_address
                .rsplit_once('@')
                .map(|(_, d)| vec![d.to_lowercase()])
                .unwrap_or_default(),
        };
        let helpdesk = HelpdeskConfig {
            name: h.name.unwrap_or_else(|| DEFAULT_HELPDESK_NAME.into()),
            institution: h.institution.unwrap_or_else(|| DEFAULT_INSTITUTION.into()),
            phone: h.phone.unwrap_or_else(|| DEFAULT_PHONE.into()),
            folio_format,
            own_addresses,
            domains,
            quote_outside_domains: h.quote_outside_domains.unwrap_or(false),
        };

        // [limits]
        let l = raw.limits;
        let limits = LimitsConfig {
            max_auto_replies_per_address: self.positive(
                "limits.max_auto_replies_per_address",
                l.max_auto_replies_per_address,
                i64::from(DEFAULT_MAX_AUTO_REPLIES),
                100_000,
            ) as u32,
            auto_reply_window: self.duration(
                "limits.auto_reply_window",
                l.auto_reply_window,
                "24h",
            ),
            max_attachment_bytes: self.positive(
                "limits.max_attachment_bytes",
                l.max_attachment_bytes,
                10 * 1024 * 1024,
                i64::MAX,
            ) as u64,
            max_message_bytes: self.positive(
                "limits.max_message_bytes",
                l.max_message_bytes,
                50 * 1024 * 1024,
                i64::MAX,
            ) as u64,
            bounce_suppression: self.duration(
                "limits.bounce_suppression",
                l.bounce_suppression,
                "72h",
            ),
            analysis_deadline: self.duration(
                "limits.analysis_deadline",
                l.analysis_deadline,
                "20s",
            ),
            max_mime_parts: self.positive("limits.max_mime_parts", l.max_mime_parts, 500, i64::MAX)
                as u64,
            max_notice_attachment_bytes: self.positive(
                "limits.max_notice_attachment_bytes",
                l.max_notice_attachment_bytes,
                10 * 1024 * 1024,
                i64::MAX,
            ) as u64,
            max_notice_attachments: self.positive(
                "limits.max_notice_attachments",
                l.max_notice_attachments,
                20,
                10_000,
            ) as usize,
            max_auto_replies_per_domain_per_hour: self.positive(
                "limits.max_auto_replies_per_domain_per_hour",
                l.max_auto_replies_per_domain_per_hour,
                i64::from(DEFAULT_MAX_AUTO_REPLIES_PER_DOMAIN_PER_HOUR),
                1_000_000,
            ) as u32,
            max_auto_replies_per_hour: self.positive(
                "limits.max_auto_replies_per_hour",
                l.max_auto_replies_per_hour,
                i64::from(DEFAULT_MAX_AUTO_REPLIES_PER_HOUR),
                10_000_000,
            ) as u32,
            max_listed_attachments: self.positive(
                "limits.max_listed_attachments",
                l.max_listed_attachments,
                i64::from(DEFAULT_MAX_LISTED_ATTACHMENTS),
                10_000,
            ) as u32,
        };

        // [directory]
        let directory = match raw.directory.file {
            Some(f) => {
                if !f.is_file() {
                    self.issue("directory.file", format!("{} does not exist", f.display()));
                }
                DirectoryConfig { file: Some(f) }
            }
            None => DirectoryConfig { file: None },
        };

        // [catalog]
        let catalog = CatalogConfig {
            file: raw.catalog.file.inspect(|f| {
                if !f.is_file() {
                    self.issue("catalog.file", format!("{} does not exist", f.display()));
                }
            }),
        };
        let tickets = TicketsConfig {
            cc_participants: raw.tickets.cc_participants.unwrap_or(true),
        };
        let security = SecurityConfig {
            trusted_authserv_ids: raw
                .security
                .trusted_authserv_ids
                .unwrap_or_default()
                .into_iter()
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect(),
        };

        // [log]
        let format = match raw.log.format.as_deref().unwrap_or("text") {
            "text" => LogFormat::Text,
            "json" => LogFormat::Json,
            other => {
                self.issue(
                    "log.format",
                    format!("expected \"text\" or \"json\", got {other:?}"),
                );
                LogFormat::Text
            }
        };
        let log = LogConfig {
            format,
            level: raw.log.level.unwrap_or_else(|| "info".into()),
        };

        Config {
            path: self.path.to_owned(),
            imap,
            smtp,
            database,
            templates,
            helpdesk,
            limits,
            directory,
            catalog,
            tickets,
            security,
            log,
        }
    }
}

/// `"Name <addr@x>"` or `"addr@x"` → (name, lowercase address).
fn parse_mailbox(text: &str) -> Option<(String, String)> {
    let text = text.trim();
    let (name, addr) = match (text.find('<'), text.rfind('>')) {
        (Some(l), Some(r)) if l < r => (
            text[..l].trim().trim_matches('"').to_string(),
            text[l + 1..r].trim(),
        ),
        _ => (String::new(), text),
    };
    let (local, domain) = addr.split_once('@')?;
    if local.is_empty() || domain.is_empty() || addr.contains(char::is_whitespace) {
        return None;
    }
    Some((name, addr.to_lowercase()))
}

/// True for hosts that never leave the machine.
pub fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .map(|ip| ip.is_loopback())
            .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct NoEnv;
    impl Env for NoEnv {
        fn var(&self, _: &str) -> Option<String> {
            None
        }
    }

    /// The error text of an invalid configuration, read as file `path`.
    fn error_of(path: &str, text: &str) -> String {
        Config::parse(Path::new(path), text, &NoEnv)
            .unwrap_err()
            .to_string()
    }

    fn minimal() -> String {
        let dir = env!("CARGO_MANIFEST_DIR");
        format!(
            "[imap]\nhost = \"127.0.0.1\"\ntls = \"none\"\nusername = \"helpdesk@example.test\"\npassword = \"x\"\n\
             [smtp]\nhost = \"127.0.0.1\"\ntls = \"none\"\nfrom = \"Mesa de Ayuda <helpdesk@example.test>\"\n\
             [templates]\ndir = \"{dir}/mail-templates\"\n"
        )
    }

    #[test]
    fn minimal_config_gets_defaults() {
        let c = Config::parse(Path::new("f.toml"), &minimal(), &NoEnv).unwrap();
        assert_eq!(c.imap.port, 143);
        assert_eq!(c.imap.processed_folder, "Procesados");
        assert_eq!(c.imap.poll_interval, Duration::from_secs(60));
        assert_eq!(c.smtp.from_address, "helpdesk@example.test");
        assert_eq!(c.limits.max_auto_replies_per_address, 20);
        assert_eq!(c.database.url, "sqlite://var/folio.db");
        assert!(c
            .helpdesk
            .own_addresses
            .contains(&"helpdesk@example.test".to_string()));
    }

    #[test]
    fn amplification_limits_and_own_domains() {
        let c = Config::parse(Path::new("f.toml"), &minimal(), &NoEnv).unwrap();
        assert_eq!(c.helpdesk.domains, vec!["example.test"]);
        assert!(!c.helpdesk.quote_outside_domains);
        assert_eq!(c.limits.max_auto_replies_per_domain_per_hour, 100);
        assert_eq!(c.limits.max_auto_replies_per_hour, 2000);
        assert_eq!(c.limits.max_listed_attachments, 20);
        let text = minimal().replace(
            "[templates]",
            "[helpdesk]\ndomains = [\"Uni.test\", \"@alumnos.uni.test\"]\nquote_outside_domains = true\n\
             [limits]\nmax_auto_replies_per_domain_per_hour = 5\nmax_listed_attachments = 3\n[templates]",
        );
        let c = Config::parse(Path::new("f.toml"), &text, &NoEnv).unwrap();
        assert_eq!(c.helpdesk.domains, vec!["uni.test", "alumnos.uni.test"]);
        assert!(c.helpdesk.quote_outside_domains);
        assert_eq!(c.limits.max_auto_replies_per_domain_per_hour, 5);
        assert_eq!(c.limits.max_listed_attachments, 3);
        let e = error_of(
            "f.toml",
            &minimal().replace(
                "[templates]",
                "[helpdesk]\ndomains = [\"a b\"]\n[templates]",
            ),
        );
        assert!(e.contains("helpdesk.domains"), "{e}");
        let e = error_of(
            "f.toml",
            &minimal().replace(
                "[templates]",
                "[limits]\nmax_auto_replies_per_hour = 0\n[templates]",
            ),
        );
        assert!(e.contains("limits.max_auto_replies_per_hour"), "{e}");
    }

    #[test]
    fn smtp_from_defaults_to_the_mailbox_address() {
        let text = minimal().replace("from = \"Mesa de Ayuda <helpdesk@example.test>\"\n", "");
        let c = Config::parse(Path::new("f.toml"), &text, &NoEnv).unwrap();
        assert_eq!(c.smtp.from_address, "helpdesk@example.test");
        assert_eq!(c.smtp.from_name, "Mesa de Ayuda");
        let text = text.replace(
            "username = \"helpdesk@example.test\"",
            "username = \"mesa\"",
        );
        let e = error_of("f.toml", &text);
        assert!(e.contains("smtp.from"), "{e}");
    }

    #[test]
    fn unknown_key_names_key_and_file() {
        let text = minimal() + "[log]\nverbosity = 3\n";
        let e = error_of("config/folio.toml", &text);
        assert!(e.contains("config/folio.toml"), "{e}");
        assert!(e.contains("verbosity"), "{e}");
    }

    #[test]
    fn all_issues_are_collected_with_keys() {
        let text = minimal().replace(
            "tls = \"none\"\nusername",
            "tls = \"none\"\nport = 99999\npoll_interval = \"soon\"\nusername",
        ) + "[limits]\nmax_auto_replies_per_address = 0\n";
        let e = error_of("c.toml", &text);
        assert!(
            e.contains("c.toml: imap.port: expected 1-65535, got 99999"),
            "{e}"
        );
        assert!(e.contains("imap.poll_interval"), "{e}");
        assert!(e.contains("limits.max_auto_replies_per_address"), "{e}");
    }

    #[test]
    fn plaintext_refused_for_remote_hosts() {
        let text = minimal().replacen("host = \"127.0.0.1\"", "host = \"imap.example.gob.mx\"", 1);
        let e = error_of("c.toml", &text);
        assert!(e.contains("imap.tls"), "{e}");
    }

    #[test]
    fn environment_password_wins() {
        struct E;
        impl Env for E {
            fn var(&self, n: &str) -> Option<String> {
                (n == "FOLIO_IMAP_PASSWORD").then(|| "from-env".to_string())
            }
        }
        let c = Config::parse(Path::new("f.toml"), &minimal(), &E).unwrap();
        assert_eq!(c.imap.password.0, "from-env");
        assert_eq!(format!("{:?}", c.imap.password), "\"***\"");
    }
}
