#![no_main]
//! See `detector::fuzzing::git_repo`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| detector::fuzzing::git_repo(data));
