//! Typed errors. Every message starts with the op's name and, for shape
//! problems, both shapes: `matmul: [3, 4] x [5, 2]: inner dimensions 4 and 5 differ`.

use std::borrow::Cow;
use std::fmt;

/// What went wrong, for callers that match on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Operand shapes are incompatible (broadcasting, matmul, reshape...).
    Shape,
    /// An axis is out of range or repeated.
    Axis,
    /// An argument is invalid for the op (bad length, bad value, bad permutation).
    Argument,
    /// `backward` was asked of a non-scalar without an upstream gradient.
    NotScalar,
    /// The graph was already freed by an earlier backward (no `retain_graph`).
    GraphFreed,
    /// Operands live in different graphs.
    ForeignGraph,
    /// An op's backward cannot itself be differentiated (`create_graph`).
    NotDifferentiable,
    /// Anomaly mode found a NaN or an infinity.
    NonFinite,
    /// A size computed from the input (element count, output size, byte
    /// size) does not fit in memory or overflows `usize`.
    Overflow,
}

/// An error raised by an op or by the engine, naming the op.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub struct Error {
    /// The op (or engine entry point) that failed, e.g. `"matmul"`.
    pub op: Cow<'static, str>,
    /// The category, for matching.
    pub kind: ErrorKind,
    /// The human explanation, with shapes where relevant.
    pub message: String,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.op, self.message)
    }
}

impl Error {
    /// Builds an error for `op` of the given kind.
    pub fn new(
        op: impl Into<Cow<'static, str>>,
        kind: ErrorKind,
        message: impl Into<String>,
    ) -> Self {
        Error {
            op: op.into(),
            kind,
            message: message.into(),
        }
    }

    /// A shape error: `op: message`.
    pub fn shape(op: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        Self::new(op, ErrorKind::Shape, message)
    }

    /// An argument error: `op: message`.
    pub fn argument(op: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        Self::new(op, ErrorKind::Argument, message)
    }
}

/// `Result` with chainrule's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Unwraps an op result, panicking with the op's message at the caller's location.
#[track_caller]
pub fn or_panic<T>(r: Result<T>) -> T {
    match r {
        Ok(v) => v,
        Err(e) => panic!("{e}"),
    }
}
