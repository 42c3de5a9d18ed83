//! Inbound mail: raw bytes → [`InboundMail`], the plain data every later step works on.
//!
//! Invariant: this is the only module that knows mail-parser, so an upgrade touches one file.
//! Parsing never fails: garbage yields an `InboundMail` whose [`InboundMail::unusable_reason`]
//! says why it cannot become a ticket, and the shell quarantines it.

use chrono::{DateTime, TimeZone, Utc};
use mail_parser::{Address, Encoding, HeaderValue, Message, MessageParser, MimeHeaders, PartType};
use serde::Serialize;
use sha2::{Digest, Sha256};

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

/// The header facts automatic-mail classification looks at; extracted here so `classify` is
/// pure and parser-independent.
#[derive(Debug, Clone, Default)]
pub struct AutoSignals {
    pub auto_submitted: Option<String>,
    pub precedence: Option<String>,
    pub list_id: Option<String>,
    pub list_unsubscribe: bool,
    pub x_autoreply: Option<String>,
    pub x_autorespond: Option<String>,
    pub x_auto_response_suppress: Option<String>,
    /// Values of every `X-Loop` header.
    pub x_loop: Vec<String>,
    /// Value of our own `X-Folio-Loop` header, if present.
    pub folio_loop: Option<String>,
    /// `Return-Path: <>` (the null sender of bounces and auto-replies).
    pub return_path_empty: bool,
    /// `multipart/report; report-type=delivery-status` or a `message/delivery-status` part.
    pub delivery_report: bool,
    /// The Message-ID of the original message inside a delivery report.
    pub report_original_message_id: Option<String>,
    /// A delivery report that only says "delayed, still trying" (`Action: delayed` or a 4.x.x
    /// status and no failure): not a hard bounce.
    pub report_only_delayed: bool,
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
        self.in_reply_to.is_some() || crate::subject::is_reply(&self.subject)
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
    let content_hash_of = |parts: &[&str]| {
        let mut h = Sha256::new();
        for p in parts {
            h.update(p.as_bytes());
            h.update([0u8]);
        }
        hex::encode(h.finalize())
    };
    let Some(msg) = MessageParser::default().parse(raw) else {
        return InboundMail {
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
        };
    };

    let first = |a: Option<&Address>| {
        a.and_then(|a| {
            a.iter()
                .find(|x| x.address.as_deref().is_some_and(|s| s.contains('@')))
        })
        .map(|x| {
            (
                x.address
                    .as_deref()
                    .unwrap_or_default()
                    .trim()
                    .to_lowercase(),
                x.name
                    .as_deref()
                    .map(str::trim)
                    .filter(|n| !n.is_empty())
                    .map(str::to_string),
            )
        })
    };
    let (from_email, from_name) = match first(msg.from()).or_else(|| first(msg.sender())) {
        Some((e, n)) => (Some(e), n),
        None => (None, None),
    };
    let reply_to = first(msg.reply_to()).map(|(e, _)| e);
    let from_email = from_email.or_else(|| reply_to.clone());
    let list = |a: Option<&Address>| -> Vec<String> {
        a.map(|a| {
            a.iter()
                .filter_map(|x| x.address.as_deref())
                .map(|s| s.trim().to_lowercase())
                .collect()
        })
        .unwrap_or_default()
    };
    let subject = msg.subject().unwrap_or_default().trim().to_string();
    let date = msg
        .date()
        .and_then(|d| Utc.timestamp_opt(d.to_timestamp(), 0).single());
    let message_id = msg.message_id().map(clean_id).filter(|s| !s.is_empty());
    let in_reply_to = text_list(msg.in_reply_to()).into_iter().next();
    let references = text_list(msg.references());

    let body_text = body_text(&msg, raw);
    let attachments = attachments(&msg, max_attachment_bytes);
    let signals = signals(&msg);
    let date_raw = msg.header_raw("Date").unwrap_or_default();
    let content_hash = content_hash_of(&[
        from_email.as_deref().unwrap_or_default(),
        date_raw,
        &subject,
        &body_text,
    ]);

