//! Quoted history in incoming help-desk mail: what the writer typed, and what
//! they forwarded.
//!
//! Users write from Outlook (desktop, web, mobile), Gmail, Thunderbird and
//! Apple Mail, in Spanish (es-MX) and English, so the history under a reply
//! comes in many shapes. Everything here works on the plain-text body; HTML
//! mail has already been through html2text, which turns `<blockquote>` into
//! `> ` lines, Outlook's reply header `<div>` into plain `De:`/`Enviado:` lines
//! (sometimes with `*bold*` markers) and `<hr>` into a line of `─`.
//!
//! The scan is line based and deliberately conservative: cutting real text is
//! worse for an agent than keeping some history, so every marker needs
//! corroboration. A lone `De: ...` line is ordinary Spanish ("De: lunes a
//! viernes"), so only a `De:`/`From:` line followed by date and recipient or
//! subject lines counts as a header block; an "... escribió:" line only goes
//! when quoted lines follow it. Signatures (`-- `) are always kept because
//! agents need the phone numbers in them.

use std::sync::LazyLock;

use regex::Regex;

/// Real header, separator and attribution lines are short; ignoring longer
/// lines keeps the per-line regex work bounded on pathological bodies.
const MAX_MARKER_LEN: usize = 400;
/// Lines after `De:`/`From:` that may hold the rest of its header block
/// (wrapped recipient lists push `Asunto:` down).
const HEADER_WINDOW: usize = 6;
/// Upper bound on the length of a header block when parsing a forward.
const HEADER_SCAN: usize = 12;
/// Gmail wraps its attribution line at 78 columns, so it can span 2-3 lines.
const MAX_ATTRIBUTION_LINES: usize = 3;
/// Apple Mail puts a blank line between "Inicio del mensaje reenviado:" and
/// the headers; more than this and the two are unrelated.
const MAX_BLANKS_BEFORE_HEADER: usize = 2;

/// The part of a reply its writer typed: quoted history removed.
///
/// * Everything from the first reply/forward separator, Outlook header block
///   (`De:`/`Enviado:`/`Para:`/`Asunto:` and English equivalents) or mobile
///   signature followed by history is dropped, quoted or not, because Outlook
///   top-posting does not mark the old message.
/// * Above that, `>` lines and the attribution line introducing them
///   ("El ..., Juan escribió:", "On ..., Juan wrote:") are dropped, but text
///   written between quoted blocks (inline answers) is kept verbatim; the gap a
///   removed block leaves becomes one blank line.
/// * A lone "Enviado desde mi iPhone"-style line is removed; `-- ` signatures
///   are kept.
///
/// When nothing typed is left above a cut, the result depends on what is below
/// it. If that is only `>` quotes and reply machinery (headers, separators,
/// attributions), the writer typed nothing and the result is empty. If it holds
/// unmarked text, typically a forward without a note where the forwarded
/// message *is* the request, the whole body is returned trimmed, so a ticket is
/// never left empty when the mail carried content.
pub fn new_content(body: &str) -> String {
    let lines: Vec<&str> = body.lines().collect();
    let Some(cut) = find_cut(&lines) else {
        return strip_quoted(&lines);
    };
    let head = strip_quoted(&lines[..cut]);
    if !head.is_empty() || only_history(&lines[cut..]) {
        head
    } else {
        lines.join("\n").trim().to_string()
    }
}

/// What the writer of a *reply* typed: like [`new_content`], but without the fallback to the
/// whole body. Below a reply's header block is our own earlier mail, never the writer's words,
/// so a reply that only carries an attachment has no new text (and relaying the quoted
/// history would send the help desk's own mail back out).
pub fn reply_content(body: &str) -> String {
    let lines: Vec<&str> = body.lines().collect();
    match find_cut(&lines) {
        Some(cut) => strip_quoted(&lines[..cut]),
        None => strip_quoted(&lines),
    }
}

