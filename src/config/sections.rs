//! From the raw sections to the validated ones, a function per section. The sections are
//! validated in file order and each checks its keys in a fixed order, so the problems of a file
//! are always listed the same way.

use std::path::PathBuf;
use std::time::Duration;

use super::raw::{
    RawConfig, RawDatabase, RawHelpdesk, RawImap, RawLimits, RawLog, RawSecurity, RawSmtp,
    RawTemplates, RawTickets,
};
use super::validator::Validator;
use super::{
    CatalogConfig, Config, DatabaseConfig, DirectoryConfig, DuringBacklog, Env, FirstStart,
    HelpdeskConfig, ImapConfig, LimitsConfig, LogConfig, LogFormat, MailAuth, SecurityConfig,
    SmtpConfig, TemplatesConfig, TicketsConfig, TlsMode, DEFAULT_HELPDESK_NAME,
    DEFAULT_INSTITUTION, DEFAULT_LANGUAGE, DEFAULT_MAX_AUTO_REPLIES,
    DEFAULT_MAX_AUTO_REPLIES_PER_DOMAIN_PER_HOUR, DEFAULT_MAX_AUTO_REPLIES_PER_HOUR,
    DEFAULT_MAX_LISTED_ATTACHMENTS, DEFAULT_PHONE,
};

