//! Replays every input kept under `tests/fixtures/fuzz/<target>/` (crashes, slow inputs and a
//! minimised corpus found by `scripts/fuzz`, see docs/fuzzing.md) through the same calls and
//! checks as the fuzz targets: `tests/fuzz/src/targets.rs` is compiled into this test. No
//! timing here (tests are never timed); the 100 ms bar is `scripts/fuzz replay`'s.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

#[path = "fuzz/src/targets.rs"]
#[allow(dead_code)]
mod targets;

/// Runs every file of `tests/fixtures/fuzz/<name>/` through the target; returns how many.
fn replay(name: &str) -> usize {
    let (_, target) = targets::TARGETS
        .iter()
        .find(|(n, _)| *n == name)
        .unwrap_or_else(|| panic!("no fuzz target {name}"));
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/fuzz")
        .join(name);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    for f in &files {
        let data = std::fs::read(f).unwrap();
        // Name the input before running it: a panic below is about this file.
        eprintln!("{name}: {}", f.display());
        target(&data);
    }
    files.len()
}

#[test]
fn parse_inputs() {
    assert!(replay("parse") > 0, "no kept inputs for parse");
}

#[test]
fn quote_inputs() {
    assert!(replay("quote") > 0, "no kept inputs for quote");
}

#[test]
fn phone_note_inputs() {
    assert!(replay("phone_note") > 0, "no kept inputs for phone_note");
}

#[test]
fn command_inputs() {
    assert!(replay("command") > 0, "no kept inputs for command");
}

#[test]
fn authentication_inputs() {
    assert!(
        replay("authentication") > 0,
        "no kept inputs for authentication"
    );
}