/// A message forwarded inline (Outlook "RV:"/"ENC:", Gmail/Thunderbird "Fwd:"), as found in the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forwarded {
    /// Text the forwarder wrote above the forwarded message (trimmed, may be empty).
    pub note: String,
    /// Display name of the original sender, if the header gave one.
    pub from_name: Option<String>,
    /// Lower-cased address of the original sender.
    pub from_email: String,
    /// Subject of the forwarded message, if the header gave one.
    pub subject: Option<String>,
    /// The forwarded message's body (its own quoted history kept as is), trimmed.
    pub body: String,
}

/// The first inline-forwarded message in `body`, if there is one with a usable sender address.
///
/// Looks for the first forward/reply separator or Outlook header block, quoted
/// or not (Apple Mail forwards HTML inside a blockquote). The body text is
/// unquoted by as many levels as the header block had. Only the first block is
/// considered: if its sender has no address (Exchange often writes just
/// "De: Juan Pérez"), the result is `None` rather than a sender taken from
/// deeper history. An Outlook reply's header block looks exactly like an
/// `RV:` forward's, so callers decide from the subject whether a mail is a
/// forward at all.
pub fn forwarded(body: &str) -> Option<Forwarded> {
    let lines: Vec<&str> = body.lines().collect();
    let (start, header) = (0..lines.len()).find_map(|i| marker_at(&lines, i).map(|h| (i, h)))?;
    let header = header?;
    let depth = quote_depth(lines[header]);

    // The block ends at its last field line; lines between fields continue the
    // previous field (wrapped recipient lists), lines after it are body.
    let mut end = header + 1;
    for (j, line) in lines.iter().enumerate().skip(header + 1).take(HEADER_SCAN) {
        if normalize(line).is_empty() {
            break;
        }
        if header_field(line).is_some() {
            end = j + 1;
        }
    }
    let mut fields: Vec<(Key, String)> = Vec::new();
    for line in &lines[header..end] {
        match (header_field(line), fields.last_mut()) {
            (Some(field), _) => fields.push(field),
            (None, Some((_, value))) => {
                value.push(' ');
                value.push_str(&normalize(line));
            }
            (None, None) => {}
        }
    }
    let value_of = |key: Key| {
        fields
            .iter()
            .find(|(k, v)| *k == key && !v.is_empty())
            .map(|(_, v)| v.clone())
    };
    let (from_name, from_email) = parse_sender(&value_of(Key::From)?)?;

    let body_text: Vec<&str> = lines[end..]
        .iter()
        .map(|line| strip_quote_levels(line, depth))
        .skip_while(|line| line.trim().is_empty())
        .collect();
    let note_end = back_over_signature(&lines, start);
    Some(Forwarded {
        note: lines[..note_end].join("\n").trim().to_string(),
        from_name,
        from_email,
        subject: value_of(Key::Subject),
        body: body_text.join("\n").trim().to_string(),
    })
}

/// Compiles a pattern fixed in this file. `tests::patterns_compile` proves each
/// one does, so the `None` arm exists only to keep panics out of the daemon.
fn compile(pattern: &str) -> Option<Regex> {
    Regex::new(pattern).ok()
}

fn is_match(re: &LazyLock<Option<Regex>>, text: &str) -> bool {
    re.as_ref().is_some_and(|re| re.is_match(text))
}

/// Separators that start history on their own, whatever follows.
static SEPARATOR: LazyLock<Option<Regex>> = LazyLock::new(|| {
    compile(
        r"(?i)^(?:-{2,}\s*(?:mensaje\s+original|original\s+message|mensaje\s+reenviado|forwarded\s+message)\s*-{2,}|(?:begin\s+forwarded\s+message|inicio\s+del\s+mensaje\s+reenviado|comienzo\s+del\s+mensaje\s+reenviado)\s*:)$",
    )
});

