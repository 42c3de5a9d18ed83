//! Service levels (`[sla]`): per priority, a target for the first response (a technician's
//! public reply or change of status) and one for the resolution, both counted from the
//! ticket's opening on the business calendar. The assignee is warned when
//! `sla.warn_at_percent` of a target has passed; a breach escalates, once per ticket and
//! target, to the lead of the service's group (catalogue) or else to `helpdesk.admins`. A
//! ticket nobody is assigned to escalates after `sla.unassigned_after`.
//!
//! The resolution clock stands still while the ticket waits on the requester (`#espera`) or
//! is resolved, and runs again when it reopens: what is left of the target is then scheduled
//! anew. A change of priority schedules the new priority's targets, with what is left of
//! them, in place of the old ones.
//!
//! Pure: the warnings and breaches are due items (`desk::lifecycle`), scheduled when the
//! ticket opens ([`on_open`]) or its status changes ([`on_status`]) and decided when their
//! time comes ([`on_due`]).

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;

use crate::calendar::Span;
use crate::desk::catalog::Priority;
use crate::desk::decide::{Event, Reply};
use crate::desk::lifecycle::{Due, DueItem, DueKind, DueOutcome, LifeEffect};
use crate::desk::notice::{HelpdeskView, Notice, SlaEscalation, SlaWarning, TicketView};
use crate::desk::policy::Policy;
use crate::desk::ticket::{Status, TicketRef};

/// Which target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    FirstResponse,
    Resolution,
    /// Not a target of its own: nobody was assigned in time.
    Assignment,
}

impl Target {
    /// The name templates and the history use.
    pub fn as_str(self) -> &'static str {
        match self {
            Target::FirstResponse => "first_response",
            Target::Resolution => "resolution",
            Target::Assignment => "assignment",
        }
    }
}

fn index(p: Priority) -> usize {
    match p {
        Priority::Baja => 0,
        Priority::Media => 1,
        Priority::Alta => 2,
        Priority::Critica => 3,
    }
}

/// The time spent between `from` and `to` in the measure of `span` (open time for business
/// spans, elapsed time for wall spans).
fn spent(policy: &Policy, span: Span, from: DateTime<Utc>, to: DateTime<Utc>) -> TimeDelta {
    if span.is_business() {
        policy.calendar.business_time_between(from, to)
    } else {
        (to - from).max(TimeDelta::zero())
    }
}

/// `share` percent of `length` of `span`'s measure after `from`.
fn after_share(
    policy: &Policy,
    span: Span,
    from: DateTime<Utc>,
    length: TimeDelta,
    share: u8,
) -> DateTime<Utc> {
    let part = TimeDelta::seconds(length.num_seconds() * i64::from(share) / 100);
    if part <= TimeDelta::zero() {
        return from;
    }
    if span.is_business() {
        policy.calendar.add(from, Span::BusinessTime(part))
    } else {
        from + part
    }
}

/// The warning and the breach of a target whose clock starts at `from` with `left` of it
/// still to run (all of it, when `left` is `None`).
fn warning_and_breach(
    policy: &Policy,
    span: Span,
    from: DateTime<Utc>,
    left: Option<TimeDelta>,
    kinds: (DueKind, DueKind),
) -> [LifeEffect; 2] {
    let end = policy.calendar.add(from, span);
    let full = spent(policy, span, from, end);
    // A whole target falls due as its span says ("5 business days": the same time of day);
    // what is left of one is open time.
    let (left, breach) = match left {
        None => (full, end),
        Some(left) if left <= TimeDelta::zero() => (left, from),
        Some(left) => (left, after_share(policy, span, from, left, 100)),
    };
    // The warning comes when the target's share has passed, measured on the whole target:
    // what is left of a resumed clock is warned when it falls under the remaining share.
    let warn_left = left - full * (100 - i32::from(policy.sla.warn_at_percent)) / 100;
    let warning = if warn_left <= TimeDelta::zero() {
        from
    } else {
        after_share(policy, span, from, warn_left, 100)
    };
    [
        LifeEffect::Schedule(Due {
            kind: kinds.0,
            at: warning,
        }),
        LifeEffect::Schedule(Due {
            kind: kinds.1,
            at: breach,
        }),
    ]
}