impl Validator<'_> {
    /// The whole file; its problems are left in the validator.
    pub(super) fn config(&mut self, raw: RawConfig, env: &dyn Env) -> Config {
        let imap = self.imap(raw.imap, env);
        // Default From: the help desk's name and the mailbox's login, when that is an address.
        let helpdesk_name = raw
            .helpdesk
            .name
            .clone()
            .unwrap_or_else(|| DEFAULT_HELPDESK_NAME.into());
        let smtp = self.smtp(raw.smtp, &helpdesk_name, &imap.username, env);
        let oauth2 = self.oauth2(raw.oauth2, imap.auth, smtp.auth, env);
        let database = self.database(raw.database, env);
        let templates = self.templates(raw.templates);
        let helpdesk = self.helpdesk(raw.helpdesk, &smtp.from_address, &imap.username);
        let limits = self.limits(raw.limits);
        let directory = DirectoryConfig {
            file: self.existing_file("directory.file", raw.directory.file),
        };
        let catalog = CatalogConfig {
            file: self.existing_file("catalog.file", raw.catalog.file),
        };
        Config {
            path: self.path().to_owned(),
            instance_name: env
                .var("FOLIO_INSTANCE_NAME")
                .map(|n| n.trim().to_string())
                .filter(|n| !n.is_empty()),
            imap,
            smtp,
            oauth2,
            database,
            templates,
            helpdesk,
            limits,
            directory,
            catalog,
            tickets: tickets(raw.tickets),
            security: security(raw.security),
            log: self.log(raw.log),
            calendar: self.calendar(raw.calendar),
            lifecycle: self.lifecycle(raw.lifecycle),
            sla: self.sla(raw.sla),
            schedule: self.schedule(raw.schedule),
            http: self.http(raw.http, env),
            alarms: self.alarms(raw.alarms),
        }
    }

    fn imap(&mut self, i: RawImap, env: &dyn Env) -> ImapConfig {
        let tls = self.tls("imap.tls", i.tls);
        let host = self.required("imap.host", i.host);
        self.no_tls_only_for_loopback("imap.tls", tls, &host);
        let default_port = if tls == TlsMode::Implicit { 993 } else { 143 };
        let password = self.secret(
            "imap.password",
            i.password,
            i.password_file,
            "FOLIO_IMAP_PASSWORD",
            env,
        );
        let username = self.required("imap.username", i.username);
        let auth = self.mail_auth("imap.auth", i.auth);
        if password.0.is_empty() && auth == MailAuth::Password {
            self.issue(
                "imap.password",
                "is required (or imap.password_file, the FOLIO_IMAP_PASSWORD environment variable, or the systemd credential imap-password)",
            );
        }
        let first_start = self.choice(
            "imap.first_start",
            i.first_start.as_deref(),
            &[
                ("new_only", FirstStart::NewOnly),
                ("import_existing", FirstStart::ImportExisting),
            ],
        );
        let idle_renew = self.duration("imap.idle_renew", i.idle_renew, "25m");
        if idle_renew >= Duration::from_secs(29 * 60) {
            self.issue(
                "imap.idle_renew",
                "must be under 29m (RFC 2177: servers may drop an IDLE after 30 minutes)",
            );
        }
        ImapConfig {
            port: self.port("imap.port", i.port, default_port),
            host,
            tls,
            username,
            password,
            folder: i.folder.unwrap_or_else(|| "INBOX".into()),
            processed_folder: i.processed_folder.unwrap_or_else(|| "Procesados".into()),
            quarantine_folder: i.quarantine_folder.unwrap_or_else(|| "Cuarentena".into()),
            poll_interval: self.duration("imap.poll_interval", i.poll_interval, "60s"),
            idle: i.idle.unwrap_or(true),
            idle_renew,
            command_timeout: self.duration("imap.command_timeout", i.command_timeout, "120s"),
            ca_file: self.existing_file("imap.ca_file", i.ca_file),
            first_start,
            batch_size: self.positive("imap.batch_size", i.batch_size, 500, 5000) as u32,
            auth,
        }
    }

    /// `[smtp]`; `From` defaults to `helpdesk_name <imap_username>` when the login is an address.
    fn smtp(
        &mut self,
        s: RawSmtp,
        helpdesk_name: &str,
        imap_username: &str,
        env: &dyn Env,
    ) -> SmtpConfig {
        let tls = self.tls("smtp.tls", s.tls);
        let host = self.required("smtp.host", s.host);
        self.no_tls_only_for_loopback("smtp.tls", tls, &host);
        let default_port = match tls {
            TlsMode::Implicit => 465,
            TlsMode::StartTls => 587,
            TlsMode::None => 25,
        };
        let (from_name, from_address) = self.smtp_from(s.from, helpdesk_name, imap_username);
        let during_backlog = self.during_backlog(s.during_backlog.as_deref(), &host);
        let password = self.secret(
            "smtp.password",
            s.password,
            s.password_file,
            "FOLIO_SMTP_PASSWORD",
            env,
        );
        let auth = self.mail_auth("smtp.auth", s.auth);
        let mut username = s.username.filter(|u| !u.is_empty());
        if auth == MailAuth::OAuth2 && username.is_none() {
            // The token is for the mailbox: SMTP logs in as the IMAP user unless told otherwise.
            username = Some(imap_username.to_string()).filter(|u| !u.is_empty());
        }
        let hello_name = s.hello_name.unwrap_or_else(|| {
            from_address
                .rsplit_once('@')
                .map(|(_, d)| d.to_string())
                .unwrap_or_else(|| "localhost".into())
        });
        SmtpConfig {
            port: self.port("smtp.port", s.port, default_port),
            host,
            tls,
            username,
            password,
            from_name,
            from_address,
            ca_file: self.existing_file("smtp.ca_file", s.ca_file),
            concurrency: self.positive("smtp.concurrency", s.concurrency, 4, 64) as usize,
            timeout: self.duration("smtp.timeout", s.timeout, "60s"),
            hello_name,
            max_age: self.duration("smtp.max_age", s.max_age, "5d"),
            during_backlog,
            auth,
        }
    }

    /// `smtp.during_backlog`: `"auto"` (the default) decides by where the SMTP server runs.
    fn during_backlog(&mut self, value: Option<&str>, host: &str) -> DuringBacklog {
        self.choice(
            "smtp.during_backlog",
            value,
            &[
                ("auto", DuringBacklog::auto(host)),
                ("wait", DuringBacklog::Wait),
                ("send", DuringBacklog::Send),
            ],
        )
    }

    /// `smtp.from` as (name, lower-case address); both empty when it is missing or invalid.
    fn smtp_from(
        &mut self,
        from: Option<String>,
        helpdesk_name: &str,
        imap_username: &str,
    ) -> (String, String) {
        let from_text = match from {
            Some(f) => self.required("smtp.from", Some(f)),
            None if imap_username.contains('@') => format!("{helpdesk_name} <{imap_username}>"),
            None => {
                self.issue(
                    "smtp.from",
                    "is required (imap.username is not an address to default to)",
                );
                String::new()
            }
        };
        match parse_mailbox(&from_text) {
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
        }
    }

    /// `[database]`: `FOLIO_DATABASE_URL`, then the systemd credential `database-url`, win over
    /// the file, so the URL (and a PostgreSQL password in it) can stay out of a file several
    /// instances share.
    fn database(&mut self, d: RawDatabase, env: &dyn Env) -> DatabaseConfig {
        let url = self
            .secret("database.url", d.url, None, "FOLIO_DATABASE_URL", env)
            .0
            .trim()
            .to_string();
        let url = if url.is_empty() {
            "sqlite://var/folio.db".to_string()
        } else {
            url
        };
        let scheme = url.split_once(':').map(|(s, _)| s.to_ascii_lowercase());
        if !matches!(
            scheme.as_deref(),
            Some("sqlite" | "postgres" | "postgresql")
        ) {
            // Not the URL itself: it may hold a password.
            self.issue(
                "database.url",
                format!(
                    "expected sqlite://FILE or postgres://USER@HOST:PORT/DATABASE, got {}",
                    match &scheme {
                        Some(s) if s.chars().all(|c| c.is_ascii_alphanumeric() || c == '+') => {
                            format!("a {s}: URL")
                        }
                        _ => "no URL scheme".to_string(),
                    }
                ),
            );
        }
        DatabaseConfig { url }
    }

    fn templates(&mut self, t: RawTemplates) -> TemplatesConfig {
        let dir = t.dir.unwrap_or_else(|| PathBuf::from("mail-templates"));
        let language = t.language.unwrap_or_else(|| DEFAULT_LANGUAGE.into());
        if !dir.join(&language).is_dir() {
            self.issue(
                "templates.language",
                format!("no template folder {}", dir.join(&language).display()),
            );
        }
        TemplatesConfig { dir, language }
    }

    /// `[helpdesk]`; the addresses folio sends and reads as are always among its own.
    fn helpdesk(
        &mut self,
        h: RawHelpdesk,
        from_address: &str,
        imap_username: &str,
    ) -> HelpdeskConfig {
        let folio_format = h
            .folio_format
            .unwrap_or_else(|| crate::folio::DEFAULT_FORMAT.into());
        if let Err(e) = crate::folio::FolioFormat::parse(&folio_format) {
            self.issue("helpdesk.folio_format", e);
        }
        let mut own_addresses: Vec<String> = h
            .own_addresses
            .unwrap_or_default()
            .into_iter()
            .map(|a| a.trim().to_lowercase())
            .collect();
        if !from_address.is_empty() {
            own_addresses.push(from_address.to_lowercase());
        }
        if imap_username.contains('@') {
            own_addresses.push(imap_username.to_lowercase());
        }
        own_addresses.sort();
        own_addresses.dedup();
        let domains = match h.domains {
            Some(list) => self.domains(list),
            None => from_address
                .rsplit_once('@')
                .map(|(_, d)| vec![d.to_lowercase()])
                .unwrap_or_default(),
        };
        HelpdeskConfig {
            name: h.name.unwrap_or_else(|| DEFAULT_HELPDESK_NAME.into()),
            institution: h.institution.unwrap_or_else(|| DEFAULT_INSTITUTION.into()),
            phone: h.phone.unwrap_or_else(|| DEFAULT_PHONE.into()),
            folio_format,
            own_addresses,
            domains,
            quote_outside_domains: h.quote_outside_domains.unwrap_or(false),
            admins: self.addresses("helpdesk.admins", h.admins.unwrap_or_default()),
        }
    }

    /// `helpdesk.domains`, lower case without a leading `@`; what is not a domain is reported
    /// and left out.
    fn domains(&mut self, list: Vec<String>) -> Vec<String> {
        list.into_iter()
            .map(|d| d.trim().trim_start_matches('@').to_lowercase())
            .filter(|d| {
                let ok = !d.is_empty() && !d.contains(['@', ' ']);
                if !ok {
                    self.issue("helpdesk.domains", format!("{d:?} is not a mail domain"));
                }
                ok
            })
            .collect()
    }

    /// A list of mail addresses at `key`, lower case; what is not an address is reported (with
    /// its index) and left out.
    fn addresses(&mut self, key: &str, list: Vec<String>) -> Vec<String> {
        let mut out = Vec::new();
        for (i, a) in list.into_iter().enumerate() {
            let a = a.trim().to_lowercase();
            match a.split_once('@') {
                Some((l, d))
                    if !l.is_empty() && d.contains('.') && !a.contains(char::is_whitespace) =>
                {
                    out.push(a)
                }
                _ => self.issue(
                    &format!("{key}[{i}]"),
                    format!("{a:?} is not a mail address"),
                ),
            }
        }
        out
    }

    /// `[limits]`; the `Default` of [`LimitsConfig`] is this of an empty section.
    pub(super) fn limits(&mut self, l: RawLimits) -> LimitsConfig {
        LimitsConfig {
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
        }
    }

    fn log(&mut self, l: RawLog) -> LogConfig {
        LogConfig {
            format: self.choice(
                "log.format",
                l.format.as_deref(),
                &[("text", LogFormat::Text), ("json", LogFormat::Json)],
            ),
            level: l.level.unwrap_or_else(|| "info".into()),
        }
    }
}

