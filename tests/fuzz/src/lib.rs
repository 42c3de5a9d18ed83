//! folio's fuzz targets. The code they run lives in `targets.rs`, which
//! `tests/fuzz_regressions.rs` includes too, so the normal `cargo test` replays the saved inputs
//! through exactly the same calls and checks.

#[path = "targets.rs"]
mod targets;

pub use targets::{authentication, command, parse, phone_note, quote, TARGETS};

/// The function of the target called `name`.
pub fn target(name: &str) -> Option<fn(&[u8])> {
    TARGETS.iter().find(|(n, _)| *n == name).map(|(_, f)| *f)
}
