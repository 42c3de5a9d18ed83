//! The decision for one inbound message: open a ticket (routed to a technician), append to one
//! (relaying, applying commands, answering queries), or only record it; and which mails to
//! queue. A pure function of the analysed message, a few facts from the store ([`Context`]) and
//! the site's policy; the shell carries the [`Decision`] out in one transaction.
//!
//! The rules that keep strangers and forgers out:
//! - a mail joins a ticket by one of our Message-IDs (unforgeable, see `tokens`) from anyone,
//!   or by a folio in the subject/body only from the ticket's requester, a participant or staff
//!   (for a technician, only a folio in the subject);
//! - who someone is on a ticket is judged by the From address alone: any Reply-To can be forged;
//! - a technician's reply is relayed and its commands applied only with proof (the tokenised
//!   reply address, or an aligned DKIM/SPF pass from a trusted server); without proof it is an
//!   ordinary follow-up and a security event;
//! - a phone note or a forward opens a ticket for, and mails, someone else only with proof
//!   that the staff member wrote it (sent to their personal tokenised address, or an aligned
//!   DKIM/SPF pass from a trusted server); without it, it is the sender's own request and a
//!   security event;
//! - ticket data goes only to the requester, participants and staff, at their From address;
//!   directory data only to the directory entry's own address (`requester_of`) and staff (the
//!   requester's name is left out of mail to participants);
//! - every queued mail passes the caps — per address without its `+tag` (ten times higher for
//!   staff), per outside domain and hour, on all mail per hour; a technician's relayed reply
//!   and the assignment notice are exempt — and skips addresses that hard-bounced;
//! - automatic answers to outside domains (`helpdesk.domains`) quote nothing a sender wrote;
//!   subjects are one line of bounded length.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{json, Value};

use crate::desk::analysis::Analysis;
use crate::desk::catalog::{Catalog, Priority};
use crate::desk::command::{self, Command, Query};
use crate::desk::requester::{MissingField, Requester};
use crate::desk::routing::{self, Routing, Workload};
use crate::desk::ticket::{self, Change, Status, TicketState};
use crate::desk::tokens::Tokens;
use crate::folio::FolioFormat;
use crate::inbound::classify::AutoKind;
use crate::inbound::mail::InboundMail;
use crate::inbound::phone_note::PhoneNote;

/// A ticket as far as decisions need to know it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketRef {
    pub id: i64,
    pub folio: String,
    pub status: Status,
    pub subject: String,
    pub requester_email: String,
    pub requester_name: Option<String>,
    /// Addresses that receive public replies (CC'd on the opening mail), lower case.
    pub participants: Vec<String>,
    pub assignee: Option<String>,
    pub priority: Priority,
    pub service: String,
    pub language: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Message-ID of the mail that opened the ticket: what later mail about it refers to, so
    /// clients thread the whole conversation.
    pub opening_message_id: Option<String>,
}

impl TicketRef {
    /// `References` for a mail about this ticket.
    fn thread(&self) -> Vec<String> {
        self.opening_message_id.iter().cloned().collect()
    }

    fn state(&self) -> TicketState {
        TicketState {
            status: self.status,
            priority: self.priority,
            service: self.service.clone(),
            assignee: self.assignee.clone(),
        }
    }
}

/// A mail folio sent that bounced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BouncedMail {
    pub outbox_id: i64,
    pub to: String,
    pub ticket: Option<TicketRef>,
}

/// Facts from the store about this message.
#[derive(Debug, Clone, Default)]
pub struct Context<'a> {
    /// A message with the same dedup key was already stored.
    pub already_processed: bool,
    /// The ticket of one of our Message-IDs this message answers.
    pub thread_ticket: Option<TicketRef>,
    /// The ticket named by the folio found in the subject or body, if it exists.
    pub referenced_ticket: Option<TicketRef>,
    /// For a delivery report: the mail of ours that bounced.
    pub bounced: Option<BouncedMail>,
    /// The sender's active tickets (requester or participant), for `mis folios`.
    pub sender_tickets: Vec<TicketRef>,
    /// Automatic mails queued per address ([`cap_key`]) within the cap's window.
    pub recent_mails: Option<&'a HashMap<String, u32>>,
    /// Mails queued per recipient domain within the last hour.
    pub recent_domains: Option<&'a HashMap<String, u32>>,
    /// Mails queued within the last hour, in all.
    pub recent_total: u32,
    /// Addresses that bounced recently: nothing is sent to them.
    pub failing: Option<&'a HashSet<String>>,
    /// Technicians' load, for routing.
    pub workload: Option<&'a Workload>,
}

impl Context<'_> {
    fn recent(&self, address: &str) -> u32 {
        self.recent_mails
            .and_then(|m| m.get(&cap_key(address)))
            .copied()
            .unwrap_or(0)
    }

    fn recent_in_domain(&self, address: &str) -> u32 {
        self.recent_domains
            .and_then(|m| m.get(&domain_of(address)))
            .copied()
            .unwrap_or(0)
    }

    fn is_failing(&self, address: &str) -> bool {
        self.failing.is_some_and(|f| f.contains(address))
    }
}

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

/// Why folio did what it did; stored and logged with stable snake_case names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// A new request: ticket opened, confirmation queued.
    NewTicket,
    /// New ticket, but its confirmation would break a cap (per address, per outside domain
    /// and hour, or on all automatic mail per hour).
    NewTicketRateLimited,
    /// New ticket, but the reply address is ours: never answered.
    NewTicketReplyToOwnAddress,
    /// A phone agent's note: ticket opened for the caller.
    PhoneNote,
    /// Staff forwarded a requester's mail: ticket opened for the original sender.
    ForwardedByStaff,
    /// Appended to the ticket whose mail it answers.
    FollowUpByThread,
    /// Appended to the ticket named in the subject/body by its requester, a participant or staff.
    FollowUpByFolio,
    /// A technician's authenticated reply: relayed and/or commands applied.
    StaffReply,
    /// A technician's authenticated reply with commands that cannot apply: nothing changed.
    StaffCommandsRejected,
    /// Mail from a technician's address without proof: kept as a follow-up, commands ignored.
    StaffUnauthenticated,
    /// `estado` / `mis folios`: answered.
    StatusQuery,
    /// `estado` about a ticket the sender may not see: a reply that reveals nothing.
    StatusQueryDenied,
    /// Automatic mail (auto-reply, bounce, bulk, loop): recorded, not answered.
    AutomaticRecorded,
    /// Automatic mail answering one of our mails: recorded on that ticket, state unchanged.
    AutomaticOnTicket,
    /// A bounce of one of our mails: linked to it, the address marked as failing.
    BounceOfOurMail,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::NewTicket => "new_ticket",
            Reason::NewTicketRateLimited => "new_ticket_rate_limited",
            Reason::NewTicketReplyToOwnAddress => "new_ticket_reply_to_own_address",
            Reason::PhoneNote => "phone_note",
            Reason::ForwardedByStaff => "forwarded_by_staff",
            Reason::FollowUpByThread => "follow_up_by_thread",
            Reason::FollowUpByFolio => "follow_up_by_folio",
            Reason::StaffReply => "staff_reply",
            Reason::StaffCommandsRejected => "staff_commands_rejected",
            Reason::StaffUnauthenticated => "staff_unauthenticated",
            Reason::StatusQuery => "status_query",
            Reason::StatusQueryDenied => "status_query_denied",
            Reason::AutomaticRecorded => "automatic_recorded",
            Reason::AutomaticOnTicket => "automatic_on_ticket",
            Reason::BounceOfOurMail => "bounce_of_our_mail",
        }
    }
}

/// What happens to the ticket table.
#[derive(Debug, Clone, PartialEq)]
pub enum TicketAction {
    /// Open a ticket (its folio is allocated when stored).
    Open(Box<NewTicket>),
    /// Attach the message to an existing ticket, with these changes.
    Append {
        ticket_id: i64,
        folio: String,
        changes: Vec<Change>,
    },
    /// Store the message alone.
    None,
}

/// A ticket to open.
#[derive(Debug, Clone, PartialEq)]
pub struct NewTicket {
    pub requester: Requester,
    pub subject: String,
    pub language: String,
    /// A folio the mail mentioned that the sender may not append to.
    pub referenced_folio: Option<String>,
    /// `email` or `phone`.
    pub channel: &'static str,
    /// The phone agent or staff member who opened it for the requester.
    pub opened_by: Option<String>,
    /// CC'd addresses that receive public replies.
    pub participants: Vec<String>,
    pub routing: Routing,
}

/// A mail to queue. Its context lacks `folio` until the ticket's folio is allocated.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub template: &'static str,
    pub language: String,
    pub to: String,
    pub in_reply_to: Option<String>,
    pub references: Vec<String>,
    pub context: Value,
    /// A technician: the mail's Reply-To is their tokenised address for this ticket.
    pub staff: Option<String>,
    /// `auto-replied` (answers a message) or `auto-generated` (a notice).
    pub auto_submitted: &'static str,
    /// Carries the attachments of the message being decided (stored with it).
    pub with_attachments: bool,
}