/// Horizontal rules (Outlook's underscores, html2text's `<hr>`). People draw
/// these in ordinary text too, so they only count before a header block.
static RULE: LazyLock<Option<Regex>> = LazyLock::new(|| compile(r"^(?:_{8,}|[-─━—]{8,})$"));

static HEADER_FIELD: LazyLock<Option<Regex>> = LazyLock::new(|| {
    compile(
        r"(?i)^(de|from|enviado(?:\s+el)?|sent|fecha|date|para|to|cc|cco|bcc|asunto|subject|responder\s+a|reply-to)\s*:\s*(.*)$",
    )
});

/// A complete attribution line (possibly several wrapped lines joined). The
/// comma before the verb is always there (after the date) and keeps prose such
/// as "El director escribió:" out.
static ATTRIBUTION: LazyLock<Option<Regex>> = LazyLock::new(|| {
    compile(r"(?i)^(?:(?:el|on)\s.*,.*\b(?:escribi[oó]|wrote)|am\s.*\bschrieb\b.*)\s*:$")
});

/// The end of any attribution ("Juan Pérez <j@x.mx> escribió:"); only trusted
/// right before a quoted block.
static ATTRIBUTION_TAIL: LazyLock<Option<Regex>> =
    LazyLock::new(|| compile(r"(?i)\b(?:escribi[oó]|wrote|schrieb)\s*:$"));

static MOBILE_SIGNATURE: LazyLock<Option<Regex>> = LazyLock::new(|| {
    compile(
        r"(?i)^(?:enviado\s+desde|sent\s+from|obtener\s+outlook\s+para|get\s+outlook\s+for|descargar\s+outlook\s+para)\b.{0,48}$",
    )
});

static EMAIL: LazyLock<Option<Regex>> =
    LazyLock::new(|| compile(r"[A-Za-z0-9._%+'-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+"));

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Key {
    From,
    Date,
    To,
    Subject,
    Other,
}

fn is_blank(line: &str) -> bool {
    line.trim().is_empty()
}

fn is_quoted(line: &str) -> bool {
    line.trim_start().starts_with('>')
}

/// A line as a header parser wants it: without quote markers, indentation and
/// the `*bold*` asterisks html2text may leave around `De:`.
fn normalize(line: &str) -> String {
    line.trim_start_matches(|c: char| c == '>' || c.is_whitespace())
        .replace('*', "")
        .trim()
        .to_string()
}

fn quote_depth(line: &str) -> usize {
    line.chars()
        .take_while(|c| *c == '>' || c.is_whitespace())
        .filter(|c| *c == '>')
        .count()
}

fn strip_quote_levels(line: &str, depth: usize) -> &str {
    let mut rest = line;
    for _ in 0..depth {
        match rest.trim_start().strip_prefix('>') {
            Some(after) => rest = after.strip_prefix(' ').unwrap_or(after),
            None => break,
        }
    }
    rest
}

fn header_field(line: &str) -> Option<(Key, String)> {
    if line.len() > MAX_MARKER_LEN {
        return None;
    }
    // Fast path for the common line: a field name is at most two short words, so the colon
    // comes early (after any quote markers, indentation and `*bold*` asterisks).
    if line.find(':').is_none_or(|c| c > 40) {
        return None;
    }
    let text = normalize(line);
    let caps = HEADER_FIELD.as_ref()?.captures(&text)?;
    let name = caps.get(1)?.as_str().to_lowercase();
    let key = match name.split_whitespace().next().unwrap_or_default() {
        "de" | "from" => Key::From,
        "enviado" | "sent" | "fecha" | "date" => Key::Date,
        "para" | "to" => Key::To,
        "asunto" | "subject" => Key::Subject,
        _ => Key::Other,
    };
    let value = caps.get(2).map_or("", |m| m.as_str()).trim().to_string();
    Some((key, value))
}

