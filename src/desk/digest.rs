//! The reports folio mails on a schedule. Each technician's digest
//! (`schedule.technician_digest`): their open tickets, the ones whose service level is at risk
//! first, then by priority and age; one mail per technician with anything open (nobody gets an
//! empty digest). The admins' weekly summary (`schedule.weekly_summary`): a period's figures
//! (`desk::report`) as mail shows them. Pure: data and the policy in, mails out.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use crate::calendar::Span;
use crate::desk::catalog::Priority;
use crate::desk::decide::Reply;
use crate::desk::notice::{
    clean_line, BreachCounts, CommentView, DigestLine, HelpdeskView, Notice, PriorityCounts,
    SatisfactionFigures, ServiceTickets, StatusCounts, TechnicianDigest, TimeFigures,
    WeeklySummary, MAX_SUBJECT_CHARS,
};
use crate::desk::policy::Policy;
use crate::desk::report::{Report, TimeTo};
use crate::desk::ticket::TicketRef;

/// The most tickets one digest lists (the counts cover them all).
pub const MAX_LISTED: usize = 100;

/// The most survey comments one summary quotes.
pub const MAX_COMMENTS: usize = 20;

/// The weekly summary of `report`, to each of `helpdesk.admins` (none without admins).
pub fn weekly_summary(report: &Report, policy: &Policy) -> Vec<Reply> {
    let count = |list: &[(&'static str, usize)], key: &str| {
        list.iter().find(|(k, _)| *k == key).map_or(0, |(_, n)| *n)
    };
    let mut by_service: Vec<ServiceTickets> = report
        .by_service
        .iter()
        .filter(|s| s.tickets > 0)
        .map(|s| ServiceTickets {
            name: s.name.clone(),
            tickets: s.tickets,
        })
        .collect();
    by_service.sort_by(|a, b| b.tickets.cmp(&a.tickets).then_with(|| a.name.cmp(&b.name)));
    let times = |t: &TimeTo| TimeFigures {
        measured: t.measured,
        still_open: t.still_open,
        mean: t.business.mean_seconds.map(human),
        p90: t.business.p90_seconds.map(human),
    };
    let s = &report.satisfaction;
    let summary = WeeklySummary {
        from: report.period.from.to_string(),
        to: report.period.to.to_string(),
        tickets: report.tickets,
        by_service,
        by_status: StatusCounts {
            open: count(&report.by_status, "open"),
            pending: count(&report.by_status, "pending"),
            resolved: count(&report.by_status, "resolved"),
            closed: count(&report.by_status, "closed"),
        },
        by_priority: PriorityCounts {
            baja: count(&report.by_priority, "baja"),
            media: count(&report.by_priority, "media"),
            alta: count(&report.by_priority, "alta"),
            critica: count(&report.by_priority, "critica"),
        },
        first_response: times(&report.first_response),
        resolution: times(&report.resolution),
        sla_breaches: BreachCounts {
            first_response: report.sla_breaches.first_response,
            resolution: report.sla_breaches.resolution,
            tickets: report.sla_breaches.tickets,
        },
        satisfaction: SatisfactionFigures {
            answers: s.answers,
            average: s.average.map(|a| format!("{a:.2}")),
            comments: s
                .comments
                .iter()
                .take(MAX_COMMENTS)
                .map(|c| CommentView {
                    folio: c.folio.clone(),
                    rating: c.rating,
                    comment: clean_line(&c.comment, 1_000),
                })
                .collect(),
            comments_more: s.comments.len().saturating_sub(MAX_COMMENTS),
        },
        helpdesk: HelpdeskView::of(policy),
    };
    Reply::to_admins(Notice::WeeklySummary(summary), policy)
}

/// A duration as mail writes it: `2 d 3 h`, `3 h 20 min`, `45 min`, `30 s` (two units at
/// most; days of 24 hours).
pub fn human(seconds: i64) -> String {
    let s = seconds.max(0);
    let (d, h, m) = (s / 86_400, s % 86_400 / 3_600, s % 3_600 / 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s} s"),
        (0, 0, m) => format!("{m} min"),
        (0, h, 0) => format!("{h} h"),
        (0, h, m) => format!("{h} h {m} min"),
        (d, 0, _) => format!("{d} d"),
        (d, h, _) => format!("{d} d {h} h"),
    }
}

/// An open ticket with its service-level state.
#[derive(Debug, Clone, PartialEq)]
pub struct OpenTicket {
    pub ticket: TicketRef,
    /// When its next pending breach (first response or resolution) falls due.
    pub next_breach: Option<DateTime<Utc>>,
}

