//! Automatic mail (auto-replies, bounces, bulk, loops): recorded, never answered; a bounce of
//! one of our mails marks its address as failing and tells the ticket's technician.

use super::{append, first_line, first_lines, Decider, Event, Reason, Record, Role, TicketAction};
use crate::desk::notice::{BounceNotice, Notice};
use crate::inbound::classify::AutoKind;

impl Decider<'_> {
    pub(super) fn automatic(&self) -> Record {
        let mut r = Record {
            action: TicketAction::None,
            replies: vec![],
            events: vec![],
            reason: Reason::AutomaticRecorded,
            author: Role::Automatic,
            internal: true,
            failing_address: None,
            life: vec![],
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
                    let notice = Notice::BounceNotice(BounceNotice {
                        ticket: self.ticket_view(t),
                        bounced_to: b.to.clone(),
                        report: first_lines(&self.a.mail.body_text, 20),
                        helpdesk: self.helpdesk(),
                    });
                    self.push_staff(&mut r, t, tech, notice);
                }
            }
        }
        r
    }
}
