//! The site's rules that shape decisions (from the configuration), and how the caps name an
//! address and a domain.

use std::sync::Arc;

use crate::calendar::Calendar;
use crate::config::{Lifecycle, Sla};
use crate::desk::catalog::Catalog;
use crate::desk::tokens::Tokens;
use crate::folio::FolioFormat;

/// The site's rules that shape decisions.
#[derive(Debug, Clone)]
pub struct Policy {
    pub own_addresses: Vec<String>,
    pub max_auto_replies_per_address: u32,
    pub language: String,
    pub helpdesk_name: String,
    pub institution: String,
    pub helpdesk_phone: String,
    pub helpdesk_address: String,
    pub catalog: Arc<Catalog>,
    pub tokens: Tokens,
    pub folio_format: FolioFormat,
    /// `security.trusted_authserv_ids`.
    pub trusted_authserv_ids: Vec<String>,
    /// `tickets.cc_participants`: CC'd addresses of an opening mail receive public replies.
    pub cc_participants: bool,
    /// `helpdesk.domains`: the institution's own domains (lower case).
    pub own_domains: Vec<String>,
    /// `helpdesk.quote_outside_domains`.
    pub quote_outside_domains: bool,
    /// `limits.max_auto_replies_per_domain_per_hour` (outside domains only).
    pub max_auto_replies_per_domain_per_hour: u32,
    /// `limits.max_auto_replies_per_hour`.
    pub max_auto_replies_per_hour: u32,
    /// `limits.max_listed_attachments`.
    pub max_listed_attachments: usize,
    /// `[calendar]`: when the help desk works, for everything due in business time.
    pub calendar: Calendar,
    /// `[lifecycle]`: how long each step of a ticket's life after resolution waits.
    pub lifecycle: Lifecycle,
    /// `[sla]`: response and resolution targets, warnings, escalation.
    pub sla: Sla,
    /// `helpdesk.admins`: the weekly summary; SLA escalations of a group without a lead.
    pub admins: Vec<String>,
}

impl Policy {
    /// The defaults of every setting for the help desk at `helpdesk_address`: no catalogue
    /// (no staff, every ticket unassigned), no trusted servers, the default folio format.
    pub fn with_defaults(helpdesk_address: &str, tokens: Tokens) -> Policy {
        use crate::config;
        Policy {
            own_addresses: [helpdesk_address]
                .iter()
                .filter(|a| !a.is_empty())
                .map(|a| a.to_lowercase())
                .collect(),
            max_auto_replies_per_address: config::DEFAULT_MAX_AUTO_REPLIES,
            language: config::DEFAULT_LANGUAGE.into(),
            helpdesk_name: config::DEFAULT_HELPDESK_NAME.into(),
            institution: config::DEFAULT_INSTITUTION.into(),
            helpdesk_phone: config::DEFAULT_PHONE.into(),
            helpdesk_address: helpdesk_address.to_lowercase(),
            catalog: Arc::new(Catalog::default()),
            tokens,
            folio_format: FolioFormat::default(),
            trusted_authserv_ids: vec![],
            cc_participants: true,
            own_domains: helpdesk_address
                .rsplit_once('@')
                .map(|(_, d)| vec![d.to_lowercase()])
                .unwrap_or_default(),
            quote_outside_domains: false,
            max_auto_replies_per_domain_per_hour:
                config::DEFAULT_MAX_AUTO_REPLIES_PER_DOMAIN_PER_HOUR,
            max_auto_replies_per_hour: config::DEFAULT_MAX_AUTO_REPLIES_PER_HOUR,
            max_listed_attachments: config::DEFAULT_MAX_LISTED_ATTACHMENTS as usize,
            calendar: config::default_calendar(),
            lifecycle: Lifecycle::default(),
            sla: Sla::default(),
            admins: vec![],
        }
    }

    /// Whether `address` is outside the institution's own domains (or their subdomains).
    pub fn is_outside(&self, address: &str) -> bool {
        let d = domain_of(address);
        !self
            .own_domains
            .iter()
            .any(|o| d == *o || d.ends_with(&format!(".{o}")))
    }
}

/// The address a per-address cap counts: lower case, without the `+tag` of the local part, so
/// `bob+1@x` … `bob+30@x` share bob@x's cap.
impl Policy {
    /// The per-address cap on automatic mail to `to` within `limits.auto_reply_window`: ten
    /// times higher for staff, who get many notices legitimately.
    pub fn address_cap(&self, to: &str) -> u32 {
        if self.catalog.is_staff(to) {
            self.max_auto_replies_per_address.saturating_mul(10)
        } else {
            self.max_auto_replies_per_address
        }
    }
}

pub fn cap_key(address: &str) -> String {
    let address = address.trim().to_lowercase();
    match address.rsplit_once('@') {
        Some((local, domain)) => {
            let base = local.split_once('+').map_or(local, |(b, _)| b);
            format!("{base}@{domain}")
        }
        None => address,
    }
}

/// The lower-case domain of `address` (empty without one).
pub fn domain_of(address: &str) -> String {
    address
        .rsplit_once('@')
        .map(|(_, d)| d.trim().to_lowercase())
        .unwrap_or_default()
}