impl OpenTicket {
    fn breached(&self) -> bool {
        self.ticket.life.response_breached || self.ticket.life.resolution_breached
    }
}

/// The digests at `now`: one per technician of the catalogue with open tickets.
pub fn digests(open: &[OpenTicket], now: DateTime<Utc>, policy: &Policy) -> Vec<Reply> {
    // At risk: breached, or due to breach before the next digest (one business day on).
    let horizon = policy.calendar.add(now, Span::BusinessDays(1));
    let mut by_tech: BTreeMap<&str, Vec<&OpenTicket>> = BTreeMap::new();
    for o in open {
        if let Some(tech) = o.ticket.assignee.as_deref() {
            if policy.catalog.technician(tech).is_some() && o.ticket.status.is_active() {
                by_tech.entry(tech).or_default().push(o);
            }
        }
    }
    by_tech
        .into_iter()
        .map(|(tech, mut tickets)| {
            let at_risk =
                |o: &OpenTicket| o.breached() || o.next_breach.is_some_and(|d| d <= horizon);
            tickets.sort_by_key(|o| {
                (
                    !at_risk(o),
                    o.next_breach.filter(|_| at_risk(o)),
                    std::cmp::Reverse(o.ticket.priority),
                    o.ticket.created_at,
                )
            });
            let mut counts = PriorityCounts::default();
            for o in &tickets {
                match o.ticket.priority {
                    Priority::Baja => counts.baja += 1,
                    Priority::Media => counts.media += 1,
                    Priority::Alta => counts.alta += 1,
                    Priority::Critica => counts.critica += 1,
                }
            }
            let local = |t: DateTime<Utc>| {
                t.with_timezone(&policy.calendar.timezone())
                    .format("%Y-%m-%d %H:%M")
                    .to_string()
            };
            let lines: Vec<DigestLine> = tickets
                .iter()
                .take(MAX_LISTED)
                .map(|o| DigestLine {
                    folio: o.ticket.folio.clone(),
                    subject: crate::desk::tokens::redact_staff_addresses(&clean_line(
                        &o.ticket.subject,
                        MAX_SUBJECT_CHARS,
                    )),
                    status: o.ticket.status.as_str(),
                    priority: o.ticket.priority.as_str(),
                    age_days: (now - o.ticket.created_at).num_days().max(0),
                    at_risk: at_risk(o),
                    breached: o.breached(),
                    due_at: o.next_breach.map(local),
                })
                .collect();
            let notice = Notice::TechnicianDigest(TechnicianDigest {
                technician_name: policy.catalog.staff_name(tech),
                open: tickets.len(),
                at_risk: tickets.iter().filter(|o| at_risk(o)).count(),
                listed_more: tickets.len().saturating_sub(MAX_LISTED),
                by_priority: counts,
                tickets: lines,
                helpdesk: HelpdeskView::of(policy),
            });
            Reply::automatic(notice, tech, policy)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::path::Path;
    use std::sync::Arc;

    use chrono::TimeZone;

    use super::*;
    use crate::desk::catalog::Catalog;
    use crate::desk::ticket::Status;
    use crate::desk::tokens::Tokens;

    fn policy() -> Policy {
        let mut p = Policy::with_defaults("helpdesk@example.test", Tokens::new(b"t".to_vec()));
        p.catalog = Arc::new(
            Catalog::parse(
                Path::new("catalog.toml"),
                "[[group]]\nid='g'\n\
                 [[technician]]\nname='Tomás Uno'\nemail='tech1@example.test'\ngroups=['g']\n\
                 [[technician]]\nname='Teresa Dos'\nemail='tech2@example.test'\ngroups=['g']\n\
                 [[service]]\nid='correo'\nname='Correo'\ngroup='g'\n",
            )
            .unwrap(),
        );
        p
    }

    /// Monday 7 December 2026, 08:00 in Mexico City.
    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 7, 14, 0, 0).unwrap()
    }

    fn open(id: i64, tech: Option<&str>, priority: Priority, days_old: i64) -> OpenTicket {
        OpenTicket {
            ticket: TicketRef {
                id,
                folio: format!("MDA-2026-{id:06}"),
                status: Status::Open,
                subject: format!("Ticket {id}"),
                requester_email: "ana@example.test".into(),
                requester_name: None,
                participants: vec![],
                assignee: tech.map(String::from),
                priority,
                service: "correo".into(),
                language: "es".into(),
                created_at: now() - chrono::Duration::days(days_old),
                updated_at: now(),
                opening_message_id: None,
                life: Default::default(),
            },
            next_breach: None,
        }
    }

    fn digest_of(r: &Reply) -> &TechnicianDigest {
        match &r.notice {
            Notice::TechnicianDigest(d) => d,
            n => panic!("{n:?}"),
        }
    }

    #[test]
    fn each_technician_gets_their_tickets_at_risk_first_then_urgent_then_old() {
        let mut soon = open(1, Some("tech1@example.test"), Priority::Baja, 1);
        soon.next_breach = Some(now() + chrono::Duration::hours(3));
        let mut later = open(2, Some("tech1@example.test"), Priority::Critica, 1);
        later.next_breach = Some(now() + chrono::Duration::days(10));
        let old = open(3, Some("tech1@example.test"), Priority::Media, 9);
        let mut breached = open(4, Some("tech1@example.test"), Priority::Baja, 2);
        breached.ticket.life.resolution_breached = true;
        let young = open(5, Some("tech1@example.test"), Priority::Media, 1);
        let theirs = open(6, Some("tech2@example.test"), Priority::Alta, 1);
        let nobody = open(7, None, Priority::Alta, 1);
        let not_staff = open(8, Some("someone@example.test"), Priority::Alta, 1);
        let mut closed = open(9, Some("tech2@example.test"), Priority::Alta, 1);
        closed.ticket.status = Status::Closed;
        let all = [
            soon, later, old, breached, young, theirs, nobody, not_staff, closed,
        ];
        let mails = digests(&all, now(), &policy());
        assert_eq!(mails.len(), 2, "one per technician with open tickets");
        assert_eq!(mails[0].to, "tech1@example.test");
        let d = digest_of(&mails[0]);
        let order: Vec<&str> = d.tickets.iter().map(|l| &l.folio[9..]).collect();
        // At risk (breached, or due within a business day) first; then critical before
        // medium; then the older first.
        assert_eq!(order, ["000004", "000001", "000002", "000003", "000005"]);
        assert_eq!((d.open, d.at_risk), (5, 2));
        assert_eq!(
            (
                d.by_priority.baja,
                d.by_priority.media,
                d.by_priority.critica
            ),
            (2, 2, 1)
        );
        assert_eq!(d.technician_name, "Tomás Uno");
        assert_eq!(d.tickets[2].due_at.as_deref(), Some("2026-12-17 08:00"));
        assert_eq!(d.tickets[3].age_days, 9);
        assert_eq!(digest_of(&mails[1]).open, 1);
    }

    #[test]
    fn durations_read_in_at_most_two_units() {
        assert_eq!(human(0), "0 s");
        assert_eq!(human(45), "45 s");
        assert_eq!(human(45 * 60), "45 min");
        assert_eq!(human(3 * 3600), "3 h");
        assert_eq!(human(3 * 3600 + 20 * 60 + 59), "3 h 20 min");
        assert_eq!(human(2 * 86_400), "2 d");
        assert_eq!(human(2 * 86_400 + 3 * 3600 + 59 * 60), "2 d 3 h");
        assert_eq!(human(-5), "0 s");
    }

    #[test]
    fn the_weekly_summary_goes_to_each_admin_and_to_nobody_without_admins() {
        use crate::desk::report::{Period, Report, Rows};
        let mut p = policy();
        let day = chrono::NaiveDate::from_ymd_opt(2026, 11, 30).unwrap();
        let period = Period::days(day, day, &p.calendar).unwrap();
        let report = Report::build(&Rows::default(), &period, &p.catalog, &p.calendar);
        assert!(weekly_summary(&report, &p).is_empty());
        p.admins = vec!["jefa@example.test".into(), "mesa@example.test".into()];
        let mails = weekly_summary(&report, &p);
        assert_eq!(
            mails.iter().map(|m| m.to.as_str()).collect::<Vec<_>>(),
            ["jefa@example.test", "mesa@example.test"]
        );
        match &mails[0].notice {
            Notice::WeeklySummary(s) => {
                assert_eq!((s.tickets, s.by_service.len()), (0, 0), "no empty services");
                assert_eq!(s.satisfaction.average, None);
                assert_eq!(s.first_response.mean, None);
            }
            n => panic!("{n:?}"),
        }
    }

    #[test]
    fn nobody_gets_an_empty_digest_and_long_lists_are_cut() {
        assert!(digests(&[], now(), &policy()).is_empty());
        let many: Vec<OpenTicket> = (1..=MAX_LISTED as i64 + 5)
            .map(|i| open(i, Some("tech1@example.test"), Priority::Media, 1))
            .collect();
        let mails = digests(&many, now(), &policy());
        let d = digest_of(&mails[0]);
        assert_eq!(
            (d.tickets.len(), d.listed_more, d.open),
            (MAX_LISTED, 5, MAX_LISTED + 5)
        );
    }
}
