//! Shapes, broadcasting and the size arithmetic of shape-sensitive ops.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| chainrule_cli::fuzzing::shapes::run(data));
