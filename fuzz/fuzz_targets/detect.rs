#![no_main]
//! See `detector::fuzzing::detect`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| detector::fuzzing::detect(data));
