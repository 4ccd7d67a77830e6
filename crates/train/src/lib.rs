#![deny(missing_docs)]
//! # chainrule-train
//!
//! Training on labelled data: a training loop
//! helper ([`Trainer`]) with progress bar, validation, early stopping,
//! schedules, clipping, checkpoints and exact resume, metrics (CSV,
//! confusion matrix) and plots.

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