/// What a ticket opened at `now` with `priority` (assigned to `assignee`, if anyone) makes due.
pub fn on_open(
    priority: Priority,
    assignee: Option<&str>,
    now: DateTime<Utc>,
    policy: &Policy,
) -> Vec<LifeEffect> {
    let sla = &policy.sla;
    let mut out = Vec::with_capacity(5);
    out.extend(warning_and_breach(
        policy,
        sla.first_response[index(priority)],
        now,
        None,
        (DueKind::SlaResponseWarning, DueKind::SlaResponseBreach),
    ));
    out.extend(warning_and_breach(
        policy,
        sla.resolution[index(priority)],
        now,
        None,
        (DueKind::SlaResolutionWarning, DueKind::SlaResolutionBreach),
    ));
    if assignee.is_none() {
        out.push(LifeEffect::Schedule(Due {
            kind: DueKind::Unassigned,
            at: policy.calendar.add(now, sla.unassigned_after),
        }));
    }
    out
}

/// What `t` moving to status `to` at `now` does to its clocks. Every change of status cancels
/// the ticket's pending items (the store does it), so a clock that keeps running is scheduled
/// again here.
pub fn on_status(
    t: &TicketRef,
    to: Status,
    now: DateTime<Utc>,
    policy: &Policy,
) -> Vec<LifeEffect> {
    let span = policy.sla.resolution[index(t.priority)];
    match to {
        Status::Pending | Status::Resolved | Status::Closed => vec![LifeEffect::SlaPaused],
        Status::Open => {
            let stood = t
                .life
                .sla_paused_at
                .map_or(TimeDelta::zero(), |at| spent(policy, span, at, now));
            let mut out = vec![LifeEffect::SlaResumed {
                seconds: stood.num_seconds(),
            }];
            if !t.life.resolution_breached {
                let full = spent(
                    policy,
                    span,
                    t.created_at,
                    policy.calendar.add(t.created_at, span),
                );
                let used = spent(policy, span, t.created_at, now)
                    - TimeDelta::seconds(t.life.sla_paused_seconds)
                    - stood;
                out.extend(warning_and_breach(
                    policy,
                    span,
                    now,
                    Some(full - used),
                    (DueKind::SlaResolutionWarning, DueKind::SlaResolutionBreach),
                ));
            }
            out
        }
    }
}

/// What changing `t`'s priority to `p` at `now` (its status unchanged) does to its clocks: the
/// pending warnings and breaches are cancelled and scheduled again for the new targets, each
/// with what is left of it (a breached target is not scheduled again).
pub fn on_priority(
    t: &TicketRef,
    p: Priority,
    now: DateTime<Utc>,
    policy: &Policy,
) -> Vec<LifeEffect> {
    if !t.status.is_active() || p == t.priority {
        return vec![];
    }
    let sla = &policy.sla;
    let mut out = vec![LifeEffect::SlaCancelled];
    let left = |span: Span, paused: TimeDelta| {
        let full = spent(
            policy,
            span,
            t.created_at,
            policy.calendar.add(t.created_at, span),
        );
        full - (spent(policy, span, t.created_at, now) - paused)
    };
    if t.life.first_response_at.is_none() && !t.life.response_breached {
        let span = sla.first_response[index(p)];
        out.extend(warning_and_breach(
            policy,
            span,
            now,
            Some(left(span, TimeDelta::zero())),
            (DueKind::SlaResponseWarning, DueKind::SlaResponseBreach),
        ));
    }
    // The resolution clock runs only while open (waiting: it is scheduled on reopening).
    if t.status == Status::Open && !t.life.resolution_breached {
        let span = sla.resolution[index(p)];
        out.extend(warning_and_breach(
            policy,
            span,
            now,
            Some(left(span, TimeDelta::seconds(t.life.sla_paused_seconds))),
            (DueKind::SlaResolutionWarning, DueKind::SlaResolutionBreach),
        ));
    }
    if t.assignee.is_none() {
        out.push(LifeEffect::Schedule(Due {
            kind: DueKind::Unassigned,
            at: policy
                .calendar
                .add(t.created_at, sla.unassigned_after)
                .max(now),
        }));
    }
    out
}

