//! Automatic-mail classification: is this message from a machine (auto-reply, bounce, bulk, our own
//! loop)? Automatic mail is recorded but never answered; the verdict's reason is stored with it.
//!
//! Invariant: pure function over [`InboundMail`]; no I/O.

use serde::Serialize;

use crate::inbound::mail::InboundMail;

/// Why a message counts as automatic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AutoKind {
    /// Out-of-office and other RFC 3834 automatic responses.
    AutoReply,
    /// Delivery status notifications (RFC 3464) and other non-delivery reports.
    Bounce,
    /// Mailing lists, newsletters, mass mailings, no-reply notifications.
    Bulk,
    /// Mail that came from folio itself (or its own address).
    Loop,
}

impl AutoKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AutoKind::AutoReply => "auto_reply",
            AutoKind::Bounce => "bounce",
            AutoKind::Bulk => "bulk",
            AutoKind::Loop => "loop",
        }
    }
}

/// The classification of one message, with the rule that decided it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub kind: Option<AutoKind>,
    /// Stable `rule` or `rule: detail` text; `human` for ordinary mail.
    pub reason: String,
}

impl Verdict {
    pub fn is_automatic(&self) -> bool {
        self.kind.is_some()
    }
}

/// Subject prefixes of out-of-office replies from clients that send no RFC 3834 header.
const AUTO_REPLY_SUBJECTS: &[&str] = &[
    "respuesta automática:",
    "respuesta automatica:",
    "automatic reply:",
    "auto reply:",
    "autoreply:",
    "out of office:",
    "out of office reply:",
    "fuera de la oficina:",
    "ausencia:",
];

const BOUNCE_LOCALPARTS: &[&str] = &["mailer-daemon", "postmaster"];

const NOREPLY_LOCALPARTS: &[&str] = &[
    "noreply",
    "no-reply",
    "no_reply",
    "donotreply",
    "do-not-reply",
    "do_not_reply",
    "noresponder",
    "no-responder",
];

