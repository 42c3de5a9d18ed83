//! Inbound mail: raw bytes → [`InboundMail`], the plain data every later step works on.
//!
//! Invariant: this is the only module that knows mail-parser, so an upgrade touches one file.
//! Parsing never fails: garbage yields an `InboundMail` whose [`InboundMail::unusable_reason`]
//! says why it cannot become a ticket, and the shell quarantines it.

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, TimeZone, Utc};
use encoding_rs::Encoding as Charset;
use mail_parser::decoders::charsets::map::charset_decoder;
use mail_parser::{
    Address, Encoding, HeaderValue, Message, MessageParser, MessagePart, MimeHeaders, PartType,
};
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
            part_count: 0,
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
    // 8-bit header text in an undeclared charset, read again (see `redecode_headers`).
    let tld = sender_tld(&msg);
    let fixed_block = redecode_headers(&msg, tld.as_deref());
    let fixed = fixed_block
        .as_deref()
        .and_then(|b| MessageParser::default().parse(b));
    let fixed = fixed.as_ref();
    let from_hdr = fixed.and_then(|m| m.from()).or(msg.from());
    let sender_hdr = fixed.and_then(|m| m.sender()).or(msg.sender());
    let (from_email, from_name) = match first(from_hdr).or_else(|| first(sender_hdr)) {
        Some((e, n)) => (Some(e), n),
        None => (None, None),
    };
    let reply_to = first(fixed.and_then(|m| m.reply_to()).or(msg.reply_to())).map(|(e, _)| e);
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
    let subject = fixed
        .and_then(|m| m.subject())
        .or(msg.subject())
        .unwrap_or_default()
        .trim()
        .to_string();
    let date = msg
        .date()
        .and_then(|d| Utc.timestamp_opt(d.to_timestamp(), 0).single());
    let message_id = msg.message_id().map(clean_id).filter(|s| !s.is_empty());
    let in_reply_to = text_list(msg.in_reply_to()).into_iter().next();
    let references = text_list(msg.references());

    let body_text = body_text(&msg, raw, tld.as_deref());
    let attachments = attachments(&msg, max_attachment_bytes, tld.as_deref());
    let part_count = count_parts(&msg);
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
            body_text: self::body_text(m, m.raw_message(), tld.as_deref()),
        }
    });

    InboundMail {
        from_email,
        from_name,
        reply_to,
        to: list(fixed.and_then(|m| m.to()).or(msg.to())),
        cc: list(fixed.and_then(|m| m.cc()).or(msg.cc())),
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
        part_count,
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

/// The readable body: the first text part, or the HTML converted to text when the text part is
/// missing or blank (some senders put an empty text/plain beside the real HTML).
fn body_text(msg: &Message, raw: &[u8], tld: Option<&[u8]>) -> String {
    let text = msg
        .text_part(0)
        .map(|p| part_text(p, raw, tld))
        .unwrap_or_default();
    let text = if text.trim().is_empty() {
        msg.html_part(0)
            .filter(|p| matches!(p.body, PartType::Html(_)))
            .map(|p| part_text(p, raw, tld))
            .unwrap_or(text)
    } else {
        text
    };
    text.replace("\r\n", "\n").trim().to_string()
}

/// A text or HTML part as readable text.
fn part_text(part: &MessagePart, raw: &[u8], tld: Option<&[u8]>) -> String {
    match &part.body {
        PartType::Text(t) => redecode_text(part, t, raw, tld),
        PartType::Html(h) => html_to_text(&redecode_text(part, h, raw, tld)),
        _ => String::new(),
    }
}

/// The part's text, decoded again where mail-parser could not know the charset: none declared
/// (it reads the bytes as UTF-8, lossily) or a label it does not know (`unicode-1-1-utf-7`,
/// `latin-1`). Undeclared 8-bit text that is not UTF-8 goes through chardetng, the detector
/// Firefox uses (for Spanish mail that is windows-1252, as before).
fn redecode_text(part: &MessagePart, decoded: &str, raw: &[u8], tld: Option<&[u8]>) -> String {
    let label = part
        .content_type()
        .and_then(|ct| ct.attribute("charset"))
        .map(|l| l.trim().trim_matches(['"', '\'']).to_ascii_lowercase());
    if part.is_encoding_problem {
        if let Some(text) = lenient_base64_text(part, raw, label.as_deref(), tld) {
            return text;
        }
    }
    if let Some(l) = &label {
        if charset_decoder(l.as_bytes()).is_some()
            || Charset::for_label(l.as_bytes()) == Some(encoding_rs::UTF_8)
        {
            return decoded.to_string();
        }
    }
    let Some(bytes) = transfer_decoded(part, raw) else {
        return decoded.to_string();
    };
    if let Some(l) = label.as_deref().filter(|l| !l.is_empty()) {
        if let Some(text) = decode_with_label(l, &bytes) {
            return text;
        }
    }
    if std::str::from_utf8(&bytes).is_ok() {
        return decoded.to_string();
    }
    guess_encoding(&bytes, None, tld)
        .decode_without_bom_handling(&bytes)
        .0
        .into_owned()
}

/// A base64 text part with junk in it (mail-parser then keeps the base64 itself as the text):
/// the base64 characters decoded, the rest skipped, as most mail clients show it.
fn lenient_base64_text(
    part: &MessagePart,
    raw: &[u8],
    label: Option<&str>,
    tld: Option<&[u8]>,
) -> Option<String> {
    let is_base64 = part
        .headers()
        .iter()
        .find(|h| h.name().eq_ignore_ascii_case("Content-Transfer-Encoding"))
        .and_then(|h| raw.get(h.offset_start as usize..h.offset_end as usize))
        .is_some_and(|v| {
            String::from_utf8_lossy(v)
                .trim()
                .eq_ignore_ascii_case("base64")
        });
    if !is_base64 {
        return None;
    }
    let end = (part.offset_end as usize).min(raw.len());
    let body = raw.get(part.offset_body as usize..end)?;
    let mut clean: Vec<u8> = body
        .iter()
        .copied()
        .take_while(|&b| b != b'=')
        .filter(|b| b.is_ascii_alphanumeric() || *b == b'+' || *b == b'/')
        .collect();
    match clean.len() % 4 {
        1 => {
            clean.pop();
        }
        2 => clean.extend_from_slice(b"=="),
        3 => clean.push(b'='),
        _ => {}
    }
    let bytes = mail_parser::decoders::base64::base64_decode(&clean)?;
    let text = match label.and_then(|l| decode_with_label(l, &bytes)) {
        Some(t) => t,
        None => match String::from_utf8(bytes) {
            Ok(t) => t,
            Err(e) => {
                let b = e.into_bytes();
                guess_encoding(&b, None, tld)
                    .decode_without_bom_handling(&b)
                    .0
                    .into_owned()
            }
        },
    };
    Some(text)
}

/// Decodes `bytes` in the charset `label` names, including aliases neither mail-parser nor the
/// WHATWG list knows but mailers write. `None` for an unknown label.
fn decode_with_label(label: &str, bytes: &[u8]) -> Option<String> {
    let alias = canonical_charset(label).map_or(label.as_bytes(), str::as_bytes);
    if let Some(decoder) = charset_decoder(alias) {
        return Some(decoder(bytes));
    }
    Charset::for_label(alias).map(|e| e.decode_without_bom_handling(bytes).0.into_owned())
}

/// The part's body bytes with the transfer encoding undone.
fn transfer_decoded(part: &MessagePart, raw: &[u8]) -> Option<Vec<u8>> {
    let end = (part.offset_end as usize).min(raw.len());
    let body = raw.get(part.offset_body as usize..end)?;
    match part.encoding {
        Encoding::Base64 => mail_parser::decoders::base64::base64_decode(body),
        Encoding::QuotedPrintable => {
            mail_parser::decoders::quoted_printable::quoted_printable_decode(body)
        }
        Encoding::None => Some(body.to_vec()),
    }
}

/// The charset of undeclared 8-bit text: ISO-2022-JP when its escapes are there, else the
/// charset the message declares for its text (a mailer that writes 8-bit headers writes them in
/// its own charset), else chardetng's guess (hinted by the sender's top-level domain).
fn guess_encoding(
    bytes: &[u8],
    declared: Option<&'static Charset>,
    tld: Option<&[u8]>,
) -> &'static Charset {
    if bytes
        .windows(3)
        .any(|w| matches!(w, b"\x1b$B" | b"\x1b$@" | b"\x1b(J"))
    {
        return encoding_rs::ISO_2022_JP;
    }
    if let Some(d) = declared {
        return d;
    }
    let mut detector = chardetng::EncodingDetector::new(chardetng::Iso2022JpDetection::Allow);
    detector.feed(bytes, true);
    detector.guess(tld, chardetng::Utf8Detection::Allow)
}

