//! A new request: a ticket opened for its sender, or, with proof that a staff member wrote it,
//! for the caller of a phone note or the original sender of a forward; its routing, the
//! confirmation (and the agent's copy) and the technician's assignment notice.

use super::{
    first_line, is_ours, thread_of, Decider, Event, NewTicket, Reason, Record, Reply, Role,
    TicketAction,
};
use crate::desk::notice::{
    clean_line, guide, reply_subject, summary, AssignedTicketView, Assignment, AttachmentList,
    Confirmation, MissingView, Notice, RequesterView, Template, MAX_SUBJECT_CHARS,
};
use crate::desk::requester::Requester;
use crate::desk::routing::{self, Routing, Workload};
use crate::desk::tokens::redact_staff_addresses;
use crate::inbound::phone_note::PhoneNote;

/// At most this many CC'd addresses become participants of a ticket.
const MAX_PARTICIPANTS: usize = 10;

/// A ticket about to be opened: for whom, about what, how it came in.
struct Opening<'b> {
    requester: Requester,
    /// One line, of bounded length, without a staff token.
    subject: String,
    body: &'b str,
    /// `email` or `phone`.
    channel: &'static str,
    /// Why it is opened, before the confirmation's fate may change it.
    reason: Reason,
    /// The phone agent, and their note.
    agent: Option<(String, &'b PhoneNote)>,
}

