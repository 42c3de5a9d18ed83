//! The decision for one inbound message: open a ticket, append to one, or only record it; and
//! whether to answer. A pure function of the message, its verdict, a few facts from the store
//! ([`Context`]) and the policy; the shell carries the [`Decision`] out in one transaction.

use serde::Serialize;
use serde_json::json;

use crate::classify::Verdict;
use crate::mail::InboundMail;
use crate::requester::{MissingField, Requester};

/// A ticket as far as the decision needs to know it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketRef {
    pub id: i64,
    pub folio: String,
    pub requester_email: String,
}

/// Facts from the store about this message.
#[derive(Debug, Clone, Default)]
pub struct Context {
    /// A message with the same dedup key was already stored.
    pub already_processed: bool,
    /// The ticket of a folio mail this message answers (In-Reply-To / References).
    pub thread_ticket: Option<TicketRef>,
    /// The ticket named by the folio found in the subject or body, if it exists.
    pub referenced_ticket: Option<TicketRef>,
    /// Automatic mails queued to the reply address within the cap's window.
    pub recent_mails_to_sender: u32,
}

/// The site's rules that shape decisions.
#[derive(Debug, Clone)]
pub struct Policy {
    pub own_addresses: Vec<String>,
    pub max_auto_replies_per_address: u32,
    pub language: String,
    pub helpdesk_name: String,
    pub institution: String,
    pub helpdesk_phone: String,
    pub helpdesk_address: String,
}

/// Why folio did what it did; stored and logged with stable snake_case names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// A new request: ticket opened, confirmation queued.
    NewTicket,
    /// New ticket, but the sender already got the maximum automatic mails in the window.
    NewTicketRateLimited,
    /// New ticket, but the reply address is ours: never answered.
    NewTicketReplyToOwnAddress,
    /// Appended to the ticket whose mail it answers.
    FollowUpByThread,
    /// Appended to the ticket named in the subject/body by its requester.
    FollowUpByFolio,
    /// Automatic mail (auto-reply, bounce, bulk, loop): recorded, not answered.
    AutomaticRecorded,
    /// Automatic mail answering one of our mails: recorded on that ticket, state unchanged.
    AutomaticOnTicket,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::NewTicket => "new_ticket",
            Reason::NewTicketRateLimited => "new_ticket_rate_limited",
            Reason::NewTicketReplyToOwnAddress => "new_ticket_reply_to_own_address",
            Reason::FollowUpByThread => "follow_up_by_thread",
            Reason::FollowUpByFolio => "follow_up_by_folio",
            Reason::AutomaticRecorded => "automatic_recorded",
            Reason::AutomaticOnTicket => "automatic_on_ticket",
        }
    }
}

/// What happens to the ticket table.
#[derive(Debug, Clone, PartialEq)]
pub enum TicketAction {
    /// Open a ticket (its folio is allocated when stored).
    Open(NewTicket),
    /// Attach the message to an existing ticket.
    Append { ticket_id: i64, folio: String },
    /// Store the message alone.
    None,
}

/// A ticket to open.
#[derive(Debug, Clone, PartialEq)]
pub struct NewTicket {
    pub requester: Requester,
    pub subject: String,
    pub language: String,
    /// A folio the mail mentioned that the sender may not append to.
    pub referenced_folio: Option<String>,
}

/// A mail to queue. Its context lacks `folio` until the ticket's folio is allocated.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub template: &'static str,
    pub language: String,
    pub to: String,
    pub in_reply_to: Option<String>,
    pub references: Vec<String>,
    pub context: serde_json::Value,
}

/// The decision for one message.
// One decision exists per message at a time, so the size of `Record` does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Seen before (same Message-ID or content): nothing to store, just file it away.
    Duplicate,
    /// Store the message, change tickets, maybe answer.
    Record {
        action: TicketAction,
        reply: Option<Reply>,
        reason: Reason,
    },
}

/// How many characters of the request the confirmation quotes back.
const SUMMARY_CHARS: usize = 500;

