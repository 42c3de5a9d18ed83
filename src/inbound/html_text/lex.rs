//! The tag lexer: tags with the attributes that matter, comments and declarations skipped,
//! end tags of raw-text elements found. Bounded work per byte: see the module comment of
//! [`super`].

use super::element::KEPT_ATTRS;

/// The tag lexer's view of one tag.
pub(super) struct Tag<'a> {
    pub(super) end: bool,
    pub(super) name: String,
    pub(super) attrs: Vec<(&'a str, &'a str)>,
}

/// What a `<` in the input starts.
pub(super) enum Lexed<'a> {
    /// No tag: the `<` is text.
    Text,
    /// Something dropped (a comment, doctype, processing instruction, bogus end tag, or a tag
    /// the input ends in), and the position after it.
    Dropped(usize),
    /// A tag, and the position after it.
    Tag(Tag<'a>, usize),
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | b'\x0c')
}

/// Ends a tag or attribute name.
fn ends_name(b: u8) -> bool {
    is_space(b) || b == b'/' || b == b'>'
}

/// The first position from `i` whose byte does not satisfy `keep` (or the end of `b`).
fn skip_while(b: &[u8], mut i: usize, keep: impl Fn(u8) -> bool) -> usize {
    while b.get(i).is_some_and(|&c| keep(c)) {
        i += 1;
    }
    i
}

/// The position after the first `>` from `i`, or the end of input.
fn after_gt(html: &str, i: usize) -> usize {
    html[i..].find('>').map_or(html.len(), |k| i + k + 1)
}

/// Lexes what starts at `html[pos] == '<'`: a tag, something dropped (comments, doctypes and
/// processing instructions are), or nothing when this `<` starts no tag and is text.
pub(super) fn lex_tag(html: &str, pos: usize) -> Lexed<'_> {
    let b = html.as_bytes();
    let mut i = pos + 1;
    let end = b.get(i) == Some(&b'/');
    match b.get(i).copied() {
        Some(b'!') => return Lexed::Dropped(skip_declaration(html, i)),
        Some(b'?') => return Lexed::Dropped(after_gt(html, i)),
        Some(b'/') => {
            i += 1;
            match b.get(i).copied() {
                Some(c) if c.is_ascii_alphabetic() => {}
                Some(b'>') => return Lexed::Dropped(i + 1),
                None => return Lexed::Text,
                _ => return Lexed::Dropped(after_gt(html, i)),
            }
        }
        Some(c) if c.is_ascii_alphabetic() => {}
        _ => return Lexed::Text,
    }
    let name_end = skip_while(b, i, |c| !ends_name(c));
    let name = html[i..name_end].to_ascii_lowercase();
    match lex_attributes(html, name_end) {
        Some((attrs, next)) => Lexed::Tag(Tag { end, name, attrs }, next),
        // EOF in a tag: the tag is dropped
        None => Lexed::Dropped(b.len()),
    }
}

/// The end of a `<!…>` whose `!` is at `i`: a comment, or a doctype up to its `>`.
fn skip_declaration(html: &str, i: usize) -> usize {
    if !html[i + 1..].starts_with("--") {
        return after_gt(html, i);
    }
    // Comment: `<!-->`, `<!--->` are empty ones; else up to `-->` or `--!>`.
    let body = i + 3;
    if html[body..].starts_with('>') {
        return body + 1;
    }
    if html[body..].starts_with("->") {
        return body + 2;
    }
    // Two fast scans rather than a step per `--` (a run of dashes has one at
    // every position).
    [("-->", 3), ("--!>", 4)]
        .iter()
        .filter_map(|(pat, n)| html[body..].find(pat).map(|k| body + k + n))
        .min()
        .unwrap_or(html.len())
}

/// The attributes of a tag from `i` up to its `>` (those html2text reads) and the position
/// after the `>`; `None` when the input ends first.
fn lex_attributes(html: &str, mut i: usize) -> Option<(Vec<(&str, &str)>, usize)> {
    let b = html.as_bytes();
    let mut attrs: Vec<(&str, &str)> = Vec::new();
    loop {
        i = skip_while(b, i, |c| is_space(c) || c == b'/');
        match b.get(i) {
            None => return None,
            Some(b'>') => return Some((attrs, i + 1)),
            _ => {}
        }
        let (attr_name, value, next) = lex_attribute(html, i)?;
        i = next;
        // Only the few names html2text reads are kept, the first of duplicates as in HTML: the
        // list stays tiny however many attributes the tag holds.
        if let Some(known) = KEPT_ATTRS
            .iter()
            .find(|k| k.eq_ignore_ascii_case(attr_name))
        {
            if !attrs.iter().any(|(n, _)| n == known) {
                attrs.push((known, value));
            }
        }
    }
}

/// The attribute at `i` (not a space, `/` or `>`): its name, its value (empty when it has
/// none) and the position after it; `None` when the input ends in its quoted value.
fn lex_attribute(html: &str, i: usize) -> Option<(&str, &str, usize)> {
    let b = html.as_bytes();
    // The first character may be anything, even `=`.
    let name_end = skip_while(b, i + 1, |c| !ends_name(c) && c != b'=');
    let name = &html[i..name_end];
    let mut i = skip_while(b, name_end, is_space);
    if b.get(i) != Some(&b'=') {
        return Some((name, "", i));
    }
    i = skip_while(b, i + 1, is_space);
    match b.get(i).copied() {
        Some(q @ (b'"' | b'\'')) => {
            let v0 = i + 1;
            let k = html[v0..].find(q as char)?;
            Some((name, &html[v0..v0 + k], v0 + k + 1))
        }
        _ => {
            let v_end = skip_while(b, i, |c| !is_space(c) && c != b'>');
            Some((name, &html[i..v_end], v_end))
        }
    }
}

/// Finds the end tag `</name` (any case) from `from`; returns (start of it, position after its
/// `>`), or the end of input.
pub(super) fn find_end_tag(html: &str, from: usize, name: &str) -> (usize, usize) {
    let b = html.as_bytes();
    let mut j = from;
    while let Some(k) = html[j..].find("</") {
        let s = j + k;
        let n = s + 2;
        let after = n + name.len();
        if b.len() >= after
            && b[n..after].eq_ignore_ascii_case(name.as_bytes())
            && b.get(after).is_none_or(|&c| ends_name(c))
        {
            return (s, after_gt(html, after));
        }
        j = s + 2;
    }
    (b.len(), b.len())
}