/// The From address's top-level domain in the form chardetng accepts (lower-case ASCII letters),
/// a hint for the charset of undeclared text (`ru`, `jp`, `mx`).
fn sender_tld(msg: &Message) -> Option<Vec<u8>> {
    let addr = msg.from()?.first()?.address.as_deref()?;
    let tld = addr.rsplit('.').next()?.trim().trim_end_matches('>');
    (!tld.is_empty() && tld.len() <= 24 && tld.bytes().all(|b| b.is_ascii_alphabetic()))
        .then(|| tld.to_ascii_lowercase().into_bytes())
}

/// The charset the message declares for its first text part, if it is one that can be wrong
/// about 8-bit headers in a useful way (not UTF-8 or ASCII, which say nothing then).
fn declared_charset(msg: &Message) -> Option<&'static Charset> {
    msg.parts.iter().find_map(|p| {
        let label = p
            .content_type()?
            .attribute("charset")?
            .trim()
            .to_ascii_lowercase();
        let enc = Charset::for_label(label.as_bytes())?;
        let says_nothing = enc == encoding_rs::UTF_8
            || label.contains("ascii")
            || enc == encoding_rs::REPLACEMENT
            || enc == encoding_rs::UTF_16LE
            || enc == encoding_rs::UTF_16BE;
        (!says_nothing).then_some(enc)
    })
}

