//! Checkpoint files, and edits to a real checkpoint's metadata that reach resume's checks.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| chainrule_cli::fuzzing::checkpoint::run(data));
