#![no_main]
//! See `detector::fuzzing::image_layout`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| detector::fuzzing::image_layout(data));