/// Something worth keeping in the ticket's history besides messages and changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Event {
    /// `security`, `authenticated`, `bounce`, `suppressed`, `rate_limited` (per-address cap),
    /// `domain_cap`, `global_cap`, `commands_rejected` (and `changed`, added by the shell for
    /// each ticket change).
    pub kind: &'static str,
    pub detail: String,
}

/// Who wrote a message, relative to its ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Requester,
    Participant,
    Technician,
    Agent,
    Other,
    Automatic,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Requester => "requester",
            Role::Participant => "participant",
            Role::Technician => "technician",
            Role::Agent => "agent",
            Role::Other => "other",
            Role::Automatic => "automatic",
        }
    }
}

/// What is stored and sent for one message.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub action: TicketAction,
    pub replies: Vec<Reply>,
    pub events: Vec<Event>,
    pub reason: Reason,
    pub author: Role,
    /// Internal messages (notes, commands, unauthenticated staff mail) never reach requesters.
    pub internal: bool,
    /// An address to stop mailing for `limits.bounce_suppression` (it hard-bounced).
    pub failing_address: Option<String>,
}

/// The decision for one message.
// One decision exists per message of a batch, briefly: boxing the record would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Seen before (same Message-ID or content): nothing to store, just file it away.
    Duplicate,
    /// Store the message, change tickets, maybe answer.
    Record(Record),
}

impl Decision {
    pub fn reason(&self) -> Option<Reason> {
        match self {
            Decision::Duplicate => None,
            Decision::Record(r) => Some(r.reason),
        }
    }
}

/// At most this many CC'd addresses become participants of a ticket.
const MAX_PARTICIPANTS: usize = 10;

/// How many characters of the request the confirmation quotes back.
const SUMMARY_CHARS: usize = 500;

/// The longest subject (and attachment name) folio stores or puts in a mail.
pub const MAX_SUBJECT_CHARS: usize = 200;

/// Decides what to do with a message.
pub fn decide(a: &Analysis, ctx: &Context, policy: &Policy) -> Decision {
    if ctx.already_processed {
        return Decision::Duplicate;
    }
    let d = Decider { a, ctx, policy };
    Decision::Record(d.decide())
}

struct Decider<'a> {
    a: &'a Analysis,
    ctx: &'a Context<'a>,
    policy: &'a Policy,
}

