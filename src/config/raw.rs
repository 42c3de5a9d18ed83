//! The configuration exactly as written in the file: every key optional, unknown keys rejected
//! (`deny_unknown_fields`), so a misspelt key is an error naming it rather than a silent default.

use std::path::PathBuf;

use serde::Deserialize;

/// The whole file: a missing section is an empty one.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    #[serde(default)]
    pub(super) imap: RawImap,
    #[serde(default)]
    pub(super) smtp: RawSmtp,
    /// `None` when the file has no `[oauth2]` section.
    pub(super) oauth2: Option<RawOAuth2>,
    #[serde(default)]
    pub(super) database: RawDatabase,
    #[serde(default)]
    pub(super) templates: RawTemplates,
    #[serde(default)]
    pub(super) helpdesk: RawHelpdesk,
    #[serde(default)]
    pub(super) limits: RawLimits,
    #[serde(default)]
    pub(super) directory: RawFile,
    #[serde(default)]
    pub(super) catalog: RawFile,
    #[serde(default)]
    pub(super) tickets: RawTickets,
    #[serde(default)]
    pub(super) security: RawSecurity,
    #[serde(default)]
    pub(super) log: RawLog,
    #[serde(default)]
    pub(super) calendar: RawCalendar,
    #[serde(default)]
    pub(super) lifecycle: RawLifecycle,
    #[serde(default)]
    pub(super) sla: RawSla,
    #[serde(default)]
    pub(super) schedule: RawSchedule,
    #[serde(default)]
    pub(super) http: RawHttp,
    #[serde(default)]
    pub(super) alarms: RawAlarms,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTickets {
    pub(super) cc_participants: Option<bool>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSecurity {
    pub(super) trusted_authserv_ids: Option<Vec<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawImap {
    pub(super) host: Option<String>,
    pub(super) port: Option<i64>,
    pub(super) tls: Option<String>,
    pub(super) username: Option<String>,
    pub(super) password: Option<String>,
    pub(super) password_file: Option<PathBuf>,
    pub(super) folder: Option<String>,
    pub(super) processed_folder: Option<String>,
    pub(super) quarantine_folder: Option<String>,
    pub(super) poll_interval: Option<String>,
    pub(super) idle: Option<bool>,
    pub(super) idle_renew: Option<String>,
    pub(super) command_timeout: Option<String>,
    pub(super) ca_file: Option<PathBuf>,
    pub(super) first_start: Option<String>,
    pub(super) batch_size: Option<i64>,
    pub(super) auth: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSmtp {
    pub(super) host: Option<String>,
    pub(super) port: Option<i64>,
    pub(super) tls: Option<String>,
    pub(super) username: Option<String>,
    pub(super) password: Option<String>,
    pub(super) password_file: Option<PathBuf>,
    pub(super) from: Option<String>,
    pub(super) ca_file: Option<PathBuf>,
    pub(super) concurrency: Option<i64>,
    pub(super) timeout: Option<String>,
    pub(super) hello_name: Option<String>,
    pub(super) max_age: Option<String>,
    pub(super) auth: Option<String>,
    pub(super) during_backlog: Option<String>,
}

/// `[oauth2]`: the token endpoint shared by `imap.auth` and `smtp.auth` = "oauth2".
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawOAuth2 {
    pub(super) token_url: Option<String>,
    pub(super) flow: Option<String>,
    pub(super) client_id: Option<String>,
    pub(super) client_secret: Option<String>,
    pub(super) client_secret_file: Option<PathBuf>,
    pub(super) client_auth: Option<String>,
    pub(super) refresh_token: Option<String>,
    pub(super) refresh_token_file: Option<PathBuf>,
    pub(super) scope: Option<String>,
    pub(super) mechanism: Option<String>,
    pub(super) ca_file: Option<PathBuf>,
    pub(super) timeout: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDatabase {
    pub(super) url: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTemplates {
    pub(super) dir: Option<PathBuf>,
    pub(super) language: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHelpdesk {
    pub(super) name: Option<String>,
    pub(super) institution: Option<String>,
    pub(super) phone: Option<String>,
    pub(super) folio_format: Option<String>,
    pub(super) own_addresses: Option<Vec<String>>,
    pub(super) domains: Option<Vec<String>>,
    pub(super) quote_outside_domains: Option<bool>,
    pub(super) admins: Option<Vec<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLimits {
    pub(super) max_auto_replies_per_address: Option<i64>,
    pub(super) auto_reply_window: Option<String>,
    pub(super) max_attachment_bytes: Option<i64>,
    pub(super) max_message_bytes: Option<i64>,
    pub(super) bounce_suppression: Option<String>,
    pub(super) analysis_deadline: Option<String>,
    pub(super) max_mime_parts: Option<i64>,
    pub(super) max_notice_attachment_bytes: Option<i64>,
    pub(super) max_notice_attachments: Option<i64>,
    pub(super) max_auto_replies_per_domain_per_hour: Option<i64>,
    pub(super) max_auto_replies_per_hour: Option<i64>,
    pub(super) max_listed_attachments: Option<i64>,
}

/// `[directory]` and `[catalog]`: a section that names a file.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFile {
    pub(super) file: Option<PathBuf>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLog {
    pub(super) format: Option<String>,
    pub(super) level: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCalendar {
    pub(super) timezone: Option<String>,
    pub(super) workdays: Option<Vec<String>>,
    pub(super) hours: Option<String>,
    /// Strings (`"2026-12-25"`) or TOML dates (`2026-12-25`): both are natural to write, so
    /// each element is checked by the validator rather than refused by serde.
    pub(super) holidays: Option<Vec<toml::Value>>,
    pub(super) holidays_file: Option<PathBuf>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSla {
    #[serde(default)]
    pub(super) first_response: RawPerPriority,
    #[serde(default)]
    pub(super) resolution: RawPerPriority,
    pub(super) warn_at_percent: Option<i64>,
    pub(super) unassigned_after: Option<String>,
}

/// A span per priority level.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPerPriority {
    pub(super) baja: Option<String>,
    pub(super) media: Option<String>,
    pub(super) alta: Option<String>,
    pub(super) critica: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLifecycle {
    pub(super) confirm_reminder_after: Option<String>,
    pub(super) auto_close_after: Option<String>,
    pub(super) survey_after: Option<String>,
    pub(super) survey_reminder_after: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSchedule {
    pub(super) sweep: Option<String>,
    pub(super) technician_digest: Option<String>,
    pub(super) weekly_summary: Option<String>,
}

/// `[http]`: the optional listener for `/healthz` and `/metrics`.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHttp {
    pub(super) listen: Option<String>,
}

/// `[alarms]`
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAlarms {
    pub(super) stall_after: Option<String>,
}
