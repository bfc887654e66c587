#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| egi_fuzz::gguf(data));
