//! The caps every queued mail passes, and the addresses it skips.

use super::{Context, Decider, Event, Record, Reply};
use crate::desk::notice::{Notice, Template};
use crate::desk::policy::{cap_key, domain_of};
use crate::desk::ticket::TicketRef;

impl Context<'_> {
    pub(super) fn recent(&self, address: &str) -> u32 {
        self.recent_mails
            .and_then(|m| m.get(&cap_key(address)))
            .copied()
            .unwrap_or(0)
    }

    pub(super) fn recent_in_domain(&self, address: &str) -> u32 {
        self.recent_domains
            .and_then(|m| m.get(&domain_of(address)))
            .copied()
            .unwrap_or(0)
    }

    pub(super) fn is_failing(&self, address: &str) -> bool {
        self.failing.is_some_and(|f| f.contains(address))
    }
}

impl Decider<'_> {
    /// Queues a reply unless its address is failing or over the cap. Staff get many notices
    /// legitimately, so their cap is ten times higher (but there is one: a technician's mailbox
    /// rule forwarding notices back to the help desk must not loop forever).
    pub(super) fn push(&self, r: &mut Record, reply: Reply) -> bool {
        self.push_capped(r, reply, true)
    }

    /// Queues `notice` to the requester of `t`, threaded on the ticket (capped).
    pub(super) fn push_to_requester(&self, r: &mut Record, t: &TicketRef, notice: Notice) {
        self.push(
            r,
            Reply {
                notice,
                language: t.language.clone(),
                to: t.requester_email.clone(),
                in_reply_to: self.a.mail.message_id.clone(),
                references: super::thread_of(&self.a.mail),
                staff: None,
                auto_submitted: "auto-replied",
                with_attachments: false,
            },
        );
    }

    /// Like [`Decider::push`]; `capped = false` for a technician's relayed reply to the
    /// requester: an authenticated person wrote it, it cannot be a loop, and the requester must
    /// not miss it because robots used up their cap.
    pub(super) fn push_capped(&self, r: &mut Record, reply: Reply, capped: bool) -> bool {
        let to = reply.to.as_str();
        if self.ctx.is_failing(to) {
            r.events.push(Event {
                kind: "suppressed",
                detail: format!(
                    "no {} to {to}: the address bounced recently",
                    reply.template()
                ),
            });
            return false;
        }
        if let Some(e) = capped
            .then(|| self.over_cap(to, reply.template()))
            .flatten()
        {
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
    pub(super) fn over_cap(&self, to: &str, template: Template) -> Option<Event> {
        let p = self.policy;
        let cap = p.address_cap(to);
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

    /// Queues a notice to a technician; its Reply-To will be their tokenised address.
    pub(super) fn push_staff(&self, r: &mut Record, t: &TicketRef, to: &str, notice: Notice) {
        self.push_staff_with(r, t, to, notice, false);
    }

    /// Like [`Decider::push_staff`]; `with_attachments`: the message's files go along.
    pub(super) fn push_staff_with(
        &self,
        r: &mut Record,
        t: &TicketRef,
        to: &str,
        notice: Notice,
        with_attachments: bool,
    ) {
        self.push(
            r,
            Reply {
                notice,
                language: self.policy.language.clone(),
                to: to.to_string(),
                in_reply_to: None,
                references: t.thread(),
                staff: Some(to.to_string()),
                auto_submitted: "auto-generated",
                with_attachments,
            },
        );
    }
}
