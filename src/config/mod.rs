//! Configuration: `config/folio.toml` parsed raw (serde, unknown keys rejected), then validated into a
//! typed [`Config`]. Every problem is collected and reported with the file and the key at fault, so
//! `folio check-config` shows them all at once.
//!
//! `raw` is the file's form; `sections` validates it a section at a time, with the checks of
//! single values in `validator`; `time` validates the sections about when things happen
//! (`[calendar]`, `[lifecycle]`, `[schedule]`).

mod oauth;
mod observe;
mod raw;
mod sections;
mod time;
mod validator;

use std::path::{Path, PathBuf};
use std::time::Duration;

pub use observe::{parse_listen, AlarmsConfig, HttpConfig, HTTP_LISTEN_ENV};
use raw::{RawConfig, RawLifecycle, RawLimits, RawSchedule};
use validator::Validator;

use crate::calendar::{Calendar, Span};

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
    /// What `folio status` and the logs call this instance: `FOLIO_INSTANCE_NAME` (several
    /// instances share one file), else `host:pid`.
    pub instance_name: Option<String>,
    pub imap: ImapConfig,
    pub smtp: SmtpConfig,
    /// `[oauth2]`: set when `imap.auth` or `smtp.auth` is `"oauth2"`.
    pub oauth2: Option<OAuth2Config>,
    pub database: DatabaseConfig,
    pub templates: TemplatesConfig,
    pub helpdesk: HelpdeskConfig,
    pub limits: LimitsConfig,
    pub directory: DirectoryConfig,
    pub catalog: CatalogConfig,
    pub tickets: TicketsConfig,
    pub security: SecurityConfig,
    pub log: LogConfig,
    /// `[calendar]`: when the help desk is open (business time).
    pub calendar: Calendar,
    /// `[lifecycle]`: how long the ticket's automatic steps wait.
    pub lifecycle: Lifecycle,
    /// `[sla]`: response and resolution targets, warnings and escalation.
    pub sla: Sla,
    /// `[schedule]`: when the daemon looks for due work and sends its digests.
    pub schedule: Schedule,
    /// `[http]`: the optional listener for `/healthz` and `/metrics`.
    pub http: HttpConfig,
    /// `[alarms]`: the stall alarm.
    pub alarms: AlarmsConfig,
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
    /// `imap.auth`: LOGIN with the password, or SASL with a token from `[oauth2]`.
    pub auth: MailAuth,
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
    /// `smtp.during_backlog`: whether sending waits while the mailbox catches up on a backlog.
    pub during_backlog: DuringBacklog,
    /// `smtp.auth`: AUTH PLAIN/LOGIN when `username` is set, or SASL with a token from
    /// `[oauth2]` (then `username` defaults to `imap.username`).
    pub auth: MailAuth,
}

/// `smtp.during_backlog`, resolved: what the senders do while the mailbox holder catches up on
/// more than one batch of waiting mail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DuringBacklog {
    /// No instance starts new sends until the backlog is ticketed: sending would take the
    /// cores the catch-up needs when the mail servers run on folio's machine
    /// (docs/benchmarks.md §2, §8c).
    Wait,
    /// Sending goes on beside the catch-up: with the mail servers on other machines it costs
    /// folio little, and the first confirmations leave at once (docs/benchmarks.md §8e).
    Send,
}

impl DuringBacklog {
    /// `"auto"`: wait when the SMTP server is on this machine (a loopback `smtp.host`), send
    /// otherwise.
    pub fn auto(smtp_host: &str) -> DuringBacklog {
        if is_loopback(smtp_host) {
            DuringBacklog::Wait
        } else {
            DuringBacklog::Send
        }
    }
}

/// How folio logs into the IMAP or SMTP server (`imap.auth`, `smtp.auth`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailAuth {
    /// The configured password (for SMTP: only when a username is set).
    Password,
    /// An OAuth2 access token from `[oauth2]`, over SASL (`oauth2.mechanism`).
    OAuth2,
}

/// `oauth2.flow`: the grant that obtains access tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OAuth2Flow {
    /// The client's own credentials (an application mailbox permission, e.g. Microsoft 365).
    ClientCredentials,
    /// A refresh token obtained once by an administrator's consent (e.g. Google).
    RefreshToken,
}