fn header_block_at(lines: &[&str], i: usize) -> bool {
    let Some(line) = lines.get(i) else {
        return false;
    };
    if !matches!(header_field(line), Some((Key::From, _))) {
        return false;
    }
    let (mut dated, mut addressed) = (false, false);
    for line in lines.iter().skip(i + 1).take(HEADER_WINDOW) {
        match header_field(line).map(|(key, _)| key) {
            Some(Key::Date) => dated = true,
            Some(Key::To | Key::Subject) => addressed = true,
            Some(Key::From) => break,
            _ => {}
        }
    }
    dated && addressed
}

/// A run of header lines starting at `i`, in any order, with a sender, a date and a recipient
/// or subject: Thunderbird's forward puts `Asunto:` and `Fecha:` before `De:`.
fn header_run_at(lines: &[&str], i: usize) -> bool {
    let (mut from, mut dated, mut addressed) = (false, false, false);
    for line in lines.iter().skip(i).take(HEADER_SCAN) {
        match header_field(line).map(|(key, _)| key) {
            Some(Key::From) => from = true,
            Some(Key::Date) => dated = true,
            Some(Key::To | Key::Subject) => addressed = true,
            Some(Key::Other) => {}
            None => break,
        }
    }
    from && dated && addressed
}

/// Next line with words in it; a bare `>` counts as blank because Apple Mail
/// quotes the blank line between a forward separator and its headers.
fn next_nonblank(lines: &[&str], from: usize, max_blanks: usize) -> Option<usize> {
    (from..lines.len())
        .take(max_blanks.saturating_add(1))
        .find(|&j| {
            !lines[j]
                .trim_start_matches(|c: char| c == '>' || c.is_whitespace())
                .is_empty()
        })
}

/// If history starts at line `i`, the index of its header block's first line
/// (`None` inside when a bare separator has no recognisable header after it).
fn marker_at(lines: &[&str], i: usize) -> Option<Option<usize>> {
    let line = lines.get(i)?;
    if line.len() > MAX_MARKER_LEN {
        return None;
    }
    if header_block_at(lines, i) {
        return Some(Some(i));
    }
    // Fast path: separators and rules start with a dash, an underscore, a box-drawing line or
    // "Begin"/"Inicio"/"Comienzo".
    let first = line
        .trim_start_matches(|c: char| c == '>' || c == '*' || c.is_whitespace())
        .chars()
        .next();
    if !first.is_some_and(|c| {
        matches!(
            c,
            '-' | '_' | '─' | '━' | '—' | 'b' | 'B' | 'i' | 'I' | 'c' | 'C'
        )
    }) {
        return None;
    }
    let text = normalize(line);
    let separator = is_match(&SEPARATOR, &text);
    if !separator && !is_match(&RULE, &text) {
        return None;
    }
    let header = next_nonblank(lines, i + 1, MAX_BLANKS_BEFORE_HEADER)
        .filter(|&h| header_block_at(lines, h) || header_run_at(lines, h));
    (separator || header.is_some()).then_some(header)
}

fn is_mobile_signature(line: &str) -> bool {
    let text = line.trim();
    // Fast path: these lines are short and start with one of a few letters.
    text.len() <= 120
        && text
            .chars()
            .next()
            .is_some_and(|c| matches!(c.to_ascii_lowercase(), 'e' | 's' | 'o' | 'g' | 'd'))
        && is_match(&MOBILE_SIGNATURE, text)
}

/// Trimmed lines joined with spaces, as if a wrapped line were unwrapped.
fn unwrap_lines(part: &[&str]) -> String {
    part.iter().map(|l| l.trim()).collect::<Vec<_>>().join(" ")
}

fn is_attribution(part: &[&str]) -> bool {
    let text = unwrap_lines(part);
    text.len() <= MAX_MARKER_LEN && is_match(&ATTRIBUTION, &text)
}

