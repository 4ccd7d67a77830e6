//! IDX files, raw and gzip'd, and image/label pairs through the loader's checks.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| chainrule_cli::fuzzing::idx::run(data));