impl Decider<'_> {
    fn sender(&self) -> &str {
        self.a.mail.from_email.as_deref().unwrap_or_default()
    }

    /// Who the sender is on `t`, judged by From alone: anyone can put any address in Reply-To.
    fn role_in(&self, t: &TicketRef) -> Role {
        let s = self.sender();
        let catalog = &self.policy.catalog;
        if catalog.technician(s).is_some() {
            Role::Technician
        } else if t.requester_email.eq_ignore_ascii_case(s) {
            Role::Requester
        } else if t.participants.iter().any(|p| p.eq_ignore_ascii_case(s)) {
            Role::Participant
        } else if catalog.agent(s).is_some() {
            Role::Agent
        } else {
            Role::Other
        }
    }

    fn decide(&self) -> Record {
        if self.a.verdict.is_automatic() {
            return self.automatic();
        }
        // The ticket this mail belongs to: by our Message-ID from anyone, by folio only from
        // someone who may write on it.
        // A technician's folio counts only in the subject: "parecido a MDA-2026-000007" in the
        // body of a new mail must not relay that mail to ticket 7's requester.
        let staff = self.policy.catalog.technician(self.sender()).is_some();
        let in_subject = self
            .policy
            .folio_format
            .find(&self.a.mail.subject)
            .is_some();
        let ticket = match (&self.ctx.thread_ticket, &self.ctx.referenced_ticket) {
            (Some(t), _) => Some((t, Reason::FollowUpByThread)),
            (None, Some(t)) if self.role_in(t) != Role::Other && (!staff || in_subject) => {
                Some((t, Reason::FollowUpByFolio))
            }
            _ => None,
        };
        // Queries come from requesters. The subject counts only on a new mail: a ticket whose
        // subject happens to be "Estado" must not turn every reply into a query.
        let query_subject = if self.a.mail.is_reply() {
            ""
        } else {
            self.a.mail.subject.as_str()
        };
        if let Some(q) = (!staff)
            .then(|| {
                command::parse_query(
                    &self.a.new_content,
                    query_subject,
                    &self.policy.folio_format,
                )
            })
            .flatten()
        {
            return self.query(q, ticket.map(|(t, _)| t));
        }
        match ticket {
            Some((t, how)) => match self.role_in(t) {
                Role::Technician => self.staff_reply(t, how),
                role => self.follow_up(t, how, role),
            },
            None => self.new_request(),
        }
    }

    // ---- automatic mail ----

    fn automatic(&self) -> Record {
        let mut r = Record {
            action: TicketAction::None,
            replies: vec![],
            events: vec![],
            reason: Reason::AutomaticRecorded,
            author: Role::Automatic,
            internal: true,
            failing_address: None,
        };
        let ticket = self.ctx.thread_ticket.as_ref().or(self
            .ctx
            .bounced
            .as_ref()
            .and_then(|b| b.ticket.as_ref()));
        if let Some(t) = ticket {
            r.action = append(t, vec![]);
            r.reason = Reason::AutomaticOnTicket;
        }
        let hard_bounce = self.a.verdict.kind == Some(AutoKind::Bounce)
            && !self.a.mail.signals.report_only_delayed;
        if let (Some(b), true) = (&self.ctx.bounced, hard_bounce) {
            r.reason = Reason::BounceOfOurMail;
            r.failing_address = Some(b.to.clone());
            r.events.push(Event {
                kind: "bounce",
                detail: format!(
                    "mail {} to {} bounced: {}",
                    b.outbox_id,
                    b.to,
                    first_line(&self.a.mail.body_text, 200)
                ),
            });
            // Tell the technician, unless the bounced mail was theirs (no notice loops).
            if let Some(t) = &b.ticket {
                if let Some(tech) = t.assignee.as_ref().filter(|a| **a != b.to) {
                    let context = json!({
                        "ticket": self.ticket_json(t),
                        "bounced_to": b.to,
                        "report": first_lines(&self.a.mail.body_text, 20),
                        "helpdesk": self.helpdesk_json(),
                    });
                    self.push_staff(&mut r, t, tech, "bounce_notice", context);
                }
            }
        }
        r
    }

    // ---- requests ----

    fn new_request(&self) -> Record {
        let a = self.a;
        let sender = self.sender();
        let catalog = &self.policy.catalog;
        let is_agent = catalog.agent(sender).is_some();
        let is_staff = catalog.is_staff(sender);

        // Acting for someone else (a phone note, a forward) takes the staff member's word for
        // who the requester is, and mails that person: the word needs proof (the staff
        // member's personal tokenised address among the recipients, or an aligned DKIM/SPF
        // pass from a trusted server), so a forged From cannot make folio mail, or open
        // tickets for, arbitrary addresses.
        let on_behalf = (is_agent && a.phone_note.is_some())
            || (is_staff
                && a.forward
                    .as_ref()
                    .is_some_and(|f| !f.requester.email.is_empty()));
        let vouched = self.personal_proof() || self.identity_pass().is_some();
        let mut unproven = None;
        if on_behalf && !vouched {
            unproven = Some(Event {
                kind: "security",
                detail: format!(
                    "mail from staff address {sender} without proof (not sent to their personal address, no aligned DKIM/SPF pass from a trusted server): opened as its own request, not on someone's behalf"
                ),
            });
        } else {
            // Phone agent's note: a ticket for the caller.
            if let (true, Some(note)) = (is_agent, &a.phone_note) {
                return self.phone_note(note);
            }
            // Staff forwarding a requester's mail: a ticket for the original sender.
            if let (true, Some(fwd)) = (is_staff, &a.forward) {
                if !fwd.requester.email.is_empty() && !catalog.is_staff(&fwd.requester.email) {
                    return self.opened_for(
                        fwd.requester.clone(),
                        &fwd.subject,
                        &fwd.body,
                        "email",
                        Reason::ForwardedByStaff,
                        None,
                    );
                }
            }
        }

        let requester = a.requester.clone();
        let subject = a.mail.subject.clone();
        let mut r = self.opened_for(
            requester,
            &subject,
            &a.mail.body_text,
            "email",
            Reason::NewTicket,
            None,
        );
        if let TicketAction::Open(t) = &mut r.action {
            t.referenced_folio = a.folio_reference.clone();
        }
        r.events.extend(unproven);
        r
    }

    fn phone_note(&self, note: &PhoneNote) -> Record {
        let agent = self.sender().to_string();
        let requester = Requester {
            email: note.email.clone().unwrap_or_default(),
            name: note.name.clone(),
            department: note.department.clone(),
            phone: note.phone.clone(),
        };
        let subject = note
            .detail
            .as_deref()
            .map(|d| first_line(d, 80))
            .unwrap_or_default();
        let detail = note.detail.clone().unwrap_or_default();
        self.opened_for(
            requester,
            &subject,
            &detail,
            "phone",
            Reason::PhoneNote,
            Some((agent, note)),
        )
    }

    /// Opens a ticket for `requester`: routing, confirmation (and the agent's copy), the
    /// technician's assignment notice.
    fn opened_for(
        &self,
        requester: Requester,
        subject: &str,
        body: &str,
        channel: &'static str,
        mut reason: Reason,
        agent: Option<(String, &PhoneNote)>,
    ) -> Record {
        // The subject goes into headers and every later mail: one line, of bounded length,
        // without a staff token.
        let subject =
            &crate::desk::tokens::redact_staff_addresses(&clean_line(subject, MAX_SUBJECT_CHARS));
        let a = self.a;
        let policy = self.policy;
        let empty = Workload::default();
        let routing = routing::route(
            &policy.catalog,
            subject,
            body,
            requester.department.as_deref(),
            self.ctx.workload.unwrap_or(&empty),
        );
        let requester_address = requester.email.to_lowercase();
        // Participants: the CC'd addresses (at most MAX_PARTICIPANTS: each public reply goes to
        // all of them), and the From address when replies go elsewhere (Reply-To), so the
        // person who wrote stays a party to their ticket.
        let mut participants: Vec<String> = Vec::new();
        if reason == Reason::NewTicket {
            let from = self.sender().to_lowercase();
            let cc = a.mail.cc.iter().filter(|_| policy.cc_participants);
            for x in std::iter::once(&from).chain(cc) {
                if *x != requester_address
                    && !x.is_empty()
                    && !policy.own_addresses.contains(x)
                    && !is_ours(x, &policy.helpdesk_address)
                    && !policy.catalog.is_staff(x)
                    && !participants.contains(x)
                    && participants.len() < MAX_PARTICIPANTS
                {
                    participants.push(x.clone());
                }
            }
        }

        let ticket = NewTicket {
            requester: requester.clone(),
            subject: subject.to_string(),
            language: policy.language.clone(),
            referenced_folio: None,
            channel,
            opened_by: agent.as_ref().map(|(e, _)| e.clone()).or_else(|| {
                (reason == Reason::ForwardedByStaff).then(|| self.sender().to_string())
            }),
            participants,
            routing: routing.clone(),
        };
        let mut r = Record {
            action: TicketAction::Open(Box::new(ticket)),
            replies: vec![],
            // The routing rules are stored on the ticket itself (tickets.routing).
            events: vec![],
            reason,
            author: match channel {
                "phone" => Role::Agent,
                _ if reason == Reason::ForwardedByStaff => Role::Technician,
                _ => Role::Requester,
            },
            internal: false,
            failing_address: None,
        };

        let missing = requester.missing();
        let (attachments, attachments_more) = self.attachments_json();
        // To an outside domain, by default, the confirmation quotes nothing the sender wrote
        // (subject, text, name, file names): otherwise anyone could make the help desk send
        // their text to any address they put in From.
        let confirmation_context = |copy_for_agent: bool, to: &str| {
            let quoted = policy.quote_outside_domains || !policy.is_outside(to);
            let mut context = json!({
                "subject": subject,
                "reply_subject": reply_subject(subject),
                // A staff member's tokenised addresses never reach a requester.
                "summary": crate::desk::tokens::redact_staff_addresses(&summary(body)),
                "quoted": quoted,
                "channel": channel,
                "agent_copy": copy_for_agent,
                "missing_fields": [],
                "requester": requester_json(&requester),
                "missing": {
                    "any": !missing.is_empty(),
                    "name": missing.contains(&MissingField::Name),
                    "department": missing.contains(&MissingField::Department),
                    "phone": missing.contains(&MissingField::Phone),
                    "email": requester.email.is_empty(),
                },
                "attachments": attachments,
                "attachments_more": attachments_more,
                "helpdesk": self.helpdesk_json(),
            });
            if !quoted {
                context["subject"] = json!("");
                context["reply_subject"] = json!("");
                context["summary"] = json!("");
                context["attachments"] = json!([]);
                context["attachments_more"] = json!(0);
                context["missing"]["any"] = json!(false);
                context["requester"] = json!({
                    "name": null,
                    "email": requester.email,
                    "department": null,
                    "phone": null,
                });
            }
            context
        };
        // The confirmation to the requester, threaded under their message (for a forward or
        // a phone note there is no message of theirs to thread under).
        let threaded = reason == Reason::NewTicket;
        if !requester_address.is_empty() {
            let to = requester_address.clone();
            if policy.own_addresses.contains(&to) || is_ours(&to, &policy.helpdesk_address) {
                reason = Reason::NewTicketReplyToOwnAddress;
            } else if let Some(e) = self.over_cap(&to, "confirmation") {
                reason = Reason::NewTicketRateLimited;
                r.events.push(e);
            } else {
                let context = confirmation_context(false, &to);
                self.push(
                    &mut r,
                    Reply {
                        template: "confirmation",
                        language: policy.language.clone(),
                        to,
                        in_reply_to: threaded.then(|| a.mail.message_id.clone()).flatten(),
                        references: if threaded { thread_of(&a.mail) } else { vec![] },
                        context,
                        staff: None,
                        auto_submitted: if threaded {
                            "auto-replied"
                        } else {
                            "auto-generated"
                        },
                        with_attachments: false,
                    },
                );
            }
        }
        r.reason = reason;
        // The agent's (or forwarding staff member's) copy, threaded under their mail.
        if channel == "phone" || r.author == Role::Technician {
            let mut context = confirmation_context(true, self.sender());
            if let Some((_, note)) = &agent {
                context["missing_fields"] = json!(note.missing());
            }
            self.push(
                &mut r,
                Reply {
                    template: "confirmation",
                    language: policy.language.clone(),
                    to: self.sender().to_string(),
                    in_reply_to: a.mail.message_id.clone(),
                    references: thread_of(&a.mail),
                    context,
                    staff: None,
                    auto_submitted: "auto-replied",
                    with_attachments: false,
                },
            );
        }
        if let Some(tech) = &routing.assignee {
            let context = json!({
                "ticket": {
                    "subject": subject,
                    "channel": channel,
                    "service": routing.service,
                    "service_name": policy.catalog.service(&routing.service).map(|s| s.name.clone()),
                    "type": routing.ticket_type.as_str(),
                    "priority": routing.priority.as_str(),
                    "rules": routing.rules,
                },
                "requester": requester_json(&requester),
                "detail": body,
                "attachments": attachments,
                "attachments_more": attachments_more,
                "opened_by": agent.as_ref().map(|(e, _)| e.clone()),
                "reassigned_by": null,
                "commands": guide_json(),
                "helpdesk": self.helpdesk_json(),
            });
            r.replies.push(Reply {
                template: "assignment",
                language: policy.language.clone(),
                to: tech.clone(),
                in_reply_to: None,
                references: a.mail.message_id.iter().cloned().collect(),
                context,
                staff: Some(tech.clone()),
                auto_submitted: "auto-generated",
                with_attachments: true,
            });
        }
        r
    }

    // ---- follow-ups ----

    fn follow_up(&self, t: &TicketRef, how: Reason, role: Role) -> Record {
        let mut changes = vec![];
        // The requester answering a ticket that waits on them or was resolved reopens it.
        if matches!(role, Role::Requester | Role::Participant)
            && matches!(t.status, Status::Pending | Status::Resolved)
        {
            changes.push(Change::Status(Status::Open));
        }
        let mut r = Record {
            action: append(t, changes),
            replies: vec![],
            events: vec![],
            reason: how,
            author: role,
            internal: false,
            failing_address: None,
        };
        self.notify_assignee(&mut r, t, role);
        r
    }

    /// Sends the assignee the new text of a follow-up (never to the writer themself).
    fn notify_assignee(&self, r: &mut Record, t: &TicketRef, role: Role) {
        let Some(tech) = t.assignee.as_ref().filter(|a| a.as_str() != self.sender()) else {
            return;
        };
        let context = json!({
            "ticket": self.ticket_json(t),
            "author": {
                "name": self.a.mail.from_name,
                "email": self.sender(),
                "role": role.as_str(),
            },
            "text": self.a.new_content,
            "unauthenticated": false,
            "attachments": self.attachments_json().0,
            "attachments_more": self.attachments_json().1,
            "commands": guide_json(),
            "helpdesk": self.helpdesk_json(),
        });
        self.push_staff_with(r, t, tech, "follow_up", context, true);
    }

    /// A technician's reply: with proof, relay and apply commands; without, a follow-up.
    fn staff_reply(&self, t: &TicketRef, how: Reason) -> Record {
        let a = self.a;
        let sender = self.sender();
        let commands = command::parse_commands(&a.new_content);
        let proof = self.proof(t);
        let Some(proof) = proof else {
            let mut r = self.follow_up(t, how, Role::Technician);
            r.reason = Reason::StaffUnauthenticated;
            r.internal = true;
            r.events.push(Event {
                kind: "security",
                detail: format!(
                    "mail from technician address {sender} without proof (no tokenised reply address, no aligned DKIM/SPF pass from a trusted server): {} ignored, nothing relayed",
                    if commands.commands.is_empty() && commands.errors.is_empty() {
                        "no commands".to_string()
                    } else {
                        format!("{} command line(s)", commands.commands.len() + commands.errors.len())
                    }
                ),
            });
            // The real technician hears about it (the forged sender never does: it goes to
            // the configured address).
            // Only for a mail that tried commands: a technician's mailbox rule that forwards
            // folio's notices back must not get a warning per notice.
            let tried_commands = !commands.commands.is_empty() || !commands.errors.is_empty();
            if tried_commands && t.assignee.as_deref() == Some(sender) {
                let context = json!({
                    "ticket": self.ticket_json(t),
                    "author": {"name": a.mail.from_name, "email": sender, "role": "technician"},
                    "text": a.new_content,
                    "unauthenticated": true,
                    "attachments": self.attachments_json().0,
                    "attachments_more": self.attachments_json().1,
                    "commands": guide_json(),
                    "helpdesk": self.helpdesk_json(),
                });
                self.push_staff(&mut r, t, sender, "follow_up", context);
            }
            return r;
        };

        let mut r = Record {
            action: append(t, vec![]),
            replies: vec![],
            events: vec![],
            reason: Reason::StaffReply,
            author: Role::Technician,
            internal: true,
            failing_address: None,
        };
        let applied = if commands.errors.is_empty() {
            ticket::apply(&t.state(), &commands.commands, &self.policy.catalog)
        } else {
            Err(commands
                .errors
                .iter()
                .map(|e| format!("{}: {}", e.line, e.message))
                .collect())
        };
        let changes = match applied {
            Err(errors) => {
                r.reason = Reason::StaffCommandsRejected;
                r.events.push(Event {
                    kind: "commands_rejected",
                    detail: errors.join("; "),
                });
                let context = json!({
                    "ticket": self.ticket_json(t),
                    "applied": [],
                    "errors": errors,
                    "relayed": false,
                    "commands": guide_json(),
                    "helpdesk": self.helpdesk_json(),
                });
                self.push_staff(&mut r, t, sender, "command_result", context);
                return r;
            }
            Ok(c) => c,
        };
        r.events.push(Event {
            kind: "authenticated",
            detail: format!("technician {sender}: {proof}"),
        });

        // Relay the text to the requester and participants, unless it is a note.
        let resolve_text = commands.commands.iter().find_map(|c| match c {
            Command::Resolve(t) => Some(crate::desk::tokens::redact_staff_addresses(
                t.as_deref().unwrap_or_default(),
            )),
            _ => None,
        });
        let public_text = crate::desk::tokens::redact_staff_addresses(commands.body.trim());
        let relay = !commands.is_note() && (!public_text.is_empty() || resolve_text.is_some());
        let mut relayed = false;
        if relay {
            r.internal = false;
            let template = if resolve_text.is_some() {
                "resolved"
            } else {
                "reply"
            };
            let technician = self.policy.catalog.technician(sender);
            for to in std::iter::once(&t.requester_email).chain(t.participants.iter()) {
                if to.is_empty() {
                    continue;
                }
                let context = json!({
                    "ticket": self.public_ticket_json(t, to),
                    "text": public_text,
                    "resolution": resolve_text,
                    "technician": {
                        "first_name": technician.map(|x| first_name(&x.name)),
                        "name": technician.map(|x| x.name.clone()),
                    },
                    "helpdesk": self.helpdesk_json(),
                });
                relayed |= self.push_capped(
                    &mut r,
                    Reply {
                        template,
                        language: t.language.clone(),
                        to: to.clone(),
                        in_reply_to: t.opening_message_id.clone(),
                        references: t.thread(),
                        context,
                        staff: None,
                        auto_submitted: "auto-generated",
                        with_attachments: true,
                    },
                    false,
                );
            }
        }
        // Confirm the commands to the technician; notify a new assignee.
        if !commands.commands.is_empty() {
            let context = json!({
                "ticket": self.ticket_json(t),
                "applied": commands.commands.iter().map(Command::describe).collect::<Vec<_>>(),
                "errors": [],
                "relayed": relayed,
                "commands": guide_json(),
                "helpdesk": self.helpdesk_json(),
            });
            self.push_staff(&mut r, t, sender, "command_result", context);
        }
        for c in &changes {
            if let Change::Assignee(new) = c {
                if new != sender {
                    let context = json!({
                        "ticket": {
                            "subject": clean_line(&t.subject, MAX_SUBJECT_CHARS),
                            "channel": null,
                            "service": t.service,
                            "service_name": self.policy.catalog.service(&t.service).map(|s| s.name.clone()),
                            "type": null,
                            "priority": t.priority.as_str(),
                            "rules": [],
                        },
                        "requester": {
                            "name": t.requester_name,
                            "email": t.requester_email,
                            "department": null,
                            "phone": null,
                        },
                        "detail": public_text,
                        "attachments": [],
                        "attachments_more": 0,
                        "opened_by": null,
                        "reassigned_by": sender,
                        "commands": guide_json(),
                        "helpdesk": self.helpdesk_json(),
                    });
                    self.push_staff(&mut r, t, new, "assignment", context);
                }
            }
        }
        r.action = append(t, changes);
        r
    }

    /// The sender's domain authenticated by a trusted server (aligned DKIM/SPF pass), described.
    fn identity_pass(&self) -> Option<String> {
        let domain = self.sender().rsplit_once('@').map(|(_, d)| d)?;
        crate::inbound::authentication::aligned_pass(
            &self.a.mail.authentication_results,
            &self.policy.trusted_authserv_ids,
            domain,
        )
    }

    /// Whether the mail was sent to the sender's personal tokenised address (`tokens`).
    fn personal_proof(&self) -> bool {
        let m = &self.a.mail;
        let recipients = m.to.iter().chain(&m.cc).chain(&m.envelope_to);
        self.policy
            .tokens
            .verify_personal_address(recipients, self.sender())
    }

    /// Proof that a technician's mail is really theirs, described; `None` without proof.
    fn proof(&self, t: &TicketRef) -> Option<String> {
        let m = &self.a.mail;
        let sender = self.sender();
        let recipients = m.to.iter().chain(&m.cc).chain(&m.envelope_to);
        if self
            .policy
            .tokens
            .verify_staff_address(recipients, &t.folio, sender)
        {
            return Some("replied to the ticket's tokenised address".into());
        }
        self.identity_pass()
    }

    // ---- queries ----

    fn query(&self, q: Query, matched: Option<&TicketRef>) -> Record {
        // Ticket data goes to the From address, the one judged a party to the ticket: a
        // Reply-To could be anyone's.
        let sender_address = self.sender().to_lowercase();
        let mut r = Record {
            action: TicketAction::None,
            replies: vec![],
            events: vec![],
            reason: Reason::StatusQuery,
            author: Role::Other,
            internal: false,
            failing_address: None,
        };
        let (template, context) = match q {
            Query::MyTickets => {
                // The list is of the From address's tickets (looked up so), and goes there.
                (
                    "my_tickets",
                    json!({
                        "tickets": self.ctx.sender_tickets.iter().map(|t| self.public_ticket_json(t, &sender_address)).collect::<Vec<_>>(),
                        "helpdesk": self.helpdesk_json(),
                    }),
                )
            }
            Query::Status(folio) => {
                // The ticket asked about: the folio typed, else the one the mail answers.
                let target = match &folio {
                    Some(f) => [
                        self.ctx.thread_ticket.as_ref(),
                        self.ctx.referenced_ticket.as_ref(),
                    ]
                    .into_iter()
                    .flatten()
                    .find(|t| t.folio == *f),
                    None => matched,
                };
                match target.filter(|t| self.role_in(t) != Role::Other) {
                    Some(t) => {
                        r.action = append(t, vec![]);
                        r.author = self.role_in(t);
                        (
                            "status",
                            json!({
                                "ticket": self.public_ticket_json(t, &sender_address),
                                "helpdesk": self.helpdesk_json(),
                            }),
                        )
                    }
                    None => {
                        r.reason = Reason::StatusQueryDenied;
                        (
                            "status_denied",
                            json!({
                                "folio_asked": folio,
                                "helpdesk": self.helpdesk_json(),
                            }),
                        )
                    }
                }
            }
        };
        if sender_address.is_empty() || is_ours(&sender_address, &self.policy.helpdesk_address) {
            return r;
        }
        // An answer to an outside domain quotes nothing a sender wrote: a ticket's subject may
        // be a stranger's text (opened with the victim's address in Reply-To, then asked
        // about with a forged From).
        let mut context = context;
        if !self.policy.quote_outside_domains && self.policy.is_outside(&sender_address) {
            let blank = |t: &mut Value| {
                t["subject"] = json!("");
                t["reply_subject"] = json!(reply_subject(""));
            };
            if context["ticket"].is_object() {
                blank(&mut context["ticket"]);
            }
            if let Some(list) = context["tickets"].as_array_mut() {
                list.iter_mut().for_each(blank);
            }
        }
        self.push(
            &mut r,
            Reply {
                template,
                language: self.policy.language.clone(),
                to: sender_address,
                in_reply_to: self.a.mail.message_id.clone(),
                references: thread_of(&self.a.mail),
                context,
                staff: None,
                auto_submitted: "auto-replied",
                with_attachments: false,
            },
        );
        r
    }

    // ---- helpers ----

    /// Queues a reply unless its address is failing or over the cap. Staff get many notices
    /// legitimately, so their cap is ten times higher (but there is one: a technician's mailbox
    /// rule forwarding notices back to the help desk must not loop forever).
    fn push(&self, r: &mut Record, reply: Reply) -> bool {
        self.push_capped(r, reply, true)
    }

    /// Like [`Decider::push`]; `capped = false` for a technician's relayed reply to the
    /// requester: an authenticated person wrote it, it cannot be a loop, and the requester must
    /// not miss it because robots used up their cap.
    fn push_capped(&self, r: &mut Record, reply: Reply, capped: bool) -> bool {
        let to = reply.to.as_str();
        if self.ctx.is_failing(to) {
            r.events.push(Event {
                kind: "suppressed",
                detail: format!(
                    "no {} to {to}: the address bounced recently",
                    reply.template
                ),
            });
            return false;
        }
        if let Some(e) = capped.then(|| self.over_cap(to, reply.template)).flatten() {
            r.events.push(e);
            return false;
        }
        r.replies.push(reply);
        true
    }

    /// The event of the first cap a mail to `to` would break (counting what the outbox and the
    /// earlier messages of the batch hold), or `None`:
    /// - per address, its `+tag` removed, within `limits.auto_reply_window` (ten times higher
    ///   for staff): stops loops with one correspondent;
    /// - per outside domain and hour: stops someone spreading the help desk's mail over a
    ///   domain's addresses;
    /// - all automatic mail per hour: the last stop of a storm.
    fn over_cap(&self, to: &str, template: &str) -> Option<Event> {
        let p = self.policy;
        let cap = if p.catalog.is_staff(to) {
            p.max_auto_replies_per_address.saturating_mul(10)
        } else {
            p.max_auto_replies_per_address
        };
        let n = self.ctx.recent(to);
        if n >= cap {
            return Some(Event {
                kind: "rate_limited",
                detail: format!(
                    "no {template} to {to}: per-address cap reached ({n} to {} in the window, limits.max_auto_replies_per_address)",
                    cap_key(to)
                ),
            });
        }
        let n = self.ctx.recent_in_domain(to);
        if p.is_outside(to) && n >= p.max_auto_replies_per_domain_per_hour {
            return Some(Event {
                kind: "domain_cap",
                detail: format!(
                    "no {template} to {to}: {n} mails to {} in the last hour (limits.max_auto_replies_per_domain_per_hour)",
                    domain_of(to)
                ),
            });
        }
        if self.ctx.recent_total >= p.max_auto_replies_per_hour {
            return Some(Event {
                kind: "global_cap",
                detail: format!(
                    "no {template} to {to}: {} automatic mails in the last hour (limits.max_auto_replies_per_hour)",
                    self.ctx.recent_total
                ),
            });
        }
        None
    }

    /// The message's attachments as mails list them: at most `limits.max_listed_attachments`,
    /// and how many more there are (a mail of 50,000 empty parts once made a 1.7 MB
    /// confirmation).
    fn attachments_json(&self) -> (Vec<Value>, usize) {
        let all = &self.a.mail.attachments;
        let max = self.policy.max_listed_attachments;
        let listed = all
            .iter()
            .take(max)
            .map(|a| json!({"name": clean_line(&a.name, MAX_SUBJECT_CHARS), "size": a.size, "content_type": a.content_type}))
            .collect();
        (listed, all.len().saturating_sub(max))
    }

    /// Queues a notice to a technician; its Reply-To will be their tokenised address.
    fn push_staff(
        &self,
        r: &mut Record,
        t: &TicketRef,
        to: &str,
        template: &'static str,
        context: Value,
    ) {
        self.push_staff_with(r, t, to, template, context, false);
    }

    /// Like [`Decider::push_staff`]; `with_attachments`: the message's files go along.
    fn push_staff_with(
        &self,
        r: &mut Record,
        t: &TicketRef,
        to: &str,
        template: &'static str,
        context: Value,
        with_attachments: bool,
    ) {
        self.push(
            r,
            Reply {
                template,
                language: self.policy.language.clone(),
                to: to.to_string(),
                in_reply_to: None,
                references: t.thread(),
                context,
                staff: Some(to.to_string()),
                auto_submitted: "auto-generated",
                with_attachments,
            },
        );
    }

    fn helpdesk_json(&self) -> Value {
        let p = self.policy;
        json!({
            "name": p.helpdesk_name,
            "institution": p.institution,
            "phone": p.helpdesk_phone,
            "address": p.helpdesk_address,
        })
    }

    /// [`Decider::ticket_json`] for a mail to `to` outside the staff: the requester's name (it
    /// may come from the directory) only in mail to the requester.
    fn public_ticket_json(&self, t: &TicketRef, to: &str) -> Value {
        let mut v = self.ticket_json(t);
        if !t.requester_email.eq_ignore_ascii_case(to) && !self.policy.catalog.is_staff(to) {
            v["requester_name"] = Value::Null;
        }
        v
    }

    fn ticket_json(&self, t: &TicketRef) -> Value {
        let catalog = &self.policy.catalog;
        let assignee = t.assignee.as_deref().and_then(|a| catalog.technician(a));
        let subject =
            crate::desk::tokens::redact_staff_addresses(&clean_line(&t.subject, MAX_SUBJECT_CHARS));
        json!({
            "folio": t.folio,
            "subject": subject,
            "reply_subject": reply_subject(&subject),
            "status": t.status.as_str(),
            "priority": t.priority.as_str(),
            "service": t.service,
            "service_name": catalog.service(&t.service).map(|s| s.name.clone()),
            "assignee_first_name": assignee.map(|x| first_name(&x.name)),
            "assignee": t.assignee,
            "requester_email": t.requester_email,
            "requester_name": t.requester_name,
            "created_at": t.created_at.format("%Y-%m-%d %H:%M UTC").to_string(),
            "updated_at": t.updated_at.format("%Y-%m-%d %H:%M UTC").to_string(),
        })
    }
}

