#![deny(missing_docs)]
//! # chainrule-train
//!
//! Training on labelled data: a training loop
//! helper ([`Trainer`]) with progress bar, validation, early stopping,
//! schedules, clipping, checkpoints and exact resume, metrics (CSV,
//! confusion matrix) and plots.
//!
//! ```
//! use chainrule_data::InMemory;
//! use chainrule_nn::{Linear, Module, Sequential};
//! use chainrule_optim::{Sgd, SgdConfig};
//! use chainrule_train::{Trainer, TrainerConfig};
//! use rand::SeedableRng;
//!
//! // 40 points on a grid, class 1 where x0 + x1 > 0; the last 8 validate.
//! let points: Vec<f32> = (0..40).flat_map(|i| [(i % 8) as f32 - 3.5, (i / 8) as f32 - 2.0]).collect();
//! let labels = points.chunks(2).map(|p| usize::from(p[0] + p[1] > 0.0)).collect();
//! let (train, val) = InMemory { features: points, shape: vec![2], labels }.split_last(8);
//!
//! let mut rng = rand::rngs::StdRng::seed_from_u64(0);
//! let mut model = Sequential::new().push(Linear::new(2, 2, &mut rng));
//! let mut opt = Sgd::new(model.parameters(), SgdConfig { lr: 0.1, ..Default::default() }).unwrap();
//! let config = TrainerConfig {
//!     epochs: 1,
//!     batch_size: 8,
//!     progress: false,
//!     verbose: false,
//!     ..Default::default()
//! };
//! let history = Trainer::new(config).fit(&mut model, &mut opt, None, &train, &val, false).unwrap();
//! assert_eq!(history.records.len(), 1);
//! assert!(history.records[0].val_loss.is_finite());
//! ```

// The workspace's crates under the short names the modules use.
use chainrule_data as data;
use chainrule_nn as nn;
use chainrule_ops as ops;
use chainrule_optim as optim;
use chainrule_tape as tape;

pub mod checkpoint;
pub mod metrics;
pub mod plotting;
pub mod splits;
mod trainer;

pub use trainer::{
    Augmentation, EpochRecord, History, ScheduleStep, TrainError, Trainer, TrainerConfig,
};
