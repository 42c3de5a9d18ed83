//! MIME header parameters (`filename=`, `name=`) read from the raw header value, because
//! mail-parser decodes each RFC 2231 section on its own.

use std::collections::BTreeMap;

use mail_parser::MessageParser;

use super::charset::decode_text;

/// The value of MIME parameter `name` in a raw `Content-Type`/`Content-Disposition` value:
/// RFC 2231 `name*=charset'lang'%XX`, continuations `name*0*=…; name*1=…` (the bytes of all
/// sections joined before decoding with the charset of section 0), else plain `name=` (RFC 2047
/// encoded-words decoded; undeclared 8-bit bytes decoded as UTF-8 or by detection).
pub(super) fn mime_param(value: &[u8], name: &str, tld: Option<&[u8]>) -> Option<String> {
    let (charset, bytes) = param_bytes(value, name)?;
    let text = decode_text(charset.as_deref(), bytes, tld);
    Some(if text.contains("=?") {
        decode_encoded_words(&text)
    } else {
        text
    })
}

/// The bytes of parameter `name` (RFC 2231 sections joined, percent escapes undone) and the
/// charset it declares.
fn param_bytes(value: &[u8], name: &str) -> Option<(Option<String>, Vec<u8>)> {
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
    Some(if let Some(v) = extended {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc2231_sections_are_joined_before_decoding() {
        // mail-parser decodes each section alone: the charset of section 0 is lost for the
        // others and a character split between sections breaks.
        let cases: [(&[u8], &str, &str); 7] = [
            (
                b"attachment;\r\n filename*0*=iso-8859-1''Informe%20del%20a; filename*1*=%F1o.pdf",
                "filename",
                "Informe del año.pdf",
            ),
            (
                b"attachment; filename*0*=UTF-8''a%C3; filename*1*=%B1o.txt",
                "filename",
                "año.txt",
            ),
            (
                b"attachment; filename*0*=iso-2022-jp''%1B%24B8%2B%1B; filename*1*=%28B.pdf",
                "filename",
                "見.pdf",
            ),
            (
                b"attachment; filename*1=\"comite.pdf\"; filename*0=\"Acta del \"",
                "filename",
                "Acta del comite.pdf",
            ),
            (
                b"attachment; filename*=UTF-8'es'Tel%C3%A9fono.vcf; filename=\"x\"",
                "filename",
                "Teléfono.vcf",
            ),
            (
                b"application/pdf; name=\"=?UTF-8?B?w7Fvw7E=?= =?UTF-8?Q?_2.pdf?=\"",
                "name",
                "ñoñ 2.pdf",
            ),
            (
                b"attachment; filename=\"Se\xf1al.pdf\"",
                "filename",
                "Señal.pdf",
            ),
        ];
        for (value, name, expected) in cases {
            assert_eq!(
                mime_param(value, name, None).as_deref(),
                Some(expected),
                "{}",
                String::from_utf8_lossy(value)
            );
        }
        for junk in [
            &b"x; filename*0*=%"[..],
            b"; filename*=''%G1",
            b";;=;\"",
            b"a; filename*99999999999*=x",
        ] {
            let _ = mime_param(junk, "filename", None);
        }
    }
}
