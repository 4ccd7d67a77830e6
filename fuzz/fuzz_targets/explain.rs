//! The `explain` command's parser, evaluator, backward trace and Hessian.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| chainrule::fuzzing::text::run(data));