    let unfold = |v: &str| v.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut envelope_to = Vec::new();
    let mut authentication_results = Vec::new();
    for (name, value) in msg.headers_raw() {
        if name.eq_ignore_ascii_case("Authentication-Results") {
            authentication_results.push(unfold(value));
        } else if ["Delivered-To", "X-Original-To", "Envelope-To"]
            .iter()
            .any(|n| name.eq_ignore_ascii_case(n))
        {
            envelope_to.push(clean_id(&unfold(value)).to_lowercase());
        }
    }
    let enclosed = msg.attachments().find_map(|p| p.message()).map(|m| {
        let (from_email, from_name) = match first(m.from()).or_else(|| first(m.sender())) {
            Some((e, n)) => (Some(e), n),
            None => (None, None),
        };
        Enclosed {
            from_email,
            from_name,
            subject: m.subject().unwrap_or_default().trim().to_string(),
            message_id: m.message_id().map(clean_id).filter(|s| !s.is_empty()),
            body_text: self::body_text(m, m.raw_message()),
        }
    });

    InboundMail {
        from_email,
        from_name,
        reply_to,
        to: list(msg.to()),
        cc: list(msg.cc()),
        subject,
        date,
        message_id,
        in_reply_to,
        references,
        body_text,
        attachments,
        signals,
        content_hash,
        size: raw.len(),
        envelope_to,
        authentication_results,
        enclosed,
    }
}

/// Text with the link decorations mail clients add to a typed address removed: Outlook's plain
/// text `juan@x.mx<mailto:juan@x.mx>` and html2text's `[juan@x.mx]` both become `juan@x.mx`.
pub fn without_mailto(text: &str) -> String {
    static MAILTO: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"(?i)\s*<mailto:[^>\s]*>?|\[(\S+@\S+?)\]")
            .unwrap_or_else(|e| unreachable!("static regex: {e}"))
    });
    MAILTO
        .replace_all(text, |c: &regex::Captures| {
            c.get(1).map_or(String::new(), |m| m.as_str().to_string())
        })
        .trim()
        .to_string()
}

/// Message-IDs without `<>` and whitespace, the one form folio stores and compares.
pub fn clean_id(id: &str) -> String {
    id.trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .trim()
        .to_string()
}

fn text_list(v: &HeaderValue) -> Vec<String> {
    let items: Vec<String> = match v {
        HeaderValue::Text(t) => vec![t.to_string()],
        HeaderValue::TextList(l) => l.iter().map(|t| t.to_string()).collect(),
        _ => vec![],
    };
    items
        .iter()
        .flat_map(|s| s.split_whitespace())
        .map(clean_id)
        .filter(|s| !s.is_empty())
        .collect()
}

fn body_text(msg: &Message, raw: &[u8]) -> String {
    let Some(part) = msg.text_part(0).or_else(|| msg.html_part(0)) else {
        return String::new();
    };
    let text = match &part.body {
        PartType::Text(t) => {
            if t.contains('\u{FFFD}') && part.encoding == Encoding::None {
                // Undeclared 8-bit text: mail-parser decodes it lossily as UTF-8. Spanish mail
                // from old clients is almost always windows-1252, so decode the raw bytes as that.
                let start = part.offset_body as usize;
                let end = (part.offset_end as usize).min(raw.len());
                match raw.get(start..end) {
                    Some(bytes) if std::str::from_utf8(bytes).is_err() => {
                        encoding_rs::WINDOWS_1252.decode(bytes).0.into_owned()
                    }
                    _ => t.to_string(),
                }
            } else {
                t.to_string()
            }
        }
        PartType::Html(h) => html_to_text(h),
        _ => String::new(),
    };
    text.replace("\r\n", "\n").trim().to_string()
}

/// HTML → readable plain text (links and emphasis without markup). Paragraphs are not wrapped:
/// the text is stored and quoted back, and the reader's client wraps it.
pub fn html_to_text(html: &str) -> String {
    html2text::config::plain_no_decorate()
        .no_table_borders()
        .string_from_read(html.as_bytes(), 10_000)
        .unwrap_or_else(|_| html.to_string())
        .lines()
        .map(str::trim_end)
        .collect::<Vec<_>>()
        .join("\n")
}

