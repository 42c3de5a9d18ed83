//! A ticket's life after `#resuelto`: the requester validates the solution (or it closes by
//! itself when nobody answers), the closing is announced once, and a satisfaction survey goes
//! out some time later, within business hours.
//!
//! Two halves, both pure:
//! - [`scheduled_by`]: what a change of status makes due, and when (on the business calendar);
//!   `desk::decide` calls it for every decision that changes a status, and
//!   [`on_due`] for its own changes, so every path schedules the same way. The store writes the
//!   items in the same transaction as the change, and cancels the ticket's pending items
//!   whenever its status changes: an item is never done for a ticket that moved on.
//! - [`on_due`]: an item whose time came, with its ticket as it is now → what to do. An item
//!   that no longer applies (the ticket was reopened, the survey was answered) does nothing and
//!   says why. The store marks the item done in the transaction that writes its effects, so it
//!   is done exactly once across crashes.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::desk::decide::{Event, Reply};
use crate::desk::notice::{
    Closure, ConfirmReminder, HelpdeskView, Notice, SurveyRequest, Template, TicketView,
};
use crate::desk::policy::{cap_key, Policy};
use crate::desk::ticket::{Change, Status, TicketRef};

/// Work that falls due on a ticket at a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DueKind {
    /// Remind the requester that a resolution waits for their answer.
    ConfirmReminder,
    /// Close a resolution nobody answered.
    AutoClose,
    /// Send the satisfaction survey of a closed ticket.
    Survey,
    /// Remind the requester of an unanswered survey, once.
    SurveyReminder,
    /// Warn the assignee: the first-response target is near.
    SlaResponseWarning,
    /// The first-response target passed without a response: escalate.
    SlaResponseBreach,
    /// Warn the assignee: the resolution target is near.
    SlaResolutionWarning,
    /// The resolution target passed: escalate.
    SlaResolutionBreach,
    /// Nobody was assigned within `sla.unassigned_after`: escalate.
    Unassigned,
}

impl DueKind {
    /// Every kind.
    pub const ALL: [DueKind; 9] = [
        DueKind::ConfirmReminder,
        DueKind::AutoClose,
        DueKind::Survey,
        DueKind::SurveyReminder,
        DueKind::SlaResponseWarning,
        DueKind::SlaResponseBreach,
        DueKind::SlaResolutionWarning,
        DueKind::SlaResolutionBreach,
        DueKind::Unassigned,
    ];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            DueKind::ConfirmReminder => "confirm_reminder",
            DueKind::AutoClose => "auto_close",
            DueKind::Survey => "survey",
            DueKind::SurveyReminder => "survey_reminder",
            DueKind::SlaResponseWarning => "sla_response_warning",
            DueKind::SlaResponseBreach => "sla_response_breach",
            DueKind::SlaResolutionWarning => "sla_resolution_warning",
            DueKind::SlaResolutionBreach => "sla_resolution_breach",
            DueKind::Unassigned => "unassigned",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<DueKind> {
        DueKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// Work to do at `at`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Due {
    pub kind: DueKind,
    pub at: DateTime<Utc>,
}

/// Why a ticket was closed (stored in `tickets.close_reason`, shown by the closure notice).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CloseReason {
    /// The requester confirmed the solution.
    Confirmed,
    /// A technician's `#cerrar`.
    Technician,
    /// Nobody answered the resolution within `lifecycle.auto_close_after`.
    NoAnswer,
    /// `#cerrar spam`: nothing is sent about it any more.
    Spam,
    /// `#cerrar duplicado`: another ticket covers it; no survey.
    Duplicate,
}

impl CloseReason {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            CloseReason::Confirmed => "confirmed",
            CloseReason::Technician => "technician",
            CloseReason::NoAnswer => "no_answer",
            CloseReason::Spam => "spam",
            CloseReason::Duplicate => "duplicate",
        }
    }

    /// Whether the requester hears of the closing (never a spammer).
    pub fn notified(self) -> bool {
        self != CloseReason::Spam
    }

    /// Whether a survey follows (not for spam or a duplicate).
    pub fn surveyed(self) -> bool {
        !matches!(self, CloseReason::Spam | CloseReason::Duplicate)
    }
}

