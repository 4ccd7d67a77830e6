//! The `explain` command's parser, evaluator, backward trace and Hessian.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| chainrule_cli::fuzzing::text::run(data));
