#![no_main]
//! See `detector::fuzzing::rules`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| detector::fuzzing::rules(data));