fn attachments(msg: &Message, max_bytes: u64) -> Vec<Attachment> {
    msg.attachments()
        .map(|part| {
            let content_type = part
                .content_type()
                .map(|ct| match &ct.c_subtype {
                    Some(sub) => format!("{}/{}", ct.c_type, sub).to_lowercase(),
                    None => ct.c_type.to_lowercase(),
                })
                .unwrap_or_else(|| "application/octet-stream".into());
            let data: &[u8] = match &part.body {
                PartType::Message(m) => m.raw_message(),
                _ => part.contents(),
            };
            let name = part
                .attachment_name()
                .map(str::to_string)
                .or_else(|| match &part.body {
                    PartType::Message(m) => m.subject().map(|s| format!("{s}.eml")),
                    _ => None,
                })
                .unwrap_or_else(|| "sin-nombre".into());
            Attachment {
                name,
                content_type,
                size: data.len() as u64,
                data: if data.len() as u64 <= max_bytes {
                    data.to_vec()
                } else {
                    Vec::new()
                },
            }
        })
        .collect()
}

fn signals(msg: &Message) -> AutoSignals {
    let raw = |name: &str| {
        msg.header_raw(name)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    let x_loop = msg
        .headers_raw()
        .filter(|(n, _)| n.eq_ignore_ascii_case("X-Loop"))
        .map(|(_, v)| v.trim().to_lowercase())
        .collect();
    let return_path_empty = msg.header_raw("Return-Path").is_some_and(|v| {
        v.trim()
            .trim_start_matches('<')
            .trim_end_matches('>')
            .trim()
            .is_empty()
    });
    let root_is_report = msg.root_part().content_type().is_some_and(|ct| {
        ct.c_type.eq_ignore_ascii_case("multipart")
            && ct
                .c_subtype
                .as_deref()
                .is_some_and(|s| s.eq_ignore_ascii_case("report"))
            && ct
                .attribute("report-type")
                .is_some_and(|t| t.eq_ignore_ascii_case("delivery-status"))
    });
    let mut has_status_part = false;
    let mut original_id = None;
    let (mut failed, mut delayed) = (false, false);
    for part in &msg.parts {
        if part.is_content_type("message", "delivery-status")
            || part.is_content_type("message", "global-delivery-status")
        {
            has_status_part = true;
            let text = String::from_utf8_lossy(part.contents()).to_lowercase();
            for line in text.lines() {
                let line = line.trim();
                if let Some(v) = line.strip_prefix("action:") {
                    failed |= v.trim().starts_with("failed");
                    delayed |= v.trim().starts_with("delayed");
                } else if let Some(v) = line.strip_prefix("status:") {
                    failed |= v.trim().starts_with('5');
                    delayed |= v.trim().starts_with('4');
                }
            }
        }
        if original_id.is_none() {
            original_id = match &part.body {
                PartType::Message(m) if root_is_report => m.message_id().map(clean_id),
                PartType::Text(t) if part.is_content_type("text", "rfc822-headers") => {
                    MessageParser::default()
                        .parse(t.as_bytes())
                        .and_then(|m| m.message_id().map(clean_id))
                }
                _ => None,
            };
        }
    }
    AutoSignals {
        auto_submitted: raw("Auto-Submitted"),
        precedence: raw("Precedence"),
        list_id: raw("List-Id"),
        list_unsubscribe: raw("List-Unsubscribe").is_some(),
        x_autoreply: raw("X-Autoreply"),
        x_autorespond: raw("X-Autorespond"),
        x_auto_response_suppress: raw("X-Auto-Response-Suppress"),
        x_loop,
        folio_loop: raw(crate::outgoing::LOOP_HEADER),
        return_path_empty,
        delivery_report: root_is_report || has_status_part,
        report_original_message_id: original_id,
        report_only_delayed: delayed && !failed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_decorations_of_addresses_are_removed() {
        assert_eq!(without_mailto("a@x.mx<mailto:a@x.mx>"), "a@x.mx");
        assert_eq!(without_mailto("a@x.mx <mailto:a@x.mx"), "a@x.mx");
        assert_eq!(without_mailto("[a@x.mx]"), "a@x.mx");
        assert_eq!(without_mailto("tech2"), "tech2");
        assert_eq!(without_mailto("[nota] texto"), "[nota] texto");
    }

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
    fn undeclared_8bit_is_read_as_windows_1252() {
        let raw = b"From: a@x.test\r\nSubject: x\r\n\r\nSe\xf1or, la impresi\xf3n\r\n";
        assert_eq!(parse(raw, 0).body_text, "Señor, la impresión");
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
}