/// Decides what to do with a message.
pub fn decide(
    mail: &InboundMail,
    verdict: &Verdict,
    requester: &Requester,
    folio_reference: Option<&str>,
    ctx: &Context,
    policy: &Policy,
) -> Decision {
    if ctx.already_processed {
        return Decision::Duplicate;
    }
    let sender = mail.from_email.as_deref().unwrap_or_default();
    let sender_is = |t: &TicketRef| {
        t.requester_email.eq_ignore_ascii_case(sender)
            || t.requester_email.eq_ignore_ascii_case(&requester.email)
    };

    if verdict.is_automatic() {
        return Decision::Record {
            action: match &ctx.thread_ticket {
                Some(t) => TicketAction::Append {
                    ticket_id: t.id,
                    folio: t.folio.clone(),
                },
                None => TicketAction::None,
            },
            reply: None,
            reason: if ctx.thread_ticket.is_some() {
                Reason::AutomaticOnTicket
            } else {
                Reason::AutomaticRecorded
            },
        };
    }
    if let Some(t) = &ctx.thread_ticket {
        return Decision::Record {
            action: TicketAction::Append {
                ticket_id: t.id,
                folio: t.folio.clone(),
            },
            reply: None,
            reason: Reason::FollowUpByThread,
        };
    }
    if let Some(t) = ctx.referenced_ticket.as_ref().filter(|t| sender_is(t)) {
        return Decision::Record {
            action: TicketAction::Append {
                ticket_id: t.id,
                folio: t.folio.clone(),
            },
            reply: None,
            reason: Reason::FollowUpByFolio,
        };
    }

    let ticket = NewTicket {
        requester: requester.clone(),
        subject: mail.subject.clone(),
        language: policy.language.clone(),
        referenced_folio: folio_reference.map(str::to_string),
    };
    let to = requester.email.to_lowercase();
    let (reply, reason) = if policy.own_addresses.contains(&to) {
        (None, Reason::NewTicketReplyToOwnAddress)
    } else if ctx.recent_mails_to_sender >= policy.max_auto_replies_per_address {
        (None, Reason::NewTicketRateLimited)
    } else {
        (
            Some(confirmation(mail, requester, policy, to)),
            Reason::NewTicket,
        )
    };
    Decision::Record {
        action: TicketAction::Open(ticket),
        reply,
        reason,
    }
}

fn confirmation(mail: &InboundMail, requester: &Requester, policy: &Policy, to: String) -> Reply {
    let missing = requester.missing();
    let mut references = mail.references.clone();
    if let Some(id) = &mail.message_id {
        if !references.contains(id) {
            references.push(id.clone());
        }
    }
    Reply {
        template: "confirmation",
        language: policy.language.clone(),
        to,
        in_reply_to: mail.message_id.clone(),
        references,
        context: json!({
            "subject": mail.subject,
            "reply_subject": reply_subject(&mail.subject),
            "summary": summary(&mail.body_text),
            "requester": {
                "name": requester.name,
                "email": requester.email,
                "department": requester.department,
                "phone": requester.phone,
            },
            "missing": {
                "any": !missing.is_empty(),
                "name": missing.contains(&MissingField::Name),
                "department": missing.contains(&MissingField::Department),
                "phone": missing.contains(&MissingField::Phone),
            },
            "attachments": mail.attachments.iter().map(|a| json!({"name": a.name, "size": a.size})).collect::<Vec<_>>(),
            "helpdesk": {
                "name": policy.helpdesk_name,
                "institution": policy.institution,
                "phone": policy.helpdesk_phone,
                "address": policy.helpdesk_address,
            },
        }),
    }
}

/// `Re: <subject>` without stacking prefixes; a placeholder for an empty subject.
pub fn reply_subject(subject: &str) -> String {
    let s = subject.trim();
    if s.is_empty() {
        return "(sin asunto)".into();
    }
    let lower = s.to_lowercase();
    if ["re:", "re :", "res:", "aw:"]
        .iter()
        .any(|p| lower.starts_with(p))
    {
        s.to_string()
    } else {
        format!("Re: {s}")
    }
}

