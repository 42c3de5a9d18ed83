//! What the command line prints to the admin's terminal. Mail is written by strangers: a
//! subject with `ESC ] 52 ;…` can rewrite the clipboard, `ESC [2J` or a CR can hide a line,
//! a right-to-left override can make `exe.pdf` read as `fdp.exe`. Every string that came
//! from mail (or the database that stores it) goes through [`line()`] or [`block`] before it
//! is printed as text, and JSON output through [`json`].
//!
//! Escapes are visible and unambiguous enough to read: `\r`, `\t`, `\n`, and `\u{1b}` for
//! the rest. A backslash in the mail itself is left as is (a Windows path stays readable), so
//! a literal `\u{1b}` in a mail looks like an escaped ESC: harmless, it is only text.
//!
//! Pure: the functions build strings; `main` prints them.

use std::borrow::Cow;
use std::fmt::Write as _;

use crate::desk::analysis::Analysis;
use crate::store::{TicketDetail, TicketSummary};

/// Characters a terminal may act on rather than show: C0 controls, DEL, C1 controls (U+0085,
/// U+009B CSI, …), the bidirectional marks, embeddings, overrides and isolates (which reorder
/// what is shown), and the Unicode line and paragraph separators.
fn is_unsafe(c: char) -> bool {
    matches!(c,
        '\u{0}'..='\u{1f}'
        | '\u{7f}'..='\u{9f}'
        | '\u{61c}'
        | '\u{200e}' | '\u{200f}'
        | '\u{2028}'..='\u{202e}'
        | '\u{2066}'..='\u{2069}')
}

fn push_escaped(out: &mut String, c: char) {
    match c {
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        _ => {
            let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
        }
    }
}

/// A one-line field (subject, name, address, …): every unsafe character escaped, newlines and
/// tabs too (they would break the layout).
pub fn line(s: &str) -> Cow<'_, str> {
    if !s.chars().any(is_unsafe) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if is_unsafe(c) {
            push_escaped(&mut out, c);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// A multi-line text (a message body): newlines and tabs kept, a CR before a newline dropped
/// (it is only a line ending), every other unsafe character escaped, a lone CR included.
pub fn block(s: &str) -> Cow<'_, str> {
    let keep = |c: char| c == '\n' || c == '\t';
    if !s.chars().any(|c| is_unsafe(c) && !keep(c)) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\r' && chars.peek() == Some(&'\n') {
            continue;
        }
        if is_unsafe(c) && !keep(c) {
            push_escaped(&mut out, c);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Pretty JSON whose strings carry no raw character a terminal could act on: serde_json
/// escapes only C0 controls, so DEL, C1 controls and bidirectional overrides are written as
/// `\uXXXX` (the same JSON value; such characters occur only inside strings).
pub fn json(value: &impl serde::Serialize) -> Result<String, serde_json::Error> {
    let text = serde_json::to_string_pretty(value)?;
    Ok(json_escape(&text))
}

/// See [`json`]: for JSON text already serialized (compact or pretty).
pub fn json_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        // C0 controls are left alone: serde_json escaped those inside strings, and outside
        // them they are the layout of pretty output. The rest are all in the Basic
        // Multilingual Plane, so one \uXXXX each.
        if c >= '\u{7f}' && is_unsafe(c) {
            let _ = write!(out, "\\u{:04x}", u32::from(c));
        } else {
            out.push(c);
        }
    }
    out
}

/// `folio tickets list`: one line per ticket.
pub fn ticket_list(tickets: &[TicketSummary]) -> String {
    let mut out = String::new();
    for t in tickets {
        let _ = writeln!(
            out,
            "{}  {:<8} {:<7} {:<24} {:<24} {}  {}",
            line(&t.folio),
            line(&t.status),
            line(&t.priority),
            line(t.assignee.as_deref().unwrap_or("-")),
            line(&t.requester_email),
            line(&t.created_at),
            line(&t.subject)
        );
    }
    out
}