/// `oauth2.mechanism`: the SASL mechanism that carries the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaslMechanism {
    /// Google's and Microsoft's `XOAUTH2`.
    Xoauth2,
    /// RFC 7628 `OAUTHBEARER`.
    OAuthBearer,
}

/// `oauth2.client_auth`: how the client's id and secret reach the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// In the form body (`client_id`, `client_secret`): what Microsoft and Google document.
    Post,
    /// HTTP Basic (RFC 6749 2.3.1).
    Basic,
}

/// `[oauth2]`: one token endpoint and client, shared by the IMAP and SMTP logins.
#[derive(Debug, Clone)]
pub struct OAuth2Config {
    pub token_url: String,
    pub flow: OAuth2Flow,
    pub client_id: String,
    pub client_secret: Secret,
    pub client_auth: ClientAuth,
    /// The refresh token the `refresh_token` flow starts from (empty otherwise).
    pub refresh_token: Secret,
    /// Scopes asked for (none: the endpoint's default).
    pub scopes: Vec<String>,
    pub mechanism: SaslMechanism,
    /// Extra CA for an `https` token endpoint.
    pub ca_file: Option<PathBuf>,
    /// Bounds one request to the token endpoint.
    pub timeout: Duration,
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
    /// `helpdesk.admins`: who runs the help desk (lower case): the weekly summary, and SLA
    /// escalations of a group without a lead.
    pub admins: Vec<String>,
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

/// The calendar an empty `[calendar]` means: Mexico City, Monday to Friday, 09:00-18:00, no
/// holidays.
pub fn default_calendar() -> Calendar {
    Validator::new(Path::new("(defaults)")).calendar(raw::RawCalendar::default())
}

impl Default for LimitsConfig {
    /// The documented defaults (what `[limits]` means when it is empty).
    fn default() -> Self {
        Validator::new(Path::new("(defaults)")).limits(RawLimits::default())
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

/// `[lifecycle]`: how long each automatic step of a ticket's life waits, in wall or business
/// time (added to an instant with [`Calendar::add`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lifecycle {
    /// After a ticket is resolved, how long folio waits for the requester to confirm (or
    /// reopen) before it reminds them.
    pub confirm_reminder_after: Span,
    /// After a ticket is resolved, how long until folio closes it when the requester has not
    /// answered.
    pub auto_close_after: Span,
    /// After a ticket is closed, how long until its satisfaction survey is sent (held until
    /// business hours).
    pub survey_after: Span,
    /// After the survey is sent, how long until an unanswered survey is reminded once.
    pub survey_reminder_after: Span,
}

/// `[sla]`: the service-level targets per priority (`baja`, `media`, `alta`, `critica`, in that
/// order), in wall or business time from the ticket's opening.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sla {
    /// Until a technician's first public reply or change of status.
    pub first_response: [Span; 4],
    /// Until the ticket is resolved; time waiting on the requester (`#espera`) and time
    /// resolved before a reopening do not count.
    pub resolution: [Span; 4],
    /// The assignee is warned when this share of a target has passed (1-99).
    pub warn_at_percent: u8,
    /// A ticket nobody is assigned to escalates after this long.
    pub unassigned_after: Span,
}

impl Default for Sla {
    /// The documented defaults (what `[sla]` means when it is empty).
    fn default() -> Self {
        Validator::new(Path::new("(defaults)")).sla(raw::RawSla::default())
    }
}

impl Default for Lifecycle {
    /// The documented defaults (what `[lifecycle]` means when it is empty).
    fn default() -> Self {
        Validator::new(Path::new("(defaults)")).lifecycle(RawLifecycle::default())
    }
}

/// `[schedule]`: cron expressions in tokio-cron-scheduler's syntax (six fields, the seconds
/// first), each already checked with the parser the scheduler uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    /// When the daemon looks for work that has come due (reminders, closings, surveys).
    pub sweep: String,
    /// When each technician gets the digest of their open tickets.
    pub technician_digest: String,
    /// When the weekly summary of the help desk's tickets is sent.
    pub weekly_summary: String,
}

