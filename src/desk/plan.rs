//! A batch's plan: what each message of a batch does, decided before anything is written.
//!
//! Pure: the analyses + what the database knows about them ([`Known`]) + the policy → one
//! [`Step`] per message, in mailbox order. What earlier messages of the batch did counts for
//! later ones, exactly as if each had been stored before the next was decided: a second copy is
//! a duplicate, the caps count the replies planned earlier, new tickets take turns among the
//! technicians, a ticket changed by one message is seen changed by the next, and an address that
//! hard-bounced gets no more mail. The store writes the plan in one transaction
//! (`store::Batch::write_plan`).

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Duration, Utc};

use crate::desk::analysis::Analysis;
use crate::desk::command::{self, Query};
use crate::desk::decide::{
    decide, BouncedMail, Context, Decision, NewTicket, Record, TicketAction,
};
use crate::desk::known::{Known, Lookup};
use crate::desk::policy::{cap_key, domain_of, Policy};
use crate::inbound::mail::InboundMail;

/// What a batch does with one message.
// One step per message of a batch, held briefly: the size difference does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Step<'a> {
    /// It cannot be processed (unparseable, over a limit, its analysis failed): why.
    Quarantine(String),
    /// Seen before (stored, or earlier in this batch): nothing to store, just file it away.
    Duplicate(&'a Analysis),
    /// Store it with the decision's effects.
    Record(&'a Analysis, Record),
}

impl Step<'_> {
    /// The ticket this step opens, if it opens one.
    pub fn new_ticket(&self) -> Option<&NewTicket> {
        match self {
            Step::Record(_, r) => match &r.action {
                TicketAction::Open(t) => Some(t),
                _ => None,
            },
            _ => None,
        }
    }
}

/// The plan of a batch.
#[derive(Debug)]
pub struct Plan<'a> {
    /// One step per message, in the order given.
    pub steps: Vec<Step<'a>>,
    /// Group → the technician it assigned last in this batch (the round-robin position to keep).
    pub cursors: HashMap<String, String>,
}

impl Plan<'_> {
    /// How many tickets the plan opens (folio numbers to allocate).
    pub fn opens(&self) -> usize {
        self.steps
            .iter()
            .filter(|s| s.new_ticket().is_some())
            .count()
    }

    /// The records, with the index of their message.
    pub fn records(&self) -> impl Iterator<Item = (usize, &Analysis, &Record)> {
        self.steps.iter().enumerate().filter_map(|(i, s)| match s {
            Step::Record(a, r) => Some((i, *a, r)),
            _ => None,
        })
    }
}

/// Plans a batch: first the request for what the database must look up
/// ([`Planner::lookup`]), then, with the answer, the plan ([`Planner::plan`]).
pub struct Planner<'a> {
    policy: &'a Policy,
    /// Per message, what the lookup and the plan both need of it, or why it is quarantined.
    messages: Vec<Result<Facts<'a>, &'a str>>,
}

/// What the lookup and the plan both need of a message: computed once, as it costs a hash of
/// the message and an HMAC per parent.
struct Facts<'a> {
    analysis: &'a Analysis,
    dedup_key: String,
    /// The folio of one of our (verified) Message-IDs it answers.
    thread_folio: Option<String>,
}

