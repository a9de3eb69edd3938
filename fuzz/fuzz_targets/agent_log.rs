#![no_main]
//! See `detector::fuzzing::agent_log`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| detector::fuzzing::agent_log(data));
