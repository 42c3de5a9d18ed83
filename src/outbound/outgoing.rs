//! Outgoing mail: the headers every folio mail carries and the MIME message handed to SMTP.
//!
//! Every mail folio sends is marked as automatic (RFC 3834 `Auto-Submitted`, Microsoft's
//! `X-Auto-Response-Suppress: All`) and carries our loop header, so auto-responders stay quiet
//! and our own mail is recognised if it ever comes back.

use std::time::SystemTime;

use chrono::{DateTime, Utc};
use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::Message;

use crate::inbound::mail::LOOP_HEADER;
use crate::store::FileAttachment;

/// A rendered template: subject, plain-text and HTML parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// The addressing and threading of one outgoing mail.
#[derive(Debug, Clone)]
pub struct Addressing {
    pub from_name: String,
    pub from_address: String,
    pub to: String,
    /// Where replies should go instead of From (a technician's tokenised address).
    pub reply_to: Option<String>,
    /// Without angle brackets.
    pub message_id: String,
    pub in_reply_to: Option<String>,
    pub references: Vec<String>,
    /// `auto-replied` for answers to a message, `auto-generated` for notices.
    pub auto_submitted: &'static str,
    pub date: DateTime<Utc>,
}

/// Why a message could not be built (a bad address, usually).
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("invalid address {address:?}: {source}")]
    Address {
        address: String,
        source: lettre::address::AddressError,
    },
    #[error("cannot build message: {0}")]
    Message(#[from] lettre::error::Error),
}

/// Builds the `multipart/alternative` (text + HTML, UTF-8) message, inside a
/// `multipart/mixed` with the files when there are any.
pub fn build(
    a: &Addressing,
    r: &Rendered,
    files: &[FileAttachment],
) -> Result<Message, BuildError> {
    let mailbox = |name: &str, address: &str| -> Result<Mailbox, BuildError> {
        let addr = address.parse().map_err(|source| BuildError::Address {
            address: address.to_string(),
            source,
        })?;
        Ok(Mailbox::new(
            (!name.is_empty()).then(|| name.to_string()),
            addr,
        ))
    };
    let mut builder = Message::builder()
        .from(mailbox(&a.from_name, &a.from_address)?)
        .to(mailbox("", &a.to)?)
        .subject(r.subject.replace(['\r', '\n'], " "))
        .date(SystemTime::from(a.date))
        .message_id(Some(format!("<{}>", a.message_id)));
    if let Some(reply_to) = &a.reply_to {
        builder = builder.reply_to(mailbox(&a.from_name, reply_to)?);
    }
    if let Some(parent) = &a.in_reply_to {
        builder = builder.in_reply_to(format!("<{parent}>"));
    }
    if !a.references.is_empty() {
        let refs: Vec<String> = a.references.iter().map(|r| format!("<{r}>")).collect();
        builder = builder.references(refs.join(" "));
    }
    let raw = |name: &'static str, value: &str| {
        HeaderValue::new(HeaderName::new_from_ascii_str(name), value.to_string())
    };
    builder = builder
        .raw_header(raw("Auto-Submitted", a.auto_submitted))
        .raw_header(raw("X-Auto-Response-Suppress", "All"))
        .raw_header(raw(LOOP_HEADER, &a.from_address))
        .raw_header(raw("Precedence", "auto_reply"));
    let alternative = MultiPart::alternative()
        .singlepart(
            SinglePart::builder()
                .header(ContentType::TEXT_PLAIN)
                .body(r.text.clone()),
        )
        .singlepart(
            SinglePart::builder()
                .header(ContentType::TEXT_HTML)
                .body(r.html.clone()),
        );
    if files.is_empty() {
        return Ok(builder.multipart(alternative)?);
    }
    let mut mixed = MultiPart::mixed().multipart(alternative);
    for f in files {
        let content_type = ContentType::parse(&f.content_type).unwrap_or_else(|_| {
            ContentType::parse("application/octet-stream").unwrap_or(ContentType::TEXT_PLAIN)
        });
        mixed = mixed.singlepart(
            lettre::message::Attachment::new(f.name.replace(['\r', '\n'], " "))
                .body(f.data.clone(), content_type),
        );
    }
    Ok(builder.multipart(mixed)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outgoing_mail_is_marked_automatic_and_threaded() {
        let a = Addressing {
            from_name: "Mesa de Ayuda".into(),
            from_address: "helpdesk@example.test".into(),
            to: "alice@example.test".into(),
            reply_to: None,
            message_id: "mda-2026-000001.x@example.test".into(),
            in_reply_to: Some("orig@client.test".into()),
            references: vec!["a@client.test".into(), "orig@client.test".into()],
            auto_submitted: "auto-replied",
            date: DateTime::from_timestamp(1_790_000_000, 0).unwrap(),
        };
        let r = Rendered {
            subject: "[Folio MDA-2026-000001] Re: Impresión".into(),
            text: "Señor".into(),
            html: "<p>Señor</p>".into(),
        };
        let bytes = build(&a, &r, &[]).unwrap().formatted();
        let parsed = crate::inbound::mail::parse(&bytes, 0);
        assert_eq!(parsed.subject, "[Folio MDA-2026-000001] Re: Impresión");
        assert_eq!(parsed.in_reply_to.as_deref(), Some("orig@client.test"));
        assert_eq!(parsed.references, vec!["a@client.test", "orig@client.test"]);
        assert_eq!(parsed.body_text, "Señor");
        let text = String::from_utf8_lossy(&bytes);
        assert!(text.contains("Auto-Submitted: auto-replied"));
        assert!(text.contains("X-Auto-Response-Suppress: All"));
        assert!(text.contains("X-Folio-Loop: helpdesk@example.test"));
        // Our own mail coming back in is recognised as a loop.
        let v = crate::inbound::classify::classify(&parsed, &["helpdesk@example.test".into()]);
        assert_eq!(v.kind, Some(crate::inbound::classify::AutoKind::Loop));
        // With files: they come through as attachments, the text part stays the body.
        let files = [FileAttachment {
            name: "captura pantalla.png".into(),
            content_type: "image/png".into(),
            data: vec![0x89, b'P', b'N', b'G', 0, 1, 2],
        }];
        let parsed =
            crate::inbound::mail::parse(&build(&a, &r, &files).unwrap().formatted(), u64::MAX);
        assert_eq!(parsed.body_text, "Señor");
        assert_eq!(parsed.attachments.len(), 1);
        assert_eq!(parsed.attachments[0].name, "captura pantalla.png");
        assert_eq!(parsed.attachments[0].data, files[0].data);
    }
}