impl<'a> Planner<'a> {
    /// A planner for these analyses (an `Err` is a message to quarantine, with the reason).
    pub fn new(analyses: &'a [Result<Analysis, String>], policy: &'a Policy) -> Planner<'a> {
        let messages = analyses
            .iter()
            .map(|a| match a {
                Ok(a) => Ok(Facts {
                    analysis: a,
                    dedup_key: a.mail.dedup_key(),
                    thread_folio: thread_folio(&a.mail, policy),
                }),
                Err(reason) => Err(reason.as_str()),
            })
            .collect();
        Planner { policy, messages }
    }

    fn usable(&self) -> impl Iterator<Item = &Facts<'a>> {
        self.messages.iter().flatten()
    }

    fn analyses(&self) -> impl Iterator<Item = &'a Analysis> + '_ {
        self.usable().map(|f| f.analysis)
    }

    /// What the batch needs looked up at `now`; `window` is the per-address cap's
    /// (`limits.auto_reply_window`).
    pub fn lookup(&self, now: DateTime<Utc>, window: Duration) -> Lookup<'_> {
        let policy = self.policy;
        let asks_for_list = |a: &Analysis| {
            command::parse_query(&a.new_content, &a.mail.subject, &policy.folio_format)
                == Some(Query::MyTickets)
        };
        Lookup {
            dedup_keys: self.usable().map(|f| f.dedup_key.as_str()).collect(),
            parent_ids: self
                .analyses()
                .flat_map(|a| parents(&a.mail))
                .map(String::as_str)
                .collect(),
            folios: self
                .analyses()
                .filter_map(|a| a.folio_reference.clone())
                .chain(self.usable().filter_map(|f| f.thread_folio.clone()))
                .collect(),
            // Where mail may be queued: the senders and on-behalf requesters (the cap),
            // and the technicians (their notices have a cap too).
            addresses: self
                .analyses()
                .flat_map(|a| {
                    std::iter::once(a.requester.email.as_str())
                        .chain(a.mail.from_email.as_deref())
                        .chain(a.forward.iter().map(|f| f.requester.email.as_str()))
                        .chain(a.phone_note.iter().filter_map(|n| n.email.as_deref()))
                })
                .chain(policy.catalog.technicians.iter().map(|t| t.email.as_str()))
                .collect(),
            // `mis folios` lists the From address's tickets.
            senders: self
                .analyses()
                .filter(|a| asks_for_list(a))
                .filter_map(|a| a.mail.from_email.as_deref())
                .collect(),
            since: now - window,
            hour_ago: now - Duration::hours(1),
            now,
        }
    }

    /// Decides every message, in order, with what `known` says and what the earlier messages of
    /// the batch did.
    pub fn plan(&self, known: Known) -> Plan<'a> {
        let mut batch = SoFar {
            known,
            seen_keys: HashSet::new(),
            cursors: HashMap::new(),
        };
        let steps = self
            .messages
            .iter()
            .map(|m| match m {
                Err(reason) => Step::Quarantine(reason.to_string()),
                Ok(facts) => {
                    let decision = decide(facts.analysis, &batch.context(facts), self.policy);
                    match decision {
                        Decision::Duplicate => Step::Duplicate(facts.analysis),
                        Decision::Record(r) => {
                            batch.count(&r, self.policy);
                            Step::Record(facts.analysis, r)
                        }
                    }
                }
            })
            .collect();
        Plan {
            steps,
            cursors: batch.cursors,
        }
    }
}

/// What the database knows, updated with what the batch's messages planned so far did.
struct SoFar {
    known: Known,
    /// Dedup keys of the messages planned so far.
    seen_keys: HashSet<String>,
    cursors: HashMap<String, String>,
}