/// The first part of the request, cut at a word boundary, with whitespace runs collapsed.
pub fn summary(body: &str) -> String {
    let lines: Vec<&str> = body
        .lines()
        .map(str::trim_end)
        .filter(|l| !l.trim_start().starts_with('>'))
        .collect();
    let text = lines.join("\n");
    let text = text.trim();
    if text.chars().count() <= SUMMARY_CHARS {
        return text.to_string();
    }
    let cut: String = text.chars().take(SUMMARY_CHARS).collect();
    let cut = match cut.rfind(char::is_whitespace) {
        Some(i) if i > SUMMARY_CHARS / 2 => &cut[..i],
        _ => &cut[..],
    };
    format!("{}…", cut.trim_end())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::classify;
    use crate::mail::parse;
    use crate::requester::{requester_of, Directory};

    fn policy() -> Policy {
        Policy {
            own_addresses: vec!["helpdesk@example.test".into()],
            max_auto_replies_per_address: 2,
            language: "es".into(),
            helpdesk_name: "Mesa de Ayuda".into(),
            institution: "DGSEI".into(),
            helpdesk_phone: "(722) 2769600 ext. 60100".into(),
            helpdesk_address: "helpdesk@example.test".into(),
        }
    }

    fn run(raw: &str, ctx: &Context) -> Decision {
        let mail = parse(raw.as_bytes(), 0);
        let verdict = classify(&mail, &policy().own_addresses);
        let req = requester_of(&mail, &Directory::default());
        decide(&mail, &verdict, &req, None, ctx, &policy())
    }

    const REQUEST: &str = "From: Ana <ana@example.test>\r\nMessage-ID: <m1@example.test>\r\nSubject: Impresora\r\n\r\nNo imprime.\r\n";

    #[test]
    fn new_request_opens_ticket_and_confirms_threaded() {
        let Decision::Record {
            action,
            reply,
            reason,
        } = run(REQUEST, &Context::default())
        else {
            panic!("expected a record")
        };
        assert_eq!(reason, Reason::NewTicket);
        assert!(matches!(action, TicketAction::Open(ref t) if t.subject == "Impresora"));
        let reply = reply.unwrap();
        assert_eq!(reply.to, "ana@example.test");
        assert_eq!(reply.in_reply_to.as_deref(), Some("m1@example.test"));
        assert_eq!(reply.references, vec!["m1@example.test"]);
        assert_eq!(reply.context["reply_subject"], "Re: Impresora");
        assert_eq!(reply.context["missing"]["department"], true);
    }

    #[test]
    fn duplicates_and_rate_limit() {
        let dup = Context {
            already_processed: true,
            ..Context::default()
        };
        assert_eq!(run(REQUEST, &dup), Decision::Duplicate);
        let busy = Context {
            recent_mails_to_sender: 2,
            ..Context::default()
        };
        assert!(matches!(
            run(REQUEST, &busy),
            Decision::Record {
                reply: None,
                reason: Reason::NewTicketRateLimited,
                ..
            }
        ));
    }

    #[test]
    fn automatic_mail_is_never_answered() {
        let raw =
            "From: ana@example.test\r\nAuto-Submitted: auto-replied\r\nSubject: Fuera\r\n\r\nx\r\n";
        let on_ticket = Context {
            thread_ticket: Some(TicketRef {
                id: 7,
                folio: "MDA-2026-000007".into(),
                requester_email: "ana@example.test".into(),
            }),
            ..Context::default()
        };
        assert!(matches!(
            run(raw, &on_ticket),
            Decision::Record {
                reply: None,
                reason: Reason::AutomaticOnTicket,
                action: TicketAction::Append { ticket_id: 7, .. }
            }
        ));
    }

    #[test]
    fn folio_counts_only_for_the_requester() {
        let t = TicketRef {
            id: 3,
            folio: "MDA-2026-000003".into(),
            requester_email: "bob@example.test".into(),
        };
        let ctx = Context {
            referenced_ticket: Some(t),
            ..Context::default()
        };
        assert!(matches!(
            run(REQUEST, &ctx),
            Decision::Record {
                reason: Reason::NewTicket,
                ..
            }
        ));
        let from_bob = REQUEST.replace("ana@", "bob@");
        assert!(matches!(
            run(&from_bob, &ctx),
            Decision::Record {
                reason: Reason::FollowUpByFolio,
                reply: None,
                ..
            }
        ));
    }

    #[test]
    fn subjects_and_summaries() {
        assert_eq!(reply_subject("RE: hola"), "RE: hola");
        assert_eq!(reply_subject(""), "(sin asunto)");
        let long = "palabra ".repeat(200);
        let s = summary(&long);
        assert!(s.ends_with('…') && s.chars().count() <= SUMMARY_CHARS + 1);
        assert_eq!(summary("hola\n> citado\nadiós"), "hola\nadiós");
    }
}
