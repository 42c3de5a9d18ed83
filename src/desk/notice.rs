//! The mails folio sends, typed: one struct per kind of mail, together a [`Notice`], each
//! naming its [`Template`]. A notice serialises to the context its template renders, so the
//! compiler checks that every mail gets the variables its kind has; `docs/templates.md` lists
//! them, and a test holds the list and the types together.
//!
//! The rules build notices ([`crate::desk::decide`]; the sender builds [`DeliveryFailed`]);
//! the outbox stores them as JSON text ([`Notice::context`]), and the sender renders that text,
//! adding what only it knows (`attachments_omitted`).

use std::collections::BTreeSet;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::desk::catalog::Catalog;
use crate::desk::command::{self, Refusal};
use crate::desk::policy::Policy;
use crate::desk::requester::{MissingField, Requester};
use crate::desk::routing::Rule;
use crate::desk::ticket::{Applied, TicketRef};
use crate::inbound::mail::Attachment;

/// The longest subject (and attachment name) folio stores or puts in a mail.
pub const MAX_SUBJECT_CHARS: usize = 200;

/// How many characters of the request the confirmation quotes back.
const SUMMARY_CHARS: usize = 500;

/// How dates read in mail.
const DATE_FORMAT: &str = "%Y-%m-%d %H:%M UTC";

/// A template: the files `NAME.subject.hbs`, `NAME.txt.hbs` and `NAME.html.hbs`, which every
/// language folder must provide.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Template {
    // to requesters (and a phone agent's copy of the confirmation)
    Confirmation,
    Reply,
    Resolved,
    Status,
    StatusDenied,
    MyTickets,
    // to technicians
    Assignment,
    FollowUp,
    CommandResult,
    BounceNotice,
    DeliveryFailed,
    // the ticket's life after resolution (to requesters)
    Closure,
    ConfirmReminder,
    Survey,
    SurveyReminder,
    SurveyThanks,
    SurveyRetry,
    // service levels (to staff)
    SlaWarning,
    SlaEscalation,
    // reports (to staff)
    TechnicianDigest,
    WeeklySummary,
    // the daemon's own alarms (to the admins)
    StallAlarm,
    OAuthFailure,
}

impl Template {
    /// Every template.
    pub const ALL: [Template; 23] = [
        Template::Confirmation,
        Template::Reply,
        Template::Resolved,
        Template::Status,
        Template::StatusDenied,
        Template::MyTickets,
        Template::Assignment,
        Template::FollowUp,
        Template::CommandResult,
        Template::BounceNotice,
        Template::DeliveryFailed,
        Template::Closure,
        Template::ConfirmReminder,
        Template::Survey,
        Template::SurveyReminder,
        Template::SurveyThanks,
        Template::SurveyRetry,
        Template::SlaWarning,
        Template::SlaEscalation,
        Template::TechnicianDigest,
        Template::WeeklySummary,
        Template::StallAlarm,
        Template::OAuthFailure,
    ];

    /// The file name stem (`NAME`), as the outbox stores it.
    pub fn name(self) -> &'static str {
        match self {
            Template::Confirmation => "confirmation",
            Template::Reply => "reply",
            Template::Resolved => "resolved",
            Template::Status => "status",
            Template::StatusDenied => "status_denied",
            Template::MyTickets => "my_tickets",
            Template::Assignment => "assignment",
            Template::FollowUp => "follow_up",
            Template::CommandResult => "command_result",
            Template::BounceNotice => "bounce_notice",
            Template::DeliveryFailed => "delivery_failed",
            Template::Closure => "closure",
            Template::ConfirmReminder => "confirm_reminder",
            Template::Survey => "survey",
            Template::SurveyReminder => "survey_reminder",
            Template::SurveyThanks => "survey_thanks",
            Template::SurveyRetry => "survey_retry",
            Template::SlaWarning => "sla_warning",
            Template::SlaEscalation => "sla_escalation",
            Template::TechnicianDigest => "technician_digest",
            Template::WeeklySummary => "weekly_summary",
            Template::StallAlarm => "stall_alarm",
            Template::OAuthFailure => "oauth_failure",
        }
    }

    /// The template whose files are `NAME.*.hbs` (`None` for a name folio does not send).
    pub fn named(name: &str) -> Option<Template> {
        Template::ALL.into_iter().find(|t| t.name() == name)
    }

    /// Whether its mail concerns one ticket, so its context has `folio`: every one but the
    /// answers that must name no ticket (`status_denied`) or name several (`my_tickets`).
    pub fn has_folio(self) -> bool {
        !matches!(
            self,
            Template::StatusDenied
                | Template::MyTickets
                | Template::TechnicianDigest
                | Template::WeeklySummary
                | Template::StallAlarm
                | Template::OAuthFailure
        )
    }

    /// Whether its mail may carry files, so the sender may add `attachments_omitted` when
    /// some stay behind (`limits.max_notice_attachments`).
    pub fn may_carry_files(self) -> bool {
        matches!(
            self,
            Template::Assignment | Template::FollowUp | Template::Reply | Template::Resolved
        )
    }
}

impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One mail's content: what its template renders.
// Untagged: the context is the struct's fields, with no wrapper naming the kind (the outbox
// row names the template).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Notice {
    /// To the requester (and a copy to the phone agent or forwarding staff member): a new ticket.
    Confirmation(Confirmation),
    /// To the requester and participants: a technician's public reply.
    Reply(Relay),
    /// To the requester and participants: `#resuelto`.
    Resolved(Relay),
    /// To the requester or a participant: `estado`.
    Status(StatusReport),
    /// To anyone else asking `estado`: reveals nothing.
    StatusDenied(StatusDenied),
    /// To the sender: `mis folios`.
    MyTickets(MyTickets),
    /// To the technician: a new ticket, or `#asignar`.
    Assignment(Assignment),
    /// To the assigned technician: someone wrote on the ticket.
    FollowUp(FollowUp),
    /// To the technician: commands applied, or why none was.
    CommandResult(CommandResult),
    /// To the assigned technician: a mail of the ticket bounced.
    BounceNotice(BounceNotice),
    /// To the assigned technician: a mail of the ticket could not be delivered in time.
    DeliveryFailed(DeliveryFailed),
    /// To the requester: the ticket was closed (once per closing, by any path).
    Closure(Closure),
    /// To the requester: a resolution still waits for their answer.
    ConfirmReminder(ConfirmReminder),
    /// To the requester: the satisfaction survey of a closed ticket.
    Survey(SurveyRequest),
    /// To the requester: the survey, once more.
    SurveyReminder(SurveyRequest),
    /// To the requester: their rating was recorded.
    SurveyThanks(SurveyThanks),
    /// To the requester: their answer to the survey had no rating from 1 to 5 (sent once).
    SurveyRetry(SurveyRequest),
    /// To the assignee: a service-level target is near.
    SlaWarning(SlaWarning),
    /// To the group's lead or the admins: a target was missed, or nobody was assigned.
    SlaEscalation(SlaEscalation),
    /// To each technician with open tickets, on `schedule.technician_digest`.
    TechnicianDigest(TechnicianDigest),
    /// To the admins, on `schedule.weekly_summary`: the last seven days' figures.
    WeeklySummary(WeeklySummary),
    /// To the admins: mail waits in the watched folder and nothing was processed for
    /// `alarms.stall_after` (once per stall).
    StallAlarm(StallAlarm),
    /// To the admins, once per failure episode: the mailbox's OAuth2 token endpoint fails.
    OAuthFailure(OAuthFailure),
}

impl Notice {
    /// The template that renders it.
    pub fn template(&self) -> Template {
        match self {
            Notice::Confirmation(_) => Template::Confirmation,
            Notice::Reply(_) => Template::Reply,
            Notice::Resolved(_) => Template::Resolved,
            Notice::Status(_) => Template::Status,
            Notice::StatusDenied(_) => Template::StatusDenied,
            Notice::MyTickets(_) => Template::MyTickets,
            Notice::Assignment(_) => Template::Assignment,
            Notice::FollowUp(_) => Template::FollowUp,
            Notice::CommandResult(_) => Template::CommandResult,
            Notice::BounceNotice(_) => Template::BounceNotice,
            Notice::DeliveryFailed(_) => Template::DeliveryFailed,
            Notice::Closure(_) => Template::Closure,
            Notice::ConfirmReminder(_) => Template::ConfirmReminder,
            Notice::Survey(_) => Template::Survey,
            Notice::SurveyReminder(_) => Template::SurveyReminder,
            Notice::SurveyThanks(_) => Template::SurveyThanks,
            Notice::SurveyRetry(_) => Template::SurveyRetry,
            Notice::SlaWarning(_) => Template::SlaWarning,
            Notice::SlaEscalation(_) => Template::SlaEscalation,
            Notice::TechnicianDigest(_) => Template::TechnicianDigest,
            Notice::WeeklySummary(_) => Template::WeeklySummary,
            Notice::StallAlarm(_) => Template::StallAlarm,
            Notice::OAuthFailure(_) => Template::OAuthFailure,
        }
    }

