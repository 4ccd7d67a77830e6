//! Training on labelled data: the Fashion-MNIST models, a training loop
//! helper ([`Trainer`]) with progress bar, validation, early stopping,
//! schedules, clipping, checkpoints and exact resume, metrics (CSV,
//! confusion matrix) and plots.

pub mod checkpoint;
pub mod metrics;
pub mod models;
pub mod plotting;
pub mod splits;
mod trainer;

pub use trainer::{
    Augmentation, EpochRecord, History, ScheduleStep, TrainError, Trainer, TrainerConfig,
};
