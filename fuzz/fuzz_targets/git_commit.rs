#![no_main]
//! See `detector::fuzzing::git_commit`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| detector::fuzzing::git_commit(data));