impl From<crate::desk::command::CloseAs> for CloseReason {
    fn from(how: crate::desk::command::CloseAs) -> CloseReason {
        use crate::desk::command::CloseAs;
        match how {
            CloseAs::Solved => CloseReason::Technician,
            CloseAs::Spam => CloseReason::Spam,
            CloseAs::Duplicate => CloseReason::Duplicate,
        }
    }
}

/// What a decision does to a ticket's life besides its changes; the store writes each.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "effect", rename_all = "snake_case")]
pub enum LifeEffect {
    /// Queue work for later.
    Schedule(Due),
    /// The status change to closed, and why.
    Closed { reason: CloseReason },
    /// The survey went out (one per ticket).
    SurveySent,
    /// The one gentle retry after an unreadable answer went out.
    SurveyRetried,
    /// The requester's answer to the survey.
    Satisfaction { rating: u8, comment: Option<String> },
    /// The address asked for no more surveys.
    SurveyOptOut { email: String },
    /// A technician's first public reply or change of status (kept only the first time).
    FirstResponse,
    /// The resolution clock stops (waiting on the requester, or resolved).
    SlaPaused,
    /// It runs again; it stood still for `seconds` (in the target's measure).
    SlaResumed { seconds: i64 },
    /// A target was breached and escalated (once per ticket and target).
    SlaBreached { target: crate::desk::sla::Target },
    /// The ticket's pending service-level items are cancelled (its priority changed: what
    /// replaces them is scheduled with it).
    SlaCancelled,
}

/// A due item handed over by the store, with what deciding it needs.
#[derive(Debug, Clone, PartialEq)]
pub struct DueItem {
    pub id: i64,
    pub kind: DueKind,
    pub due_at: DateTime<Utc>,
    /// The ticket as it is now.
    pub ticket: TicketRef,
    /// The requester asked for no more surveys.
    pub requester_opted_out: bool,
    /// The requester's address bounced recently: nothing is sent to it.
    pub requester_failing: bool,
}

/// What doing a due item does.
#[derive(Debug, Clone, PartialEq)]
pub struct DueOutcome {
    pub changes: Vec<Change>,
    pub replies: Vec<Reply>,
    pub events: Vec<Event>,
    pub life: Vec<LifeEffect>,
    /// What happened, for the item's row and the log (`sent`, `closed`, `obsolete: …`).
    pub outcome: String,
}

impl DueOutcome {
    /// An item that no longer applies: nothing done, and why.
    pub fn nothing(why: &str) -> DueOutcome {
        DueOutcome {
            changes: vec![],
            replies: vec![],
            events: vec![],
            life: vec![],
            outcome: format!("obsolete: {why}"),
        }
    }
}

/// What the `changes` of a decision at `now` make due on a ticket. Resolving queues the
/// reminder and the closing; closing (for `closing`, when the changes close it) queues the
/// survey, at the first business hour after `lifecycle.survey_after`, unless it was spam or a
/// duplicate or the ticket's survey already went out (one per ticket).
pub fn scheduled_by(
    t: &TicketRef,
    changes: &[Change],
    closing: CloseReason,
    now: DateTime<Utc>,
    policy: &Policy,
) -> Vec<LifeEffect> {
    let calendar = &policy.calendar;
    let life = &policy.lifecycle;
    let mut out = vec![];
    // Only where the decision leaves the ticket counts: "#cerrar #reabrir #cerrar" closes once.
    let Some(to) = changes.iter().rev().find_map(|c| match c {
        Change::Status(s) => Some(*s),
        _ => None,
    }) else {
        // No change of status: a new priority moves the service-level targets.
        if let Some(p) = changes.iter().rev().find_map(|c| match c {
            Change::Priority(p) => Some(*p),
            _ => None,
        }) {
            out.extend(crate::desk::sla::on_priority(t, p, now, policy));
        }
        return out;
    };
    out.extend(crate::desk::sla::on_status(t, to, now, policy));
    match to {
        Status::Resolved => {
            out.push(LifeEffect::Schedule(Due {
                kind: DueKind::ConfirmReminder,
                at: calendar.add(now, life.confirm_reminder_after),
            }));
            out.push(LifeEffect::Schedule(Due {
                kind: DueKind::AutoClose,
                at: calendar.add(now, life.auto_close_after),
            }));
        }
        Status::Closed if t.life.survey_sent_at.is_none() && closing.surveyed() => {
            let after = calendar.add(now, life.survey_after);
            out.push(LifeEffect::Schedule(Due {
                kind: DueKind::Survey,
                at: calendar.next_open(after),
            }));
        }
        _ => {}
    }
    out
}

