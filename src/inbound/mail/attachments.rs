//! Attachments: which parts are attachments, their names (own, RFC 2231/2047 decoded and made
//! safe, or made up from what they are) and their bytes; and how many parts a message has.

use std::collections::HashSet;

use mail_parser::{Message, MessagePart, MimeHeaders, PartType};

use super::headers::raw_header;
use super::params::mime_param;
use super::Attachment;

/// The message's attachments in MIME order, each with a name (its own or one made up) and its
/// bytes when they are at most `max_bytes`.
pub(super) fn attachments(msg: &Message, max_bytes: u64, tld: Option<&[u8]>) -> Vec<Attachment> {
    let raw = msg.raw_message();
    let parts: Vec<&MessagePart> = attachment_parts(msg)
        .into_iter()
        .filter_map(|i| msg.parts.get(i))
        .collect();
    let named: Vec<Option<String>> = parts.iter().map(|p| part_name(p, raw, tld)).collect();
    // Names made up for unnamed parts must not clash with real ones or each other.
    let mut used: HashSet<String> = named.iter().flatten().map(|n| n.to_lowercase()).collect();
    parts
        .iter()
        .zip(named)
        .map(|(part, name)| {
            let content_type = content_type(part);
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

/// The indexes of the attachment parts: mail-parser's attachments, plus named text parts it
/// keeps as inline body text although they are not the body folio reads (Apple Mail attaches a
/// small .txt inline): their content would otherwise be lost. In MIME order.
fn attachment_parts(msg: &Message) -> Vec<usize> {
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
    ids
}

/// The part's MIME type, lower case (`application/octet-stream` when it declares none).
fn content_type(part: &MessagePart) -> String {
    part.content_type()
        .map(|ct| match &ct.c_subtype {
            Some(sub) => format!("{}/{}", ct.c_type, sub).to_lowercase(),
            None => ct.c_type.to_lowercase(),
        })
        .unwrap_or_else(|| "application/octet-stream".into())
}

/// Every MIME part, those of attached messages included.
pub(super) fn count_parts(msg: &Message) -> usize {
    msg.parts
        .iter()
        .map(|p| match &p.body {
            PartType::Message(m) => 1 + count_parts(m),
            _ => 1,
        })
        .sum()
}

/// The attachment's own name: `Content-Disposition` `filename`, else `Content-Type` `name`,
/// decoded from RFC 2231 (continuations and charsets) or RFC 2047 here, because mail-parser
/// decodes each RFC 2231 section on its own (the charset of section 0 is lost for the others and
/// a character split between sections breaks) and leaves undeclared 8-bit names as U+FFFD.
fn part_name(part: &MessagePart, raw: &[u8], tld: Option<&[u8]>) -> Option<String> {
    let header = |name: &str| raw_header(part, raw, name);
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
/// at most `MAX_NAME_BYTES` with its extension kept.
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

#[cfg(test)]
mod tests {
    use super::super::parse;
    use super::*;

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
