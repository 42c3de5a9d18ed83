//! Each technician's morning digest (`schedule.technician_digest`): their open tickets, the
//! ones whose service level is at risk first, then by priority and age. Pure: the tickets as
//! the store reads them, the clock's now and the policy in; one mail per technician with
//! anything open out (nobody gets an empty digest).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use crate::calendar::Span;
use crate::desk::catalog::Priority;
use crate::desk::decide::Reply;
use crate::desk::notice::{
    clean_line, DigestLine, HelpdeskView, Notice, PriorityCounts, TechnicianDigest,
    MAX_SUBJECT_CHARS,
};
use crate::desk::policy::Policy;
use crate::desk::ticket::TicketRef;

/// The most tickets one digest lists (the counts cover them all).
pub const MAX_LISTED: usize = 100;

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
            Reply {
                notice,
                language: policy.language.clone(),
                to: tech.to_string(),
                in_reply_to: None,
                references: vec![],
                staff: None,
                auto_submitted: "auto-generated",
                with_attachments: false,
            }
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