impl Default for Schedule {
    /// The documented defaults (what `[schedule]` means when it is empty).
    fn default() -> Self {
        Validator::new(Path::new("(defaults)")).schedule(RawSchedule::default())
    }
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
        let mut v = Validator::new(path);
        let config = v.config(raw, env);
        let issues = v.into_issues();
        if issues.is_empty() {
            Ok(config)
        } else {
            Err(ConfigError::Invalid { issues })
        }
    }
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

    /// An empty environment, so the tests' process environment never leaks in.
    pub(super) struct NoEnv;
    impl Env for NoEnv {
        fn var(&self, _: &str) -> Option<String> {
            None
        }
    }

    /// The error text of an invalid configuration, read as file `path`.
    pub(super) fn error_of(path: &str, text: &str) -> String {
        Config::parse(Path::new(path), text, &NoEnv)
            .unwrap_err()
            .to_string()
    }

    pub(super) fn minimal() -> String {
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

    #[test]
    fn the_database_url_comes_from_the_environment_a_credential_or_the_file() {
        struct E(Option<String>, Option<String>);
        impl Env for E {
            fn var(&self, n: &str) -> Option<String> {
                match n {
                    "FOLIO_DATABASE_URL" => self.0.clone(),
                    "CREDENTIALS_DIRECTORY" => self.1.clone(),
                    _ => None,
                }
            }
        }
        let text = format!("{}[database]\nurl = \"sqlite://from-file.db\"\n", minimal());
        let url = |e: E| {
            Config::parse(Path::new("f.toml"), &text, &e)
                .unwrap()
                .database
                .url
        };
        assert_eq!(url(E(None, None)), "sqlite://from-file.db");
        let creds = tempfile::tempdir().unwrap();
        std::fs::write(
            creds.path().join("database-url"),
            "postgres://folio:pw@db/folio\n",
        )
        .unwrap();
        let dir = Some(creds.path().display().to_string());
        assert_eq!(url(E(None, dir.clone())), "postgres://folio:pw@db/folio");
        assert_eq!(
            url(E(Some("postgres://env@db/folio".into()), dir)),
            "postgres://env@db/folio"
        );
        let bad = Config::parse(
            Path::new("f.toml"),
            &minimal(),
            &E(Some("mysql://u:secret@x/y".into()), None),
        )
        .unwrap_err()
        .to_string();
        assert!(
            bad.contains("database.url") && !bad.contains("secret"),
            "{bad}"
        );
    }

    #[test]
    fn systemd_credentials_come_before_the_password_file_and_after_the_environment() {
        let creds = tempfile::tempdir().unwrap();
        std::fs::write(creds.path().join("imap-password"), "from-credential\n").unwrap();
        let file = creds.path().join("password-file");
        std::fs::write(&file, "from-file").unwrap();
        struct E(String, bool);
        impl Env for E {
            fn var(&self, n: &str) -> Option<String> {
                match n {
                    "CREDENTIALS_DIRECTORY" => Some(self.0.clone()),
                    "FOLIO_IMAP_PASSWORD" if self.1 => Some("from-env".into()),
                    _ => None,
                }
            }
        }
        let text = minimal().replacen(
            "password = \"x\"",
            &format!("password_file = \"{}\"", file.display()),
            1,
        );
        let dir = creds.path().display().to_string();
        let c = Config::parse(Path::new("f.toml"), &text, &E(dir.clone(), false)).unwrap();
        assert_eq!(c.imap.password.0, "from-credential");
        let c = Config::parse(Path::new("f.toml"), &text, &E(dir.clone(), true)).unwrap();
        assert_eq!(c.imap.password.0, "from-env");
        // The packaged unit's name for it (a directory of credentials, each `folio_<file>`).
        std::fs::rename(
            creds.path().join("imap-password"),
            creds.path().join("folio_imap-password"),
        )
        .unwrap();
        let c = Config::parse(Path::new("f.toml"), &text, &E(dir.clone(), false)).unwrap();
        assert_eq!(c.imap.password.0, "from-credential");
        // No credential of either name (the unit passed none): the password file.
        std::fs::remove_file(creds.path().join("folio_imap-password")).unwrap();
        let c = Config::parse(Path::new("f.toml"), &text, &E(dir, false)).unwrap();
        assert_eq!(c.imap.password.0, "from-file");
    }
}
