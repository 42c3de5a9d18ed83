//! A technician's mail on a ticket. With proof (the tokenised reply address, or an aligned
//! DKIM/SPF pass from a trusted server) its commands apply, all or none, and its text is
//! relayed to the requester and participants; without proof it is an ordinary follow-up and a
//! security event.

use super::{append, Decider, Event, Reason, Record, Reply, Role};
use crate::desk::command::{self, Command, Commands, Refusal};
use crate::desk::lifecycle::LifeEffect;
use crate::desk::notice::{
    clean_line, first_name, guide, AssignedTicketView, Assignment, AttachmentList, CommandResult,
    Notice, Relay, RequesterView, TechnicianView, MAX_SUBJECT_CHARS,
};
use crate::desk::ticket::{self, Applied, Change, Outcome, TicketRef};
use crate::desk::tokens::redact_staff_addresses;

impl Decider<'_> {
    /// A technician's reply: with proof, relay and apply commands; without, a follow-up.
    pub(super) fn staff_reply(&self, t: &TicketRef, how: Reason) -> Record {
        let sender = self.sender();
        let commands = command::parse_commands(&self.a.new_content);
        let Some(proof) = self.proof(t) else {
            return self.unproven_staff_mail(t, how, &commands);
        };
        let mut r = Record {
            action: append(t, vec![]),
            replies: vec![],
            events: vec![],
            reason: Reason::StaffReply,
            author: Role::Technician,
            internal: true,
            failing_address: None,
            life: vec![],
        };
        let Outcome { changes, applied } = match self.applicable(t, &commands) {
            Ok(outcome) => outcome,
            Err(errors) => {
                r.reason = Reason::StaffCommandsRejected;
                r.events.push(Event {
                    kind: "commands_rejected",
                    detail: errors
                        .iter()
                        .map(Refusal::to_string)
                        .collect::<Vec<_>>()
                        .join("; "),
                });
                let notice = self.command_result(t, vec![], errors, false);
                self.push_staff(&mut r, t, sender, notice);
                return r;
            }
        };
        r.events.push(Event {
            kind: "authenticated",
            detail: format!("technician {sender}: {proof}"),
        });
        // How it closes decides what follows (`desk::lifecycle::CloseReason`).
        for a in &applied {
            if let Applied::Close { how } = a {
                r.life.push(LifeEffect::Closed {
                    reason: (*how).into(),
                });
            }
        }
        let public_text = redact_staff_addresses(commands.body.trim());
        let relayed = self.relay(&mut r, t, &commands, &public_text);
        // A public answer or a change of status is the ticket's response (`[sla]`).
        if relayed || changes.iter().any(|c| matches!(c, Change::Status(_))) {
            r.life.push(LifeEffect::FirstResponse);
        }
        // Confirm the commands to the technician; notify a new assignee.
        if !applied.is_empty() {
            let notice = self.command_result(t, applied, vec![], relayed);
            self.push_staff(&mut r, t, sender, notice);
        }
        self.notify_reassignment(&mut r, t, &changes, &public_text);
        r.action = append(t, changes);
        r
    }

    /// Mail from a technician's address without proof: a follow-up whose commands are
    /// ignored and whose text is relayed to nobody.
    fn unproven_staff_mail(&self, t: &TicketRef, how: Reason, commands: &Commands) -> Record {
        let sender = self.sender();
        let mut r = self.follow_up(t, how, Role::Technician);
        r.reason = Reason::StaffUnauthenticated;
        r.internal = true;
        let tried_commands = !commands.commands.is_empty() || !commands.errors.is_empty();
        r.events.push(Event {
            kind: "security",
            detail: format!(
                "mail from technician address {sender} without proof (no tokenised reply address, no aligned DKIM/SPF pass from a trusted server): {} ignored, nothing relayed",
                if tried_commands {
                    format!("{} command line(s)", commands.commands.len() + commands.errors.len())
                } else {
                    "no commands".to_string()
                }
            ),
        });
        // The real technician hears about it (the forged sender never does: it goes to
        // the configured address).
        // Only for a mail that tried commands: a technician's mailbox rule that forwards
        // folio's notices back must not get a warning per notice.
        if tried_commands && t.assignee.as_deref() == Some(sender) {
            let notice = self.follow_up_notice(t, Role::Technician, true);
            self.push_staff(&mut r, t, sender, notice);
        }
        r
    }

    /// The changes `commands` make to `t`, or why they cannot apply (then none does).
    fn applicable(&self, t: &TicketRef, commands: &Commands) -> Result<Outcome, Vec<Refusal>> {
        if commands.errors.is_empty() {
            ticket::apply(&t.state(), &commands.commands, &self.policy.catalog)
        } else {
            Err(commands.errors.clone())
        }
    }

    /// Relays the text to the requester and participants, unless it is a note; whether it
    /// went to anyone.
    fn relay(&self, r: &mut Record, t: &TicketRef, commands: &Commands, public_text: &str) -> bool {
        let resolve_text = commands.commands.iter().find_map(|c| match c {
            Command::Resolve(t) => Some(redact_staff_addresses(t.as_deref().unwrap_or_default())),
            _ => None,
        });
        let relay = !commands.is_note() && (!public_text.is_empty() || resolve_text.is_some());
        if !relay {
            return false;
        }
        r.internal = false;
        let technician = self.policy.catalog.technician(self.sender());
        let mut relayed = false;
        for to in std::iter::once(&t.requester_email).chain(t.participants.iter()) {
            if to.is_empty() {
                continue;
            }
            let relay = Relay {
                ticket: self.public_ticket_view(t, to),
                text: public_text.to_string(),
                resolution: resolve_text.clone(),
                technician: TechnicianView {
                    first_name: technician.map(|x| first_name(&x.name)),
                    name: technician.map(|x| x.name.clone()),
                },
                helpdesk: self.helpdesk(),
            };
            let notice = if resolve_text.is_some() {
                Notice::Resolved(relay)
            } else {
                Notice::Reply(relay)
            };
            relayed |= self.push_capped(
                r,
                Reply {
                    notice,
                    language: t.language.clone(),
                    to: to.clone(),
                    in_reply_to: t.opening_message_id.clone(),
                    references: t.thread(),
                    staff: None,
                    auto_submitted: "auto-generated",
                    with_attachments: true,
                },
                false,
            );
        }
        relayed
    }

    /// The `command_result` for the technician of `t`.
    fn command_result(
        &self,
        t: &TicketRef,
        applied: Vec<Applied>,
        errors: Vec<Refusal>,
        relayed: bool,
    ) -> Notice {
        Notice::CommandResult(CommandResult {
            ticket: self.ticket_view(t),
            applied,
            errors,
            relayed,
            commands: guide(),
            helpdesk: self.helpdesk(),
        })
    }

    /// Tells a technician the ticket was given to them (unless they gave it to themself).
    fn notify_reassignment(
        &self,
        r: &mut Record,
        t: &TicketRef,
        changes: &[Change],
        public_text: &str,
    ) {
        let sender = self.sender();
        for c in changes {
            let Change::Assignee(new) = c else {
                continue;
            };
            if new == sender {
                continue;
            }
            let catalog = &self.policy.catalog;
            let notice = Notice::Assignment(Assignment {
                ticket: AssignedTicketView {
                    subject: clean_line(&t.subject, MAX_SUBJECT_CHARS),
                    channel: None,
                    service: t.service.clone(),
                    service_name: catalog.service_name(&t.service),
                    ticket_type: None,
                    priority: t.priority.as_str(),
                    rules: vec![],
                },
                requester: RequesterView {
                    name: t.requester_name.clone(),
                    email: t.requester_email.clone(),
                    department: None,
                    phone: None,
                },
                detail: public_text.to_string(),
                files: AttachmentList::default(),
                opened_by: None,
                opened_by_name: None,
                reassigned_by: Some(sender.to_string()),
                reassigned_by_name: Some(catalog.staff_name(sender)),
                commands: guide(),
                helpdesk: self.helpdesk(),
            });
            self.push_staff(r, t, new, notice);
        }
    }
}
