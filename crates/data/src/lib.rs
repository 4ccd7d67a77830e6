#![deny(missing_docs)]
//! # chainrule-data
//!
//! Reading IDX files (MNIST's format) and Fashion-MNIST ([`fashion`]),
//! in-memory [`Dataset`]s, a [`DataLoader`] for the four regimes of
//! gradient descent, fitted [`transform`]s (min-max, standardize, PCA and
//! ZCA whitening) and augmentation (random crop, horizontal flip).
//!
//! ```
//! use chainrule_data::{DataLoader, Dataset, InMemory, Regime};
//! use rand::SeedableRng;
//!
//! // Five examples of two features each, with their class labels.
//! let data = InMemory {
//!     features: vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0],
//!     shape: vec![2],
//!     labels: vec![0, 1, 0, 1, 1],
//! };
//! let loader = DataLoader::new(&data, Regime::MiniBatch(2));
//! let mut rng = rand::rngs::StdRng::seed_from_u64(0);
//! let sizes: Vec<usize> = loader.epoch(&mut rng).map(|b| b.y.len()).collect();
//! assert_eq!(sizes, [2, 2, 1]); // reshuffled every epoch; the last batch is short
//! assert_eq!(loader.epoch(&mut rng).next().unwrap().x.shape(), &[2, 2]);
//! assert_eq!(data.len(), 5);
//! ```

mod dataset;
pub mod fashion;
pub mod idx;
pub mod transform;

pub use dataset::{Batch, DataLoader, Dataset, InMemory, Regime};
pub use idx::{read_idx, read_idx_bytes, DataError, IdxArray, IdxExpect};
