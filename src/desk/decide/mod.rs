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
//!
//! Where each situation is decided: `open` (a new request, a phone note, a forward),
//! `follow_up`, `staff` (a technician's mail, with `proof`), `query` (`estado`,
//! `mis folios`), `automatic`; every queued mail passes `caps`. The mails themselves are
//! [`crate::desk::notice`]s.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::desk::analysis::Analysis;
use crate::desk::command;
use crate::desk::lifecycle::LifeEffect;
use crate::desk::notice::{AttachmentList, HelpdeskView, Notice, Template, TicketView};
use crate::desk::policy::Policy;
use crate::desk::requester::Requester;
use crate::desk::routing::{Routing, Workload};
use crate::desk::ticket::{Change, TicketRef};
use crate::inbound::mail::InboundMail;

mod automatic;
mod caps;
mod follow_up;
mod life;
mod open;
mod proof;
mod query;
mod staff;
#[cfg(test)]
pub(crate) mod tests;

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
    /// The batch's "now" (when its facts were looked up).
    pub now: DateTime<Utc>,
    /// A message with the same dedup key was already stored.
    pub already_processed: bool,
    /// The ticket of one of our Message-IDs this message answers.
    pub thread_ticket: Option<TicketRef>,
    /// The mail of ours this message answers, if any: to whom it went and what it was. A
    /// forged From cannot name it (our Message-IDs carry an HMAC), so an answer to a mail sent
    /// to the requester is the requester's.
    pub answered: Option<crate::desk::known::SentMail>,
    /// The ticket named by the folio found in the subject or body, if it exists.
    pub referenced_ticket: Option<TicketRef>,
    /// For a delivery report: the mail of ours that bounced.
    pub bounced: Option<BouncedMail>,
    /// The sender's active tickets (requester or participant), for `mis folios`.
    pub sender_tickets: Vec<TicketRef>,
    /// Automatic mails queued per address ([`crate::desk::policy::cap_key`]) within the cap's window.
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

/// A mail to queue. Its context lacks `folio` until the ticket's folio is allocated
/// ([`Reply::context_json`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    /// What it says (and so which template renders it).
    pub notice: Notice,
    pub language: String,
    pub to: String,
    pub in_reply_to: Option<String>,
    pub references: Vec<String>,
    /// A technician: the mail's Reply-To is their tokenised address for this ticket.
    pub staff: Option<String>,
    /// `auto-replied` (answers a message) or `auto-generated` (a notice).
    pub auto_submitted: &'static str,
    /// Carries the attachments of the message being decided (stored with it).
    pub with_attachments: bool,
}

impl Reply {
    /// `notice`, about folio or the desk as a whole, to each of `helpdesk.admins`: automatic
    /// mail, in the desk's language, answering nothing.
    pub fn to_admins(notice: Notice, policy: &Policy) -> Vec<Reply> {
        policy
            .admins
            .iter()
            .map(|to| Reply::automatic(notice.clone(), to, policy))
            .collect()
    }

    /// `notice` to `to`, about no one message: automatic mail in the desk's language.
    pub fn automatic(notice: Notice, to: &str, policy: &Policy) -> Reply {
        Reply {
            notice,
            language: policy.language.clone(),
            to: to.to_string(),
            in_reply_to: None,
            references: vec![],
            staff: None,
            auto_submitted: "auto-generated",
            with_attachments: false,
        }
    }

    /// The template that renders it.
    pub fn template(&self) -> Template {
        self.notice.template()
    }

    /// The context as the outbox stores it (JSON text), with the ticket's `folio` once it is
    /// known (none for mail about no single ticket).
    pub fn context_json(&self, folio: Option<&str>) -> String {
        self.notice.context(folio).to_string()
    }
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
    /// What it does to the ticket's life: work scheduled, closing, survey answers.
    pub life: Vec<LifeEffect>,
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
            Some((t, how)) => {
                let mut r = match self.role_in(t) {
                    Role::Technician => self.staff_reply(t, how),
                    role => self.follow_up(t, how, role),
                };
                self.follow_life(&mut r, t);
                r
            }
            None => {
                let mut r = self.new_request();
                self.follow_open(&mut r);
                r
            }
        }
    }

    fn helpdesk(&self) -> HelpdeskView {
        HelpdeskView::of(self.policy)
    }

    /// A ticket as staff see it.
    fn ticket_view(&self, t: &TicketRef) -> TicketView {
        TicketView::new(t, &self.policy.catalog)
    }

    /// A ticket as `to` sees it (see [`TicketView::public`]).
    fn public_ticket_view(&self, t: &TicketRef, to: &str) -> TicketView {
        TicketView::public(t, &self.policy.catalog, to)
    }

    /// The message's files as mails list them.
    fn files(&self) -> AttachmentList {
        AttachmentList::of(&self.a.mail.attachments, self.policy.max_listed_attachments)
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
