#![deny(missing_docs)]
//! # chainrule-cli
//!
//! The `chainrule` program's library half: `explain` (the expression
//! differentiator behind `chainrule explain`) `fuzzing` (the bodies of the
//! fuzz targets, shared by `fuzz/` and `tests/fuzz_pass.rs`) and `models`
//! (the Fashion-MNIST networks of `train`, `compare` and `bench`). The commands
//! themselves are modules of the binary (`src/main.rs`).
//!
//! ```
//! use chainrule_cli::explain::{explain, Request};
//!
//! // What `chainrule explain "tanh(w*x + b)" x=0.5 w=-1.5 b=0.2` prints.
//! let values = ["x=0.5", "w=-1.5", "b=0.2"].map(String::from);
//! let request = Request { expression: "tanh(w*x + b)", values: &values, hessian: false, dot: false };
//! let walkthrough = explain(&request).unwrap().text;
//! assert!(walkthrough.contains("tanh"));
//!
//! // A variable without a value is an error naming it.
//! let request = Request { expression: "x*y", values: &values[..1], hessian: false, dot: false };
//! assert!(explain(&request).unwrap_err().to_string().contains("missing value for variable y"));
//! ```

// The workspace's crates under the short names the modules use.
use chainrule::{data, nn, optim, prelude, tape};

pub mod explain;
pub mod fuzzing;
pub mod models;