fn tickets(t: RawTickets) -> TicketsConfig {
    TicketsConfig {
        cc_participants: t.cc_participants.unwrap_or(true),
    }
}

fn security(s: RawSecurity) -> SecurityConfig {
    SecurityConfig {
        trusted_authserv_ids: s
            .trusted_authserv_ids
            .unwrap_or_default()
            .into_iter()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect(),
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

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::tests::NoEnv;

    #[test]
    fn imap_section_collects_every_problem_with_its_key() {
        let mut v = Validator::new(Path::new("f.toml"));
        let imap = v.imap(
            RawImap {
                host: Some("imap.example.test".into()),
                tls: Some("none".into()),
                first_start: Some("all".into()),
                idle_renew: Some("29m".into()),
                ..RawImap::default()
            },
            &NoEnv,
        );
        assert_eq!(imap.tls, TlsMode::None);
        assert_eq!(imap.port, 143, "the plain port for a non-implicit TLS mode");
        assert_eq!(imap.first_start, FirstStart::NewOnly);
        assert_eq!(
            v.into_issues(),
            vec![
                "f.toml: imap.tls: \"none\" is allowed only for a loopback host (127.0.0.1, ::1, localhost), \
                 not \"imap.example.test\"; use \"implicit\" or \"starttls\"",
                "f.toml: imap.username: is required",
                "f.toml: imap.password: is required (or imap.password_file, the FOLIO_IMAP_PASSWORD environment variable, or the systemd credential imap-password)",
                "f.toml: imap.first_start: expected \"new_only\" or \"import_existing\", got \"all\"",
                "f.toml: imap.idle_renew: must be under 29m (RFC 2177: servers may drop an IDLE after 30 minutes)",
            ]
        );
    }

    #[test]
    fn senders_wait_for_a_backlog_by_default_only_when_the_smtp_server_is_local() {
        let mut v = Validator::new(Path::new("f.toml"));
        for local in ["127.0.0.1", "::1", "localhost", "127.0.0.53"] {
            assert_eq!(
                v.during_backlog(None, local),
                DuringBacklog::Wait,
                "{local}"
            );
            assert_eq!(v.during_backlog(Some("auto"), local), DuringBacklog::Wait);
            assert_eq!(v.during_backlog(Some("send"), local), DuringBacklog::Send);
        }
        for remote in ["smtp.office365.com", "10.0.0.25", "2001:db8::25"] {
            assert_eq!(
                v.during_backlog(None, remote),
                DuringBacklog::Send,
                "{remote}"
            );
            assert_eq!(v.during_backlog(Some("wait"), remote), DuringBacklog::Wait);
        }
        assert_eq!(
            v.during_backlog(Some("later"), "smtp.example.test"),
            DuringBacklog::Send,
            "a wrong word is reported and stands in for the default"
        );
        assert_eq!(
            v.into_issues(),
            vec![
                "f.toml: smtp.during_backlog: expected \"auto\", \"wait\" or \"send\", got \"later\""
            ]
        );
    }

    #[test]
    fn smtp_from_defaults_to_the_imap_login_when_it_is_an_address() {
        let mut v = Validator::new(Path::new("f.toml"));
        assert_eq!(
            v.smtp_from(None, "Mesa", "Mesa@Example.test"),
            ("Mesa".to_string(), "mesa@example.test".to_string())
        );
        assert_eq!(
            v.smtp_from(None, "Mesa", "mesa"),
            (String::new(), String::new())
        );
        assert_eq!(
            v.smtp_from(Some("mesa at example".into()), "Mesa", "mesa"),
            (String::new(), String::new())
        );
        assert_eq!(
            v.into_issues(),
            vec![
                "f.toml: smtp.from: is required (imap.username is not an address to default to)",
                "f.toml: smtp.from: expected an address like \"Mesa de Ayuda <helpdesk@example.gob.mx>\", \
                 got \"mesa at example\"",
            ]
        );
    }

    #[test]
    fn helpdesk_domains_leave_out_and_name_what_is_not_a_domain() {
        let mut v = Validator::new(Path::new("f.toml"));
        let h = v.helpdesk(
            RawHelpdesk {
                domains: Some(vec![" @Uni.test".into(), "a b".into(), "x@y.test".into()]),
                own_addresses: Some(vec![" Alias@Uni.test ".into()]),
                ..RawHelpdesk::default()
            },
            "mesa@uni.test",
            "mesa@uni.test",
        );
        assert_eq!(h.domains, vec!["uni.test"]);
        assert_eq!(h.own_addresses, vec!["alias@uni.test", "mesa@uni.test"]);
        assert_eq!(
            v.into_issues(),
            vec![
                "f.toml: helpdesk.domains: \"a b\" is not a mail domain",
                "f.toml: helpdesk.domains: \"x@y.test\" is not a mail domain",
            ]
        );
    }

    #[test]
    fn helpdesk_admins_are_addresses_and_each_mistake_is_named() {
        let mut v = Validator::new(Path::new("f.toml"));
        let h = v.helpdesk(
            RawHelpdesk {
                admins: Some(vec![
                    " Jefa@Uni.test ".into(),
                    "jefa".into(),
                    "a b@c.test".into(),
                ]),
                ..RawHelpdesk::default()
            },
            "mesa@uni.test",
            "mesa@uni.test",
        );
        assert_eq!(h.admins, vec!["jefa@uni.test"]);
        assert_eq!(
            v.into_issues(),
            vec![
                "f.toml: helpdesk.admins[1]: \"jefa\" is not a mail address",
                "f.toml: helpdesk.admins[2]: \"a b@c.test\" is not a mail address",
            ]
        );
    }

    #[test]
    fn limits_default_is_the_empty_section() {
        let l = LimitsConfig::default();
        assert_eq!(l.max_auto_replies_per_address, DEFAULT_MAX_AUTO_REPLIES);
        assert_eq!(l.auto_reply_window, Duration::from_secs(24 * 3600));
        assert_eq!(l.max_message_bytes, 50 * 1024 * 1024);
        assert_eq!(l.analysis_deadline, Duration::from_secs(20));
        assert_eq!(l.max_notice_attachments, 20);
    }
}