    /// The context its template renders: the notice's fields, and `folio` when the mail
    /// concerns a ticket (its folio is allocated only when the ticket is stored).
    pub fn context(&self, folio: Option<&str>) -> Value {
        // Structs of strings, numbers, booleans and lists: serialising them cannot fail.
        let mut context = serde_json::to_value(self).unwrap_or(Value::Null);
        if let (Some(object), Some(folio)) = (context.as_object_mut(), folio) {
            object.insert("folio".into(), folio.into());
        }
        context
    }
}

/// Every variable of a context as a path, as `docs/templates.md` writes them: `ticket.folio`,
/// `attachments[].name` (the `name` of each element of `attachments`), `missing_fields` (a list
/// of plain values). An empty list says nothing about its elements' fields, so it adds nothing.
pub fn variables(context: &Value) -> BTreeSet<String> {
    fn walk(prefix: &str, value: &Value, out: &mut BTreeSet<String>) {
        match value {
            Value::Object(fields) => {
                for (key, v) in fields {
                    let path = match prefix {
                        "" => key.clone(),
                        _ => format!("{prefix}.{key}"),
                    };
                    walk(&path, v, out);
                }
            }
            Value::Array(items) if items.is_empty() => {}
            Value::Array(items) if items.iter().any(Value::is_object) => {
                for item in items {
                    walk(&format!("{prefix}[]"), item, out);
                }
            }
            _ => {
                out.insert(prefix.to_string());
            }
        }
    }
    let mut out = BTreeSet::new();
    walk("", context, &mut out);
    out
}

/// `helpdesk` in every notice: who is writing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HelpdeskView {
    pub name: String,
    pub institution: String,
    pub phone: String,
    pub address: String,
}

impl HelpdeskView {
    /// The help desk as `policy` describes it.
    pub fn of(policy: &Policy) -> HelpdeskView {
        HelpdeskView {
            name: policy.helpdesk_name.clone(),
            institution: policy.institution.clone(),
            phone: policy.helpdesk_phone.clone(),
            address: policy.helpdesk_address.clone(),
        }
    }
}

/// `ticket`: a ticket as mail shows it. Codes (`status`, `priority`, `service`, `assignee`)
/// are the stored values; the templates show them in the mail's language (the
/// `status_name`/`priority_name` partials) or by name (`service_name`, `assignee_name`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TicketView {
    pub folio: String,
    pub subject: String,
    pub reply_subject: String,
    pub status: &'static str,
    pub priority: &'static str,
    pub service: String,
    /// The catalogue's name of `service`; the id when the catalogue no longer has it.
    pub service_name: String,
    pub assignee_first_name: Option<String>,
    pub assignee: Option<String>,
    /// The catalogue's name of `assignee`; the address when the catalogue does not know it.
    pub assignee_name: Option<String>,
    pub requester_email: String,
    /// `None` in mail to anyone but the requester and staff (see [`TicketView::public`]).
    pub requester_name: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl TicketView {
    /// `t` for staff: everything.
    pub fn new(t: &TicketRef, catalog: &Catalog) -> TicketView {
        let assignee = t.assignee.as_deref().and_then(|a| catalog.technician(a));
        let subject =
            crate::desk::tokens::redact_staff_addresses(&clean_line(&t.subject, MAX_SUBJECT_CHARS));
        TicketView {
            folio: t.folio.clone(),
            reply_subject: reply_subject(&subject),
            subject,
            status: t.status.as_str(),
            priority: t.priority.as_str(),
            service: t.service.clone(),
            service_name: catalog.service_name(&t.service),
            assignee_first_name: assignee.map(|x| first_name(&x.name)),
            assignee: t.assignee.clone(),
            assignee_name: t.assignee.as_deref().map(|a| catalog.staff_name(a)),
            requester_email: t.requester_email.clone(),
            requester_name: t.requester_name.clone(),
            created_at: t.created_at.format(DATE_FORMAT).to_string(),
            updated_at: t.updated_at.format(DATE_FORMAT).to_string(),
        }
    }

    /// `t` for a mail to `to` outside the staff: the requester's name (it may come from the
    /// directory) only in mail to the requester.
    pub fn public(t: &TicketRef, catalog: &Catalog, to: &str) -> TicketView {
        let mut view = TicketView::new(t, catalog);
        if !t.requester_email.eq_ignore_ascii_case(to) && !catalog.is_staff(to) {
            view.requester_name = None;
        }
        view
    }

    /// Leaves out the subject, for an answer to an outside domain: a ticket's subject may be a
    /// stranger's text.
    pub fn quote_no_subject(&mut self) {
        self.subject = String::new();
        self.reply_subject = reply_subject("");
    }
}