/// When the resolution target of `t` falls due, seen at `now` (its clock may have stood still).
fn resolution_due(t: &TicketRef, now: DateTime<Utc>, policy: &Policy) -> DateTime<Utc> {
    let span = policy.sla.resolution[index(t.priority)];
    let full = spent(
        policy,
        span,
        t.created_at,
        policy.calendar.add(t.created_at, span),
    );
    let used =
        spent(policy, span, t.created_at, now) - TimeDelta::seconds(t.life.sla_paused_seconds);
    after_share(policy, span, now, full - used, 100)
}

/// How mail shows a due time: local time of the calendar.
fn local(at: DateTime<Utc>, policy: &Policy) -> String {
    at.with_timezone(&policy.calendar.timezone())
        .format("%Y-%m-%d %H:%M")
        .to_string()
}

/// What a warning, a breach or an unassigned ticket's item does at `now`.
pub fn on_due(item: &DueItem, now: DateTime<Utc>, policy: &Policy) -> DueOutcome {
    let t = &item.ticket;
    if !t.status.is_active() {
        return DueOutcome::nothing(&format!("the ticket is {}", t.status.as_str()));
    }
    let responded = t.life.first_response_at.is_some();
    let first_response_due = || {
        policy
            .calendar
            .add(t.created_at, policy.sla.first_response[index(t.priority)])
    };
    match item.kind {
        DueKind::SlaResponseWarning if responded => DueOutcome::nothing("answered"),
        DueKind::SlaResponseWarning => warn(t, Target::FirstResponse, first_response_due(), policy),
        DueKind::SlaResponseBreach if responded || t.life.response_breached => {
            DueOutcome::nothing("answered, or escalated already")
        }
        DueKind::SlaResponseBreach => {
            escalate(t, Target::FirstResponse, first_response_due(), policy)
        }
        DueKind::SlaResolutionWarning | DueKind::SlaResolutionBreach
            if t.status != Status::Open =>
        {
            DueOutcome::nothing("the resolution clock stands still")
        }
        DueKind::SlaResolutionWarning => warn(
            t,
            Target::Resolution,
            resolution_due(t, now, policy),
            policy,
        ),
        DueKind::SlaResolutionBreach if t.life.resolution_breached => {
            DueOutcome::nothing("escalated already")
        }
        // Its own due time is the breach's (the clock may have stood still since the opening).
        DueKind::SlaResolutionBreach => escalate(t, Target::Resolution, item.due_at, policy),
        DueKind::Unassigned if t.assignee.is_some() => DueOutcome::nothing("assigned"),
        DueKind::Unassigned => escalate(t, Target::Assignment, item.due_at, policy),
        other => DueOutcome::nothing(&format!("{} is not a service-level item", other.as_str())),
    }
}

/// Warns the assignee that `target` falls due at `due`.
fn warn(t: &TicketRef, target: Target, due: DateTime<Utc>, policy: &Policy) -> DueOutcome {
    let Some(tech) = t.assignee.clone() else {
        return DueOutcome::nothing("nobody to warn: unassigned");
    };
    let notice = Notice::SlaWarning(SlaWarning {
        ticket: TicketView::new(t, &policy.catalog),
        target: target.as_str(),
        due_at: local(due, policy),
        helpdesk: HelpdeskView::of(policy),
    });
    DueOutcome {
        replies: vec![to_staff(t, &tech, notice, true, policy)],
        outcome: "sent".into(),
        ..DueOutcome::nothing("")
    }
}