/// Classifies a message. `own_addresses` are the help desk's addresses (lower case).
pub fn classify(mail: &InboundMail, own_addresses: &[String]) -> Verdict {
    let v = |kind, reason: String| Verdict {
        kind: Some(kind),
        reason,
    };
    let s = &mail.signals;
    let from = mail.from_email.as_deref().unwrap_or_default();
    let localpart = from.split('@').next().unwrap_or_default();

    // Our own mail coming back: checked first, it is the most dangerous loop.
    if let Some(value) = &s.folio_loop {
        if own_addresses
            .iter()
            .any(|a| value.to_lowercase().contains(a.as_str()))
        {
            return v(AutoKind::Loop, format!("own_loop_header: {value}"));
        }
    }
    if let Some(x) = s
        .x_loop
        .iter()
        .find(|x| own_addresses.iter().any(|a| x.contains(a.as_str())))
    {
        return v(AutoKind::Loop, format!("x_loop: {x}"));
    }
    if own_addresses.iter().any(|a| a == from) {
        return v(AutoKind::Loop, format!("from_own_address: {from}"));
    }

    // RFC 3464 delivery reports and the senders that send non-delivery reports.
    if s.delivery_report {
        return v(AutoKind::Bounce, "delivery_report".into());
    }
    if BOUNCE_LOCALPARTS.contains(&localpart) {
        return v(AutoKind::Bounce, format!("bounce_sender: {from}"));
    }

    // RFC 3834 and the vendor headers of auto-responders.
    if let Some(a) = &s.auto_submitted {
        if !a.to_lowercase().starts_with("no") {
            return v(AutoKind::AutoReply, format!("auto_submitted: {a}"));
        }
    }
    if let Some(x) = &s.x_autoreply {
        return v(AutoKind::AutoReply, format!("x_autoreply: {x}"));
    }
    if let Some(x) = &s.x_autorespond {
        return v(AutoKind::AutoReply, format!("x_autorespond: {x}"));
    }
    if let Some(x) = &s.x_auto_response_suppress {
        let lower = x.to_lowercase();
        if ["all", "autoreply", "dr", "oof"]
            .iter()
            .any(|t| lower.split([',', ' ']).any(|w| w.trim() == *t))
        {
            return v(
                AutoKind::AutoReply,
                format!("x_auto_response_suppress: {x}"),
            );
        }
    }
    let precedence = s.precedence.as_deref().map(str::to_lowercase);
    if precedence.as_deref() == Some("auto_reply") {
        return v(AutoKind::AutoReply, "precedence: auto_reply".into());
    }
    if let Some(x) = s.x_loop.first() {
        // Someone else's loop marker: an automated system relayed this.
        return v(AutoKind::AutoReply, format!("x_loop: {x}"));
    }
    let subject = mail.subject.to_lowercase();
    if let Some(p) = AUTO_REPLY_SUBJECTS.iter().find(|p| subject.starts_with(*p)) {
        return v(AutoKind::AutoReply, format!("auto_reply_subject: {p}"));
    }
    if s.return_path_empty {
        return v(AutoKind::Bounce, "null_return_path".into());
    }

    // Lists and mass mail.
    if let Some(p) = precedence.filter(|p| matches!(p.as_str(), "bulk" | "junk" | "list")) {
        return v(AutoKind::Bulk, format!("precedence: {p}"));
    }
    if let Some(id) = &s.list_id {
        return v(AutoKind::Bulk, format!("list_id: {id}"));
    }
    if s.list_unsubscribe {
        return v(AutoKind::Bulk, "list_unsubscribe".into());
    }
    if NOREPLY_LOCALPARTS.iter().any(|n| {
        localpart == *n
            || localpart.starts_with(&format!("{n}."))
            || localpart.starts_with(&format!("{n}+"))
    }) {
        return v(AutoKind::Bulk, format!("noreply_sender: {from}"));
    }

    Verdict {
        kind: None,
        reason: "human".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inbound::mail::parse;

    fn c(headers: &str) -> Verdict {
        let raw = format!("{headers}\r\nSubject: hola\r\n\r\nbody\r\n");
        classify(
            &parse(raw.as_bytes(), 0),
            &["helpdesk@example.test".to_string()],
        )
    }

    #[test]
    fn rfc3834_auto_submitted() {
        assert_eq!(
            c("From: a@x.test\r\nAuto-Submitted: auto-replied").kind,
            Some(AutoKind::AutoReply)
        );
        assert_eq!(
            c("From: a@x.test\r\nAuto-Submitted: auto-generated").kind,
            Some(AutoKind::AutoReply)
        );
        assert_eq!(c("From: a@x.test\r\nAuto-Submitted: no").kind, None);
    }

    #[test]
    fn vendor_headers_and_precedence() {
        assert_eq!(
            c("From: a@x.test\r\nX-Autoreply: yes").kind,
            Some(AutoKind::AutoReply)
        );
        assert_eq!(
            c("From: a@x.test\r\nX-Auto-Response-Suppress: DR, RN").kind,
            Some(AutoKind::AutoReply)
        );
        assert_eq!(
            c("From: a@x.test\r\nX-Auto-Response-Suppress: RN, NRN").kind,
            None
        );
        assert_eq!(
            c("From: a@x.test\r\nPrecedence: bulk").kind,
            Some(AutoKind::Bulk)
        );
        assert_eq!(
            c("From: a@x.test\r\nPrecedence: auto_reply").kind,
            Some(AutoKind::AutoReply)
        );
        assert_eq!(
            c("From: a@x.test\r\nList-Id: <avisos.x.test>").kind,
            Some(AutoKind::Bulk)
        );
        assert_eq!(c("From: no-reply@x.test").kind, Some(AutoKind::Bulk));
    }

    #[test]
    fn bounces_and_loops() {
        assert_eq!(c("From: MAILER-DAEMON@x.test").kind, Some(AutoKind::Bounce));
        assert_eq!(
            c("Return-Path: <>\r\nFrom: a@x.test").kind,
            Some(AutoKind::Bounce)
        );
        assert_eq!(c("From: helpdesk@example.test").kind, Some(AutoKind::Loop));
        let v = c("From: a@x.test\r\nX-Folio-Loop: helpdesk@example.test");
        assert_eq!(v.kind, Some(AutoKind::Loop));
        assert_eq!(v.reason, "own_loop_header: helpdesk@example.test");
        assert_eq!(c("From: a@x.test").reason, "human");
    }
}
