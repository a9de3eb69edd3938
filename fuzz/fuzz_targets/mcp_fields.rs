#![no_main]
//! See `detector::fuzzing::mcp_fields`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| detector::fuzzing::mcp_fields(data));
