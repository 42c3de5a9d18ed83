//! The fixture corpus is the specification of parsing and classification: every
//! `tests/fixtures/mail/<category>/<name>.eml` is run through the pure pipeline (as `folio
//! inspect --json` does) with LF and with CRLF line endings, and every key of the
//! `<name>.expected.json` beside it must match. On a mismatch `<name>.actual.json` is written.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use folio::daemon::pipeline::inspect_json;
use folio::desk::analysis::analyze;
use folio::desk::policy::Policy;
use folio::desk::requester::Directory;
use serde_json::Value;

fn policy() -> Policy {
    Policy::with_defaults(
        "helpdesk@example.test",
        folio::desk::tokens::Tokens::new(b"fixtures".to_vec()),
    )
}

fn fixtures() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/mail");
    let mut out = Vec::new();
    for dir in std::fs::read_dir(&root).expect("tests/fixtures/mail exists") {
        let dir = dir.unwrap().path();
        if !dir.is_dir() {
            continue;
        }
        for f in std::fs::read_dir(&dir).unwrap() {
            let f = f.unwrap().path();
            if f.extension().is_some_and(|e| e == "eml") {
                out.push(f);
            }
        }
    }
    out.sort();
    out
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

fn check(actual: &Value, expected: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    let Some(expected) = expected.as_object() else {
        return vec!["expected file is not a JSON object".into()];
    };
    let body = actual["body_text"].as_str().unwrap_or_default();
    for (key, want) in expected {
        match key.as_str() {
            "body_contains" => {
                for s in want.as_array().into_iter().flatten() {
                    let s = s.as_str().unwrap_or_default();
                    if !body.contains(s) {
                        problems.push(format!("body_text lacks {s:?}"));
                    }
                }
            }
            "body_not_contains" => {
                for s in want.as_array().into_iter().flatten() {
                    let s = s.as_str().unwrap_or_default();
                    if body.contains(s) {
                        problems.push(format!("body_text contains {s:?}"));
                    }
                }
            }
            "attachments" => {
                // Each expected attachment lists the keys to compare (a forwarded message's size
                // depends on line endings, so its fixture may leave size out).
                let got = actual["attachments"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                let want_list = want.as_array().cloned().unwrap_or_default();
                let same = got.len() == want_list.len()
                    && got.iter().zip(&want_list).all(|(g, w)| {
                        w.as_object()
                            .is_some_and(|w| w.iter().all(|(k, v)| g.get(k) == Some(v)))
                    });
                if !same {
                    problems.push(format!(
                        "attachments: want {want}, got {}",
                        Value::Array(got)
                    ));
                }
            }
            "_comment" | "notes" => {}
            _ => {
                if actual.get(key) != Some(want) {
                    problems.push(format!(
                        "{key}: want {want}, got {}",
                        actual.get(key).unwrap_or(&Value::Null)
                    ));
                }
            }
        }
    }
    problems
}

#[test]
fn fixture_corpus_matches_expectations() {
    let files = fixtures();
    assert!(files.len() >= 20, "found only {} fixtures", files.len());
    let directory = Directory::default();
    let mut failures = Vec::new();
    for file in &files {
        let expected_path = file.with_extension("expected.json");
        let expected: Value = serde_json::from_str(
            &std::fs::read_to_string(&expected_path)
                .unwrap_or_else(|e| panic!("{}: {e}", expected_path.display())),
        )
        .unwrap_or_else(|e| panic!("{}: {e}", expected_path.display()));
        let raw = std::fs::read(file).unwrap();
        for (ending, bytes) in [("LF", raw.clone()), ("CRLF", to_crlf(&raw))] {
            let analysis = analyze(&bytes, &directory, &policy(), u64::MAX)
                .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            let actual = inspect_json(&analysis, &policy(), &Default::default());
            let problems = check(&actual, &expected);
            if !problems.is_empty() {
                let _ = std::fs::write(
                    file.with_extension("actual.json"),
                    serde_json::to_string_pretty(&actual).unwrap(),
                );
                failures.push(format!(
                    "{} ({ending}):\n  {}",
                    file.display(),
                    problems.join("\n  ")
                ));
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
