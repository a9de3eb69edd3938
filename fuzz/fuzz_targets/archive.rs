#![no_main]
//! See `detector::fuzzing::archive`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| detector::fuzzing::archive(data));
