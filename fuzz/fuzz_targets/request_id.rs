//! libFuzzer target: see `ferrapi_fuzz::request_id` for the input format and the
//! properties checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ferrapi_fuzz::request_id(data));