/// `requester`: who asked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RequesterView {
    pub name: Option<String>,
    pub email: String,
    pub department: Option<String>,
    pub phone: Option<String>,
}

impl From<&Requester> for RequesterView {
    fn from(r: &Requester) -> RequesterView {
        RequesterView {
            name: r.name.clone(),
            email: r.email.clone(),
            department: r.department.clone(),
            phone: r.phone.clone(),
        }
    }
}

/// One file of a message, as mail lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AttachmentView {
    pub name: String,
    pub size: u64,
    pub content_type: String,
}

/// `attachments` and `attachments_more`: a message's files as mail lists them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AttachmentList {
    /// At most `limits.max_listed_attachments`.
    pub attachments: Vec<AttachmentView>,
    /// How many were left out of `attachments`.
    pub attachments_more: usize,
}

impl AttachmentList {
    /// The first `max` of `all`, and how many more there are (a mail of 50,000 empty parts
    /// once made a 1.7 MB confirmation).
    pub fn of(all: &[Attachment], max: usize) -> AttachmentList {
        AttachmentList {
            attachments: all
                .iter()
                .take(max)
                .map(|a| AttachmentView {
                    name: clean_line(&a.name, MAX_SUBJECT_CHARS),
                    size: a.size,
                    content_type: a.content_type.clone(),
                })
                .collect(),
            attachments_more: all.len().saturating_sub(max),
        }
    }
}

/// One line of `commands`, the command guide in technician notices.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GuideLine {
    pub es: &'static str,
    pub en: &'static str,
}

/// The command guide.
pub fn guide() -> Vec<GuideLine> {
    command::GUIDE
        .iter()
        .map(|&(es, en)| GuideLine { es, en })
        .collect()
}

/// `missing`: which requester data is unknown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MissingView {
    pub any: bool,
    pub name: bool,
    pub department: bool,
    pub phone: bool,
    pub email: bool,
}

impl From<&Requester> for MissingView {
    fn from(r: &Requester) -> MissingView {
        let missing = r.missing();
        MissingView {
            any: !missing.is_empty(),
            name: missing.contains(&MissingField::Name),
            department: missing.contains(&MissingField::Department),
            phone: missing.contains(&MissingField::Phone),
            email: r.email.is_empty(),
        }
    }
}

/// The `confirmation` of a new ticket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Confirmation {
    pub subject: String,
    pub reply_subject: String,
    pub summary: String,
    /// `false`: the mail goes to an outside domain and quotes nothing the sender wrote.
    pub quoted: bool,
    /// `email` or `phone`.
    pub channel: &'static str,
    /// The copy for the phone agent or forwarding staff member.
    pub agent_copy: bool,
    /// In the agent's copy of a phone note: the form fields left empty.
    pub missing_fields: Vec<&'static str>,
    pub requester: RequesterView,
    pub missing: MissingView,
    #[serde(flatten)]
    pub files: AttachmentList,
    pub helpdesk: HelpdeskView,
}

impl Confirmation {
    /// Leaves out everything the sender wrote (subject, text, name, file names) but their
    /// address: otherwise anyone could make the help desk send their text to any address
    /// they put in From.
    pub fn quote_nothing(&mut self) {
        self.quoted = false;
        self.subject = String::new();
        self.reply_subject = String::new();
        self.summary = String::new();
        self.files = AttachmentList::default();
        self.missing.any = false;
        self.requester = RequesterView {
            name: None,
            email: std::mem::take(&mut self.requester.email),
            department: None,
            phone: None,
        };
    }
}

/// A technician's public reply (`reply`) or resolution (`resolved`), relayed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Relay {
    pub ticket: TicketView,
    pub text: String,
    /// The text after `#resuelto` (`None` in a `reply`).
    pub resolution: Option<String>,
    pub technician: TechnicianView,
    pub helpdesk: HelpdeskView,
}

/// `technician`: who wrote a relayed reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TechnicianView {
    pub first_name: Option<String>,
    pub name: Option<String>,
}

/// The `status` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StatusReport {
    pub ticket: TicketView,
    pub helpdesk: HelpdeskView,
}

/// `status_denied`: about no ticket at all.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StatusDenied {
    /// The folio the stranger typed.
    pub folio_asked: Option<String>,
    pub helpdesk: HelpdeskView,
}