/// `t` as the store leaves it after `changes` and `life` at `now`, for what is decided next
/// in the same batch or sweep (`store::Batch::record_life` writes the same).
pub fn apply(t: &mut TicketRef, changes: &[Change], life: &[LifeEffect], now: DateTime<Utc>) {
    for c in changes {
        match c {
            Change::Status(s) => {
                match s {
                    Status::Resolved => t.life.resolved_at = Some(now),
                    Status::Closed => t.life.closed_at = Some(now),
                    Status::Open | Status::Pending => {}
                }
                t.status = *s;
            }
            Change::Priority(p) => t.priority = *p,
            Change::Service(s) => t.service = s.clone(),
            Change::Assignee(a) => t.assignee = Some(a.clone()),
        }
    }
    for e in life {
        match e {
            LifeEffect::SurveySent => t.life.survey_sent_at = Some(now),
            LifeEffect::SurveyRetried => t.life.survey_retried = true,
            LifeEffect::Satisfaction { .. } => t.life.survey_answered = true,
            LifeEffect::FirstResponse => {
                t.life.first_response_at.get_or_insert(now);
            }
            LifeEffect::SlaPaused => {
                t.life.sla_paused_at.get_or_insert(now);
            }
            LifeEffect::SlaResumed { seconds } => {
                t.life.sla_paused_seconds += seconds;
                t.life.sla_paused_at = None;
            }
            LifeEffect::SlaBreached { target } => match target {
                crate::desk::sla::Target::FirstResponse => t.life.response_breached = true,
                crate::desk::sla::Target::Resolution => t.life.resolution_breached = true,
                crate::desk::sla::Target::Assignment => {}
            },
            LifeEffect::Schedule(_)
            | LifeEffect::Closed { .. }
            | LifeEffect::SurveyOptOut { .. }
            | LifeEffect::SlaCancelled => {}
        }
    }
}

/// The closure notice of `t` (closed for `reason`) to its requester.
pub fn closure_notice(t: &TicketRef, reason: CloseReason, policy: &Policy) -> Option<Reply> {
    let to = &t.requester_email;
    (!to.is_empty()).then(|| {
        to_requester(
            t,
            Notice::Closure(Closure {
                ticket: TicketView::public(t, &policy.catalog, to),
                reason: reason.as_str(),
                helpdesk: HelpdeskView::of(policy),
            }),
        )
    })
}

/// A notice about `t` to its requester, threaded on the ticket.
fn to_requester(t: &TicketRef, notice: Notice) -> Reply {
    Reply {
        notice,
        language: t.language.clone(),
        to: t.requester_email.clone(),
        in_reply_to: t.opening_message_id.clone(),
        references: t.thread(),
        staff: None,
        auto_submitted: "auto-generated",
        with_attachments: false,
    }
}

/// What to do with `item` at `now`.
pub fn on_due(item: &DueItem, now: DateTime<Utc>, policy: &Policy) -> DueOutcome {
    match item.kind {
        DueKind::ConfirmReminder
        | DueKind::AutoClose
        | DueKind::Survey
        | DueKind::SurveyReminder => after_resolution(item, now, policy),
        DueKind::SlaResponseWarning
        | DueKind::SlaResponseBreach
        | DueKind::SlaResolutionWarning
        | DueKind::SlaResolutionBreach
        | DueKind::Unassigned => crate::desk::sla::on_due(item, now, policy),
    }
}

