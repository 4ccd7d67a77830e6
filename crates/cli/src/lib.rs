#![deny(missing_docs)]
//! # chainrule-cli
//!
//! The `chainrule` program's library half: `explain` (the expression
//! differentiator behind `chainrule explain`) `fuzzing` (the bodies of the
//! fuzz targets, shared by `fuzz/` and `tests/fuzz_pass.rs`) and `models`
//! (the Fashion-MNIST networks of `train`, `compare` and `bench`). The commands
//! themselves are modules of the binary (`src/main.rs`).

// The workspace's crates under the short names the modules use.
use chainrule::{data, nn, optim, prelude, tape};

pub mod explain;
pub mod fuzzing;
pub mod models;
