#![no_main]
//! See `detector::fuzzing::secret_file`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| detector::fuzzing::secret_file(data));