/// The address and subject headers mail-parser misreads: a raw value of 8-bit text that is not
/// UTF-8 (or raw ISO-2022-JP, whose escapes it leaves in), which it reads as UTF-8 (U+FFFD), and
/// encoded-words in a charset it does not know by that name (`=?latin-1?…`, `=?utf7?…`), which it
/// leaves undecoded or reads as UTF-8. Returns a header block with just those headers,
/// transcoded to UTF-8 and with the charset names it knows, for mail-parser to parse again
/// (encoded-words and address syntax included), or `None` when all are fine.
fn redecode_headers(msg: &Message, tld: Option<&[u8]>) -> Option<Vec<u8>> {
    const NAMES: [&str; 6] = ["From", "Sender", "Reply-To", "To", "Cc", "Subject"];
    let raw = msg.raw_message();
    let headers: Vec<(&str, &[u8])> = msg
        .headers()
        .iter()
        .filter_map(|h| {
            let name = NAMES.iter().find(|n| h.name().eq_ignore_ascii_case(n))?;
            let v = raw.get(h.offset_start as usize..h.offset_end as usize)?;
            Some((*name, v))
        })
        .collect();
    let eight_bit = |v: &[u8]| std::str::from_utf8(v).is_err() || v.contains(&0x1b);
    let mut sample = Vec::new();
    for (_, v) in headers.iter().filter(|(_, v)| eight_bit(v)) {
        sample.extend_from_slice(v);
        sample.push(b' ');
    }
    let charset = (!sample.is_empty()).then(|| guess_encoding(&sample, declared_charset(msg), tld));
    let mut block = Vec::new();
    for (name, v) in headers {
        let text = match charset.filter(|_| eight_bit(v)) {
            Some(c) => c.decode_without_bom_handling(v).0,
            None => String::from_utf8_lossy(v),
        };
        let renamed = with_known_charset_names(&text);
        if !eight_bit(v) && matches!(renamed, std::borrow::Cow::Borrowed(_)) {
            continue;
        }
        block.extend_from_slice(name.as_bytes());
        block.extend_from_slice(b": ");
        block.extend_from_slice(renamed.trim().as_bytes());
        block.extend_from_slice(b"\r\n");
    }
    if block.is_empty() {
        return None;
    }
    block.extend_from_slice(b"\r\n");
    Some(block)
}

/// Encoded-words whose charset name mail-parser does not know but [`decode_with_label`] does,
/// renamed to the name it knows.
fn with_known_charset_names(text: &str) -> std::borrow::Cow<'_, str> {
    static WORD: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"=\?([^?\s*]{1,40})(\*[^?\s]*)?\?([bBqQ])\?")
            .unwrap_or_else(|e| unreachable!("static regex: {e}"))
    });
    if !text.contains("=?") {
        return std::borrow::Cow::Borrowed(text);
    }
    WORD.replace_all(text, |c: &regex::Captures| {
        let label = c[1].to_ascii_lowercase();
        let known = charset_decoder(label.as_bytes()).is_some()
            || Charset::for_label(label.as_bytes()) == Some(encoding_rs::UTF_8);
        let name = match known {
            true => None,
            false => canonical_charset(&label),
        };
        match name {
            Some(n) => format!("=?{n}?{}?", &c[3]),
            None => c[0].to_string(),
        }
    })
}