/// A reminder, an automatic closing, a survey or its reminder.
fn after_resolution(item: &DueItem, now: DateTime<Utc>, policy: &Policy) -> DueOutcome {
    let t = &item.ticket;
    let mut out = match item.kind {
        DueKind::ConfirmReminder | DueKind::AutoClose if t.status != Status::Resolved => {
            return DueOutcome::nothing(&format!("the ticket is {}", t.status.as_str()));
        }
        DueKind::Survey | DueKind::SurveyReminder if t.status != Status::Closed => {
            return DueOutcome::nothing(&format!("the ticket is {}", t.status.as_str()));
        }
        // After a downtime the closing may be due too: it says what the reminder would.
        DueKind::ConfirmReminder
            if t.life.resolved_at.is_some_and(|resolved| {
                policy
                    .calendar
                    .add(resolved, policy.lifecycle.auto_close_after)
                    <= now
            }) =>
        {
            return DueOutcome::nothing("the closing is due too");
        }
        DueKind::ConfirmReminder => DueOutcome {
            replies: vec![to_requester(
                t,
                Notice::ConfirmReminder(ConfirmReminder {
                    ticket: TicketView::public(t, &policy.catalog, &t.requester_email),
                    auto_close_on: t.life.resolved_at.map(|resolved| {
                        let on = policy
                            .calendar
                            .add(resolved, policy.lifecycle.auto_close_after);
                        on.with_timezone(&policy.calendar.timezone())
                            .format("%Y-%m-%d")
                            .to_string()
                    }),
                    helpdesk: HelpdeskView::of(policy),
                }),
            )],
            ..DueOutcome::nothing("")
        },
        DueKind::AutoClose => {
            let changes = vec![Change::Status(Status::Closed)];
            let mut life = vec![LifeEffect::Closed {
                reason: CloseReason::NoAnswer,
            }];
            life.extend(scheduled_by(
                t,
                &changes,
                CloseReason::NoAnswer,
                now,
                policy,
            ));
            DueOutcome {
                changes,
                replies: closure_notice(t, CloseReason::NoAnswer, policy)
                    .into_iter()
                    .collect(),
                events: vec![Event {
                    kind: "auto_closed",
                    detail: format!(
                        "no answer to the resolution within {}",
                        policy.lifecycle.auto_close_after
                    ),
                }],
                life,
                outcome: String::new(),
            }
        }
        DueKind::Survey if t.life.survey_sent_at.is_some() => {
            return DueOutcome::nothing("the ticket's survey went out already");
        }
        DueKind::Survey if item.requester_opted_out => {
            return DueOutcome::nothing("the requester asked for no more surveys");
        }
        DueKind::Survey => DueOutcome {
            replies: vec![survey(t, policy, false)],
            life: vec![
                LifeEffect::SurveySent,
                LifeEffect::Schedule(Due {
                    kind: DueKind::SurveyReminder,
                    at: policy
                        .calendar
                        .add(now, policy.lifecycle.survey_reminder_after),
                }),
            ],
            ..DueOutcome::nothing("")
        },
        DueKind::SurveyReminder if t.life.survey_answered => {
            return DueOutcome::nothing("the survey was answered");
        }
        DueKind::SurveyReminder if item.requester_opted_out => {
            return DueOutcome::nothing("the requester asked for no more surveys");
        }
        DueKind::SurveyReminder => DueOutcome {
            replies: vec![survey(t, policy, true)],
            ..DueOutcome::nothing("")
        },
        other => {
            return DueOutcome::nothing(&format!("{} is not a lifecycle item", other.as_str()))
        }
    };
    if item.requester_failing && !out.replies.is_empty() {
        out.events.push(Event {
            kind: "suppressed",
            detail: format!(
                "no {} to {}: the address bounced recently",
                item.kind.as_str(),
                t.requester_email
            ),
        });
        out.replies.clear();
    }
    out.outcome = match (item.kind, out.replies.is_empty()) {
        (DueKind::AutoClose, _) => "closed".into(),
        (_, false) => "sent".into(),
        (_, true) => "suppressed: the address bounced recently".into(),
    };
    out
}

