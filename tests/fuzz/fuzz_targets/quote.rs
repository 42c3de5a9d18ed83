//! `quote` fuzz target: see folio_fuzz::quote (tests/fuzz/src/targets.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| folio_fuzz::quote(data));