/// How many lines a complete attribution starting at `j` spans, if one does.
fn attribution_len_at(lines: &[&str], j: usize) -> Option<usize> {
    (1..=MAX_ATTRIBUTION_LINES)
        .take_while(|&n| {
            lines
                .get(j + n - 1)
                .is_some_and(|l| !is_blank(l) && !is_quoted(l))
        })
        .find(|&n| is_attribution(&lines[j..j + n]))
}

/// First line of the attribution ending at line `end`, if that line ends one.
fn attribution_ending_at(lines: &[&str], end: usize) -> Option<usize> {
    for n in 1..=MAX_ATTRIBUTION_LINES {
        let Some(start) = (end + 1).checked_sub(n) else {
            break;
        };
        let part = &lines[start..=end];
        if part.iter().any(|l| is_blank(l) || is_quoted(l)) {
            break;
        }
        // A wrapped attribution has no sentence end inside it; this keeps the
        // writer's last sentence from being taken for its first half.
        if part[..n - 1]
            .iter()
            .any(|l| l.trim_end().ends_with(['.', '!', '?']))
        {
            break;
        }
        if is_attribution(part) {
            return Some(start);
        }
    }
    let last = lines[end].trim();
    (last.len() <= MAX_MARKER_LEN && !is_quoted(last) && is_match(&ATTRIBUTION_TAIL, last))
        .then_some(end)
}

fn history_starts_at(lines: &[&str], j: usize) -> bool {
    is_quoted(lines[j]) || marker_at(lines, j).is_some() || attribution_len_at(lines, j).is_some()
}

/// Moves a cut up over a mobile signature ("Obtener Outlook para Android")
/// sitting right above the history, which belongs to the client, not the writer.
fn back_over_signature(lines: &[&str], cut: usize) -> usize {
    let mut k = cut;
    while k > 0 && is_blank(lines[k - 1]) {
        k -= 1;
    }
    if k > 0 && is_mobile_signature(lines[k - 1]) {
        k - 1
    } else {
        cut
    }
}

/// Where unmarked history starts. Quoted lines are skipped: they go anyway, and
/// cutting at a quoted header would also drop inline answers written below it.
fn find_cut(lines: &[&str]) -> Option<usize> {
    for (i, line) in lines.iter().enumerate() {
        if is_quoted(line) {
            continue;
        }
        if marker_at(lines, i).is_some() {
            return Some(back_over_signature(lines, i));
        }
        if is_mobile_signature(line)
            && next_nonblank(lines, i + 1, usize::MAX).is_some_and(|j| history_starts_at(lines, j))
        {
            return Some(i);
        }
    }
    None
}

/// Whether `lines` hold no words of any message, only quotes and the headers,
/// separators and attributions around them.
fn only_history(lines: &[&str]) -> bool {
    let mut j = 0;
    while j < lines.len() {
        if let Some(n) = attribution_len_at(lines, j) {
            j += n;
            continue;
        }
        let line = lines[j];
        let text = normalize(line);
        let machinery = is_blank(line)
            || is_quoted(line)
            || is_mobile_signature(line)
            || header_field(line).is_some()
            || is_match(&SEPARATOR, &text)
            || is_match(&RULE, &text)
            || attribution_ending_at(lines, j) == Some(j);
        if !machinery {
            return false;
        }
        j += 1;
    }
    true
}

/// Drops `>` lines, the attributions introducing them and lone mobile
/// signatures; every other line is kept verbatim.
fn strip_quoted(lines: &[&str]) -> String {
    let mut keep: Vec<bool> = lines
        .iter()
        .map(|l| !is_quoted(l) && !is_mobile_signature(l))
        .collect();
    for i in 0..lines.len() {
        if !is_quoted(lines[i]) || (i > 0 && is_quoted(lines[i - 1])) {
            continue;
        }
        let Some(end) = (0..i).rev().find(|&j| !is_blank(lines[j])) else {
            continue;
        };
        if let Some(start) = attribution_ending_at(lines, end) {
            keep[start..=end].fill(false);
        }
    }

    // Blank runs the writer typed stay as they are; a run that had removed
    // lines in it becomes a single blank line, so two inline answers stay apart.
    let mut out: Vec<&str> = Vec::new();
    let mut blanks: Vec<&str> = Vec::new();
    let mut removed = false;
    for (line, kept) in lines.iter().zip(keep) {
        if !kept {
            removed = true;
        } else if is_blank(line) {
            blanks.push(line);
        } else {
            if removed {
                out.push("");
            } else {
                out.append(&mut blanks);
            }
            blanks.clear();
            removed = false;
            out.push(line);
        }
    }
    out.join("\n").trim().to_string()
}

