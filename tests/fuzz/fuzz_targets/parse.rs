//! `parse` fuzz target: see folio_fuzz::parse (tests/fuzz/src/targets.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| folio_fuzz::parse(data));