impl Decider<'_> {
    pub(super) fn new_request(&self) -> Record {
        let a = self.a;
        let sender = self.sender();
        let catalog = &self.policy.catalog;
        let is_agent = catalog.agent(sender).is_some();
        let is_staff = catalog.is_staff(sender);

        // Acting for someone else (a phone note, a forward) takes the staff member's word for
        // who the requester is, and mails that person: the word needs proof (the staff
        // member's personal tokenised address among the recipients, or an aligned DKIM/SPF
        // pass from a trusted server), so a forged From cannot make folio mail, or open
        // tickets for, arbitrary addresses.
        let on_behalf = (is_agent && a.phone_note.is_some())
            || (is_staff
                && a.forward
                    .as_ref()
                    .is_some_and(|f| !f.requester.email.is_empty()));
        let vouched = self.personal_proof() || self.identity_pass().is_some();
        let mut unproven = None;
        if on_behalf && !vouched {
            unproven = Some(Event {
                kind: "security",
                detail: format!(
                    "mail from staff address {sender} without proof (not sent to their personal address, no aligned DKIM/SPF pass from a trusted server): opened as its own request, not on someone's behalf"
                ),
            });
        } else {
            // Phone agent's note: a ticket for the caller.
            if let (true, Some(note)) = (is_agent, &a.phone_note) {
                return self.phone_note(note);
            }
            // Staff forwarding a requester's mail: a ticket for the original sender.
            if let (true, Some(fwd)) = (is_staff, &a.forward) {
                if !fwd.requester.email.is_empty() && !catalog.is_staff(&fwd.requester.email) {
                    return self.opened_for(
                        fwd.requester.clone(),
                        &fwd.subject,
                        &fwd.body,
                        "email",
                        Reason::ForwardedByStaff,
                        None,
                    );
                }
            }
        }

        let requester = a.requester.clone();
        let subject = a.mail.subject.clone();
        let mut r = self.opened_for(
            requester,
            &subject,
            &a.mail.body_text,
            "email",
            Reason::NewTicket,
            None,
        );
        if let TicketAction::Open(t) = &mut r.action {
            t.referenced_folio = a.folio_reference.clone();
        }
        r.events.extend(unproven);
        r
    }

    fn phone_note(&self, note: &PhoneNote) -> Record {
        let agent = self.sender().to_string();
        let requester = Requester {
            email: note.email.clone().unwrap_or_default(),
            name: note.name.clone(),
            department: note.department.clone(),
            phone: note.phone.clone(),
        };
        let subject = note
            .detail
            .as_deref()
            .map(|d| first_line(d, 80))
            .unwrap_or_default();
        let detail = note.detail.clone().unwrap_or_default();
        self.opened_for(
            requester,
            &subject,
            &detail,
            "phone",
            Reason::PhoneNote,
            Some((agent, note)),
        )
    }

    /// Opens a ticket for `requester`: routing, confirmation (and the agent's copy), the
    /// technician's assignment notice.
    fn opened_for(
        &self,
        requester: Requester,
        subject: &str,
        body: &str,
        channel: &'static str,
        reason: Reason,
        agent: Option<(String, &PhoneNote)>,
    ) -> Record {
        // The subject goes into headers and every later mail: one line, of bounded length,
        // without a staff token.
        let o = Opening {
            requester,
            subject: redact_staff_addresses(&clean_line(subject, MAX_SUBJECT_CHARS)),
            body,
            channel,
            reason,
            agent,
        };
        let empty = Workload::default();
        let routing = routing::route(
            &self.policy.catalog,
            &o.subject,
            o.body,
            o.requester.department.as_deref(),
            self.ctx.workload.unwrap_or(&empty),
        );
        let mut r = self.opening_record(&o, &routing);
        let files = self.files();
        self.confirm_to_requester(&mut r, &o, &files);
        self.confirm_to_agent(&mut r, &o, &files);
        if let Some(tech) = &routing.assignee {
            self.notify_assignment(&mut r, &o, &routing, tech, files);
        }
        r
    }

    /// The record that opens the ticket, with nothing queued yet.
    fn opening_record(&self, o: &Opening, routing: &Routing) -> Record {
        let ticket = NewTicket {
            requester: o.requester.clone(),
            subject: o.subject.clone(),
            language: self.policy.language.clone(),
            referenced_folio: None,
            channel: o.channel,
            opened_by: o.agent.as_ref().map(|(e, _)| e.clone()).or_else(|| {
                (o.reason == Reason::ForwardedByStaff).then(|| self.sender().to_string())
            }),
            participants: self.participants(o),
            routing: routing.clone(),
        };
        Record {
            action: TicketAction::Open(Box::new(ticket)),
            replies: vec![],
            // The routing rules are stored on the ticket itself (tickets.routing).
            events: vec![],
            reason: o.reason,
            author: match o.channel {
                "phone" => Role::Agent,
                _ if o.reason == Reason::ForwardedByStaff => Role::Technician,
                _ => Role::Requester,
            },
            internal: false,
            failing_address: None,
            life: vec![],
        }
    }

    /// Participants: the CC'd addresses (at most MAX_PARTICIPANTS: each public reply goes to
    /// all of them), and the From address when replies go elsewhere (Reply-To), so the person
    /// who wrote stays a party to their ticket.
    fn participants(&self, o: &Opening) -> Vec<String> {
        let policy = self.policy;
        let mut participants: Vec<String> = Vec::new();
        if o.reason != Reason::NewTicket {
            return participants;
        }
        let requester_address = o.requester.email.to_lowercase();
        let from = self.sender().to_lowercase();
        let cc = self.a.mail.cc.iter().filter(|_| policy.cc_participants);
        for x in std::iter::once(&from).chain(cc) {
            if *x != requester_address
                && !x.is_empty()
                && !policy.own_addresses.contains(x)
                && !is_ours(x, &policy.helpdesk_address)
                && !policy.catalog.is_staff(x)
                && !participants.contains(x)
                && participants.len() < MAX_PARTICIPANTS
            {
                participants.push(x.clone());
            }
        }
        participants
    }

    /// The confirmation to the requester, threaded under their message (for a forward or a
    /// phone note there is no message of theirs to thread under); none to our own address or
    /// over a cap, and the record's reason says so.
    fn confirm_to_requester(&self, r: &mut Record, o: &Opening, files: &AttachmentList) {
        let policy = self.policy;
        let to = o.requester.email.to_lowercase();
        if to.is_empty() {
            return;
        }
        let threaded = o.reason == Reason::NewTicket;
        if policy.own_addresses.contains(&to) || is_ours(&to, &policy.helpdesk_address) {
            r.reason = Reason::NewTicketReplyToOwnAddress;
        } else if let Some(e) = self.over_cap(&to, Template::Confirmation) {
            r.reason = Reason::NewTicketRateLimited;
            r.events.push(e);
        } else {
            let notice = Notice::Confirmation(self.confirmation(o, files, false, &to));
            self.push(
                r,
                Reply {
                    notice,
                    language: policy.language.clone(),
                    to,
                    in_reply_to: threaded.then(|| self.a.mail.message_id.clone()).flatten(),
                    references: if threaded {
                        thread_of(&self.a.mail)
                    } else {
                        vec![]
                    },
                    staff: None,
                    auto_submitted: if threaded {
                        "auto-replied"
                    } else {
                        "auto-generated"
                    },
                    with_attachments: false,
                },
            );
        }
    }

    /// The phone agent's (or forwarding staff member's) copy, threaded under their mail.
    fn confirm_to_agent(&self, r: &mut Record, o: &Opening, files: &AttachmentList) {
        if o.channel != "phone" && r.author != Role::Technician {
            return;
        }
        let mut copy = self.confirmation(o, files, true, self.sender());
        if let Some((_, note)) = &o.agent {
            copy.missing_fields = note.missing();
        }
        self.push(
            r,
            Reply {
                notice: Notice::Confirmation(copy),
                language: self.policy.language.clone(),
                to: self.sender().to_string(),
                in_reply_to: self.a.mail.message_id.clone(),
                references: thread_of(&self.a.mail),
                staff: None,
                auto_submitted: "auto-replied",
                with_attachments: false,
            },
        );
    }

    /// The confirmation of `o` for `to`. To an outside domain, by default, it quotes nothing
    /// the sender wrote (subject, text, name, file names): otherwise anyone could make the help
    /// desk send their text to any address they put in From.
    fn confirmation(
        &self,
        o: &Opening,
        files: &AttachmentList,
        agent_copy: bool,
        to: &str,
    ) -> Confirmation {
        let quoted = self.policy.quote_outside_domains || !self.policy.is_outside(to);
        let mut confirmation = Confirmation {
            subject: o.subject.clone(),
            reply_subject: reply_subject(&o.subject),
            // A staff member's tokenised addresses never reach a requester.
            summary: redact_staff_addresses(&summary(o.body)),
            quoted,
            channel: o.channel,
            agent_copy,
            missing_fields: vec![],
            requester: RequesterView::from(&o.requester),
            missing: MissingView::from(&o.requester),
            files: files.clone(),
            helpdesk: self.helpdesk(),
        };
        if !quoted {
            confirmation.quote_nothing();
        }
        confirmation
    }

    /// The routed technician's notice of a new ticket, with the request's files. Never capped:
    /// a technician must hear of every ticket they are given.
    fn notify_assignment(
        &self,
        r: &mut Record,
        o: &Opening,
        routing: &Routing,
        tech: &str,
        files: AttachmentList,
    ) {
        let catalog = &self.policy.catalog;
        let notice = Notice::Assignment(Assignment {
            ticket: AssignedTicketView {
                subject: o.subject.clone(),
                channel: Some(o.channel),
                service: routing.service.clone(),
                service_name: catalog.service_name(&routing.service),
                ticket_type: Some(routing.ticket_type.as_str()),
                priority: routing.priority.as_str(),
                rules: routing.rules.clone(),
            },
            requester: RequesterView::from(&o.requester),
            detail: o.body.to_string(),
            files,
            opened_by: o.agent.as_ref().map(|(e, _)| e.clone()),
            opened_by_name: o.agent.as_ref().map(|(e, _)| catalog.staff_name(e)),
            reassigned_by: None,
            reassigned_by_name: None,
            commands: guide(),
            helpdesk: self.helpdesk(),
        });
        r.replies.push(Reply {
            notice,
            language: self.policy.language.clone(),
            to: tech.to_string(),
            in_reply_to: None,
            references: self.a.mail.message_id.iter().cloned().collect(),
            staff: Some(tech.to_string()),
            auto_submitted: "auto-generated",
            with_attachments: true,
        });
    }
}