/// `my_tickets`: the sender's tickets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MyTickets {
    pub tickets: Vec<TicketView>,
    pub helpdesk: HelpdeskView,
}

/// The `assignment` notice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Assignment {
    pub ticket: AssignedTicketView,
    pub requester: RequesterView,
    /// The full request text, or the text of the reassigning mail.
    pub detail: String,
    #[serde(flatten)]
    pub files: AttachmentList,
    /// The phone agent's address.
    pub opened_by: Option<String>,
    /// The phone agent's name ([`Catalog::staff_name`]).
    pub opened_by_name: Option<String>,
    /// The address of the technician who reassigned it.
    pub reassigned_by: Option<String>,
    /// Their name ([`Catalog::staff_name`]).
    pub reassigned_by_name: Option<String>,
    pub commands: Vec<GuideLine>,
    pub helpdesk: HelpdeskView,
}

/// `ticket` in an assignment: how it was routed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AssignedTicketView {
    pub subject: String,
    /// `None` on a reassignment.
    pub channel: Option<&'static str>,
    pub service: String,
    /// [`Catalog::service_name`].
    pub service_name: String,
    /// `None` on a reassignment.
    #[serde(rename = "type")]
    pub ticket_type: Option<&'static str>,
    pub priority: &'static str,
    /// Why it was routed so (empty on a reassignment): data with a `kind`, which the
    /// templates' `routing_rule` partial says in the mail's language.
    pub rules: Vec<Rule>,
}

/// The `follow_up` notice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FollowUp {
    pub ticket: TicketView,
    pub author: AuthorView,
    pub text: String,
    /// The mail used the technician's own address without proof.
    pub unauthenticated: bool,
    /// For the requester's answer to a resolution: how folio read it (`confirmed`: the
    /// ticket closed; `rejected`: it reopened; `unclear`: it stays resolved for the technician
    /// to judge); `None` otherwise.
    pub validation: Option<&'static str>,
    #[serde(flatten)]
    pub files: AttachmentList,
    pub commands: Vec<GuideLine>,
    pub helpdesk: HelpdeskView,
}

/// `author`: who wrote a follow-up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuthorView {
    pub name: Option<String>,
    pub email: String,
    /// `requester`, `participant`, `agent`, `technician`, `other`.
    pub role: &'static str,
}

/// The `command_result` notice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CommandResult {
    pub ticket: TicketView,
    /// What each command did (templates: the `applied_command` partial).
    pub applied: Vec<Applied>,
    /// Why nothing was applied (templates: the `refused_command` partial).
    pub errors: Vec<Refusal>,
    /// Whether the text went to the requester.
    pub relayed: bool,
    pub commands: Vec<GuideLine>,
    pub helpdesk: HelpdeskView,
}

/// The `bounce_notice`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BounceNotice {
    pub ticket: TicketView,
    pub bounced_to: String,
    /// The first lines of the delivery report.
    pub report: String,
    pub helpdesk: HelpdeskView,
}

/// The `closure` notice: the ticket was closed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Closure {
    pub ticket: TicketView,
    /// `confirmed` (the requester confirmed the solution), `technician` (`#cerrar`),
    /// `no_answer` (nobody answered the resolution in time) or `duplicate` (`#cerrar
    /// duplicado`); a ticket closed as spam gets no closure notice.
    pub reason: &'static str,
    pub helpdesk: HelpdeskView,
}

/// The `confirm_reminder` notice: the resolution waits for the requester's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConfirmReminder {
    pub ticket: TicketView,
    /// When the ticket closes by itself if nobody answers, as mail shows dates.
    pub auto_close_on: Option<String>,
    pub helpdesk: HelpdeskView,
}

/// The `survey`, `survey_reminder` and `survey_retry` notices: rate the service from 1 to 5.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SurveyRequest {
    pub ticket: TicketView,
    pub helpdesk: HelpdeskView,
}

/// The `survey_thanks` notice: the answer was recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SurveyThanks {
    pub ticket: TicketView,
    /// 1 to 5.
    pub rating: u8,
    /// The comment that came with it (bounded), if any.
    pub comment: Option<String>,
    pub helpdesk: HelpdeskView,
}

/// The `sla_warning` notice: a target of the ticket is near.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SlaWarning {
    pub ticket: TicketView,
    /// `first_response` or `resolution`.
    pub target: &'static str,
    /// When it falls due, local time of the calendar (`2026-12-07 13:00`).
    pub due_at: String,
    pub helpdesk: HelpdeskView,
}