/// Tells the lead of the ticket's group (or `helpdesk.admins`) that `target` was missed.
fn escalate(t: &TicketRef, target: Target, due: DateTime<Utc>, policy: &Policy) -> DueOutcome {
    let to: Vec<String> = match policy.catalog.lead_of(&t.service) {
        Some(lead) => vec![lead.to_string()],
        None => policy.admins.clone(),
    };
    let notice = Notice::SlaEscalation(SlaEscalation {
        ticket: TicketView::new(t, &policy.catalog),
        target: target.as_str(),
        due_at: local(due, policy),
        helpdesk: HelpdeskView::of(policy),
    });
    let staff = |a: &String| policy.catalog.technician(a).is_some();
    let replies: Vec<Reply> = to
        .iter()
        .map(|a| to_staff(t, a, notice.clone(), staff(a), policy))
        .collect();
    let life = match target {
        Target::Assignment => vec![],
        target => vec![LifeEffect::SlaBreached { target }],
    };
    DueOutcome {
        changes: vec![],
        events: vec![Event {
            kind: "sla_breach",
            detail: format!(
                "{} due {}: escalated to {}",
                target.as_str(),
                local(due, policy),
                if to.is_empty() {
                    "nobody (no group lead, helpdesk.admins empty)".to_string()
                } else {
                    to.join(", ")
                }
            ),
        }],
        outcome: if replies.is_empty() {
            "escalated to nobody".into()
        } else {
            "sent".into()
        },
        replies,
        life,
    }
}