fn append(t: &TicketRef, changes: Vec<Change>) -> TicketAction {
    TicketAction::Append {
        ticket_id: t.id,
        folio: t.folio.clone(),
        changes,
    }
}

/// Whether `address` is the help desk's own address or one of its plus-addresses.
fn is_ours(address: &str, helpdesk: &str) -> bool {
    let Some((local, domain)) = helpdesk.rsplit_once('@') else {
        return false;
    };
    let Some((l, d)) = address.rsplit_once('@') else {
        return false;
    };
    d.eq_ignore_ascii_case(domain)
        && (l.eq_ignore_ascii_case(local)
            || l.to_lowercase()
                .starts_with(&format!("{}+", local.to_lowercase())))
}

/// References for a reply to `mail`: its own references plus its Message-ID.
fn thread_of(mail: &InboundMail) -> Vec<String> {
    let mut references = mail.references.clone();
    if let Some(id) = &mail.message_id {
        if !references.contains(id) {
            references.push(id.clone());
        }
    }
    references
}

fn requester_json(r: &Requester) -> Value {
    json!({
        "name": r.name,
        "email": r.email,
        "department": r.department,
        "phone": r.phone,
    })
}

fn guide_json() -> Vec<Value> {
    command::GUIDE
        .iter()
        .map(|(es, en)| json!({"es": es, "en": en}))
        .collect()
}

