//! What folio extracts from conversation mail, over the `.eml` corpus in
//! `tests/fixtures/conversation/`: the new content (quoted history removed), technician commands,
//! requester queries, phone notes, forwards and the folio reference. Every `<name>.eml` runs
//! through `analysis::analyze` with LF and with CRLF line endings, and every key of the
//! `<name>.expected.json` beside it must match (see the README in that folder). On a mismatch
//! `<name>.actual.json` is written next to the fixture. (The fixtures first found six gaps:
//! `¿Estatus?`, attachment-only replies, Thunderbird's forward header order, Outlook's
//! `addr<mailto:addr>` in `#asignar` and phone notes, html2text's `[addr]`, and agents'
//! signatures without `-- `; all are fixed and covered here.)

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use folio::desk::analysis::analyze;
use folio::desk::command::{parse_commands, parse_query, Query};
use folio::desk::policy::Policy;
use folio::desk::requester::Directory;
use serde_json::{json, Value};

/// The keys an expected file may hold.
const KEYS: &[&str] = &[
    "new_content",
    "commands",
    "command_errors",
    "reply_body",
    "query",
    "phone_note",
    "forward_from",
    "forward_subject",
    "folio_reference",
];

fn policy() -> Policy {
    Policy::with_defaults(
        "helpdesk@example.test",
        folio::desk::tokens::Tokens::new(b"fixtures".to_vec()),
    )
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/conversation")
}

fn fixtures() -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(root())
        .expect("tests/fixtures/conversation exists")
        .map(|f| f.unwrap().path())
        .filter(|f| f.extension().is_some_and(|e| e == "eml"))
        .collect();
    out.sort();
    out
}

fn name_of(file: &Path) -> String {
    file.file_stem().unwrap().to_string_lossy().into_owned()
}

/// LF → CRLF without doubling existing CRLFs.
fn to_crlf(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len() + raw.len() / 20);
    let mut prev = 0u8;
    for &b in raw {
        if b == b'\n' && prev != b'\r' {
            out.push(b'\r');
        }
        out.push(b);
        prev = b;
    }
    out
}

fn query_json(q: Option<Query>) -> Value {
    match q {
        Some(Query::Status(folio)) => json!({ "status": folio }),
        Some(Query::MyTickets) => json!("my_tickets"),
        None => Value::Null,
    }
}

/// Everything the expected files can check, for one message.
fn actual(raw: &[u8], file: &Path) -> Value {
    let policy = policy();
    let a = analyze(raw, &Directory::default(), &policy, u64::MAX)
        .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let commands = parse_commands(&a.new_content);
    let query = parse_query(&a.new_content, &a.mail.subject, &policy.folio_format);
    json!({
        "new_content": a.new_content,
        "commands": serde_json::to_value(&commands.commands).unwrap(),
        "command_errors": commands.errors.iter().map(|e| e.message()).collect::<Vec<_>>(),
        "reply_body": commands.body,
        "query": query_json(query),
        "phone_note": serde_json::to_value(&a.phone_note).unwrap(),
        "forward_from": a.forward.as_ref().map(|f| f.requester.email.as_str()),
        "forward_subject": a.forward.as_ref().map(|f| f.subject.as_str()),
        "folio_reference": a.folio_reference,
    })
}

fn expected(file: &Path) -> serde_json::Map<String, Value> {
    let path = file.with_extension("expected.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    match serde_json::from_str(&text) {
        Ok(Value::Object(map)) => map,
        Ok(_) => panic!("{}: not a JSON object", path.display()),
        Err(e) => panic!("{}: {e}", path.display()),
    }
}

/// The mismatches of one fixture under one line ending.
fn problems(actual: &Value, expected: &serde_json::Map<String, Value>) -> Vec<String> {
    let mut out = Vec::new();
    for (key, want) in expected {
        if key == "_comment" {
            continue;
        }
        if !KEYS.contains(&key.as_str()) {
            out.push(format!("unknown key {key:?} in the expected file"));
            continue;
        }
        let got = &actual[key.as_str()];
        if got != want {
            out.push(format!("{key}:\n    want {want}\n    got  {got}"));
        }
    }
    out
}

#[test]
fn conversation_fixtures_match_expectations() {
    let files = fixtures();
    assert!(files.len() >= 16, "found only {} fixtures", files.len());
    let mut failures = Vec::new();
    for file in &files {
        let name = name_of(file);
        let expected = expected(file);
        let raw = std::fs::read(file).unwrap();
        for (ending, bytes) in [("LF", raw.clone()), ("CRLF", to_crlf(&raw))] {
            let actual = actual(&bytes, file);
            let problems = problems(&actual, &expected);
            if !problems.is_empty() {
                let _ = std::fs::write(
                    file.with_extension("actual.json"),
                    serde_json::to_string_pretty(&actual).unwrap(),
                );
                failures.push(format!("{name} ({ending}):\n  {}", problems.join("\n  ")));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} fixture mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