/// Whether a sweep's mail of `template` is held to the per-address cap: the service-level
/// notices, which a flood of tickets (opened by anyone) would multiply towards one technician
/// or lead. The requester's reminders and surveys follow a technician's resolution, one per
/// ticket, and are not counted (counting them made a 10,000-item sweep three times slower).
pub fn capped(template: Template) -> bool {
    matches!(template, Template::SlaWarning | Template::SlaEscalation)
}

/// Holds the [`capped`] mail of a sweep's `outcomes` to the per-address cap, as every mail
/// decided from a message is held (`recent`: mails queued per [`cap_key`] within the window,
/// counted up as mail is kept). What is held back is an event on its ticket.
pub fn cap(outcomes: &mut [DueOutcome], recent: &mut HashMap<String, u32>, policy: &Policy) {
    for out in outcomes {
        let mut kept = Vec::with_capacity(out.replies.len());
        for reply in out.replies.drain(..) {
            if !capped(reply.template()) {
                kept.push(reply);
                continue;
            }
            let key = cap_key(&reply.to);
            let n = recent.entry(key.clone()).or_default();
            if *n >= policy.address_cap(&reply.to) {
                out.events.push(Event {
                    kind: "rate_limited",
                    detail: format!(
                        "no {} to {}: per-address cap reached ({n} to {key} in the window, limits.max_auto_replies_per_address)",
                        reply.template(),
                        reply.to
                    ),
                });
                continue;
            }
            *n += 1;
            kept.push(reply);
        }
        out.replies = kept;
    }
}

