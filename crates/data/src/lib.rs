#![warn(missing_docs)]
//! # chainrule-data
//!
//! Reading IDX files (MNIST's format) and Fashion-MNIST ([`fashion`]),
//! in-memory [`Dataset`]s, a [`DataLoader`] for the four regimes of
//! gradient descent, fitted [`transform`]s (min-max, standardize, PCA and
//! ZCA whitening) and augmentation (random crop, horizontal flip).

mod dataset;
pub mod fashion;
pub mod idx;
pub mod transform;

pub use dataset::{Batch, DataLoader, Dataset, InMemory, Regime};
pub use idx::{read_idx, read_idx_bytes, DataError, IdxArray, IdxExpect};