/// The `sla_escalation` notice: a target was missed (or nobody was assigned in time).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SlaEscalation {
    pub ticket: TicketView,
    /// `first_response`, `resolution` or `assignment`.
    pub target: &'static str,
    /// When it fell due, local time of the calendar.
    pub due_at: String,
    pub helpdesk: HelpdeskView,
}

/// The `technician_digest`: a technician's open tickets, service level at risk first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TechnicianDigest {
    pub technician_name: String,
    /// How many tickets are open (or waiting) in their name.
    pub open: usize,
    /// How many of them are at risk: breached, or due to breach within a business day.
    pub at_risk: usize,
    pub by_priority: PriorityCounts,
    /// At risk first, then the most urgent, then the oldest; at most 100.
    pub tickets: Vec<DigestLine>,
    /// How many were left out of `tickets`.
    pub listed_more: usize,
    pub helpdesk: HelpdeskView,
}

/// The `oauth_failure`: the token endpoint the mailbox logins depend on (`[oauth2]`) refuses
/// or cannot be reached; sent to the admins once per failure episode.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OAuthFailure {
    /// `oauth2.token_url`.
    pub token_url: String,
    /// The server's error (and description) or the network's.
    pub error: String,
    /// When the failures started, `YYYY-MM-DD HH:MM UTC`.
    pub since: String,
    /// Until when the last token still works (mail keeps flowing until then), same format;
    /// empty when there is none.
    pub token_expires_at: String,
    pub helpdesk: HelpdeskView,
}

impl OAuthFailure {
    /// The notice for an episode that started at `since`.
    pub fn new(
        token_url: &str,
        error: &str,
        since: DateTime<Utc>,
        token_expires_at: Option<DateTime<Utc>>,
        helpdesk: HelpdeskView,
    ) -> OAuthFailure {
        OAuthFailure {
            token_url: token_url.to_string(),
            error: clean_line(error, 1_000),
            since: since.format(DATE_FORMAT).to_string(),
            token_expires_at: token_expires_at
                .map(|t| t.format(DATE_FORMAT).to_string())
                .unwrap_or_default(),
            helpdesk,
        }
    }
}

/// The `weekly_summary`: a period's figures for the admins (`desk::report`), as mail shows
/// them. Durations are open (business) time, written `2 d 3 h`, `3 h 20 min`, `45 min`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WeeklySummary {
    /// The first and last day, local dates.
    pub from: String,
    pub to: String,
    /// Tickets opened in the period.
    pub tickets: usize,
    /// Most tickets first.
    pub by_service: Vec<ServiceTickets>,
    pub by_status: StatusCounts,
    pub by_priority: PriorityCounts,
    pub first_response: TimeFigures,
    pub resolution: TimeFigures,
    pub sla_breaches: BreachCounts,
    pub satisfaction: SatisfactionFigures,
    pub helpdesk: HelpdeskView,
}

/// The `stall_alarm`: mail waits in the watched folder and nothing was processed for
/// `alarms.stall_after` (`desk::stall`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StallAlarm {
    /// The watched folder (`imap.folder`).
    pub folder: String,
    /// How many messages were last seen waiting in it.
    pub waiting: u32,
    /// Since when nothing was processed while mail waited (`2026-11-26 16:06 UTC`).
    pub since: String,
    /// How long that is, written `45 min`, `3 h 20 min`.
    pub stalled_for: String,
    /// The mailbox worker's last error (one line, at most 500 characters), or `null`.
    pub last_error: Option<String>,
    pub helpdesk: HelpdeskView,
}

impl StallAlarm {
    /// The alarm about `folder`, where `waiting` messages wait since `since` (seen at `now`).
    pub fn new(
        folder: &str,
        waiting: u32,
        since: DateTime<Utc>,
        now: DateTime<Utc>,
        last_error: Option<&str>,
        policy: &Policy,
    ) -> StallAlarm {
        StallAlarm {
            folder: folder.to_string(),
            waiting,
            since: since.format(DATE_FORMAT).to_string(),
            stalled_for: crate::desk::digest::human((now - since).num_seconds()),
            last_error: last_error.map(|e| {
                let line = e.split_whitespace().collect::<Vec<_>>().join(" ");
                line.chars().take(500).collect()
            }),
            helpdesk: HelpdeskView::of(policy),
        }
    }
}

/// Tickets of one service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServiceTickets {
    pub name: String,
    pub tickets: usize,
}