/// Splits a `De:`/`From:` value into display name and lower-cased address.
fn parse_sender(value: &str) -> Option<(Option<String>, String)> {
    let email = EMAIL.as_ref()?.find(value)?.as_str().to_lowercase();
    let name_end = value.find(['<', '[', '(']).unwrap_or(value.len());
    let name = value[..name_end]
        .trim()
        .trim_matches(|c| c == '"' || c == '\'')
        .trim();
    let name = (!name.is_empty() && !name.contains('@')).then(|| name.to_string());
    Some((name, email))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::path::{Path, PathBuf};

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/quotes");

    /// Fixture inputs: every `NAME.txt` that is not a companion file.
    fn fixture_inputs() -> Vec<PathBuf> {
        let mut inputs: Vec<PathBuf> = fs::read_dir(FIXTURES)
            .expect("fixture directory")
            .map(|entry| entry.expect("fixture entry").path())
            .filter(|path| {
                let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
                name.ends_with(".txt")
                    && !name.ends_with(".expected.txt")
                    && !name.ends_with(".forwarded.txt")
            })
            .collect();
        inputs.sort();
        inputs
    }

    fn read(path: &Path) -> String {
        fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    /// `NAME.forwarded.txt` holds either the single word `none` (no forward
    /// expected) or `key: value` lines (`from_name`, `from_email`, `subject`,
    /// `note`; absent means `None`/empty, `\n` in `note` is a newline), then a
    /// line `---`, then the expected body.
    fn parse_forwarded_fixture(text: &str) -> Option<Forwarded> {
        if text.trim() == "none" {
            return None;
        }
        let (head, body) = text.split_once("\n---\n").expect("a `---` line");
        let mut expected = Forwarded {
            note: String::new(),
            from_name: None,
            from_email: String::new(),
            subject: None,
            body: body.trim().to_string(),
        };
        for line in head.lines() {
            let (key, value) = line.split_once(':').expect("`key: value`");
            let value = value.trim().to_string();
            match key {
                "from_name" => expected.from_name = Some(value),
                "from_email" => expected.from_email = value,
                "subject" => expected.subject = Some(value),
                "note" => expected.note = value.replace("\\n", "\n"),
                other => panic!("unknown key {other}"),
            }
        }
        Some(expected)
    }

    #[test]
    fn fixtures() {
        let inputs = fixture_inputs();
        assert!(inputs.len() >= 20, "only {} fixtures", inputs.len());
        let mut failures = Vec::new();
        let mut forwards = 0;
        for input in &inputs {
            let body = read(input);
            let expected = read(&input.with_extension("expected.txt"));
            let actual = new_content(&body);
            if actual != expected.trim_end_matches('\n') {
                failures.push(format!(
                    "{}: new_content\n--- got ---\n{actual}\n--- want ---\n{expected}",
                    input.display()
                ));
            }
            let forwarded_path = input.with_extension("forwarded.txt");
            if forwarded_path.exists() {
                forwards += 1;
                let want = parse_forwarded_fixture(&read(&forwarded_path));
                let got = forwarded(&body);
                if got != want {
                    failures.push(format!(
                        "{}: forwarded\n got: {got:#?}\nwant: {want:#?}",
                        input.display()
                    ));
                }
            }
        }
        assert!(forwards >= 4, "only {forwards} forwarded fixtures");
        assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    }

    #[test]
    fn patterns_compile() {
        for re in [
            &SEPARATOR,
            &RULE,
            &HEADER_FIELD,
            &ATTRIBUTION,
            &ATTRIBUTION_TAIL,
            &MOBILE_SIGNATURE,
            &EMAIL,
        ] {
            assert!(re.is_some());
        }
    }

    #[test]
    fn never_panics() {
        let huge = "x".repeat(1_000_000);
        let huge_quote = format!("> {huge}");
        let huge_multibyte = format!("De: {}", "ñ".repeat(100_000));
        let inputs = [
            "",
            "\n\n\n",
            ">",
            "> >\n>>",
            "\r\n\r\n",
            "\r",
            "De:",
            "De:\nEnviado:\nPara:",
            "________________________________",
            "-----Mensaje original-----",
            "escribió:\n>",
            "El ,escribió:\n\n>",
            "Enviado desde mi iPhone",
            "Enviado desde mi iPhone\n",
            "ñ\u{202f}á\n> ü",
            &huge,
            &huge_quote,
            &huge_multibyte,
        ];
        for input in inputs {
            let _ = new_content(input);
            let _ = forwarded(input);
        }
    }

    #[test]
    fn crlf_leftovers() {
        let body = "Hola, ya quedó.\r\n\r\nEl jue, 26 nov 2026 a las 10:15, Mesa de Ayuda \
                    <mesadeayuda@edomex.gob.mx> escribió:\r\n> ¿Ya puede entrar?\r\n";
        assert_eq!(new_content(body), "Hola, ya quedó.");
    }

    #[test]
    fn lone_de_line_is_text() {
        let body = "Horario de atención\nDe: lunes a viernes\nPara: trámites urgentes, ext. 1234";
        assert_eq!(new_content(body), body);
    }

    #[test]
    fn nothing_typed_over_unmarked_history_keeps_body() {
        let body = "\nDe: Juan Pérez <juan.perez@edomex.gob.mx>\nEnviado: jueves, 26 de noviembre de \
                    2026 10:15 a. m.\nPara: Mesa de Ayuda\nAsunto: Sin acceso\n\nNo puedo entrar.\n";
        assert_eq!(new_content(body), body.trim());
    }

    #[test]
    fn nothing_typed_over_quotes_is_empty() {
        let body = "-----Original Message-----\nFrom: Help Desk <helpdesk@edomex.gob.mx>\n\
                    Sent: Thursday, November 26, 2026 10:15 AM\nTo: Juan\nSubject: Ticket\n\n> old text";
        assert_eq!(new_content(body), "");
        assert_eq!(new_content("Enviado desde mi iPhone\n\n> hola"), "");
    }

    #[test]
    fn attribution_without_quote_is_text() {
        let body = "El lunes, como Juan escribió:\nhay que reiniciar el equipo.";
        assert_eq!(new_content(body), body);
    }

    #[test]
    fn sender_forms() {
        let cases = [
            (
                "Juan Pérez <Juan.Perez@edomex.gob.mx>",
                Some("Juan Pérez"),
                "juan.perez@edomex.gob.mx",
            ),
            ("\"Pérez, Juan\" <j@x.mx>", Some("Pérez, Juan"), "j@x.mx"),
            ("juan@x.mx", None, "juan@x.mx"),
            ("<juan@x.mx>", None, "juan@x.mx"),
            (
                "Juan Pérez [mailto:juan@x.mx]",
                Some("Juan Pérez"),
                "juan@x.mx",
            ),
            ("juan@x.mx<mailto:juan@x.mx>", None, "juan@x.mx"),
        ];
        for (value, name, email) in cases {
            let parsed = parse_sender(value);
            assert_eq!(
                parsed,
                Some((name.map(String::from), email.to_string())),
                "{value}"
            );
        }
        assert_eq!(parse_sender("Juan Pérez"), None);
    }
}
