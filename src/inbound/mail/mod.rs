//! Inbound mail: raw bytes → [`InboundMail`], the plain data every later step works on.
//!
//! Invariant: this is the only module that knows mail-parser, so an upgrade touches one folder.
//! Parsing never fails: garbage yields an `InboundMail` whose [`InboundMail::unusable_reason`]
//! says why it cannot become a ticket, and the shell quarantines it.
//!
//! [`parse`] reads the steps in order: the headers (`headers`, re-decoded where mail-parser
//! could not know their charset: `charset`), the readable body (`body`), the attachments
//! (`attachments`, their names from MIME parameters: `params`) and the signs of automatic mail
//! (`signals`).

mod attachments;
mod body;
mod charset;
mod headers;
mod params;
mod signals;

use chrono::{DateTime, TimeZone, Utc};
use mail_parser::{Message, MessageParser};
use serde::Serialize;
use sha2::{Digest, Sha256};

pub use attachments::sanitize_name;
pub use body::html_to_text;
pub use headers::{clean_id, without_mailto};
pub use signals::{AutoSignals, LOOP_HEADER};

use headers::HeaderSource;

/// One attachment of an inbound message.
#[derive(Debug, Clone, Serialize)]
pub struct Attachment {
    pub name: String,
    pub content_type: String,
    /// Decoded size in bytes.
    pub size: u64,
    #[serde(skip)]
    pub data: Vec<u8>,
}

/// Everything folio extracts from an inbound message.
#[derive(Debug, Clone)]
pub struct InboundMail {
    pub from_email: Option<String>,
    pub from_name: Option<String>,
    pub reply_to: Option<String>,
    pub to: Vec<String>,
    pub cc: Vec<String>,
    pub subject: String,
    pub date: Option<DateTime<Utc>>,
    /// Without angle brackets.
    pub message_id: Option<String>,
    pub in_reply_to: Option<String>,
    pub references: Vec<String>,
    /// Readable text: the text/plain part, or the HTML part converted to text.
    pub body_text: String,
    pub attachments: Vec<Attachment>,
    pub signals: AutoSignals,
    /// SHA-256 over sender, date, subject and body: identifies a message without Message-ID even
    /// when its trace headers differ between deliveries.
    pub content_hash: String,
    /// Size of the raw message in bytes.
    pub size: usize,
    /// Envelope recipients the delivering server recorded (`Delivered-To`, `X-Original-To`,
    /// `Envelope-To`), lower case: where a tokenised staff reply address shows up even when
    /// the technician's client dropped it from `To`.
    pub envelope_to: Vec<String>,
    /// Every `Authentication-Results` header, unfolded, top first.
    pub authentication_results: Vec<String>,
    /// The first attached `message/rfc822` (a mail forwarded as an attachment).
    pub enclosed: Option<Enclosed>,
    /// How many MIME parts mail-parser found (containers, bodies and attachments, those of an
    /// attached message included): what the pipeline bounds to quarantine mail built to make
    /// every later step slow.
    pub part_count: usize,
}

/// A mail attached to another (forwarded as `message/rfc822`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enclosed {
    pub from_email: Option<String>,
    pub from_name: Option<String>,
    pub subject: String,
    pub message_id: Option<String>,
    pub body_text: String,
}

impl InboundMail {
    /// The key that identifies this message across deliveries, copies and UIDVALIDITY resets.
    pub fn dedup_key(&self) -> String {
        match &self.message_id {
            Some(id) => format!("mid:{id}"),
            None => format!("sha256:{}", self.content_hash),
        }
    }

    /// Whether this answers an earlier mail (In-Reply-To, or a reply prefix in the subject):
    /// what it quotes is then someone else's earlier mail, never a forwarded request.
    pub fn is_reply(&self) -> bool {
        self.in_reply_to.is_some() || crate::inbound::subject::is_reply(&self.subject)
    }

    /// Where replies go: Reply-To when present, else From.
    pub fn reply_address(&self) -> Option<&str> {
        self.reply_to.as_deref().or(self.from_email.as_deref())
    }

    /// Why this message cannot be handled at all (it is quarantined), or `None`.
    pub fn unusable_reason(&self) -> Option<&'static str> {
        if self.from_email.is_none()
            && self.message_id.is_none()
            && self.body_text.trim().is_empty()
        {
            Some("unparseable: no sender, no Message-ID and no body")
        } else if self.from_email.is_none() {
            Some("no sender address in From, Sender or Reply-To")
        } else {
            None
        }
    }
}

