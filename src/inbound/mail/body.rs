//! The readable body: which part to read (text, or HTML converted to text) and its text decoded
//! again where mail-parser could not know the charset or gave up on the transfer encoding.

use mail_parser::{Encoding, Message, MessagePart, MimeHeaders, PartType};

use super::charset::{decode_guessed, decode_text, decode_with_label, mail_parser_knows};
use super::headers::raw_header;

/// The readable body: the first text part, or the HTML converted to text when the text part is
/// missing or blank (some senders put an empty text/plain beside the real HTML).
pub(super) fn body_text(msg: &Message, raw: &[u8], tld: Option<&[u8]>) -> String {
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

/// HTML → readable plain text (links and emphasis without markup), in time linear in the
/// input whatever it holds: see [`crate::inbound::html_text`].
pub fn html_to_text(html: &str) -> String {
    crate::inbound::html_text::to_text(html)
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
    if label.as_deref().is_some_and(mail_parser_knows) {
        return decoded.to_string();
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
    decode_guessed(&bytes, tld)
}

/// A base64 text part with junk in it (mail-parser then keeps the base64 itself as the text):
/// the base64 characters decoded, the rest skipped, as most mail clients show it.
fn lenient_base64_text(
    part: &MessagePart,
    raw: &[u8],
    label: Option<&str>,
    tld: Option<&[u8]>,
) -> Option<String> {
    let is_base64 = raw_header(part, raw, "Content-Transfer-Encoding").is_some_and(|v| {
        String::from_utf8_lossy(v)
            .trim()
            .eq_ignore_ascii_case("base64")
    });
    if !is_base64 {
        return None;
    }
    let mut clean: Vec<u8> = raw_body(part, raw)?
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
    Some(decode_text(label, bytes, tld))
}

/// The part's body bytes with the transfer encoding undone.
fn transfer_decoded(part: &MessagePart, raw: &[u8]) -> Option<Vec<u8>> {
    let body = raw_body(part, raw)?;
    match part.encoding {
        Encoding::Base64 => mail_parser::decoders::base64::base64_decode(body),
        Encoding::QuotedPrintable => {
            mail_parser::decoders::quoted_printable::quoted_printable_decode(body)
        }
        Encoding::None => Some(body.to_vec()),
    }
}

/// The part's body bytes as they stand in the raw message (transfer encoding not undone).
fn raw_body<'r>(part: &MessagePart, raw: &'r [u8]) -> Option<&'r [u8]> {
    let end = (part.offset_end as usize).min(raw.len());
    raw.get(part.offset_body as usize..end)
}

#[cfg(test)]
mod tests {
    use super::super::parse;

    #[test]
    fn undeclared_8bit_is_read_as_windows_1252() {
        let raw = b"From: a@x.test\r\nSubject: x\r\n\r\nSe\xf1or, la impresi\xf3n\r\n";
        assert_eq!(parse(raw, 0).body_text, "Señor, la impresión");
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
    fn base64_text_with_junk_is_decoded_leniently() {
        let raw = b"From: a@x.test\r\nContent-Type: text/plain; charset=iso-8859-1\r\n\
Content-Transfer-Encoding: base64\r\n\r\nU2Xxb3Ig\r\nZG!!UgbGE=\r\n";
        assert_eq!(parse(raw, 0).body_text, "Señor de la");
    }
}