/// The name mail-parser knows for a charset label mailers write in other spellings.
fn canonical_charset(label: &str) -> Option<&'static str> {
    let squashed: String = label
        .chars()
        .filter(|c| !matches!(c, '-' | '_' | ' '))
        .collect();
    match squashed.as_str() {
        "utf7" | "unicode11utf7" | "unicode20utf7" | "xunicode20utf7" | "csunicode11utf7" => {
            Some("utf-7")
        }
        "latin1" | "isolatin1" | "iso88591" | "iso8859" => Some("windows-1252"),
        "utf8" | "unicode11utf8" => Some("utf-8"),
        _ => None,
    }
}

/// Every MIME part, those of attached messages included.
fn count_parts(msg: &Message) -> usize {
    msg.parts
        .iter()
        .map(|p| match &p.body {
            PartType::Message(m) => 1 + count_parts(m),
            _ => 1,
        })
        .sum()
}

/// HTML → readable plain text (links and emphasis without markup), in time linear in the
/// input whatever it holds: see [`crate::inbound::html_text`].
pub fn html_to_text(html: &str) -> String {
    crate::inbound::html_text::to_text(html)
}

fn attachments(msg: &Message, max_bytes: u64, tld: Option<&[u8]>) -> Vec<Attachment> {
    let raw = msg.raw_message();
    // mail-parser's attachments, plus named text parts it keeps as inline body text although
    // they are not the body folio reads (Apple Mail attaches a small .txt inline): their
    // content would otherwise be lost. In MIME order.
    let body_parts = [msg.text_body.first(), msg.html_body.first()];
    let mut ids: Vec<usize> = msg.attachments.iter().map(|&i| i as usize).collect();
    for (i, part) in msg.parts.iter().enumerate() {
        let is_body = body_parts.iter().flatten().any(|&&b| b as usize == i);
        if !is_body
            && matches!(part.body, PartType::Text(_) | PartType::Html(_))
            && (msg.text_body.contains(&(i as u32)) || msg.html_body.contains(&(i as u32)))
            && part.attachment_name().is_some_and(|n| !n.trim().is_empty())
            && !ids.contains(&i)
        {
            ids.push(i);
        }
    }
    ids.sort_unstable();
    ids.dedup();
    let parts: Vec<&MessagePart> = ids.iter().filter_map(|&i| msg.parts.get(i)).collect();
    let named: Vec<Option<String>> = parts.iter().map(|p| part_name(p, raw, tld)).collect();
    // Names made up for unnamed parts must not clash with real ones or each other.
    let mut used: HashSet<String> = named.iter().flatten().map(|n| n.to_lowercase()).collect();
    parts
        .iter()
        .zip(named)
        .map(|(part, name)| {
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
            let name = name.unwrap_or_else(|| generated_name(part, &content_type, &mut used));
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

/// The attachment's own name: `Content-Disposition` `filename`, else `Content-Type` `name`,
/// decoded from RFC 2231 (continuations and charsets) or RFC 2047 here, because mail-parser
/// decodes each RFC 2231 section on its own (the charset of section 0 is lost for the others and
/// a character split between sections breaks) and leaves undeclared 8-bit names as U+FFFD.
fn part_name(part: &MessagePart, raw: &[u8], tld: Option<&[u8]>) -> Option<String> {
    let header = |name: &str| {
        part.headers()
            .iter()
            .find(|h| h.name().eq_ignore_ascii_case(name))
            .and_then(|h| raw.get(h.offset_start as usize..h.offset_end as usize))
    };
    header("Content-Disposition")
        .and_then(|v| mime_param(v, "filename", tld))
        .or_else(|| header("Content-Type").and_then(|v| mime_param(v, "name", tld)))
        .or_else(|| part.attachment_name().map(str::to_string))
        .map(|n| sanitize_name(&n))
        .filter(|n| !n.is_empty())
}

/// Longest attachment name kept, in bytes (file systems allow 255).
const MAX_NAME_BYTES: usize = 150;

/// An attachment name safe to put in mail and on disk: no path separators, control or
/// bidirectional-override characters (which disguise `factura\u{202e}fdp.exe`), not only dots,
/// at most [`MAX_NAME_BYTES`] with its extension kept.
pub fn sanitize_name(name: &str) -> String {
    let cleaned: String = name
        .chars()
        .map(|c| match c {
            '/' | '\\' => '_',
            '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}' => '_',
            c if c.is_control() => '_',
            c => c,
        })
        .collect();
    let cleaned = cleaned.trim();
    if cleaned.chars().all(|c| c == '.' || c == '_') {
        return String::new();
    }
    if cleaned.len() <= MAX_NAME_BYTES {
        return cleaned.to_string();
    }
    let ext = cleaned
        .rfind('.')
        .map(|i| &cleaned[i..])
        .filter(|e| e.len() <= 16)
        .unwrap_or("");
    let mut stem_end = MAX_NAME_BYTES - ext.len();
    while !cleaned.is_char_boundary(stem_end) {
        stem_end -= 1;
    }
    format!("{}{ext}", cleaned[..stem_end].trim_end())
}

/// A name for an unnamed part from what it is: an attached message by its subject, a delivery
/// report `delivery-status.txt`, an image `imagen-1.png`, anything else `adjunto-1.<ext>`.
fn generated_name(part: &MessagePart, content_type: &str, used: &mut HashSet<String>) -> String {
    let (stem, ext, numbered) = match content_type {
        "message/rfc822" | "message/global" => {
            let subject = match &part.body {
                PartType::Message(m) => m.subject().map(sanitize_name).unwrap_or_default(),
                _ => String::new(),
            };
            if subject.is_empty() {
                ("mensaje".to_string(), "eml", true)
            } else {
                (subject, "eml", false)
            }
        }
        "message/delivery-status" | "message/global-delivery-status" => {
            ("delivery-status".into(), "txt", false)
        }
        "message/disposition-notification" | "message/global-disposition-notification" => {
            ("disposition-notification".into(), "txt", false)
        }
        "text/rfc822-headers" | "message/global-headers" => ("rfc822-headers".into(), "txt", false),
        "application/ms-tnef" | "application/vnd.ms-tnef" => ("winmail".into(), "dat", false),
        t if t.starts_with("image/") => ("imagen".into(), extension_for(t), true),
        t => ("adjunto".into(), extension_for(t), true),
    };
    let mut n = 1;
    loop {
        let name = match (numbered, n) {
            (false, 1) => format!("{stem}.{ext}"),
            _ => format!("{stem}-{n}.{ext}"),
        };
        if used.insert(name.to_lowercase()) {
            return name;
        }
        n += 1;
    }
}

/// The usual file extension of a MIME type (`bin` when unknown).
fn extension_for(content_type: &str) -> &'static str {
    match content_type {
        "image/jpeg" | "image/jpg" | "image/pjpeg" => "jpg",
        "image/png" => "png",
        "image/gif" => "gif",
        "image/bmp" => "bmp",
        "image/webp" => "webp",
        "image/tiff" => "tif",
        "image/svg+xml" => "svg",
        "image/heic" => "heic",
        "application/pdf" => "pdf",
        "application/zip" | "application/x-zip-compressed" => "zip",
        "application/msword" => "doc",
        "application/vnd.ms-excel" => "xls",
        "application/vnd.ms-powerpoint" => "ppt",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document" => "docx",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" => "xlsx",
        "application/vnd.openxmlformats-officedocument.presentationml.presentation" => "pptx",
        "application/json" => "json",
        "application/xml" | "text/xml" => "xml",
        "text/plain" => "txt",
        "text/html" => "html",
        "text/csv" => "csv",
        "text/calendar" => "ics",
        "text/vcard" | "text/x-vcard" => "vcf",
        "audio/mpeg" => "mp3",
        "audio/wav" | "audio/x-wav" => "wav",
        "video/mp4" => "mp4",
        _ => "bin",
    }
}

/// The value of MIME parameter `name` in a raw `Content-Type`/`Content-Disposition` value:
/// RFC 2231 `name*=charset'lang'%XX`, continuations `name*0*=…; name*1=…` (the bytes of all
/// sections joined before decoding with the charset of section 0), else plain `name=` (RFC 2047
/// encoded-words decoded; undeclared 8-bit bytes decoded as UTF-8 or by detection).
fn mime_param(value: &[u8], name: &str, tld: Option<&[u8]>) -> Option<String> {
    let mut plain = None;
    let mut extended = None;
    let mut sections: BTreeMap<u32, (bool, Vec<u8>)> = BTreeMap::new();
    for (key, v) in mime_params(value) {
        let Some(rest) = key.strip_prefix(name) else {
            continue;
        };
        if rest.is_empty() {
            plain.get_or_insert(v);
        } else if rest == "*" {
            extended.get_or_insert(v);
        } else if let Some(section) = rest.strip_prefix('*') {
            let (number, encoded) = match section.strip_suffix('*') {
                Some(n) => (n, true),
                None => (section, false),
            };
            if let Ok(i) = number.parse::<u32>() {
                sections.entry(i).or_insert((encoded, v));
            }
        }
    }
    let (charset, bytes) = if let Some(v) = extended {
        split_extended(&v)
    } else if !sections.is_empty() {
        let mut charset = None;
        let mut bytes = Vec::new();
        for (i, (encoded, v)) in sections {
            if encoded {
                let (c, b) = if i == 0 {
                    split_extended(&v)
                } else {
                    (None, percent_decode(&v))
                };
                charset = charset.or(c);
                bytes.extend(b);
            } else {
                bytes.extend(v);
            }
        }
        (charset, bytes)
    } else {
        (None, plain?)
    };
    let text = match charset
        .as_deref()
        .and_then(|c| decode_with_label(c, &bytes))
    {
        Some(t) => t,
        None => match String::from_utf8(bytes) {
            Ok(t) => t,
            Err(e) => {
                let bytes = e.into_bytes();
                guess_encoding(&bytes, None, tld)
                    .decode_without_bom_handling(&bytes)
                    .0
                    .into_owned()
            }
        },
    };
    Some(if text.contains("=?") {
        decode_encoded_words(&text)
    } else {
        text
    })
}

/// `charset'language'%XX…` → (charset, bytes).
fn split_extended(v: &[u8]) -> (Option<String>, Vec<u8>) {
    let mut it = v.splitn(3, |&b| b == b'\'');
    match (it.next(), it.next(), it.next()) {
        (Some(charset), Some(_lang), Some(rest)) => (
            Some(String::from_utf8_lossy(charset).trim().to_ascii_lowercase())
                .filter(|c| !c.is_empty()),
            percent_decode(rest),
        ),
        _ => (None, percent_decode(v)),
    }
}

fn percent_decode(v: &[u8]) -> Vec<u8> {
    let hex = |b: u8| (b as char).to_digit(16);
    let mut out = Vec::with_capacity(v.len());
    let mut i = 0;
    while i < v.len() {
        if v[i] == b'%' && i + 2 < v.len() {
            if let (Some(h), Some(l)) = (hex(v[i + 1]), hex(v[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(v[i]);
        i += 1;
    }
    out
}

/// RFC 2047 encoded-words in a parameter value (Outlook and Gmail write filenames so), decoded
/// by mail-parser's unstructured-header parser.
fn decode_encoded_words(text: &str) -> String {
    let header = format!("Subject: {}\r\n\r\n", text.replace(['\r', '\n'], " "));
    MessageParser::default()
        .parse(header.as_bytes())
        .and_then(|m| m.subject().map(str::to_string))
        .unwrap_or_else(|| text.to_string())
}

/// The parameters of a raw MIME header value (after its first `;`), unfolded, names in lower
/// case, quoted values unquoted.
fn mime_params(value: &[u8]) -> Vec<(String, Vec<u8>)> {
    let v: Vec<u8> = value
        .iter()
        .copied()
        .filter(|&b| b != b'\r' && b != b'\n')
        .collect();
    let Some(start) = v.iter().position(|&b| b == b';') else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut i = start + 1;
    while i < v.len() {
        while i < v.len() && (v[i].is_ascii_whitespace() || v[i] == b';') {
            i += 1;
        }
        if i < v.len() && v[i] == b'(' {
            while i < v.len() && v[i] != b')' {
                i += 1;
            }
            i += 1;
            continue;
        }
        let name_start = i;
        while i < v.len() && v[i] != b'=' && v[i] != b';' {
            i += 1;
        }
        let name = String::from_utf8_lossy(&v[name_start..i])
            .trim()
            .to_ascii_lowercase();
        if i >= v.len() || v[i] == b';' {
            continue;
        }
        i += 1; // '='
        while i < v.len() && (v[i] == b' ' || v[i] == b'\t') {
            i += 1;
        }
        let mut value = Vec::new();
        if i < v.len() && v[i] == b'"' {
            i += 1;
            while i < v.len() && v[i] != b'"' {
                if v[i] == b'\\' && i + 1 < v.len() {
                    i += 1;
                }
                value.push(v[i]);
                i += 1;
            }
            i += 1;
        } else {
            while i < v.len() && v[i] != b';' {
                value.push(v[i]);
                i += 1;
            }
            while value.last().is_some_and(|b| b.is_ascii_whitespace()) {
                value.pop();
            }
        }
        if !name.is_empty() {
            out.push((name, value));
        }
    }
    out
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
        folio_loop: raw(crate::outbound::outgoing::LOOP_HEADER),
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

    #[test]
    fn rfc2231_sections_are_joined_before_decoding() {
        // mail-parser decodes each section alone: the charset of section 0 is lost for the
        // others and a character split between sections breaks.
        let latin1 =
            b"attachment;\r\n filename*0*=iso-8859-1''Informe%20del%20a; filename*1*=%F1o.pdf";
        assert_eq!(
            mime_param(latin1, "filename", None).as_deref(),
            Some("Informe del año.pdf")
        );
        let split = b"attachment; filename*0*=UTF-8''a%C3; filename*1*=%B1o.txt";
        assert_eq!(
            mime_param(split, "filename", None).as_deref(),
            Some("año.txt")
        );
        let jis = b"attachment; filename*0*=iso-2022-jp''%1B%24B8%2B%1B; filename*1*=%28B.pdf";
        assert_eq!(mime_param(jis, "filename", None).as_deref(), Some("見.pdf"));
        let plain = b"attachment; filename*1=\"comite.pdf\"; filename*0=\"Acta del \"";
        assert_eq!(
            mime_param(plain, "filename", None).as_deref(),
            Some("Acta del comite.pdf")
        );
        let simple = b"attachment; filename*=UTF-8'es'Tel%C3%A9fono.vcf; filename=\"x\"";
        assert_eq!(
            mime_param(simple, "filename", None).as_deref(),
            Some("Teléfono.vcf")
        );
        let words = b"application/pdf; name=\"=?UTF-8?B?w7Fvw7E=?= =?UTF-8?Q?_2.pdf?=\"";
        assert_eq!(
            mime_param(words, "name", None).as_deref(),
            Some("ñoñ 2.pdf")
        );
        let raw8 = b"attachment; filename=\"Se\xf1al.pdf\"";
        assert_eq!(
            mime_param(raw8, "filename", None).as_deref(),
            Some("Señal.pdf")
        );
        for junk in [
            &b"x; filename*0*=%"[..],
            b"; filename*=''%G1",
            b";;=;\"",
            b"a; filename*99999999999*=x",
        ] {
            let _ = mime_param(junk, "filename", None);
        }
    }

    #[test]
    fn attachment_names_are_made_safe() {
        assert_eq!(sanitize_name("../../etc/passwd"), ".._.._etc_passwd");
        assert_eq!(sanitize_name("a\\b\nc\u{0}d"), "a_b_c_d");
        assert_eq!(sanitize_name("factura\u{202e}fdp.exe"), "factura_fdp.exe");
        assert_eq!(sanitize_name(" .. "), "");
        let long = format!("{}.pdf", "ñ".repeat(400));
        let safe = sanitize_name(&long);
        assert!(
            safe.len() <= MAX_NAME_BYTES && safe.ends_with("ñ.pdf"),
            "{safe}"
        );
    }

    #[test]
    fn unnamed_parts_get_distinct_names_that_do_not_clash() {
        let raw = b"From: a@x.test\r\nSubject: s\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nhola\r\n\
--b\r\nContent-Type: image/png; name=\"imagen-1.png\"\r\n\r\nPNG1\r\n\
--b\r\nContent-Type: image/png\r\nContent-Disposition: attachment\r\n\r\nPNG2\r\n\
--b\r\nContent-Type: image/jpeg\r\nContent-Disposition: attachment\r\n\r\nJPG\r\n\
--b\r\nContent-Type: message/delivery-status\r\n\r\nAction: failed\r\n\r\n--b--\r\n";
        let m = parse(raw, u64::MAX);
        let names: Vec<&str> = m.attachments.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "imagen-1.png",
                "imagen-2.png",
                "imagen-1.jpg",
                "delivery-status.txt"
            ]
        );
        assert_eq!(m.part_count, 6);
    }

    #[test]
    fn part_count_includes_attached_messages() {
        let raw = b"From: a@x.test\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n\
--b\r\nContent-Type: text/plain\r\n\r\nhola\r\n--b\r\nContent-Type: message/rfc822\r\n\r\n\
From: c@x.test\r\nSubject: in\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"c\"\r\n\r\n\
--c\r\nContent-Type: text/plain\r\n\r\nuno\r\n--c\r\nContent-Type: text/plain\r\n\r\ndos\r\n--c--\r\n--b--\r\n";
        let m = parse(raw, 0);
        assert_eq!(m.part_count, 3 + 3);
        assert_eq!(parse(b"From: a@x.test\r\n\r\nhola\r\n", 0).part_count, 1);
    }

    #[test]
    fn undeclared_8bit_headers_are_detected() {
        let koi8 = b"From: \xe9\xd7\xc1\xce <ivan@x.ru>\r\nSubject: \xf0\xd2\xc9\xce\xd4\xc5\xd2 \xce\xc5 \xd2\xc1\xc2\xcf\xd4\xc1\xc5\xd4\r\n\
MIME-Version: 1.0\r\nContent-Type: text/plain; charset=koi8-r\r\n\r\n\xf0\xd2\xc9\xd7\xc5\xd4\r\n";
        let m = parse(koi8, 0);
        assert_eq!(m.subject, "Принтер не работает");
        assert_eq!(m.from_name.as_deref(), Some("Иван"));
        assert_eq!(m.from_email.as_deref(), Some("ivan@x.ru"));
        assert_eq!(m.body_text, "Привет");
        let es = b"From: Jos\xe9 <j@x.mx>\r\nSubject: =?utf-8?Q?Re:?= Contrase\xf1a\r\n\r\nok\r\n";
        let m = parse(es, 0);
        assert_eq!(m.subject, "Re: Contraseña");
        assert_eq!(m.from_name.as_deref(), Some("José"));
    }

    #[test]
    fn blank_text_part_gives_way_to_html() {
        let raw = b"From: a@x.test\r\nMIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=\"b\"\r\n\r\n\
--b\r\nContent-Type: text/plain\r\n\r\n \r\n\r\n--b\r\nContent-Type: text/html\r\n\r\n<p>Hola &amp; adi&oacute;s</p>\r\n--b--\r\n";
        assert_eq!(parse(raw, 0).body_text, "Hola & adiós");
    }

    #[test]
    fn utf7_and_latin1_aliases_decode() {
        let raw = b"From: a@x.test\r\nContent-Type: text/plain; charset=\"unicode-1-1-utf-7\"\r\n\r\nM+AOE-quina\r\n";
        assert_eq!(parse(raw, 0).body_text, "Máquina");
        let raw =
            b"From: a@x.test\r\nContent-Type: text/plain; charset=latin-1\r\n\r\nM\xe1quina\r\n";
        assert_eq!(parse(raw, 0).body_text, "Máquina");
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

    #[test]
    fn encoded_words_in_charsets_mail_parser_misnames() {
        let raw = b"From: =?latin-1?Q?Jos=E9?= <a@x.test>\r\nSubject: =?latin-1?Q?Actualizaci=F3n?= de =?unicode-1-1-utf-7?Q?M+AOE-quina?=\r\n\r\nx\r\n";
        let m = parse(raw, 0);
        assert_eq!(m.from_name.as_deref(), Some("José"));
        assert_eq!(m.subject, "Actualización de Máquina");
        // Names mail-parser knows are left to it.
        let raw = b"From: a@x.test\r\nSubject: =?ISO-8859-1?Q?a=F1o?=\r\n\r\nx\r\n";
        assert_eq!(parse(raw, 0).subject, "año");
    }

    #[test]
    fn base64_text_with_junk_is_decoded_leniently() {
        let raw = b"From: a@x.test\r\nContent-Type: text/plain; charset=iso-8859-1\r\n\
Content-Transfer-Encoding: base64\r\n\r\nU2Xxb3Ig\r\nZG!!UgbGE=\r\n";
        assert_eq!(parse(raw, 0).body_text, "Señor de la");
    }

    #[test]
    fn named_inline_text_parts_are_attachments() {
        let raw = b"From: a@x.test\r\nSubject: s\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n\
--b\r\nContent-Type: text/plain\r\n\r\nCuerpo\r\n\
--b\r\nContent-Type: text/plain\r\nContent-Disposition: inline; filename=\"log.txt\"\r\n\r\nlinea\r\n\
--b\r\nContent-Type: image/png; name=\"a.png\"\r\nContent-Disposition: attachment\r\n\r\nPNG\r\n--b--\r\n";
        let m = parse(raw, u64::MAX);
        assert_eq!(m.body_text, "Cuerpo");
        let names: Vec<&str> = m.attachments.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(names, ["log.txt", "a.png"]);
        assert_eq!(m.attachments[0].data, b"linea");
    }
}