impl SoFar {
    /// The facts `decide` needs about `a`, as things stand after the earlier messages.
    fn context(&mut self, facts: &Facts) -> Context<'_> {
        let a = facts.analysis;
        let key = &facts.dedup_key;
        let already_processed =
            self.known.dedup_keys.contains(key) || !self.seen_keys.insert(key.clone());
        let known = &self.known;
        let bounced = a
            .mail
            .signals
            .report_original_message_id
            .as_ref()
            .and_then(|id| known.sent.get(id))
            .map(|s| BouncedMail {
                outbox_id: s.outbox_id,
                to: s.to.clone(),
                ticket: s.ticket_id.and_then(|id| known.ticket_by_id(id)).cloned(),
            });
        let thread_ticket = facts
            .thread_folio
            .as_ref()
            .and_then(|f| known.tickets.get(f))
            .or_else(|| {
                parents(&a.mail)
                    .find_map(|id| known.sent.get(id))
                    .and_then(|s| s.ticket_id)
                    .and_then(|id| known.ticket_by_id(id))
            })
            .cloned();
        // The mail of ours this one answers (In-Reply-To, then References from the end).
        let answered = parents(&a.mail).find_map(|id| known.sent.get(id)).cloned();
        Context {
            now: known.now,
            answered,
            already_processed,
            thread_ticket,
            referenced_ticket: a
                .folio_reference
                .as_ref()
                .and_then(|f| known.tickets.get(f))
                .cloned(),
            bounced,
            sender_tickets: a
                .mail
                .from_email
                .as_ref()
                .and_then(|f| known.sender_tickets.get(f))
                .cloned()
                .unwrap_or_default(),
            recent_mails: Some(&known.recent_mails),
            recent_domains: Some(&known.recent_domains),
            recent_total: known.recent_total,
            failing: Some(&known.failing),
            workload: Some(&known.workload),
        }
    }

    /// Counts what a recorded message does, for the messages after it.
    fn count(&mut self, r: &Record, policy: &Policy) {
        let known = &mut self.known;
        for reply in &r.replies {
            *known.recent_mails.entry(cap_key(&reply.to)).or_default() += 1;
            *known
                .recent_domains
                .entry(domain_of(&reply.to))
                .or_default() += 1;
            known.recent_total += 1;
        }
        // A hard bounce counts for the rest of the batch too.
        if let Some(addr) = &r.failing_address {
            known.failing.insert(addr.clone());
        }
        match &r.action {
            TicketAction::Open(t) => {
                if let (Some(tech), Some(service)) = (
                    &t.routing.assignee,
                    policy.catalog.service(&t.routing.service),
                ) {
                    known.workload.assigned(&service.group, tech);
                    self.cursors.insert(service.group.clone(), tech.clone());
                }
            }
            // Later messages of the batch see the ticket as changed.
            TicketAction::Append { folio, changes, .. } => {
                if let Some(t) = known.tickets.get_mut(folio) {
                    crate::desk::lifecycle::apply(t, changes, &r.life, known.now);
                }
            }
            TicketAction::None => {}
        }
    }
}

/// The Message-IDs a message answers, nearest first: In-Reply-To, References from the end, and
/// for a delivery report the Message-ID of the bounced mail (so a bounce of a confirmation lands
/// on its ticket).
fn parents(mail: &InboundMail) -> impl Iterator<Item = &String> {
    mail.in_reply_to
        .iter()
        .chain(mail.references.iter().rev())
        .chain(mail.signals.report_original_message_id.iter())
}

/// The folio of one of our (verified) Message-IDs this message answers, normalised.
fn thread_folio(mail: &InboundMail, policy: &Policy) -> Option<String> {
    parents(mail)
        .find_map(|id| policy.tokens.verify_message_id(id))
        .map(|f| {
            policy
                .folio_format
                .find(&f)
                .unwrap_or_else(|| f.to_uppercase())
        })
}

#[cfg(test)]
mod tests {

    use chrono::TimeZone;

    use super::*;
    use crate::desk::catalog::Priority;
    use crate::desk::decide::Reason;
    use crate::desk::known::SentMail;
    use crate::desk::requester::Directory;
    use crate::desk::ticket::{Change, Status, TicketRef};

    const HD: &str = "helpdesk@example.test";
    const FOLIO: &str = "MDA-2026-000007";

    /// The decision tests' site, with room under the per-address cap for a few replies.
    fn policy() -> Policy {
        let mut p = crate::desk::decide::tests::policy();
        p.max_auto_replies_per_address = 5;
        p
    }

    /// A message from `from` to `to` with Message-ID `<id>`, `extra` headers and `body`.
    fn mail(p: &Policy, from: &str, to: &str, id: &str, extra: &str, body: &str) -> Analysis {
        let raw = format!(
            "From: {from}\r\nTo: {to}\r\nSubject: Ayuda\r\nMessage-ID: <{id}>\r\n{extra}\r\n{body}\r\n"
        );
        crate::desk::analysis::analyze(raw.as_bytes(), &Directory::default(), p, u64::MAX).unwrap()
    }

    /// A plain request from `from` to the help desk.
    fn request(p: &Policy, from: &str, id: &str, body: &str) -> Result<Analysis, String> {
        Ok(mail(p, from, HD, id, "", body))
    }

    /// Ana's open ticket, assigned to the first technician, as the store knows it.
    fn known_ticket() -> Known {
        let t0 = Utc.with_ymd_and_hms(2026, 11, 26, 10, 0, 0).unwrap();
        let ticket = TicketRef {
            id: 7,
            folio: FOLIO.into(),
            status: Status::Open,
            subject: "Ayuda".into(),
            requester_email: "ana@example.test".into(),
            requester_name: None,
            participants: vec![],
            assignee: Some("tech1@example.test".into()),
            priority: Priority::Media,
            service: "correo".into(),
            language: "es".into(),
            created_at: t0,
            updated_at: t0,
            opening_message_id: Some("a1@client.test".into()),
            life: Default::default(),
        };
        let mut known = Known::default();
        known.folio_of.insert(7, FOLIO.into());
        known.tickets.insert(FOLIO.into(), ticket);
        known
    }

