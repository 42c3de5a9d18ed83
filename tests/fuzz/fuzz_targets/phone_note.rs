//! `phone_note` fuzz target: see folio_fuzz::phone_note (tests/fuzz/src/targets.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| folio_fuzz::phone_note(data));