/// `folio tickets show`: the ticket, its messages, history and outgoing mail.
pub fn ticket_detail(t: &TicketDetail) -> String {
    let mut out = String::new();
    let o = &mut out;
    let s = &t.ticket;
    let or_dash = |v: &Option<String>| line(v.as_deref().unwrap_or("-")).into_owned();
    let _ = writeln!(o, "Folio:        {}", line(&s.folio));
    let _ = writeln!(o, "Estado:       {}", line(&s.status));
    let _ = writeln!(o, "Asunto:       {}", line(&s.subject));
    let _ = writeln!(
        o,
        "Solicitante:  {} <{}>",
        or_dash(&s.requester_name),
        line(&s.requester_email)
    );
    let _ = writeln!(o, "Departamento: {}", or_dash(&s.requester_department));
    let _ = writeln!(o, "Teléfono:     {}", or_dash(&s.requester_phone));
    let _ = writeln!(o, "Creado:       {}", line(&s.created_at));
    let _ = writeln!(
        o,
        "Servicio:     {}  ({}, prioridad {})",
        or_dash(&s.service),
        or_dash(&s.ticket_type),
        line(&s.priority)
    );
    let _ = writeln!(o, "Asignado a:   {}", or_dash(&s.assignee));
    if let Some(by) = &s.opened_by {
        let _ = writeln!(o, "Registró:     {} (canal {})", line(by), line(&s.channel));
    }
    for p in &t.participants {
        if p["role"] == "cc" {
            let _ = writeln!(
                o,
                "Participante: {}",
                line(p["email"].as_str().unwrap_or("-"))
            );
        }
    }
    if let Some(r) = &t.routing {
        let _ = writeln!(o, "Enrutamiento:");
        for l in r.lines() {
            let _ = writeln!(o, "  {}", line(l));
        }
    }
    for m in &t.messages {
        let _ = writeln!(
            o,
            "\n--- {} from {} ({}{}) ---\n{}",
            line(&m.stored_at),
            or_dash(&m.from_email),
            line(&m.decision_reason),
            if m.internal { ", interno" } else { "" },
            block(m.new_content.as_deref().unwrap_or(&m.body_text))
        );
    }
    for e in &t.events {
        let _ = writeln!(
            o,
            "\n*** {} {} {}: {}",
            line(&e.created_at),
            line(&e.kind),
            or_dash(&e.actor),
            block(&e.detail)
        );
    }
    for m in &t.outgoing {
        let _ = writeln!(
            o,
            "\n>>> {} to {}: {} (attempts {}){}",
            line(&m.template),
            line(&m.to),
            line(&m.status),
            m.attempts,
            m.last_error
                .as_deref()
                .map(|e| format!(" last error: {}", line(e)))
                .unwrap_or_default()
        );
    }
    out
}

/// `folio inspect` without `--json`: what folio extracts from a message and its decision
/// (`inspect_json`'s `decision`).
pub fn inspect(a: &Analysis, decision: &serde_json::Value) -> String {
    let m = &a.mail;
    let mut out = String::new();
    let o = &mut out;
    let _ = writeln!(
        o,
        "From:       {} <{}>",
        line(m.from_name.as_deref().unwrap_or("")),
        line(m.from_email.as_deref().unwrap_or("-"))
    );
    let _ = writeln!(o, "Subject:    {}", line(&m.subject));
    let _ = writeln!(
        o,
        "Message-ID: {}",
        line(m.message_id.as_deref().unwrap_or("-"))
    );
    let _ = writeln!(o, "Automatic:  {}", line(&a.verdict.reason));
    let _ = writeln!(
        o,
        "Folio ref:  {}",
        line(a.folio_reference.as_deref().unwrap_or("-"))
    );
    let _ = writeln!(o, "Decision:   {}", json_escape(&decision.to_string()));
    let _ = writeln!(o, "Attachments: {}", m.attachments.len());
    let _ = writeln!(o, "\n{}", block(&m.body_text));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOSTILE: &str =
        "a\u{1b}]52;c;ZXZpbA==\u{7}b\u{1b}[2Jc\rd\u{7f}e\u{85}f\u{9b}31mg\u{202e}h\u{2066}i\u{0}j";

    fn assert_clean(s: &str) {
        for c in s.chars() {
            assert!(
                !is_unsafe(c) || c == '\n' || c == '\t',
                "raw {:?} left in {s:?}",
                c
            );
        }
    }

    #[test]
    fn line_escapes_every_control_and_bidi_character() {
        let out = line(HOSTILE);
        assert_clean(&out);
        assert!(!out.contains('\n') && !out.contains('\t'));
        assert_eq!(
            out,
            "a\\u{1b}]52;c;ZXZpbA==\\u{7}b\\u{1b}[2Jc\\rd\\u{7f}e\\u{85}f\\u{9b}31mg\\u{202e}h\\u{2066}i\\u{0}j"
        );
        assert_eq!(line("x\ny\tz"), "x\\ny\\tz");
    }

    #[test]
    fn ordinary_text_is_untouched() {
        let s = "Señor Núñez: ¿el café? C:\\Users\\x — 日本語 😀";
        assert!(matches!(line(s), Cow::Borrowed(_)));
        assert!(matches!(block(s), Cow::Borrowed(_)));
        assert!(matches!(block("uno\ndos\n\tsangría\n"), Cow::Borrowed(_)));
    }

    #[test]
    fn block_keeps_lines_but_not_carriage_returns() {
        assert_eq!(block("uno\r\ndos\n"), "uno\ndos\n");
        assert_eq!(block("uno\rdos\x1b[1A"), "uno\\rdos\\u{1b}[1A");
        let out = block(HOSTILE);
        assert_clean(&out);
    }

    #[test]
    fn json_keeps_the_value_and_escapes_c1_and_bidi() {
        let v = serde_json::json!({"subject": HOSTILE, "n": 1});
        let text = json(&v).unwrap();
        assert_clean(&text.replace('\n', ""));
        assert!(
            text.contains("\\u009b") && text.contains("\\u202e"),
            "{text}"
        );
        let back: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back, v);
    }
}
