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
use crate::desk::report::{Figures, Report, TimeTo};
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

/// A duration for people: `45s`, `42m`, `5h 30m` (hours past a day too: a business day is not
/// 24 hours, so days would mislead), rounded to the minute from an hour on; `-` for none.
fn duration(seconds: Option<i64>) -> String {
    match seconds {
        None => "-".into(),
        Some(s) if s < 60 => format!("{s}s"),
        Some(s) if s < 3600 => format!("{}m", (s + 30) / 60),
        Some(s) => {
            let minutes = (s + 30) / 60;
            format!("{}h {:02}m", minutes / 60, minutes % 60)
        }
    }
}

/// Two decimals, as the survey average is given; `-` for none.
fn average(value: Option<f64>) -> String {
    value.map_or_else(|| "-".into(), |v| format!("{v:.2}"))
}

/// `folio report` as text: the figures in the order of `docs/reports.md`, service names,
/// folios and survey comments escaped (a comment is the requester's text: hostile).
pub fn report(r: &Report) -> String {
    let mut out = String::new();
    let o = &mut out;
    let p = &r.period;
    let _ = writeln!(
        o,
        "Report {} to {} ({}, both days included)\n\nTickets opened: {}",
        p.from,
        p.to,
        line(&p.timezone),
        r.tickets
    );
    let _ = writeln!(o, "\nBy service");
    let (with, without): (Vec<_>, Vec<_>) = r.by_service.iter().partition(|s| s.tickets > 0);
    for s in &with {
        let id = s.id.as_deref().map(|id| format!(" ({})", line(id)));
        let _ = writeln!(
            o,
            "  {:>6}  {}{}",
            s.tickets,
            line(&s.name),
            id.unwrap_or_default()
        );
    }
    if !without.is_empty() {
        let _ = writeln!(o, "  {:>6}  the other {} services", 0, without.len());
    }
    for (title, counts) in [
        ("By status (now)", &r.by_status),
        ("By priority (now)", &r.by_priority),
    ] {
        let _ = writeln!(o, "\n{title}");
        for (key, n) in counts {
            let _ = writeln!(o, "  {n:>6}  {key}");
        }
    }
    time_to(o, "Time to first response", "answered", &r.first_response);
    time_to(o, "Time to resolution", "resolved", &r.resolution);
    let b = &r.sla_breaches;
    let _ = writeln!(
        o,
        "\nSLA breaches\n  {:>6}  first response\n  {:>6}  resolution\n  {:>6}  tickets (of {})",
        b.first_response, b.resolution, b.tickets, r.tickets
    );
    let s = &r.satisfaction;
    let _ = writeln!(
        o,
        "\nSatisfaction (answers given in the period)\n  {:>6}  answers\n  {:>6}  average (1 to 5)",
        s.answers,
        average(s.average)
    );
    for (rating, n) in &s.distribution {
        let _ = writeln!(o, "  {n:>6}  rated {rating}");
    }
    if !s.comments.is_empty() {
        let _ = writeln!(o, "\nComments (newest first)");
    }
    for c in &s.comments {
        let _ = writeln!(
            o,
            "  {}  rated {}  {}",
            line(&c.folio),
            c.rating,
            p.local(c.answered_at).format("%Y-%m-%d %H:%M")
        );
        for text in block(&c.comment).lines() {
            let _ = writeln!(o, "      {text}");
        }
    }
    out
}

fn time_to(o: &mut String, title: &str, reached: &str, t: &TimeTo) {
    let _ = writeln!(
        o,
        "\n{title} ({reached}: {}, still open: {})\n  {:<24}{:>10}{:>10}",
        t.measured, t.still_open, "", "mean", "p90"
    );
    let rows: [(&str, &Figures); 2] = [
        ("wall time", &t.wall),
        ("business time (calendar)", &t.business),
    ];
    for (clock, f) in rows {
        let _ = writeln!(
            o,
            "  {clock:<24}{:>10}{:>10}",
            duration(f.mean_seconds),
            duration(f.p90_seconds)
        );
    }
}