fn first_name(name: &str) -> String {
    name.split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string()
}

fn first_line(text: &str, max: usize) -> String {
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("");
    line.chars().take(max).collect()
}

fn first_lines(text: &str, n: usize) -> String {
    text.lines().take(n).collect::<Vec<_>>().join("\n")
}

/// `text` as one line of at most `max` characters: control characters (CR, LF, tabs, …)
/// become spaces, whitespace runs collapse, and a cut ends in `…`.
pub fn clean_line(text: &str, max: usize) -> String {
    let line = text
        .split(|c: char| c.is_control() || c.is_whitespace())
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    if line.chars().count() <= max {
        return line;
    }
    let mut cut: String = line.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// `Re: <subject>` without stacking prefixes; a placeholder for an empty subject.
pub fn reply_subject(subject: &str) -> String {
    let s = crate::inbound::subject::strip_prefixes(subject);
    if s.is_empty() {
        return "(sin asunto)".into();
    }
    format!("Re: {s}")
}

/// The first part of the request, cut at a word boundary, with whitespace runs collapsed.
pub fn summary(body: &str) -> String {
    let lines: Vec<&str> = body
        .lines()
        .map(str::trim_end)
        .filter(|l| !l.trim_start().starts_with('>'))
        .collect();
    let text = lines.join("\n");
    let text = text.trim();
    if text.chars().count() <= SUMMARY_CHARS {
        return text.to_string();
    }
    let cut: String = text.chars().take(SUMMARY_CHARS).collect();
    let cut = match cut.rfind(char::is_whitespace) {
        Some(i) if i > SUMMARY_CHARS / 2 => &cut[..i],
        _ => &cut[..],
    };
    format!("{}…", cut.trim_end())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::desk::requester::Directory;
    use chrono::TimeZone;
    use std::path::Path;

    const HD: &str = "helpdesk@example.test";

    fn policy() -> Policy {
        let mut p = Policy::with_defaults(HD, Tokens::new(b"decide-tests".to_vec()));
        p.max_auto_replies_per_address = 2;
        p.catalog = Arc::new(
            Catalog::parse(
                Path::new("catalog.toml"),
                "[[group]]\nid='g'\n\
                 [[technician]]\nname='Tomás Uno'\nemail='tech1@example.test'\ngroups=['g']\n\
                 [[technician]]\nname='Teresa Dos'\nemail='tech2@example.test'\ngroups=['g']\n\
                 [[agent]]\nname='Agente'\nemail='agent1@example.test'\n\
                 [[service]]\nid='correo'\nname='Correo'\ngroup='g'\nkeywords=['correo']\n",
            )
            .unwrap(),
        );
        p
    }

    fn ticket() -> TicketRef {
        TicketRef {
            id: 7,
            folio: "MDA-2026-000007".into(),
            status: Status::Open,
            subject: "Impresora".into(),
            requester_email: "ana@example.test".into(),
            requester_name: Some("Ana".into()),
            participants: vec!["carol@example.test".into()],
            assignee: Some("tech1@example.test".into()),
            priority: Priority::Media,
            service: "correo".into(),
            language: "es".into(),
            created_at: Utc.with_ymd_and_hms(2026, 11, 26, 10, 0, 0).unwrap(),
            updated_at: Utc.with_ymd_and_hms(2026, 11, 26, 10, 0, 0).unwrap(),
            opening_message_id: Some("a1@client.test".into()),
        }
    }

    fn analysis(from: &str, to: &str, subject: &str, body: &str, extra: &str) -> Analysis {
        let raw = format!(
            "From: {from}\r\nTo: {to}\r\n{extra}Subject: {subject}\r\nMessage-ID: <m1@client.test>\r\n\r\n{body}\r\n"
        );
        crate::desk::analysis::analyze(raw.as_bytes(), &Directory::default(), &policy(), u64::MAX)
            .unwrap()
    }

    fn record(a: &Analysis, ctx: &Context) -> Record {
        match decide(a, ctx, &policy()) {
            Decision::Record(r) => r,
            Decision::Duplicate => panic!("unexpected duplicate"),
        }
    }

    fn on_ticket() -> Context<'static> {
        Context {
            thread_ticket: Some(ticket()),
            ..Context::default()
        }
    }

    #[test]
    fn new_request_is_routed_confirmed_threaded_and_notified() {
        let a = analysis(
            "Ana <ana@example.test>",
            HD,
            "No llega el correo",
            "Hola",
            "Cc: carol@example.test\r\n",
        );
        let r = record(&a, &Context::default());
        assert_eq!(r.reason, Reason::NewTicket);
        let TicketAction::Open(t) = &r.action else {
            panic!()
        };
        assert_eq!(t.routing.service, "correo");
        assert_eq!(t.routing.assignee.as_deref(), Some("tech1@example.test"));
        assert_eq!(t.participants, vec!["carol@example.test"]);
        let templates: Vec<_> = r
            .replies
            .iter()
            .map(|x| (x.template, x.to.as_str()))
            .collect();
        assert_eq!(
            templates,
            vec![
                ("confirmation", "ana@example.test"),
                ("assignment", "tech1@example.test")
            ]
        );
        assert_eq!(r.replies[0].in_reply_to.as_deref(), Some("m1@client.test"));
        assert_eq!(r.replies[1].staff.as_deref(), Some("tech1@example.test"));
    }

    #[test]
    fn duplicates_rate_limit_and_automatic_mail() {
        let a = analysis("ana@example.test", HD, "x", "y", "");
        let dup = Context {
            already_processed: true,
            ..Context::default()
        };
        assert_eq!(decide(&a, &dup, &policy()), Decision::Duplicate);
        let recent: HashMap<String, u32> = [("ana@example.test".to_string(), 2)].into();
        let busy = Context {
            recent_mails: Some(&recent),
            ..Context::default()
        };
        let r = record(&a, &busy);
        assert_eq!(r.reason, Reason::NewTicketRateLimited);
        assert!(r.replies.iter().all(|x| x.to != "ana@example.test"));
        let ooo = analysis(
            "ana@example.test",
            HD,
            "Fuera",
            "x",
            "Auto-Submitted: auto-replied\r\n",
        );
        let r = record(&ooo, &on_ticket());
        assert_eq!(r.reason, Reason::AutomaticOnTicket);
        assert!(r.replies.is_empty());
        assert!(matches!(r.action, TicketAction::Append { ref changes, .. } if changes.is_empty()));
    }

    #[test]
    fn a_folio_counts_only_for_requester_participants_and_staff() {
        let by_folio = |from: &str| {
            let a = analysis(from, HD, "RE: [Folio MDA-2026-000007]", "más datos", "");
            record(
                &a,
                &Context {
                    referenced_ticket: Some(ticket()),
                    ..Context::default()
                },
            )
        };
        assert_eq!(by_folio("ana@example.test").reason, Reason::FollowUpByFolio);
        assert_eq!(
            by_folio("carol@example.test").reason,
            Reason::FollowUpByFolio
        );
        let stranger = by_folio("eve@example.test");
        assert_eq!(
            stranger.reason,
            Reason::NewTicket,
            "a stranger cannot write on it"
        );
        let TicketAction::Open(t) = &stranger.action else {
            panic!()
        };
        assert_eq!(t.referenced_folio.as_deref(), Some("MDA-2026-000007"));
    }

    #[test]
    fn requester_follow_up_notifies_the_assignee_and_reopens_a_resolved_ticket() {
        let a = analysis("ana@example.test", HD, "RE: x", "Sigue igual", "");
        let mut t = ticket();
        t.status = Status::Resolved;
        let r = record(
            &a,
            &Context {
                thread_ticket: Some(t),
                ..Context::default()
            },
        );
        assert!(
            matches!(&r.action, TicketAction::Append { changes, .. } if changes == &vec![Change::Status(Status::Open)])
        );
        assert_eq!(r.replies.len(), 1);
        assert_eq!(
            (r.replies[0].template, r.replies[0].to.as_str()),
            ("follow_up", "tech1@example.test")
        );
    }

    #[test]
    fn technician_commands_need_proof() {
        let p = policy();
        let token = p
            .tokens
            .staff_address(HD, "MDA-2026-000007", "tech1@example.test");
        // With the tokenised address: applied, confirmed, and the text relayed.
        let a = analysis(
            "tech1@example.test",
            &token,
            "RE: x",
            "#prioridad alta\nYa casi queda.",
            "",
        );
        let r = record(&a, &on_ticket());
        assert_eq!(r.reason, Reason::StaffReply);
        assert!(
            matches!(&r.action, TicketAction::Append { changes, .. } if changes == &vec![Change::Priority(Priority::Alta)])
        );
        let sent: Vec<_> = r
            .replies
            .iter()
            .map(|x| (x.template, x.to.as_str()))
            .collect();
        assert_eq!(
            sent,
            vec![
                ("reply", "ana@example.test"),
                ("reply", "carol@example.test"),
                ("command_result", "tech1@example.test")
            ]
        );
        assert_eq!(r.replies[0].context["text"], "Ya casi queda.");
        // Another technician's token, or none: ignored, nothing relayed, a security event.
        let other = p
            .tokens
            .staff_address(HD, "MDA-2026-000007", "tech2@example.test");
        for to in [HD.to_string(), other] {
            let a = analysis("tech1@example.test", &to, "RE: x", "#cerrar", "");
            let r = record(&a, &on_ticket());
            assert_eq!(r.reason, Reason::StaffUnauthenticated);
            assert!(
                matches!(&r.action, TicketAction::Append { changes, .. } if changes.is_empty())
            );
            assert!(r.events.iter().any(|e| e.kind == "security"));
            assert!(
                r.replies.iter().all(|x| x.to == "tech1@example.test"),
                "only the real technician is told"
            );
        }
        // A trusted server's aligned DKIM pass is proof too.
        let mut p = policy();
        p.trusted_authserv_ids = vec!["mx.example.test".into()];
        let a = analysis(
            "tech1@example.test",
            HD,
            "RE: x",
            "#nota\ninterno",
            "Authentication-Results: mx.example.test; dkim=pass header.d=example.test\r\n",
        );
        let Decision::Record(r) = decide(&a, &on_ticket(), &p) else {
            panic!()
        };
        assert_eq!(r.reason, Reason::StaffReply);
        assert!(r.internal);
        assert!(
            r.replies.iter().all(|x| x.template == "command_result"),
            "a note reaches no requester"
        );
    }

    #[test]
    fn invalid_commands_change_nothing() {
        let p = policy();
        let token = p
            .tokens
            .staff_address(HD, "MDA-2026-000007", "tech1@example.test");
        let a = analysis(
            "tech1@example.test",
            &token,
            "RE: x",
            "#prioridad alta\n#reabrir\nTexto",
            "",
        );
        let r = record(&a, &on_ticket());
        assert_eq!(r.reason, Reason::StaffCommandsRejected);
        assert!(matches!(&r.action, TicketAction::Append { changes, .. } if changes.is_empty()));
        assert_eq!(r.replies.len(), 1);
        assert_eq!(r.replies[0].template, "command_result");
        assert!(r.replies[0].context["errors"][0]
            .as_str()
            .unwrap()
            .contains("#reabrir"));
    }

    #[test]
    fn phone_note_and_queries() {
        let proof = policy().tokens.personal_address(HD, "agent1@example.test");
        let a = analysis(
            "agent1@example.test",
            &proof,
            "Llamada",
            "Nombre: Bob\nCorreo: bob@example.test\nDetalle: no llega el correo",
            "",
        );
        let r = record(&a, &Context::default());
        assert_eq!(r.reason, Reason::PhoneNote);
        let TicketAction::Open(t) = &r.action else {
            panic!()
        };
        assert_eq!(
            (t.channel, t.requester.email.as_str()),
            ("phone", "bob@example.test")
        );
        assert_eq!(t.opened_by.as_deref(), Some("agent1@example.test"));
        let to: Vec<_> = r.replies.iter().map(|x| x.to.as_str()).collect();
        assert_eq!(
            to,
            vec![
                "bob@example.test",
                "agent1@example.test",
                "tech1@example.test"
            ]
        );

        let ask = |from: &str| {
            let a = analysis(from, HD, "Consulta", "estado MDA-2026-000007", "");
            record(
                &a,
                &Context {
                    referenced_ticket: Some(ticket()),
                    ..Context::default()
                },
            )
        };
        let mine = ask("ana@example.test");
        assert_eq!(
            (mine.reason, mine.replies[0].template),
            (Reason::StatusQuery, "status")
        );
        let theirs = ask("eve@example.test");
        assert_eq!(
            (theirs.reason, theirs.replies[0].template),
            (Reason::StatusQueryDenied, "status_denied")
        );
        assert_eq!(theirs.action, TicketAction::None);
        assert!(
            !theirs.replies[0].context.to_string().contains("Impresora"),
            "reveals nothing"
        );
        // A forged From with one's own Reply-To: the status goes to the real requester.
        let a = analysis(
            "ana@example.test",
            HD,
            "Consulta",
            "estado MDA-2026-000007",
            "Reply-To: eve@example.test\r\n",
        );
        let r = record(
            &a,
            &Context {
                referenced_ticket: Some(ticket()),
                ..Context::default()
            },
        );
        assert_eq!(r.replies[0].to, "ana@example.test");
    }

    #[test]
    fn reply_to_never_makes_a_stranger_a_party() {
        let ctx = || Context {
            referenced_ticket: Some(ticket()),
            ..Context::default()
        };
        // Eve's own domain, Ana's address in Reply-To: not Ana's follow-up.
        let a = analysis(
            "eve@evil.test",
            HD,
            "Re: [Folio MDA-2026-000007]",
            "ciérrenlo",
            "Reply-To: ana@example.test\r\n",
        );
        let r = record(&a, &ctx());
        assert_eq!(r.reason, Reason::NewTicket);
        // Nor does it get Ana's tickets or ticket data.
        let a = analysis(
            "eve@evil.test",
            HD,
            "mis folios",
            "",
            "Reply-To: ana@example.test\r\n",
        );
        let r = record(
            &a,
            &Context {
                sender_tickets: vec![],
                ..Context::default()
            },
        );
        assert_eq!(r.replies[0].template, "my_tickets");
        assert_eq!(r.replies[0].to, "eve@evil.test");
        let a = analysis(
            "eve@evil.test",
            HD,
            "x",
            "estado MDA-2026-000007",
            "Reply-To: ana@example.test\r\n",
        );
        let r = record(&a, &ctx());
        assert_eq!(
            (r.reason, r.replies[0].to.as_str()),
            (Reason::StatusQueryDenied, "eve@evil.test")
        );
    }

    #[test]
    fn a_technicians_folio_counts_in_the_subject_only() {
        let p = policy();
        let token = p
            .tokens
            .staff_address(HD, "MDA-2026-000007", "tech1@example.test");
        let ctx = || Context {
            referenced_ticket: Some(ticket()),
            ..Context::default()
        };
        let body_only = analysis(
            "tech1@example.test",
            &token,
            "Nuevo problema",
            "Parecido a MDA-2026-000007.",
            "",
        );
        assert_eq!(record(&body_only, &ctx()).reason, Reason::NewTicket);
        let in_subject = analysis(
            "tech1@example.test",
            &token,
            "RE: [Folio MDA-2026-000007]",
            "Listo.",
            "",
        );
        assert_eq!(record(&in_subject, &ctx()).reason, Reason::StaffReply);
    }

    #[test]
    fn a_reply_to_a_ticket_called_estado_is_not_a_query() {
        let mut t = ticket();
        t.subject = "Estado".into();
        let a = analysis(
            "ana@example.test",
            HD,
            "RE: Estado",
            "Sigue sin funcionar",
            "",
        );
        let r = record(
            &a,
            &Context {
                thread_ticket: Some(t),
                ..Context::default()
            },
        );
        assert_eq!(r.reason, Reason::FollowUpByThread);
    }

    #[test]
    fn relays_ignore_the_cap_and_staff_have_a_higher_one() {
        let p = policy();
        let token = p
            .tokens
            .staff_address(HD, "MDA-2026-000007", "tech1@example.test");
        let recent: HashMap<String, u32> = [
            ("ana@example.test".to_string(), 50),
            ("tech1@example.test".to_string(), 5),
        ]
        .into();
        let ctx = Context {
            thread_ticket: Some(ticket()),
            recent_mails: Some(&recent),
            ..Context::default()
        };
        let a = analysis(
            "tech1@example.test",
            &token,
            "RE: x",
            "#prioridad alta\nYa quedó.",
            "",
        );
        let r = record(&a, &ctx);
        let to: Vec<_> = r
            .replies
            .iter()
            .map(|x| (x.template, x.to.as_str()))
            .collect();
        assert!(to.contains(&("reply", "ana@example.test")), "{to:?}");
        let result = r
            .replies
            .iter()
            .find(|x| x.template == "command_result")
            .unwrap();
        assert_eq!(result.context["relayed"], true);
        // A technician over ten times the cap gets no more notices (a forwarding loop ends).
        let looped: HashMap<String, u32> = [("tech1@example.test".to_string(), 19)].into();
        let a = analysis("ana@example.test", HD, "RE: x", "otra vez", "");
        let r = record(
            &a,
            &Context {
                thread_ticket: Some(ticket()),
                recent_mails: Some(&looped),
                ..Context::default()
            },
        );
        assert!(
            r.replies.iter().any(|x| x.to == "tech1@example.test"),
            "19 < 10 x the cap of 2"
        );
        let looped: HashMap<String, u32> = [("tech1@example.test".to_string(), 20 * 10)].into();
        let r = record(
            &a,
            &Context {
                thread_ticket: Some(ticket()),
                recent_mails: Some(&looped),
                ..Context::default()
            },
        );
        assert!(r.replies.is_empty());
    }

    #[test]
    fn a_technicians_own_notice_forwarded_back_does_not_loop() {
        // tech1's mailbox rule forwards folio's notice back, without proof and without commands.
        let a = analysis(
            "tech1@example.test",
            HD,
            "RV: [Folio MDA-2026-000007] Nuevo mensaje",
            "tech1 escribió en el folio MDA-2026-000007:\n\nSigue igual",
            "In-Reply-To: <x@y>\r\n",
        );
        let r = record(&a, &on_ticket());
        assert_eq!(r.reason, Reason::StaffUnauthenticated);
        assert!(r.replies.is_empty(), "{:?}", r.replies);
    }

    #[test]
    fn with_a_trusted_server_a_phone_note_needs_its_pass() {
        let mut p = policy();
        p.trusted_authserv_ids = vec!["mx.example.test".into()];
        let note = "Nombre: Bob\nCorreo: victim@example.test\nDetalle: compre aqui";
        let a = analysis("agent1@example.test", HD, "Llamada", note, "");
        let Decision::Record(r) = decide(&a, &Context::default(), &p) else {
            panic!()
        };
        assert_eq!(
            r.reason,
            Reason::NewTicket,
            "a forged agent opens only its own request"
        );
        assert!(r.replies.iter().all(|x| x.to != "victim@example.test"));
        assert!(r.events.iter().any(|e| e.kind == "security"));
        let a = analysis(
            "agent1@example.test",
            HD,
            "Llamada",
            note,
            "Authentication-Results: mx.example.test; dkim=pass header.d=example.test\r\n",
        );
        let Decision::Record(r) = decide(&a, &Context::default(), &p) else {
            panic!()
        };
        assert_eq!(r.reason, Reason::PhoneNote);
    }

    #[test]
    fn an_unproven_phone_note_or_forward_opens_a_ticket_for_its_sender_only() {
        let note = "Nombre: Bob\nCorreo: victim@example.test\nDetalle: compre aqui";
        let fwd = "mire\n\n________________________________\nDe: Victim <victim@example.test>\nEnviado: jueves, 26 de noviembre de 2026 18:00\nPara: tech1@example.test\nAsunto: x\n\ncompre aqui\n";
        for (from, subject, body) in [
            ("agent1@example.test", "Llamada", note),
            ("tech1@example.test", "RV: x", fwd),
        ] {
            // No trusted server configured (the default): the From alone proves nothing.
            let a = analysis(from, HD, subject, body, "");
            let r = record(&a, &Context::default());
            assert_eq!(r.reason, Reason::NewTicket, "{from}");
            let TicketAction::Open(t) = &r.action else {
                panic!()
            };
            assert_eq!(t.requester.email, from);
            assert_eq!(t.opened_by, None);
            assert!(
                r.replies.iter().all(|x| x.to != "victim@example.test"),
                "{:?}",
                r.replies
            );
            assert!(
                r.events
                    .iter()
                    .any(|e| e.kind == "security" && e.detail.contains(from)),
                "{from}: {:?}",
                r.events
            );
            // Sent to another staff member's personal address: still unproven.
            let other = policy().tokens.personal_address(HD, "tech2@example.test");
            let a = analysis(from, &other, subject, body, "");
            assert_eq!(record(&a, &Context::default()).reason, Reason::NewTicket);
            // Sent to their own personal address (To, Cc or the envelope): on behalf.
            let mine = policy().tokens.personal_address(HD, from);
            for (to, extra) in [
                (mine.clone(), String::new()),
                (HD.to_string(), format!("Cc: {mine}\r\n")),
                (HD.to_string(), format!("Delivered-To: {mine}\r\n")),
            ] {
                let a = analysis(from, &to, subject, body, &extra);
                let r = record(&a, &Context::default());
                assert!(
                    matches!(r.reason, Reason::PhoneNote | Reason::ForwardedByStaff),
                    "{from} {extra}: {:?}",
                    r.reason
                );
                assert_eq!(r.replies[0].to, "victim@example.test");
            }
        }
    }

    #[test]
    fn a_confirmation_never_quotes_a_staff_token() {
        let mine = policy().tokens.personal_address(HD, "agent1@example.test");
        let note = format!(
            "Nombre: Bob\nCorreo: bob@example.test\nDetalle: me dio la dirección {mine} para avisar"
        );
        let a = analysis("agent1@example.test", &mine, "Llamada", &note, "");
        let r = record(&a, &Context::default());
        assert_eq!(r.reason, Reason::PhoneNote);
        let to_bob = r
            .replies
            .iter()
            .find(|x| x.to == "bob@example.test")
            .unwrap();
        let text = to_bob.context.to_string();
        assert!(!text.contains("+a."), "{text}");
        assert!(
            text.contains("la dirección helpdesk@example.test"),
            "{text}"
        );
    }

    #[test]
    fn directory_data_never_reach_another_address() {
        let dir = Directory::parse(
            Path::new("d.csv"),
            "email,name,department,phone\nana@example.test,Ana López,Nómina,7221112233\n",
        )
        .unwrap();
        // A forged From of an employee with an outsider's Reply-To.
        let raw = format!(
            "From: ana@example.test\r\nReply-To: eve@evil.test\r\nTo: {HD}\r\nSubject: hola\r\n\r\nx\r\n"
        );
        let a = crate::desk::analysis::analyze(raw.as_bytes(), &dir, &policy(), u64::MAX).unwrap();
        let r = record(&a, &Context::default());
        for reply in r.replies.iter().filter(|x| x.to == "eve@evil.test") {
            let text = reply.context.to_string();
            for secret in ["Ana López", "Nómina", "7221112233"] {
                assert!(
                    !text.contains(secret),
                    "{secret} in {}: {text}",
                    reply.template
                );
            }
        }
        assert!(r.replies.iter().any(|x| x.to == "eve@evil.test"));
        // Relays, status replies and lists reach participants without the requester's name.
        let mut t = ticket();
        t.requester_name = Some("Ana López".into());
        let token = policy()
            .tokens
            .staff_address(HD, "MDA-2026-000007", "tech1@example.test");
        let a = analysis("tech1@example.test", &token, "RE: x", "Listo.", "");
        let ctx = Context {
            thread_ticket: Some(t.clone()),
            ..Context::default()
        };
        let r = record(&a, &ctx);
        let name_to = |r: &Record, to: &str| {
            r.replies
                .iter()
                .find(|x| x.to == to)
                .map(|x| x.context.to_string().contains("Ana López"))
        };
        assert_eq!(name_to(&r, "ana@example.test"), Some(true));
        assert_eq!(name_to(&r, "carol@example.test"), Some(false));
        for body in ["estado MDA-2026-000007", "mis folios"] {
            let a = analysis("carol@example.test", HD, "Consulta", body, "");
            let ctx = Context {
                referenced_ticket: Some(t.clone()),
                sender_tickets: vec![t.clone()],
                ..Context::default()
            };
            let r = record(&a, &ctx);
            assert_eq!(r.reason, Reason::StatusQuery);
            assert_eq!(name_to(&r, "carol@example.test"), Some(false), "{body}");
        }
    }

    #[test]
    fn caps_count_addresses_without_tags_and_outside_domains_per_hour() {
        assert_eq!(cap_key("Bob+Promo.1@Outside.Test"), "bob@outside.test");
        assert_eq!(cap_key("bob@outside.test"), "bob@outside.test");
        assert_eq!(cap_key("nobody"), "nobody");
        let p = policy();
        assert!(p.is_outside("x@outside.test") && p.is_outside("x@example.test.evil"));
        assert!(!p.is_outside("x@EXAMPLE.test") && !p.is_outside("x@mail.example.test"));
        let recent: HashMap<String, u32> = [("bob@outside.test".to_string(), 2)].into();
        let domains: HashMap<String, u32> = [("outside.test".to_string(), 100)].into();
        let a = analysis("bob+7@outside.test", HD, "x", "y", "");
        let r = record(
            &a,
            &Context {
                recent_mails: Some(&recent),
                ..Context::default()
            },
        );
        assert_eq!(r.reason, Reason::NewTicketRateLimited);
        let a = analysis("carol@outside.test", HD, "x", "y", "");
        let r = record(
            &a,
            &Context {
                recent_domains: Some(&domains),
                ..Context::default()
            },
        );
        assert_eq!(r.reason, Reason::NewTicketRateLimited);
        assert!(r.events.iter().any(|e| e.kind == "domain_cap"));
        // The own domain has no domain cap; the global cap holds everyone.
        let own: HashMap<String, u32> = [("example.test".to_string(), 100)].into();
        let a = analysis("ana@example.test", HD, "x", "y", "");
        let ctx = Context {
            recent_domains: Some(&own),
            ..Context::default()
        };
        assert_eq!(record(&a, &ctx).reason, Reason::NewTicket);
        let ctx = Context {
            recent_total: 2000,
            ..Context::default()
        };
        let r = record(&a, &ctx);
        assert_eq!(r.reason, Reason::NewTicketRateLimited);
        assert!(
            r.replies.iter().all(|x| x.template == "assignment"),
            "only the technician's assignment notice (never capped) goes out"
        );
        assert!(r.events.iter().any(|e| e.kind == "global_cap"));
    }

    #[test]
    fn status_answers_to_outside_domains_quote_no_subject() {
        let mut t = ticket();
        t.requester_email = "victim@outside.test".into();
        t.subject = "Compre en spam.test".into();
        for body in ["estado MDA-2026-000007", "mis folios"] {
            let a = analysis("victim@outside.test", HD, "Consulta", body, "");
            let ctx = Context {
                referenced_ticket: Some(t.clone()),
                sender_tickets: vec![t.clone()],
                ..Context::default()
            };
            let r = record(&a, &ctx);
            assert_eq!(r.reason, Reason::StatusQuery, "{body}");
            let text = r.replies[0].context.to_string();
            assert!(!text.contains("spam.test"), "{body}: {text}");
            assert!(text.contains("MDA-2026-000007"), "{body}: {text}");
        }
    }

    #[test]
    fn outside_confirmations_quote_only_when_configured() {
        let a = analysis("Spam <x@outside.test>", HD, "Compre", "http://spam", "");
        let r = record(&a, &Context::default());
        assert_eq!(r.replies[0].context["quoted"], false);
        assert!(!r.replies[0].context.to_string().contains("spam"));
        let mut p = policy();
        p.quote_outside_domains = true;
        let Decision::Record(r) = decide(&a, &Context::default(), &p) else {
            panic!()
        };
        assert_eq!(r.replies[0].context["quoted"], true);
        assert_eq!(r.replies[0].context["summary"], "http://spam");
    }

    #[test]
    fn a_delayed_delivery_report_is_not_a_hard_bounce() {
        let dsn = |action: &str, status: &str| {
            format!(
                "From: MAILER-DAEMON@x.test\r\nTo: {HD}\r\nSubject: Delivery Status Notification\r\n\
                 MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\r\n\r\n\
                 --b\r\nContent-Type: text/plain\r\n\r\nx\r\n--b\r\nContent-Type: message/delivery-status\r\n\r\n\
                 Reporting-MTA: dns; x.test\r\n\r\nFinal-Recipient: rfc822; ana@example.test\r\nAction: {action}\r\nStatus: {status}\r\n\r\n--b--\r\n"
            )
        };
        let ctx = Context {
            bounced: Some(BouncedMail {
                outbox_id: 1,
                to: "ana@example.test".into(),
                ticket: Some(ticket()),
            }),
            ..Context::default()
        };
        let p = policy();
        let run = |raw: String| {
            let a =
                crate::desk::analysis::analyze(raw.as_bytes(), &Directory::default(), &p, u64::MAX)
                    .unwrap();
            record(&a, &ctx)
        };
        let hard = run(dsn("failed", "5.1.1"));
        assert_eq!(hard.reason, Reason::BounceOfOurMail);
        assert_eq!(hard.failing_address.as_deref(), Some("ana@example.test"));
        let soft = run(dsn("delayed", "4.4.1"));
        assert_eq!(soft.reason, Reason::AutomaticOnTicket);
        assert_eq!(soft.failing_address, None);
    }
}