/// The survey (or its reminder) for `t`.
fn survey(t: &TicketRef, policy: &Policy, reminder: bool) -> Reply {
    let request = SurveyRequest {
        ticket: TicketView::public(t, &policy.catalog, &t.requester_email),
        helpdesk: HelpdeskView::of(policy),
    };
    to_requester(
        t,
        if reminder {
            Notice::SurveyReminder(request)
        } else {
            Notice::Survey(request)
        },
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use chrono::TimeZone;

    use super::*;
    use crate::desk::catalog::Priority;
    use crate::desk::tokens::Tokens;

    fn policy() -> Policy {
        // The default calendar: Mexico City (UTC-6 all year), Monday to Friday 09:00-18:00.
        Policy::with_defaults("helpdesk@example.test", Tokens::new(b"t".to_vec()))
    }

    /// Local time in Mexico City on a date of December 2026.
    fn mx(day: u32, hour: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, day, hour + 6, 0, 0).unwrap()
    }

    fn ticket(status: Status) -> TicketRef {
        TicketRef {
            id: 7,
            folio: "MDA-2026-000007".into(),
            status,
            subject: "Impresora".into(),
            requester_email: "ana@example.test".into(),
            requester_name: Some("Ana".into()),
            participants: vec![],
            assignee: Some("tech1@example.test".into()),
            priority: Priority::Media,
            service: "correo".into(),
            language: "es".into(),
            created_at: mx(1, 10),
            updated_at: mx(1, 10),
            opening_message_id: Some("a1@client.test".into()),
            life: Default::default(),
        }
    }

    fn item(kind: DueKind, t: TicketRef) -> DueItem {
        DueItem {
            id: 1,
            kind,
            due_at: mx(8, 17),
            ticket: t,
            requester_opted_out: false,
            requester_failing: false,
        }
    }

    fn scheduled(effects: &[LifeEffect]) -> Vec<(DueKind, DateTime<Utc>)> {
        effects
            .iter()
            .filter_map(|e| match e {
                LifeEffect::Schedule(d) => Some((d.kind, d.at)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn resolving_on_a_friday_evening_counts_business_days_from_it() {
        // Friday 4 December 17:00: two business days is Tuesday 17:00, five is next Friday.
        let due = scheduled_by(
            &ticket(Status::Open),
            &[Change::Status(Status::Resolved)],
            CloseReason::Technician,
            mx(4, 17),
            &policy(),
        );
        assert_eq!(
            scheduled(&due),
            [
                (DueKind::ConfirmReminder, mx(8, 17)),
                (DueKind::AutoClose, mx(11, 17))
            ]
        );
    }

    #[test]
    fn closing_queues_the_survey_in_business_hours_once_per_ticket() {
        // Closed Friday 17:00 + 1 h = 18:00, closing time: the survey waits for Monday 09:00.
        let closed = [Change::Status(Status::Closed)];
        let due = scheduled_by(
            &ticket(Status::Resolved),
            &closed,
            CloseReason::Technician,
            mx(4, 17),
            &policy(),
        );
        assert_eq!(scheduled(&due), [(DueKind::Survey, mx(7, 9))]);
        // Closed on a Monday morning: an hour later.
        let due = scheduled_by(
            &ticket(Status::Resolved),
            &closed,
            CloseReason::Technician,
            mx(7, 10),
            &policy(),
        );
        assert_eq!(scheduled(&due), [(DueKind::Survey, mx(7, 11))]);
        // Reopened and closed again after its survey went out: no second survey.
        let mut t = ticket(Status::Open);
        t.life.survey_sent_at = Some(mx(7, 11));
        assert!(scheduled(&scheduled_by(
            &t,
            &closed,
            CloseReason::Technician,
            mx(9, 10),
            &policy()
        ))
        .is_empty());
        // Closed as spam or as a duplicate: no survey.
        for reason in [CloseReason::Spam, CloseReason::Duplicate] {
            let t = ticket(Status::Open);
            assert!(scheduled(&scheduled_by(&t, &closed, reason, mx(7, 10), &policy())).is_empty());
        }
        // Waiting queues nothing (the resolution clock stops: `desk::sla`).
        let pending = [Change::Status(Status::Pending)];
        assert!(scheduled(&scheduled_by(
            &t,
            &pending,
            CloseReason::Technician,
            mx(9, 10),
            &policy()
        ))
        .is_empty());
    }

    #[test]
    fn a_reminder_goes_to_the_requester_only_while_the_ticket_waits_for_them() {
        let out = on_due(
            &item(DueKind::ConfirmReminder, ticket(Status::Resolved)),
            mx(8, 17),
            &policy(),
        );
        assert_eq!(out.outcome, "sent");
        assert_eq!(out.replies.len(), 1);
        assert_eq!(out.replies[0].to, "ana@example.test");
        assert_eq!(
            out.replies[0].template(),
            crate::desk::notice::Template::ConfirmReminder
        );
        assert!(out.changes.is_empty());
        // After a downtime, with the closing due too: no reminder, the closing says it.
        let mut late = ticket(Status::Resolved);
        late.life.resolved_at = Some(mx(4, 17));
        let out = on_due(&item(DueKind::ConfirmReminder, late), mx(11, 17), &policy());
        assert!(out.replies.is_empty(), "{:?}", out.replies);
        for s in [Status::Open, Status::Pending, Status::Closed] {
            let out = on_due(
                &item(DueKind::ConfirmReminder, ticket(s)),
                mx(8, 17),
                &policy(),
            );
            assert!(out.replies.is_empty() && out.changes.is_empty(), "{s:?}");
            assert!(out.outcome.starts_with("obsolete"), "{}", out.outcome);
        }
    }

    #[test]
    fn an_unanswered_resolution_closes_says_why_and_queues_the_survey() {
        let out = on_due(
            &item(DueKind::AutoClose, ticket(Status::Resolved)),
            mx(11, 17),
            &policy(),
        );
        assert_eq!(out.changes, [Change::Status(Status::Closed)]);
        assert_eq!(out.outcome, "closed");
        assert!(out.life.contains(&LifeEffect::Closed {
            reason: CloseReason::NoAnswer
        }));
        assert_eq!(scheduled(&out.life), [(DueKind::Survey, mx(14, 9))]);
        match &out.replies[..] {
            [r] => match &r.notice {
                Notice::Closure(c) => assert_eq!(c.reason, "no_answer"),
                n => panic!("{n:?}"),
            },
            r => panic!("{r:?}"),
        }
        // A requester whose address bounces gets nothing, but the ticket still closes.
        let mut i = item(DueKind::AutoClose, ticket(Status::Resolved));
        i.requester_failing = true;
        let out = on_due(&i, mx(11, 17), &policy());
        assert!(out.replies.is_empty());
        assert_eq!(out.changes, [Change::Status(Status::Closed)]);
        assert!(out.events.iter().any(|e| e.kind == "suppressed"));
    }

    #[test]
    fn one_survey_per_ticket_one_reminder_and_never_after_an_opt_out() {
        let policy = policy();
        let out = on_due(
            &item(DueKind::Survey, ticket(Status::Closed)),
            mx(7, 9),
            &policy,
        );
        assert_eq!(out.outcome, "sent");
        assert!(out.life.contains(&LifeEffect::SurveySent));
        assert_eq!(scheduled(&out.life), [(DueKind::SurveyReminder, mx(10, 9))]);
        assert!(matches!(out.replies[0].notice, Notice::Survey(_)));

        let mut sent = ticket(Status::Closed);
        sent.life.survey_sent_at = Some(mx(7, 9));
        let again = on_due(&item(DueKind::Survey, sent.clone()), mx(7, 10), &policy);
        assert!(again.replies.is_empty() && again.life.is_empty());

        let reminder = on_due(
            &item(DueKind::SurveyReminder, sent.clone()),
            mx(10, 9),
            &policy,
        );
        assert!(matches!(
            reminder.replies[0].notice,
            Notice::SurveyReminder(_)
        ));
        assert!(scheduled(&reminder.life).is_empty(), "one reminder only");

        let mut answered = sent.clone();
        answered.life.survey_answered = true;
        let late = on_due(&item(DueKind::SurveyReminder, answered), mx(10, 9), &policy);
        assert!(late.replies.is_empty());

        for kind in [DueKind::Survey, DueKind::SurveyReminder] {
            let mut i = item(kind, sent.clone());
            i.ticket.life.survey_sent_at = (kind == DueKind::SurveyReminder).then(|| mx(7, 9));
            i.requester_opted_out = true;
            let out = on_due(&i, mx(10, 9), &policy);
            assert!(out.replies.is_empty(), "{kind:?}");
        }
        // Reopened before the survey went out: nothing.
        let out = on_due(
            &item(DueKind::Survey, ticket(Status::Open)),
            mx(7, 9),
            &policy,
        );
        assert!(out.replies.is_empty());
    }

    #[test]
    fn a_sweeps_mail_is_held_to_the_per_address_cap() {
        let mut p = policy();
        p.max_auto_replies_per_address = 2;
        let warning = || {
            on_due(
                &item(DueKind::SlaResponseWarning, ticket(Status::Open)),
                mx(8, 17),
                &p,
            )
        };
        // tech1 is not in this policy's catalogue: the plain cap applies.
        let mut outcomes = vec![warning(), warning(), warning()];
        // One mail to tech1 already in the window: one more may go.
        let mut recent = HashMap::from([("tech1@example.test".to_string(), 1)]);
        cap(&mut outcomes, &mut recent, &p);
        let sent: Vec<usize> = outcomes.iter().map(|o| o.replies.len()).collect();
        assert_eq!(sent, [1, 0, 0]);
        assert!(outcomes[2].events.iter().any(|e| e.kind == "rate_limited"));
        // A requester's reminder is one per ticket and resolution: not counted.
        let reminder = on_due(
            &item(DueKind::ConfirmReminder, ticket(Status::Resolved)),
            mx(8, 17),
            &p,
        );
        let mut outcomes = vec![reminder.clone(), reminder.clone(), reminder];
        cap(&mut outcomes, &mut recent, &p);
        assert!(outcomes.iter().all(|o| o.replies.len() == 1));
    }

    #[test]
    fn kinds_round_trip_their_stored_names() {
        for k in DueKind::ALL {
            assert_eq!(DueKind::parse(k.as_str()), Some(k));
        }
        assert_eq!(DueKind::parse("digest"), None);
    }
}
