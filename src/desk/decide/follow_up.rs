//! Mail on a ticket from anyone but its technician with proof: appended. The requester's
//! answer to a ticket that waited on them reopens it; their answer to a resolution is judged
//! (`desk::validation`): a clear confirmation closes the ticket, a clear rejection reopens it,
//! anything else stays for the technician to judge; their answer to a survey is recorded
//! (`desk::survey`). The assignee hears of every follow-up but a survey answer.

use super::{append, Decider, Event, Reason, Record, Role};
use crate::desk::lifecycle::{CloseReason, LifeEffect};
use crate::desk::notice::{guide, AuthorView, FollowUp, Notice, SurveyRequest, SurveyThanks};
use crate::desk::survey::{self, Answer};
use crate::desk::ticket::{Change, Status, TicketRef};
use crate::desk::validation::{self, Verdict};

impl Decider<'_> {
    pub(super) fn follow_up(&self, t: &TicketRef, how: Reason, role: Role) -> Record {
        let mut r = Record {
            action: append(t, vec![]),
            replies: vec![],
            events: vec![],
            reason: how,
            author: role,
            internal: false,
            failing_address: None,
            life: vec![],
        };
        let requester = role == Role::Requester;
        // A confirmation, a rating or an opt-out acts for the requester, so it needs proof
        // they wrote it, not just their From: an answer to one of our mails sent to them (our
        // Message-IDs carry an HMAC: a forger cannot name one they never received), or an
        // aligned DKIM/SPF pass from a trusted server.
        let answered = self
            .ctx
            .answered
            .as_ref()
            .filter(|m| m.to.eq_ignore_ascii_case(&t.requester_email));
        let vouched = requester && (answered.is_some() || self.identity_pass().is_some());
        let mut validation = None;
        match t.status {
            Status::Pending if matches!(role, Role::Requester | Role::Participant) => {
                r.action = append(t, vec![Change::Status(Status::Open)]);
            }
            Status::Resolved if matches!(role, Role::Requester | Role::Participant) => {
                let judged = validation::judge(&self.a.new_content);
                // Only the requester validates, with proof: a participant's "ya quedó", or one
                // under the requester's From alone, is the technician's to judge.
                let verdict = match judged.verdict {
                    Verdict::Confirmed if !vouched => Verdict::Unclear,
                    v => v,
                };
                r.events.push(Event {
                    kind: "validation",
                    detail: format!(
                        "{} by the {}{}: {}",
                        verdict_name(verdict),
                        role.as_str(),
                        if requester && !vouched {
                            " (unproven: not an answer to our mail to them, no aligned pass)"
                        } else {
                            ""
                        },
                        judged.reason.as_str()
                    ),
                });
                match verdict {
                    Verdict::Confirmed => {
                        r.action = append(t, vec![Change::Status(Status::Closed)]);
                        r.life.push(LifeEffect::Closed {
                            reason: CloseReason::Confirmed,
                        });
                    }
                    Verdict::Rejected => r.action = append(t, vec![Change::Status(Status::Open)]),
                    Verdict::Unclear => {}
                }
                validation = Some(verdict_name(verdict));
            }
            // An answer to the survey (or its reminder or retry) sent to the requester: any
            // other mail on a closed ticket is a follow-up, even right after the survey.
            Status::Closed
                if t.life.survey_sent_at.is_some()
                    && !t.life.survey_answered
                    && vouched
                    && answered.is_some_and(|m| {
                        matches!(
                            m.template.as_str(),
                            "survey" | "survey_reminder" | "survey_retry"
                        )
                    })
                    && self.survey_answer(&mut r, t) =>
            {
                return r;
            }
            _ => {}
        }
        self.notify_assignee(&mut r, t, role, validation);
        r
    }

    /// The requester's answer to the survey of `t`: recorded and thanked, or asked again once,
    /// or an opt-out. Whether it was one (`false`: an ordinary follow-up, for the technician).
    fn survey_answer(&self, r: &mut Record, t: &TicketRef) -> bool {
        let to = &t.requester_email;
        let request = || SurveyRequest {
            ticket: self.public_ticket_view(t, to),
            helpdesk: self.helpdesk(),
        };
        match survey::read_answer(&self.a.new_content) {
            Answer::Rating { rating, comment } => {
                r.life.push(LifeEffect::Satisfaction {
                    rating,
                    comment: comment.clone(),
                });
                r.events.push(Event {
                    kind: "satisfaction",
                    detail: format!("rating {rating}"),
                });
                // A comment may say more than a rating (a new problem): the technician reads it.
                if comment.is_some() {
                    self.notify_assignee(r, t, Role::Requester, None);
                }
                // Automatic answers to outside domains quote nothing the sender wrote.
                let quotable = !self.policy.is_outside(to) || self.policy.quote_outside_domains;
                let thanks = Notice::SurveyThanks(SurveyThanks {
                    ticket: self.public_ticket_view(t, to),
                    rating,
                    comment: comment.filter(|_| quotable),
                    helpdesk: self.helpdesk(),
                });
                self.push_to_requester(r, t, thanks);
                true
            }
            Answer::OptOut => {
                r.life.push(LifeEffect::SurveyOptOut { email: to.clone() });
                r.events.push(Event {
                    kind: "survey_opt_out",
                    detail: format!("{to} asked for no more surveys"),
                });
                true
            }
            Answer::Unreadable if !t.life.survey_retried => {
                r.life.push(LifeEffect::SurveyRetried);
                self.push_to_requester(r, t, Notice::SurveyRetry(request()));
                // What they wrote instead of a rating may be a new problem.
                self.notify_assignee(r, t, Role::Requester, None);
                true
            }
            Answer::Unreadable => false,
        }
    }

    /// Sends the assignee the new text of a follow-up (never to the writer themself).
    fn notify_assignee(
        &self,
        r: &mut Record,
        t: &TicketRef,
        role: Role,
        validation: Option<&'static str>,
    ) {
        let Some(tech) = t.assignee.as_ref().filter(|a| a.as_str() != self.sender()) else {
            return;
        };
        let mut notice = self.follow_up_notice(t, role, false);
        if let Notice::FollowUp(f) = &mut notice {
            f.validation = validation;
        }
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
            validation: None,
            files: self.files(),
            commands: guide(),
            helpdesk: self.helpdesk(),
        })
    }
}

/// How the technician's notice names a verdict (`follow_up`'s `validation`).
fn verdict_name(v: Verdict) -> &'static str {
    match v {
        Verdict::Confirmed => "confirmed",
        Verdict::Rejected => "rejected",
        Verdict::Unclear => "unclear",
    }
}
