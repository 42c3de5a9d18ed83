//! Mail on a ticket from anyone but its technician with proof: appended; the requester's
//! answer reopens a ticket that waited on them; the assignee hears of it.

use super::{append, Decider, Reason, Record, Role};
use crate::desk::notice::{guide, AuthorView, FollowUp, Notice};
use crate::desk::ticket::{Change, Status, TicketRef};

impl Decider<'_> {
    pub(super) fn follow_up(&self, t: &TicketRef, how: Reason, role: Role) -> Record {
        let mut changes = vec![];
        // The requester answering a ticket that waits on them or was resolved reopens it.
        if matches!(role, Role::Requester | Role::Participant)
            && matches!(t.status, Status::Pending | Status::Resolved)
        {
            changes.push(Change::Status(Status::Open));
        }
        let mut r = Record {
            action: append(t, changes),
            replies: vec![],
            events: vec![],
            reason: how,
            author: role,
            internal: false,
            failing_address: None,
        };
        self.notify_assignee(&mut r, t, role);
        r
    }

    /// Sends the assignee the new text of a follow-up (never to the writer themself).
    fn notify_assignee(&self, r: &mut Record, t: &TicketRef, role: Role) {
        let Some(tech) = t.assignee.as_ref().filter(|a| a.as_str() != self.sender()) else {
            return;
        };
        let notice = self.follow_up_notice(t, role, false);
        self.push_staff_with(r, t, tech, notice, true);
    }

    /// What the message says, for the technician of `t`; `unauthenticated`: it came from the
    /// technician's own address without proof.
    pub(super) fn follow_up_notice(
        &self,
        t: &TicketRef,
        role: Role,
        unauthenticated: bool,
    ) -> Notice {
        Notice::FollowUp(FollowUp {
            ticket: self.ticket_view(t),
            author: AuthorView {
                name: self.a.mail.from_name.clone(),
                email: self.sender().to_string(),
                role: role.as_str(),
            },
            text: self.a.new_content.clone(),
            unauthenticated,
            files: self.files(),
            commands: guide(),
            helpdesk: self.helpdesk(),
        })
    }
}
