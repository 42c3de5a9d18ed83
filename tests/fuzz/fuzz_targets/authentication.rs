//! `authentication` fuzz target: see folio_fuzz::authentication (tests/fuzz/src/targets.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| folio_fuzz::authentication(data));
