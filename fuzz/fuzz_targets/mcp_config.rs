#![no_main]
//! See `detector::fuzzing::mcp_config`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| detector::fuzzing::mcp_config(data));