/// Tickets per status.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct StatusCounts {
    pub open: usize,
    pub pending: usize,
    pub resolved: usize,
    pub closed: usize,
}

/// How long something took: how many were measured, how many are still waiting for it, the
/// mean and the 90th percentile (`null` with nothing measured).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TimeFigures {
    pub measured: usize,
    pub still_open: usize,
    pub mean: Option<String>,
    pub p90: Option<String>,
}

/// SLA breaches among the period's tickets.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct BreachCounts {
    pub first_response: usize,
    pub resolution: usize,
    /// Tickets with at least one.
    pub tickets: usize,
}

/// The survey answers of the period.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SatisfactionFigures {
    pub answers: usize,
    /// With two decimals (`4.25`), `null` without answers.
    pub average: Option<String>,
    /// Newest first, at most 20.
    pub comments: Vec<CommentView>,
    pub comments_more: usize,
}

/// One survey comment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CommentView {
    pub folio: String,
    pub rating: u8,
    pub comment: String,
}

/// Open tickets per priority.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PriorityCounts {
    pub baja: usize,
    pub media: usize,
    pub alta: usize,
    pub critica: usize,
}

/// One ticket of a digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DigestLine {
    pub folio: String,
    pub subject: String,
    pub status: &'static str,
    pub priority: &'static str,
    /// Whole days since it was opened.
    pub age_days: i64,
    pub at_risk: bool,
    /// A target was already missed.
    pub breached: bool,
    /// When its next target falls due, local time of the calendar, if one is pending.
    pub due_at: Option<String>,
}

/// The `delivery_failed` notice: a mail of the ticket kept failing temporarily for longer
/// than `smtp.max_age`. The sender queues it itself, with its folio.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeliveryFailed {
    pub folio: String,
    pub ticket: FailedTicketView,
    /// The address the mail did not reach.
    pub failed_to: String,
    pub queued_at: String,
    /// The server's last answer.
    pub error: String,
    /// The help desk as the failed mail named it (`None` when it named none).
    pub helpdesk: Option<HelpdeskView>,
}

/// `ticket` in a delivery failure notice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FailedTicketView {
    pub folio: String,
    pub subject: String,
    pub status: &'static str,
    pub priority: &'static str,
    pub assignee: Option<String>,
    pub requester_email: String,
    pub requester_name: Option<String>,
    pub created_at: String,
}

impl DeliveryFailed {
    /// The notice about a mail of `ticket` to `failed_to`, queued at `queued_at`, that last
    /// failed with `error`.
    pub fn new(
        ticket: &TicketRef,
        failed_to: &str,
        queued_at: DateTime<Utc>,
        error: &str,
        helpdesk: Option<HelpdeskView>,
    ) -> DeliveryFailed {
        DeliveryFailed {
            folio: ticket.folio.clone(),
            ticket: FailedTicketView {
                folio: ticket.folio.clone(),
                subject: ticket.subject.clone(),
                status: ticket.status.as_str(),
                priority: ticket.priority.as_str(),
                assignee: ticket.assignee.clone(),
                requester_email: ticket.requester_email.clone(),
                requester_name: ticket.requester_name.clone(),
                created_at: ticket.created_at.format(DATE_FORMAT).to_string(),
            },
            failed_to: failed_to.to_string(),
            queued_at: queued_at.format(DATE_FORMAT).to_string(),
            error: error.to_string(),
            helpdesk,
        }
    }
}