/// A text cell of the report's CSV: escaped like text output (it may be printed on a
/// terminal), and kept from being read as a formula: a spreadsheet runs a cell that starts
/// with `=`, `+`, `-` or `@` (a survey comment "=HYPERLINK(…)"), so such a cell gets a
/// leading `'`, which spreadsheets show as text.
fn cell(text: &str) -> String {
    let text = block(text);
    if text.starts_with(['=', '+', '-', '@', '\t']) {
        format!("'{text}")
    } else {
        text.into_owned()
    }
}

/// `folio report --format csv`: one flat table, `section,key,value,detail`, one figure a
/// row (`docs/reports.md` lists them); `detail` holds a service's name and a comment's text.
/// Empty `value` where JSON has `null`.
pub fn report_csv(r: &Report) -> Result<String, csv::Error> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(["section", "key", "value", "detail"])?;
    let mut row = |section: &str, key: &str, value: String, detail: &str| {
        w.write_record([section, &cell(key), &value, &cell(detail)])
    };
    let p = &r.period;
    row("period", "from", p.from.to_string(), "")?;
    row("period", "to", p.to.to_string(), "")?;
    row("period", "timezone", p.timezone.clone(), "")?;
    row("tickets", "opened", r.tickets.to_string(), "")?;
    for s in &r.by_service {
        row(
            "by_service",
            s.id.as_deref().unwrap_or_default(),
            s.tickets.to_string(),
            &s.name,
        )?;
    }
    for (key, n) in &r.by_status {
        row("by_status", key, n.to_string(), "")?;
    }
    for (key, n) in &r.by_priority {
        row("by_priority", key, n.to_string(), "")?;
    }
    let seconds = |s: Option<i64>| s.map(|s| s.to_string()).unwrap_or_default();
    for (section, t) in [
        ("first_response", &r.first_response),
        ("resolution", &r.resolution),
    ] {
        row(section, "measured", t.measured.to_string(), "")?;
        row(section, "still_open", t.still_open.to_string(), "")?;
        for (clock, f) in [("wall", &t.wall), ("business", &t.business)] {
            row(
                section,
                &format!("{clock}_mean_seconds"),
                seconds(f.mean_seconds),
                "",
            )?;
            row(
                section,
                &format!("{clock}_p90_seconds"),
                seconds(f.p90_seconds),
                "",
            )?;
        }
    }
    let b = &r.sla_breaches;
    row(
        "sla_breaches",
        "first_response",
        b.first_response.to_string(),
        "",
    )?;
    row("sla_breaches", "resolution", b.resolution.to_string(), "")?;
    row("sla_breaches", "tickets", b.tickets.to_string(), "")?;
    let s = &r.satisfaction;
    row("satisfaction", "answers", s.answers.to_string(), "")?;
    let avg = s.average.map(|a| format!("{a:.2}")).unwrap_or_default();
    row("satisfaction", "average", avg, "")?;
    for (rating, n) in &s.distribution {
        row(
            "satisfaction",
            &format!("rated_{rating}"),
            n.to_string(),
            "",
        )?;
    }
    for c in &s.comments {
        row("comment", &c.folio, c.rating.to_string(), &c.comment)?;
    }
    let bytes = w
        .into_inner()
        .map_err(|e| csv::Error::from(e.into_error()))?;
    // Every cell was a `str`: the bytes are UTF-8.
    Ok(String::from_utf8_lossy(&bytes).into_owned())
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
    /// A week with one ticket answered in 90 minutes and two survey answers, one of them
    /// hostile.
    fn sample_report() -> Report {
        use crate::desk::report::{Answer, Period, Rows, Ticket};
        use crate::desk::ticket::Status;
        use chrono::{NaiveDate, TimeZone, Utc};
        let calendar = crate::calendar::Calendar::always();
        let day = |d| NaiveDate::from_ymd_opt(2026, 12, d).unwrap();
        let at = |d, h, m| Utc.with_ymd_and_hms(2026, 12, d, h, m, 0).unwrap();
        let period = Period::days(day(1), day(7), &calendar).unwrap();
        let rows = Rows {
            tickets: vec![Ticket {
                folio: "MDA-2026-000001".into(),
                service: Some("correo\u{1b}[31m".into()),
                status: Status::Open,
                priority: crate::desk::catalog::Priority::Alta,
                created_at: at(1, 9, 0),
                first_response_at: Some(at(1, 10, 30)),
                resolved_at: None,
                closed_at: None,
                response_breached: true,
                resolution_breached: false,
            }],
            answers: vec![
                Answer {
                    folio: "MDA-2026-000001".into(),
                    rating: 2,
                    comment: Some(format!("=HYPERLINK(\"x\")\n{HOSTILE}")),
                    answered_at: at(2, 9, 0),
                },
                Answer {
                    folio: "MDA-2026-000002".into(),
                    rating: 5,
                    comment: Some("Muy bien, gracias".into()),
                    answered_at: at(3, 9, 0),
                },
            ],
        };
        let catalog = crate::desk::catalog::Catalog::default();
        Report::build(&rows, &period, &catalog, &calendar)
    }

    #[test]
    fn the_report_as_text_shows_the_figures_and_escapes_what_came_from_mail() {
        let text = report(&sample_report());
        assert_clean(&text);
        for expected in [
            "Report 2026-12-01 to 2026-12-07 (UTC, both days included)",
            "Tickets opened: 1",
            "     1  correo\\u{1b}[31m (correo\\u{1b}[31m)",
            "Time to first response (answered: 1, still open: 0)",
            "  wall time                   1h 30m    1h 30m",
            "  business time (calendar)    1h 30m    1h 30m",
            "Time to resolution (resolved: 0, still open: 1)",
            "  wall time                        -         -",
            "     1  first response",
            "  3.50  average (1 to 5)",
            "     1  rated 5",
            "  MDA-2026-000002  rated 5  2026-12-03 09:00\n      Muy bien, gracias\n  MDA-2026-000001",
            "      =HYPERLINK(\"x\")\n      a\\u{1b}]52;c;",
        ] {
            assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
        }
    }

    #[test]
    fn the_report_as_csv_is_one_quoted_table_with_no_formula_and_no_raw_control() {
        let text = report_csv(&sample_report()).unwrap();
        assert_clean(&text.replace('\n', ""));
        let mut reader = csv::Reader::from_reader(text.as_bytes());
        assert_eq!(
            reader.headers().unwrap(),
            vec!["section", "key", "value", "detail"]
        );
        let rows: Vec<Vec<String>> = reader
            .records()
            .map(|r| r.unwrap().iter().map(str::to_string).collect())
            .collect();
        let find = |section: &str, key: &str| {
            rows.iter()
                .find(|r| r[0] == section && r[1] == key)
                .map(|r| r[2].clone())
        };
        assert_eq!(find("tickets", "opened").as_deref(), Some("1"));
        assert_eq!(find("by_status", "open").as_deref(), Some("1"));
        assert_eq!(find("by_priority", "alta").as_deref(), Some("1"));
        assert_eq!(
            find("first_response", "wall_mean_seconds").as_deref(),
            Some("5400")
        );
        assert_eq!(
            find("resolution", "wall_p90_seconds").as_deref(),
            Some(""),
            "null is an empty cell"
        );
        assert_eq!(find("satisfaction", "average").as_deref(), Some("3.50"));
        assert_eq!(find("satisfaction", "rated_2").as_deref(), Some("1"));
        let comments: Vec<&Vec<String>> = rows.iter().filter(|r| r[0] == "comment").collect();
        assert_eq!(comments.len(), 2);
        assert_eq!(comments[0][1], "MDA-2026-000002", "newest first");
        // The hostile comment: one quoted cell, its lines kept, a formula made text.
        let hostile = &comments[1][3];
        assert!(
            hostile.starts_with("'=HYPERLINK(\"x\")\na\\u{1b}]52;c;"),
            "{hostile:?}"
        );
        for r in &rows {
            for c in &r[1..] {
                assert!(!c.starts_with(['=', '+', '-', '@']), "{c:?}");
            }
        }
    }
}