/// A notice about `t` to staff member `to`; `technician`: their mail carries their tokenised
/// reply address (a lead who is not a technician cannot use commands).
fn to_staff(t: &TicketRef, to: &str, notice: Notice, technician: bool, policy: &Policy) -> Reply {
    Reply {
        notice,
        // Staff read the site's language, whatever the requester's.
        language: policy.language.clone(),
        to: to.to_string(),
        in_reply_to: None,
        references: t.thread(),
        staff: technician.then(|| to.to_string()),
        auto_submitted: "auto-generated",
        with_attachments: false,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::path::Path;
    use std::sync::Arc;

    use chrono::TimeZone;

    use super::*;
    use crate::desk::catalog::Catalog;
    use crate::desk::tokens::Tokens;

    /// The default calendar (Mexico City, Monday to Friday 09:00-18:00) and targets (media:
    /// first response 4 business hours, resolution 5 business days; warned at 75 %), one group
    /// with a lead.
    fn policy() -> Policy {
        let mut p = Policy::with_defaults("helpdesk@example.test", Tokens::new(b"t".to_vec()));
        p.catalog = Arc::new(
            Catalog::parse(
                Path::new("catalog.toml"),
                "[[group]]\nid='g'\nlead='jefa@example.test'\n\
                 [[technician]]\nname='Tomás Uno'\nemail='tech1@example.test'\ngroups=['g']\n\
                 [[service]]\nid='correo'\nname='Correo'\ngroup='g'\n\
                 [[service]]\nid='otro'\nname='Otro'\ngroup='h'\n[[group]]\nid='h'\n",
            )
            .unwrap(),
        );
        p.admins = vec!["mesa@example.test".into()];
        p
    }

    /// Local time in Mexico City (UTC-6) on a day of December 2026 (the 7th is a Monday).
    fn mx(day: u32, hour: u32, minute: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, day, hour + 6, minute, 0)
            .unwrap()
    }

    fn ticket() -> TicketRef {
        TicketRef {
            id: 7,
            folio: "MDA-2026-000007".into(),
            status: Status::Open,
            subject: "Impresora".into(),
            requester_email: "ana@example.test".into(),
            requester_name: None,
            participants: vec![],
            assignee: Some("tech1@example.test".into()),
            priority: Priority::Media,
            service: "correo".into(),
            language: "es".into(),
            created_at: mx(7, 9, 0),
            updated_at: mx(7, 9, 0),
            opening_message_id: None,
            life: Default::default(),
        }
    }

    fn due(effects: &[LifeEffect]) -> Vec<(DueKind, DateTime<Utc>)> {
        effects
            .iter()
            .filter_map(|e| match e {
                LifeEffect::Schedule(d) => Some((d.kind, d.at)),
                _ => None,
            })
            .collect()
    }

    fn item(kind: DueKind, t: TicketRef, at: DateTime<Utc>) -> DueItem {
        DueItem {
            id: 1,
            kind,
            due_at: at,
            ticket: t,
            requester_opted_out: false,
            requester_failing: false,
        }
    }

    #[test]
    fn opening_schedules_each_target_its_warning_and_the_unassigned_escalation() {
        // Monday 09:00, media: response due 13:00, warned at 12:00 (three quarters of 4 h);
        // resolution five business days later, the next Monday 09:00, warned when three
        // quarters of its 45 business hours passed (33.75: Thursday 15:45).
        let effects = on_open(Priority::Media, None, mx(7, 9, 0), &policy());
        assert_eq!(
            due(&effects),
            [
                (DueKind::SlaResponseWarning, mx(7, 12, 0)),
                (DueKind::SlaResponseBreach, mx(7, 13, 0)),
                (DueKind::SlaResolutionWarning, mx(10, 15, 45)),
                (DueKind::SlaResolutionBreach, mx(14, 9, 0)),
                (DueKind::Unassigned, mx(7, 10, 0)),
            ]
        );
        // Assigned at once: no unassigned escalation. Opened Friday 17:00: the response is
        // due Monday 12:00 (one hour on Friday, three on Monday).
        let effects = on_open(
            Priority::Media,
            Some("tech1@example.test"),
            mx(11, 17, 0),
            &policy(),
        );
        assert_eq!(
            due(&effects)[1],
            (DueKind::SlaResponseBreach, mx(14, 12, 0))
        );
        assert_eq!(due(&effects).len(), 4);
    }

    #[test]
    fn waiting_stops_the_resolution_clock_and_reopening_schedules_what_is_left() {
        let p = policy();
        assert_eq!(
            on_status(&ticket(), Status::Pending, mx(7, 11, 0), &p),
            [LifeEffect::SlaPaused]
        );
        // Opened Monday 09:00, waiting from 11:00 to Tuesday 11:00 (9 business hours):
        // 2 of 45 hours used, 43 left from Tuesday 11:00 → Monday 14 at the closing; the
        // warning when 11.25 hours are left (31.75 from Tuesday 11:00: Friday 15:45).
        let mut t = ticket();
        t.status = Status::Pending;
        t.life.sla_paused_at = Some(mx(7, 11, 0));
        let effects = on_status(&t, Status::Open, mx(8, 11, 0), &p);
        assert_eq!(effects[0], LifeEffect::SlaResumed { seconds: 9 * 3600 });
        assert_eq!(
            due(&effects),
            [
                (DueKind::SlaResolutionWarning, mx(11, 15, 45)),
                (
                    DueKind::SlaResolutionBreach,
                    Utc.with_ymd_and_hms(2026, 12, 15, 0, 0, 0).unwrap()
                ),
            ]
        );
        // A resolution already breached is not scheduled again.
        t.life.resolution_breached = true;
        assert!(due(&on_status(&t, Status::Open, mx(8, 11, 0), &p)).is_empty());
    }

    #[test]
    fn a_new_priority_moves_the_targets_by_what_is_left_of_them() {
        let p = policy();
        // Opened Monday 09:00 as media; at 10:00 it becomes critica: its first response (30
        // business minutes) is already late, so due at once; its resolution (one business
        // day, 9 hours) has 8 hours left: Monday's closing, warned at 15:45.
        let effects = on_priority(&ticket(), Priority::Critica, mx(7, 10, 0), &p);
        assert_eq!(effects[0], LifeEffect::SlaCancelled);
        assert_eq!(
            due(&effects),
            [
                (DueKind::SlaResponseWarning, mx(7, 10, 0)),
                (DueKind::SlaResponseBreach, mx(7, 10, 0)),
                (DueKind::SlaResolutionWarning, mx(7, 15, 45)),
                (
                    DueKind::SlaResolutionBreach,
                    Utc.with_ymd_and_hms(2026, 12, 8, 0, 0, 0).unwrap()
                ),
            ]
        );
        // Answered already: only the resolution moves. Same priority, or closed: nothing.
        let mut answered = ticket();
        answered.life.first_response_at = Some(mx(7, 9, 30));
        let effects = on_priority(&answered, Priority::Critica, mx(7, 10, 0), &p);
        assert_eq!(due(&effects).len(), 2);
        assert!(on_priority(&ticket(), Priority::Media, mx(7, 10, 0), &p).is_empty());
        let closed = TicketRef {
            status: Status::Closed,
            ..ticket()
        };
        assert!(on_priority(&closed, Priority::Critica, mx(7, 10, 0), &p).is_empty());
    }

    #[test]
    fn a_warning_goes_to_the_assignee_until_the_ticket_is_answered() {
        let p = policy();
        let out = on_due(
            &item(DueKind::SlaResponseWarning, ticket(), mx(7, 12, 0)),
            mx(7, 12, 0),
            &p,
        );
        assert_eq!(out.replies.len(), 1);
        let r = &out.replies[0];
        assert_eq!(r.to, "tech1@example.test");
        assert_eq!(
            r.staff.as_deref(),
            Some("tech1@example.test"),
            "with the reply address"
        );
        match &r.notice {
            Notice::SlaWarning(w) => {
                assert_eq!(
                    (w.target, w.due_at.as_str()),
                    ("first_response", "2026-12-07 13:00")
                )
            }
            n => panic!("{n:?}"),
        }
        let mut answered = ticket();
        answered.life.first_response_at = Some(mx(7, 10, 0));
        let out = on_due(
            &item(DueKind::SlaResponseWarning, answered, mx(7, 12, 0)),
            mx(7, 12, 0),
            &p,
        );
        assert!(out.replies.is_empty());
        // The resolution clock stands still while waiting: no warning.
        let mut waiting = ticket();
        waiting.status = Status::Pending;
        let out = on_due(
            &item(DueKind::SlaResolutionWarning, waiting, mx(10, 12, 0)),
            mx(10, 12, 0),
            &p,
        );
        assert!(out.replies.is_empty());
    }

    #[test]
    fn a_breach_escalates_once_to_the_groups_lead_or_else_the_admins() {
        let p = policy();
        let out = on_due(
            &item(DueKind::SlaResponseBreach, ticket(), mx(7, 13, 0)),
            mx(7, 13, 0),
            &p,
        );
        assert_eq!(out.replies.len(), 1);
        assert_eq!(out.replies[0].to, "jefa@example.test");
        assert_eq!(out.replies[0].staff, None, "the lead is not a technician");
        assert_eq!(
            out.life,
            [LifeEffect::SlaBreached {
                target: Target::FirstResponse
            }]
        );
        assert!(out.events.iter().any(|e| e.kind == "sla_breach"));
        // Already escalated: nothing more.
        let mut once = ticket();
        once.life.response_breached = true;
        let again = on_due(
            &item(DueKind::SlaResponseBreach, once, mx(7, 13, 0)),
            mx(7, 13, 0),
            &p,
        );
        assert!(again.replies.is_empty() && again.life.is_empty());
        // A group without a lead: the admins.
        let other = TicketRef {
            service: "otro".into(),
            ..ticket()
        };
        let out = on_due(
            &item(DueKind::SlaResolutionBreach, other, mx(14, 9, 0)),
            mx(14, 9, 0),
            &p,
        );
        assert_eq!(out.replies[0].to, "mesa@example.test");
        // Nobody assigned in time, unless someone was meanwhile.
        let unassigned = TicketRef {
            assignee: None,
            ..ticket()
        };
        let out = on_due(
            &item(DueKind::Unassigned, unassigned, mx(7, 10, 0)),
            mx(7, 10, 0),
            &p,
        );
        assert_eq!(out.replies.len(), 1);
        assert!(out.life.is_empty());
        let out = on_due(
            &item(DueKind::Unassigned, ticket(), mx(7, 10, 0)),
            mx(7, 10, 0),
            &p,
        );
        assert!(out.replies.is_empty());
        // A closed ticket escalates nothing.
        let closed = TicketRef {
            status: Status::Closed,
            ..ticket()
        };
        let out = on_due(
            &item(DueKind::SlaResolutionBreach, closed, mx(14, 9, 0)),
            mx(14, 9, 0),
            &p,
        );
        assert!(out.replies.is_empty());
    }
}
