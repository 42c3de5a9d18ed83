//! What a decision's status changes do to the ticket's life, whichever path made them (a
//! technician's command, the requester's confirmation or rejection): the work they make due
//! (`desk::lifecycle::scheduled_by`) and, on closing, the closure notice to the requester; and
//! the service-level clocks of a ticket a decision opens (`desk::sla::on_open`).

use super::{Decider, Record, TicketAction};
use crate::desk::lifecycle::{self, CloseReason, LifeEffect};
use crate::desk::sla;
use crate::desk::ticket::{Change, Status, TicketRef};

impl Decider<'_> {
    /// The service-level clocks of a ticket the record opens.
    pub(super) fn follow_open(&self, r: &mut Record) {
        if let TicketAction::Open(t) = &r.action {
            let due = sla::on_open(
                t.routing.priority,
                t.routing.assignee.as_deref(),
                self.ctx.now,
                self.policy,
            );
            r.life.extend(due);
        }
    }

    pub(super) fn follow_life(&self, r: &mut Record, t: &TicketRef) {
        let TicketAction::Append { changes, .. } = &r.action else {
            return;
        };
        let closes = changes.contains(&Change::Status(Status::Closed));
        let reason = r
            .life
            .iter()
            .find_map(|e| match e {
                LifeEffect::Closed { reason } => Some(*reason),
                _ => None,
            })
            .unwrap_or(CloseReason::Technician);
        let due = lifecycle::scheduled_by(t, changes, reason, self.ctx.now, self.policy);
        r.life.extend(due);
        if !closes || !reason.notified() {
            return;
        }
        if let Some(notice) = lifecycle::closure_notice(t, reason, self.policy) {
            self.push(r, notice);
        }
    }
}