/// Parses raw message bytes. Never fails.
pub fn parse(raw: &[u8], max_attachment_bytes: u64) -> InboundMail {
    let Some(msg) = MessageParser::default().parse(raw) else {
        return InboundMail::unparseable(raw);
    };
    // 8-bit header text in an undeclared charset, read again (see `redecode_headers`).
    let tld = charset::sender_tld(&msg);
    let tld = tld.as_deref();
    let redecoded_block = charset::redecode_headers(&msg, tld);
    let redecoded = redecoded_block
        .as_deref()
        .and_then(|b| MessageParser::default().parse(b));
    let headers = HeaderSource {
        redecoded: redecoded.as_ref(),
        original: &msg,
    };
    let (from_email, from_name) =
        headers::sender(headers.get(Message::from), headers.get(Message::sender));
    let reply_to = headers::first_address(headers.get(Message::reply_to)).map(|(e, _)| e);
    let from_email = from_email.or_else(|| reply_to.clone());
    let subject = headers
        .get(Message::subject)
        .unwrap_or_default()
        .trim()
        .to_string();
    let body_text = body::body_text(&msg, raw, tld);
    let content_hash = content_hash(&[
        from_email.as_deref().unwrap_or_default(),
        msg.header_raw("Date").unwrap_or_default(),
        &subject,
        &body_text,
    ]);
    let trace = headers::Trace::read(&msg);
    InboundMail {
        from_email,
        from_name,
        reply_to,
        to: headers::address_list(headers.get(Message::to)),
        cc: headers::address_list(headers.get(Message::cc)),
        subject,
        date: msg
            .date()
            .and_then(|d| Utc.timestamp_opt(d.to_timestamp(), 0).single()),
        message_id: headers::message_id(&msg),
        in_reply_to: headers::ids(msg.in_reply_to()).into_iter().next(),
        references: headers::ids(msg.references()),
        body_text,
        attachments: attachments::attachments(&msg, max_attachment_bytes, tld),
        signals: signals::signals(&msg),
        content_hash,
        size: raw.len(),
        envelope_to: trace.envelope_to,
        authentication_results: trace.authentication_results,
        enclosed: Enclosed::first_in(&msg, tld),
        part_count: attachments::count_parts(&msg),
    }
    .without_nul()
}

/// `text` with each NUL replaced by U+FFFD. A NUL decoded from a mail (`=00`, base64, an
/// encoded word, a raw byte) means nothing as text, and PostgreSQL's text type refuses it: one
/// such mail would fail its whole batch on every retry and stall the mailbox.
fn without_nul(text: &mut String) {
    if text.contains('\0') {
        *text = text.replace('\0', "\u{FFFD}");
    }
}

impl InboundMail {
    /// The mail with no NUL in any of its text ([`without_nul`]). Every field is named, so a
    /// new text field has to be added here to compile.
    fn without_nul(mut self) -> InboundMail {
        let InboundMail {
            from_email,
            from_name,
            reply_to,
            to,
            cc,
            subject,
            date: _,
            message_id,
            in_reply_to,
            references,
            body_text,
            attachments,
            signals,
            content_hash: _,
            size: _,
            envelope_to,
            authentication_results,
            enclosed,
            part_count: _,
        } = &mut self;
        let AutoSignals {
            auto_submitted,
            precedence,
            list_id,
            list_unsubscribe: _,
            x_autoreply,
            x_autorespond,
            x_auto_response_suppress,
            x_loop,
            folio_loop,
            return_path_empty: _,
            delivery_report: _,
            report_original_message_id,
            report_only_delayed: _,
        } = signals;
        for text in [subject, body_text] {
            without_nul(text);
        }
        for text in [
            from_email,
            from_name,
            reply_to,
            message_id,
            in_reply_to,
            auto_submitted,
            precedence,
            list_id,
            x_autoreply,
            x_autorespond,
            x_auto_response_suppress,
            folio_loop,
            report_original_message_id,
        ] {
            text.iter_mut().for_each(without_nul);
        }
        for list in [
            to,
            cc,
            references,
            envelope_to,
            authentication_results,
            x_loop,
        ] {
            list.iter_mut().for_each(without_nul);
        }
        for Attachment {
            name,
            content_type,
            size: _,
            data: _,
        } in attachments
        {
            without_nul(name);
            without_nul(content_type);
        }
        if let Some(Enclosed {
            from_email,
            from_name,
            subject,
            message_id,
            body_text,
        }) = enclosed
        {
            without_nul(subject);
            without_nul(body_text);
            from_email.iter_mut().for_each(without_nul);
            from_name.iter_mut().for_each(without_nul);
            message_id.iter_mut().for_each(without_nul);
        }
        self
    }
}

/// SHA-256 over `parts`, each ended by a NUL byte.
fn content_hash(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0u8]);
    }
    hex::encode(h.finalize())
}

