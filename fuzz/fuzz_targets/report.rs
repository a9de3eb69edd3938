#![no_main]
//! See `detector::fuzzing::report`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| detector::fuzzing::report(data));
