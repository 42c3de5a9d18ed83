//! The pure analysis of one message: what it is ([`classify`]), who wrote it and for whom
//! ([`requester_of`], phone notes, forwards), which folio it names and what its writer typed
//! (quotes removed). Runs on the blocking pool, one per core, before anything is decided.

use crate::config::LimitsConfig;
use crate::desk::policy::Policy;
use crate::desk::requester::{requester_of, Directory, Requester};
use crate::inbound::classify::{classify, Verdict};
use crate::inbound::mail::{self, InboundMail};
use crate::inbound::phone_note::PhoneNote;

/// What the pure part of the pipeline makes of one message.
#[derive(Debug, Clone)]
pub struct Analysis {
    pub mail: InboundMail,
    pub verdict: Verdict,
    pub requester: Requester,
    pub folio_reference: Option<String>,
    /// The text the writer typed, quoted history removed.
    pub new_content: String,
    /// The phone-note form, when the body holds one.
    pub phone_note: Option<PhoneNote>,
    /// The mail forwarded in it (inline or attached), when it is a forward.
    pub forward: Option<Forward>,
}

/// A forwarded mail: whom it is from and what it says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forward {
    pub requester: Requester,
    pub subject: String,
    pub body: String,
}

/// The pure analysis of one message. A parser panic on hostile input is caught and reported.
pub fn analyze(
    raw: &[u8],
    directory: &Directory,
    policy: &Policy,
    max_attachment_bytes: u64,
) -> Result<Analysis, String> {
    let mail = std::panic::catch_unwind(|| mail::parse(raw, max_attachment_bytes))
        .map_err(|_| "the MIME parser failed on this message".to_string())?;
    let verdict = classify(&mail, &policy.own_addresses);
    let requester = requester_of(&mail, directory);
    let format = &policy.folio_format;
    let folio_reference = format
        .find(&mail.subject)
        .or_else(|| format.find(&mail.body_text));
    // A reply's quoted part is our own earlier mail; anything else may be a forward whose
    // forwarded text is the request.
    let new_content = if mail.is_reply() {
        crate::inbound::quote::reply_content(&mail.body_text)
    } else {
        crate::inbound::quote::new_content(&mail.body_text)
    };
    // The writer's own name ends a phone note's detail: it starts their signature.
    let signer = mail
        .from_email
        .as_deref()
        .and_then(|e| policy.catalog.agent(e))
        .map(|a| a.name.as_str())
        .or(mail.from_name.as_deref());
    let phone_note = PhoneNote::parse(&new_content, signer);
    let forward = forward_of(&mail, directory);
    Ok(Analysis {
        mail,
        verdict,
        requester,
        folio_reference,
        new_content,
        phone_note,
        forward,
    })
}

/// The mail forwarded in `mail`, attached (`message/rfc822`) or inline under a forward subject.
fn forward_of(mail: &InboundMail, directory: &Directory) -> Option<Forward> {
    let person = |email: &str, name: Option<String>| {
        let entry = directory.lookup(email);
        Requester {
            email: email.to_lowercase(),
            name: entry.and_then(|e| e.name.clone()).or(name),
            department: entry.and_then(|e| e.department.clone()),
            phone: entry.and_then(|e| e.phone.clone()),
        }
    };
    if let Some(e) = &mail.enclosed {
        let email = e.from_email.as_deref()?;
        return Some(Forward {
            requester: person(email, e.from_name.clone()),
            subject: e.subject.clone(),
            body: e.body_text.clone(),
        });
    }
    if !crate::inbound::subject::is_forward(&mail.subject) {
        return None;
    }
    let f = crate::inbound::quote::forwarded(&mail.body_text)?;
    Some(Forward {
        requester: person(&f.from_email, f.from_name),
        subject: f
            .subject
            .unwrap_or_else(|| crate::inbound::subject::strip_prefixes(&mail.subject)),
        body: f.body,
    })
}

/// The analysis of one message with the limits that make it unusable: its size and number of
/// MIME parts.
pub fn analyze_checked(
    raw: &[u8],
    directory: &Directory,
    policy: &Policy,
    limits: &LimitsConfig,
) -> Result<Analysis, String> {
    if let Some(reason) = oversize_reason(raw.len() as u64, limits) {
        return Err(reason);
    }
    let a = analyze(raw, directory, policy, limits.max_attachment_bytes)?;
    match quarantine_reason(&a, limits) {
        Some(reason) => Err(reason),
        None => Ok(a),
    }
}

/// Why the daemon quarantines an analysed message instead of storing it, or `None`.
pub fn quarantine_reason(a: &Analysis, limits: &LimitsConfig) -> Option<String> {
    if a.mail.part_count as u64 > limits.max_mime_parts {
        return Some(format!(
            "message of {} MIME parts exceeds limits.max_mime_parts ({})",
            a.mail.part_count, limits.max_mime_parts
        ));
    }
    a.mail.unusable_reason().map(str::to_string)
}

/// Why the daemon quarantines a message of `size` bytes without reading it, or `None`.
pub fn oversize_reason(size: u64, limits: &LimitsConfig) -> Option<String> {
    (size > limits.max_message_bytes).then(|| {
        format!(
            "message of {size} bytes exceeds limits.max_message_bytes ({}); only its headers are kept",
            limits.max_message_bytes
        )
    })
}

/// The header section of a raw message (up to the first empty line), at most `cap` bytes: what
/// is kept of a message too big to store.
pub fn header_section(raw: &[u8], cap: usize) -> &[u8] {
    let head = &raw[..raw.len().min(cap)];
    let end = head
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| i + 4)
        .or_else(|| head.windows(2).position(|w| w == b"\n\n").map(|i| i + 2));
    &head[..end.unwrap_or(head.len())]
}
