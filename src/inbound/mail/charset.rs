//! Charsets mail-parser cannot know: undeclared 8-bit text (guessed with chardetng, the detector
//! Firefox uses), labels it does not know by that name (`unicode-1-1-utf-7`, `latin-1`), and the
//! address and subject headers it therefore misreads.

use std::borrow::Cow;

use encoding_rs::Encoding as Charset;
use mail_parser::decoders::charsets::map::charset_decoder;
use mail_parser::{Message, MimeHeaders};

/// `bytes` as text: in the charset `label` names when it names one, else as UTF-8 when they
/// are, else in the charset [`guess_encoding`] detects.
pub(super) fn decode_text(label: Option<&str>, bytes: Vec<u8>, tld: Option<&[u8]>) -> String {
    if let Some(text) = label.and_then(|l| decode_with_label(l, &bytes)) {
        return text;
    }
    match String::from_utf8(bytes) {
        Ok(text) => text,
        Err(e) => decode_guessed(&e.into_bytes(), tld),
    }
}

/// Undeclared 8-bit `bytes` in the charset [`guess_encoding`] detects.
pub(super) fn decode_guessed(bytes: &[u8], tld: Option<&[u8]>) -> String {
    guess_encoding(bytes, None, tld)
        .decode_without_bom_handling(bytes)
        .0
        .into_owned()
}

/// Whether mail-parser decodes the charset `label` names itself (UTF-8 included).
pub(super) fn mail_parser_knows(label: &str) -> bool {
    charset_decoder(label.as_bytes()).is_some()
        || Charset::for_label(label.as_bytes()) == Some(encoding_rs::UTF_8)
}

/// Decodes `bytes` in the charset `label` names, including aliases neither mail-parser nor the
/// WHATWG list knows but mailers write. `None` for an unknown label.
pub(super) fn decode_with_label(label: &str, bytes: &[u8]) -> Option<String> {
    let alias = canonical_charset(label).map_or(label.as_bytes(), str::as_bytes);
    if let Some(decoder) = charset_decoder(alias) {
        return Some(decoder(bytes));
    }
    Charset::for_label(alias).map(|e| e.decode_without_bom_handling(bytes).0.into_owned())
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
pub(super) fn sender_tld(msg: &Message) -> Option<Vec<u8>> {
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
pub(super) fn redecode_headers(msg: &Message, tld: Option<&[u8]>) -> Option<Vec<u8>> {
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
        if !eight_bit(v) && matches!(renamed, Cow::Borrowed(_)) {
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
fn with_known_charset_names(text: &str) -> Cow<'_, str> {
    static WORD: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"=\?([^?\s*]{1,40})(\*[^?\s]*)?\?([bBqQ])\?")
            .unwrap_or_else(|e| unreachable!("static regex: {e}"))
    });
    if !text.contains("=?") {
        return Cow::Borrowed(text);
    }
    WORD.replace_all(text, |c: &regex::Captures| {
        let label = c[1].to_ascii_lowercase();
        let name = match mail_parser_knows(&label) {
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

#[cfg(test)]
mod tests {
    use super::super::parse;

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
    fn encoded_words_in_charsets_mail_parser_misnames() {
        let raw = b"From: =?latin-1?Q?Jos=E9?= <a@x.test>\r\nSubject: =?latin-1?Q?Actualizaci=F3n?= de =?unicode-1-1-utf-7?Q?M+AOE-quina?=\r\n\r\nx\r\n";
        let m = parse(raw, 0);
        assert_eq!(m.from_name.as_deref(), Some("José"));
        assert_eq!(m.subject, "Actualización de Máquina");
        // Names mail-parser knows are left to it.
        let raw = b"From: a@x.test\r\nSubject: =?ISO-8859-1?Q?a=F1o?=\r\n\r\nx\r\n";
        assert_eq!(parse(raw, 0).subject, "año");
    }
}