/// The first word of a name.
pub fn first_name(name: &str) -> String {
    name.split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string()
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

/// `Re: <subject>` without stacking prefixes; empty for an empty subject (each language's
/// templates write their own placeholder).
pub fn reply_subject(subject: &str) -> String {
    let s = crate::inbound::subject::strip_prefixes(subject);
    if s.is_empty() {
        return String::new();
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
    use std::collections::{BTreeMap, BTreeSet};

    use super::*;
    use crate::desk::notice_samples::{contexts, samples, SAMPLE_FOLIO};
    use crate::desk::tokens::Tokens;

    /// The variables of the templates as `docs/templates.md` lists them.
    const DOC: &str = include_str!("../../docs/templates.md");

    fn policy() -> Policy {
        Policy::with_defaults("helpdesk@example.test", Tokens::new(b"t".to_vec()))
    }

    /// The variables each template gets when it is rendered: those of every sample, queued
    /// and as the sender renders it (`attachments_omitted` added when files stay behind).
    fn sent() -> BTreeMap<&'static str, BTreeSet<String>> {
        let mut out: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
        for notice in samples(&policy()) {
            let vars = out.entry(notice.template().name()).or_default();
            for context in contexts(&notice, SAMPLE_FOLIO) {
                vars.extend(variables(&context));
            }
        }
        out
    }

    /// The variables in the first cell of a table row, shorthands (`.email`) expanded.
    fn row_variables(cell: &str) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for (n, token) in cell.split('`').enumerate() {
            if n % 2 == 0 || token.is_empty() {
                continue;
            }
            let full = match (token.strip_prefix('.'), out.last()) {
                (Some(field), Some(previous)) => {
                    let parent = previous.rsplit_once('.').map_or("", |(p, _)| p);
                    format!("{parent}.{field}")
                }
                _ => token.to_string(),
            };
            out.push(full);
        }
        out
    }

    /// `docs/templates.md`'s `## Variables`: section heading → the variables its tables list.
    fn documented_sections() -> Vec<(String, Vec<String>)> {
        let start = DOC
            .find("\n## Variables\n")
            .expect("docs/templates.md: no ## Variables");
        let rest = &DOC[start + 1..];
        let section = match rest[3..].find("\n## ") {
            Some(end) => &rest[..end + 3],
            None => rest,
        };
        let mut sections: Vec<(String, Vec<String>)> = Vec::new();
        for line in section.lines() {
            if let Some(heading) = line.strip_prefix("### ") {
                sections.push((heading.to_string(), vec![]));
                continue;
            }
            let Some(row) = line.strip_prefix('|') else {
                continue;
            };
            let cell = row.split('|').next().unwrap_or_default().trim();
            if cell == "variable" || cell.chars().all(|c| c == '-' || c == ':') {
                continue;
            }
            if let Some((_, vars)) = sections.last_mut() {
                vars.extend(row_variables(cell));
            }
        }
        sections
    }

    /// The variables each template gets according to `docs/templates.md`.
    fn documented() -> Result<BTreeMap<String, BTreeSet<String>>, String> {
        let sections = documented_sections();
        let section = |heading: &str| {
            sections
                .iter()
                .find(|(h, _)| h == heading)
                .map(|(_, vars)| vars.clone())
                .ok_or(format!("docs/templates.md: no section `### {heading}`"))
        };
        let every = section("Every template")?;
        let ticket = section("`ticket`")?;
        let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (heading, vars) in &sections {
            if heading == "Every template" || heading == "`ticket`" {
                continue;
            }
            let names: Vec<&str> = heading.split('`').skip(1).step_by(2).collect();
            for name in &names {
                if !Template::ALL.iter().any(|t| t.name() == *name) {
                    return Err(format!(
                        "docs/templates.md: section `### {heading}` names `{name}`, which is no template"
                    ));
                }
                let all = out.entry(name.to_string()).or_default();
                all.extend(every.iter().cloned());
                for var in vars {
                    match var.as_str() {
                        "ticket" => all.extend(ticket.iter().cloned()),
                        "tickets[]" => all.extend(
                            ticket
                                .iter()
                                .map(|t| t.replacen("ticket.", "tickets[].", 1)),
                        ),
                        _ => {
                            all.insert(var.clone());
                        }
                    }
                }
            }
        }
        Ok(out)
    }

    #[test]
    fn every_template_has_a_sample() {
        let sampled: BTreeSet<Template> = samples(&policy()).iter().map(Notice::template).collect();
        assert_eq!(sampled, Template::ALL.into_iter().collect());
    }

    #[test]
    fn the_documented_variables_are_the_ones_sent() {
        let documented = documented().unwrap_or_else(|e| panic!("{e}"));
        let sent = sent();
        let mut problems = Vec::new();
        for template in Template::ALL.map(Template::name) {
            let empty = BTreeSet::new();
            let doc = documented.get(template).unwrap_or(&empty);
            let real = &sent[template];
            for var in doc.difference(real) {
                problems.push(format!(
                    "`{template}`: docs/templates.md lists `{var}`, which the notice does not have"
                ));
            }
            for var in real.difference(doc) {
                problems.push(format!(
                    "`{template}`: the notice has `{var}`, which docs/templates.md does not list"
                ));
            }
        }
        assert!(problems.is_empty(), "\n{}", problems.join("\n"));
    }

    #[test]
    fn shorthands_expand_against_the_previous_variable() {
        assert_eq!(
            row_variables("`requester.name`, `.email`, `attachments[].name`, `.size`, `x`"),
            [
                "requester.name",
                "requester.email",
                "attachments[].name",
                "attachments[].size",
                "x"
            ]
        );
    }
}
