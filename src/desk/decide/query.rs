//! `estado` and `mis folios`: answered at the From address, with ticket data only for a
//! party to the ticket.

use super::{append, is_ours, thread_of, Decider, Reason, Record, Reply, Role, TicketAction};
use crate::desk::command::Query;
use crate::desk::notice::{MyTickets, Notice, StatusDenied, StatusReport, TicketView};
use crate::desk::ticket::TicketRef;

impl Decider<'_> {
    pub(super) fn query(&self, q: Query, matched: Option<&TicketRef>) -> Record {
        // Ticket data goes to the From address, the one judged a party to the ticket: a
        // Reply-To could be anyone's.
        let sender_address = self.sender().to_lowercase();
        let mut r = Record {
            action: TicketAction::None,
            replies: vec![],
            events: vec![],
            reason: Reason::StatusQuery,
            author: Role::Other,
            internal: false,
            failing_address: None,
            life: vec![],
        };
        let mut notice = match q {
            // The list is of the From address's tickets (looked up so), and goes there.
            Query::MyTickets => Notice::MyTickets(MyTickets {
                tickets: self
                    .ctx
                    .sender_tickets
                    .iter()
                    .map(|t| self.public_ticket_view(t, &sender_address))
                    .collect(),
                helpdesk: self.helpdesk(),
            }),
            Query::Status(folio) => self.status(&mut r, folio, matched, &sender_address),
        };
        if sender_address.is_empty() || is_ours(&sender_address, &self.policy.helpdesk_address) {
            return r;
        }
        // An answer to an outside domain quotes nothing a sender wrote: a ticket's subject may
        // be a stranger's text (opened with the victim's address in Reply-To, then asked
        // about with a forged From).
        if !self.policy.quote_outside_domains && self.policy.is_outside(&sender_address) {
            match &mut notice {
                Notice::Status(s) => s.ticket.quote_no_subject(),
                Notice::MyTickets(m) => m.tickets.iter_mut().for_each(TicketView::quote_no_subject),
                _ => {}
            }
        }
        self.push(
            &mut r,
            Reply {
                notice,
                language: self.policy.language.clone(),
                to: sender_address,
                in_reply_to: self.a.mail.message_id.clone(),
                references: thread_of(&self.a.mail),
                staff: None,
                auto_submitted: "auto-replied",
                with_attachments: false,
            },
        );
        r
    }

    /// The answer to `estado` (about `folio`, else the ticket the mail answers): the ticket's
    /// status to a party to it, a reply that reveals nothing to anyone else.
    fn status(
        &self,
        r: &mut Record,
        folio: Option<String>,
        matched: Option<&TicketRef>,
        sender_address: &str,
    ) -> Notice {
        let target = match &folio {
            Some(f) => [
                self.ctx.thread_ticket.as_ref(),
                self.ctx.referenced_ticket.as_ref(),
            ]
            .into_iter()
            .flatten()
            .find(|t| t.folio == *f),
            None => matched,
        };
        match target.filter(|t| self.role_in(t) != Role::Other) {
            Some(t) => {
                r.action = append(t, vec![]);
                r.author = self.role_in(t);
                Notice::Status(StatusReport {
                    ticket: self.public_ticket_view(t, sender_address),
                    helpdesk: self.helpdesk(),
                })
            }
            None => {
                r.reason = Reason::StatusQueryDenied;
                Notice::StatusDenied(StatusDenied {
                    folio_asked: folio,
                    helpdesk: self.helpdesk(),
                })
            }
        }
    }
}
