//! HTML character references.

/// Decodes HTML character references as the HTML tokenizer does in text: named ones from
/// html5ever's table (longest match, the legacy ones also without `;`), decimal and hex ones
/// (NUL, surrogates and out-of-range become U+FFFD; windows-1252 numbers 128–159 map as
/// browsers do). Bounded work per `&`: names are at most 32 characters.
pub fn decode_entities(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.contains('&') {
        return std::borrow::Cow::Borrowed(text);
    }
    let map = &markup5ever::data::NAMED_ENTITIES;
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        let after = &rest[1..];
        if let Some(num) = after.strip_prefix('#') {
            let (hex, digits) = match num.strip_prefix(['x', 'X']) {
                Some(h) => (true, h),
                None => (false, num),
            };
            let len = digits
                .bytes()
                .take_while(|b| {
                    if hex {
                        b.is_ascii_hexdigit()
                    } else {
                        b.is_ascii_digit()
                    }
                })
                .count();
            if len > 0 {
                let value = u32::from_str_radix(&digits[..len.min(8)], if hex { 16 } else { 10 })
                    .unwrap_or(u32::MAX);
                let c = match value {
                    0x80..=0x9f => markup5ever::data::C1_REPLACEMENTS[(value - 0x80) as usize]
                        .unwrap_or('\u{fffd}'),
                    0 => '\u{fffd}',
                    v => char::from_u32(v).unwrap_or('\u{fffd}'),
                };
                out.push(c);
                let consumed = 1 + (num.len() - digits.len()) + len;
                let tail = &after[consumed..];
                rest = tail.strip_prefix(';').unwrap_or(tail);
                continue;
            }
        } else {
            // Longest name in the table: every prefix of a name is in it, so stop at the first
            // prefix that is not.
            let mut best: Option<(usize, (u32, u32))> = None;
            for (k, c) in after.char_indices().take(34) {
                let end = k + c.len_utf8();
                match map.get(&after[..end]) {
                    Some(&v) => {
                        if v.0 != 0 {
                            best = Some((end, v));
                        }
                    }
                    None => break,
                }
            }
            if let Some((end, (a, b))) = best {
                out.extend(char::from_u32(a));
                if b != 0 {
                    out.extend(char::from_u32(b));
                }
                rest = &after[end..];
                continue;
            }
        }
        out.push('&');
        rest = after;
    }
    out.push_str(rest);
    std::borrow::Cow::Owned(out)
}