    fn record<'s>(step: &'s Step) -> &'s Record {
        match step {
            Step::Record(_, r) => r,
            other => panic!("expected a record, got {other:?}"),
        }
    }

    fn recipients(r: &Record) -> Vec<&str> {
        r.replies.iter().map(|x| x.to.as_str()).collect()
    }

    #[test]
    fn a_second_copy_in_one_batch_is_a_duplicate() {
        let p = policy();
        let copy = || request(&p, "ana@example.test", "a1@client.test", "No imprime.");
        let batch = [copy(), copy()];
        let steps = Planner::new(&batch, &p).plan(Known::default()).steps;
        assert_eq!(record(&steps[0]).reason, Reason::NewTicket);
        assert!(matches!(steps[1], Step::Duplicate(_)), "{:?}", steps[1]);
        // And a copy the database already holds is a duplicate from the first.
        let mut known = Known::default();
        known
            .dedup_keys
            .insert(batch[0].as_ref().unwrap().mail.dedup_key());
        let alone = [copy()];
        let steps = Planner::new(&alone, &p).plan(known).steps;
        assert!(matches!(steps[0], Step::Duplicate(_)));
    }

    #[test]
    fn quarantined_messages_keep_their_place_and_reason() {
        let p = policy();
        let ok = mail(&p, "ana@example.test", HD, "a1@client.test", "", "x");
        let batch = [Err("too big".to_string()), Ok(ok)];
        let plan = Planner::new(&batch, &p).plan(Known::default());
        assert!(matches!(&plan.steps[0], Step::Quarantine(r) if r == "too big"));
        assert_eq!(record(&plan.steps[1]).reason, Reason::NewTicket);
        assert_eq!(plan.opens(), 1);
    }

    #[test]
    fn the_cap_counts_replies_planned_earlier_in_the_batch() {
        let mut p = policy();
        p.max_auto_replies_per_address = 1;
        let batch = [
            request(&p, "ana@example.test", "a1@client.test", "Uno"),
            request(&p, "ana@example.test", "a2@client.test", "Dos"),
        ];
        let steps = Planner::new(&batch, &p).plan(Known::default()).steps;
        let first = record(&steps[0]);
        assert_eq!(first.reason, Reason::NewTicket);
        assert!(recipients(first).contains(&"ana@example.test"));
        let second = record(&steps[1]);
        assert_eq!(second.reason, Reason::NewTicketRateLimited);
        assert!(!recipients(second).contains(&"ana@example.test"));
        assert!(second.events.iter().any(|e| e.kind == "rate_limited"));
    }

    #[test]
    fn two_new_tickets_in_one_batch_take_turns() {
        let p = policy();
        let batch = [
            request(
                &p,
                "ana@example.test",
                "a1@client.test",
                "No llega el correo",
            ),
            request(
                &p,
                "beto@example.test",
                "b1@client.test",
                "No llega el correo",
            ),
        ];
        let plan = Planner::new(&batch, &p).plan(Known::default());
        let assignees: Vec<_> = plan
            .steps
            .iter()
            .map(|s| s.new_ticket().unwrap().routing.assignee.clone().unwrap())
            .collect();
        assert_eq!(assignees, vec!["tech1@example.test", "tech2@example.test"]);
        assert_eq!(
            plan.cursors.get("g").map(String::as_str),
            Some("tech2@example.test")
        );
    }

    #[test]
    fn a_status_change_by_one_message_is_seen_by_the_next() {
        let p = policy();
        let ours = p.tokens.message_id(FOLIO, "n1", "example.test");
        let thread = format!("In-Reply-To: <{ours}>\r\n");
        let token = p.tokens.staff_address(HD, FOLIO, "tech1@example.test");
        let batch = [
            // The technician resolves the ticket (from their tokenised address: proof) …
            Ok(mail(
                &p,
                "tech1@example.test",
                &token,
                "t1@client.test",
                &thread,
                "#resuelto",
            )),
            // … and the requester writes again: the resolved ticket is reopened.
            Ok(mail(
                &p,
                "ana@example.test",
                HD,
                "a2@client.test",
                &thread,
                "Sigue igual.",
            )),
        ];
        let steps = Planner::new(&batch, &p).plan(known_ticket()).steps;
        let changes = |s: &Step| match &record(s).action {
            TicketAction::Append { changes, .. } => changes.clone(),
            other => panic!("expected an append, got {other:?}"),
        };
        assert_eq!(changes(&steps[0]), vec![Change::Status(Status::Resolved)]);
        assert_eq!(changes(&steps[1]), vec![Change::Status(Status::Open)]);
    }

    #[test]
    fn a_bounce_suppresses_mail_to_that_address_for_the_rest_of_the_batch() {
        let p = policy();
        let mut known = Known::default();
        known.sent.insert(
            "ours1@example.test".into(),
            SentMail {
                outbox_id: 1,
                to: "ana@example.test".into(),
                ticket_id: None,
                template: "confirmation".into(),
            },
        );
        let dsn = mail(
            &p,
            "MAILER-DAEMON@mx.example.test",
            HD,
            "dsn1@mx.example.test",
            "MIME-Version: 1.0\r\n\
             Content-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\r\n",
            "--b\r\nContent-Type: text/plain\r\n\r\nUnknown user.\r\n\
             --b\r\nContent-Type: message/delivery-status\r\n\r\n\
             Reporting-MTA: dns; mx.example.test\r\n\r\n\
             Final-Recipient: rfc822; ana@example.test\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n\
             --b\r\nContent-Type: text/rfc822-headers\r\n\r\n\
             Message-ID: <ours1@example.test>\r\nTo: ana@example.test\r\n\r\n--b--",
        );
        let batch = [
            Ok(dsn),
            request(&p, "ana@example.test", "a1@client.test", "No imprime."),
        ];
        let steps = Planner::new(&batch, &p).plan(known).steps;
        let bounce = record(&steps[0]);
        assert_eq!(bounce.reason, Reason::BounceOfOurMail);
        assert_eq!(bounce.failing_address.as_deref(), Some("ana@example.test"));
        let after = record(&steps[1]);
        assert_eq!(after.reason, Reason::NewTicket);
        assert!(
            !recipients(after).contains(&"ana@example.test"),
            "{after:?}"
        );
        assert!(after.events.iter().any(|e| e.kind == "suppressed"));
    }

    #[test]
    fn the_lookup_asks_for_what_the_messages_name() {
        let p = policy();
        let ours = p.tokens.message_id(FOLIO, "n1", "example.test");
        let analyses = [Ok(mail(
            &p,
            "ana@example.test",
            HD,
            "a2@client.test",
            &format!("In-Reply-To: <{ours}>\r\n"),
            "mis folios",
        ))];
        let planner = Planner::new(&analyses, &p);
        let now = Utc.with_ymd_and_hms(2026, 11, 27, 16, 0, 0).unwrap();
        let q = planner.lookup(now, Duration::hours(24));
        assert_eq!(q.parent_ids, vec![ours.as_str()]);
        assert_eq!(q.folios, vec![FOLIO.to_string()]);
        assert_eq!(q.senders, vec!["ana@example.test"]);
        assert!(q.addresses.contains(&"tech2@example.test"));
        assert_eq!(q.since, now - Duration::hours(24));
        assert_eq!(q.hour_ago, now - Duration::hours(1));
    }

    #[test]
    fn the_stored_context_carries_the_folio() {
        let p = policy();
        let a = mail(&p, "ana@example.test", HD, "a1@client.test", "", "x");
        let batch = [Ok(a)];
        let steps = Planner::new(&batch, &p).plan(Known::default()).steps;
        let reply = &record(&steps[0]).replies[0];
        let stored: serde_json::Value =
            serde_json::from_str(&reply.context_json(Some(FOLIO))).unwrap();
        assert_eq!(stored["folio"], FOLIO);
        let without: serde_json::Value = serde_json::from_str(&reply.context_json(None)).unwrap();
        assert!(without.get("folio").is_none());
    }
}
