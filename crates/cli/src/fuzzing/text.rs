//! The `explain` fuzz target: arbitrary bytes as an `explain` request (the
//! expression on the first line, `NAME=VALUE`, `--hessian` and `--dot`
//! words after it), through parsing, evaluation, backward, the finite
//! difference check, the Hessian and the DOT text.

/// Runs the target on one input; bad input must come back as an error.
pub fn run(data: &[u8]) {
    if let Ok(text) = crate::explain::explain_bytes(data) {
        assert!(!text.is_empty(), "an explanation with no text");
    }
}