impl InboundMail {
    /// What bytes mail-parser cannot parse at all yield: nothing but their hash and size.
    fn unparseable(raw: &[u8]) -> InboundMail {
        InboundMail {
            from_email: None,
            from_name: None,
            reply_to: None,
            to: vec![],
            cc: vec![],
            subject: String::new(),
            date: None,
            message_id: None,
            in_reply_to: None,
            references: vec![],
            body_text: String::new(),
            attachments: vec![],
            signals: AutoSignals::default(),
            content_hash: hex::encode(Sha256::digest(raw)),
            size: raw.len(),
            envelope_to: vec![],
            authentication_results: vec![],
            enclosed: None,
            part_count: 0,
        }
    }
}

impl Enclosed {
    /// The first attached `message/rfc822` of `msg`.
    fn first_in(msg: &Message, tld: Option<&[u8]>) -> Option<Enclosed> {
        let m = msg.attachments().find_map(|p| p.message())?;
        let (from_email, from_name) = headers::sender(m.from(), m.sender());
        Some(Enclosed {
            from_email,
            from_name,
            subject: m.subject().unwrap_or_default().trim().to_string(),
            message_id: headers::message_id(m),
            body_text: body::body_text(m, m.raw_message(), tld),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_basic_fields() {
        let raw = b"From: =?iso-8859-1?Q?Jos=E9_P=E9rez?= <Jose.Perez@Example.TEST>\r\n\
To: helpdesk@example.test\r\nSubject: =?UTF-8?B?Tm8gcHVlZG8gZW50cmFy?=\r\n\
Message-ID: <abc@x.test>\r\nIn-Reply-To: <p@x.test>\r\nReferences: <a@x.test> <p@x.test>\r\n\r\nHola\r\n";
        let m = parse(raw, 1000);
        assert_eq!(m.from_email.as_deref(), Some("jose.perez@example.test"));
        assert_eq!(m.from_name.as_deref(), Some("José Pérez"));
        assert_eq!(m.subject, "No puedo entrar");
        assert_eq!(m.message_id.as_deref(), Some("abc@x.test"));
        assert_eq!(m.in_reply_to.as_deref(), Some("p@x.test"));
        assert_eq!(m.references, vec!["a@x.test", "p@x.test"]);
        assert_eq!(m.body_text, "Hola");
        assert_eq!(m.unusable_reason(), None);
    }

    #[test]
    fn no_text_of_a_mail_holds_a_nul() {
        let raw = b"From: =?utf-8?q?Ana=00?= <a\0na@example.test>\r\nTo: h\0d@example.test\r\n\
Subject: =?utf-8?b?SW1wcmVzb3JhAHJvdGE=?=\r\nMessage-ID: <n\0ul@x.test>\r\nReferences: <r\0@x.test>\r\n\
Auto-Submitted: no\0\r\nX-Loop: l\0oop\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n\
--b\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nSe =00atasca.\r\n\
--b\r\nContent-Type: application/octet-stream; name=\"=?utf-8?q?log=00.txt?=\"\r\n\r\nx\r\n\
--b\r\nContent-Type: message/rfc822\r\n\r\nFrom: b\0@x.test\r\nSubject: s\0\r\n\r\nb\0ody\r\n--b--\r\n";
        let m = parse(raw, 1000);
        let shown = format!("{m:?}");
        assert!(!shown.contains("\\0"), "{shown}");
        assert_eq!(m.subject, "Impresora\u{FFFD}rota");
        assert!(
            m.body_text.contains("Se \u{FFFD}atasca."),
            "{:?}",
            m.body_text
        );
        assert_eq!(m.from_name.as_deref(), Some("Ana\u{FFFD}"));
        assert_eq!(m.message_id.as_deref(), Some("n\u{FFFD}ul@x.test"));
    }

    #[test]
    fn content_hash_ignores_trace_headers() {
        let a = parse(
            b"Received: from a\r\nFrom: a@x.test\r\nSubject: s\r\n\r\nbody\r\n",
            0,
        );
        let b = parse(
            b"Received: from b\r\nFrom: a@x.test\r\nSubject: s\r\n\r\nbody\r\n",
            0,
        );
        assert_eq!(a.dedup_key(), b.dedup_key());
    }

    #[test]
    fn empty_input_is_unusable() {
        assert!(parse(b"", 0).unusable_reason().is_some());
    }

    #[test]
    fn garbage_never_panics() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for len in [0usize, 1, 7, 64, 500, 4_000] {
            let mut bytes: Vec<u8> = (0..len)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    (seed >> 24) as u8
                })
                .collect();
            let _ = parse(&bytes, 10);
            bytes.splice(0..0, b"Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\nContent-Disposition: attachment; filename*0*=x''%".iter().copied());
            let _ = parse(&bytes, 10);
        }
    }
}
