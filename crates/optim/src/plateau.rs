//! ReduceLROnPlateau: lower the learning rate when a metric stops improving.

use crate::{Hyper, Optimizer};
use chainrule_tape::Element;

/// Whether a smaller or a larger metric is better.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum PlateauMode {
    /// Lower is better (a loss).
    Min,
    /// Higher is better (an accuracy).
    Max,
}

/// How `threshold` decides that a value improved on the best so far.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ThresholdMode {
    /// Better than best·(1 ∓ threshold).
    Rel,
    /// Better than best ∓ threshold.
    Abs,
}

/// ReduceLROnPlateau settings (PyTorch defaults).
#[derive(Clone, Copy, Debug)]
pub struct PlateauConfig {
    /// Min or max mode.
    pub mode: PlateauMode,
    /// New rate = rate·factor (0.1).
    pub factor: f64,
    /// Epochs without improvement tolerated before reducing (10).
    pub patience: u64,
    /// Improvement threshold (1e-4).
    pub threshold: f64,
    /// Relative or absolute threshold (rel).
    pub threshold_mode: ThresholdMode,
    /// Epochs to wait after a reduction before counting again (0).
    pub cooldown: u64,
    /// Floor for every group's rate (0).
    pub min_lr: f64,
    /// Reductions smaller than this are skipped (1e-8).
    pub eps: f64,
}

impl Default for PlateauConfig {
    fn default() -> Self {
        PlateauConfig {
            mode: PlateauMode::Min,
            factor: 0.1,
            patience: 10,
            threshold: 1e-4,
            threshold_mode: ThresholdMode::Rel,
            cooldown: 0,
            min_lr: 0.0,
            eps: 1e-8,
        }
    }
}

/// The progress of a [`ReduceLrOnPlateau`], for checkpoints.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PlateauState {
    /// The best metric so far.
    pub best: f64,
    /// Epochs since the last improvement.
    pub num_bad_epochs: u64,
    /// Cooldown epochs left.
    pub cooldown_counter: u64,
    /// Epochs seen.
    pub last_epoch: u64,
}

/// ReduceLROnPlateau, as `torch.optim.lr_scheduler.ReduceLROnPlateau`: after
/// more than `patience` epochs without improvement, every group's rate
/// becomes max(rate·factor, min_lr) (if that changes it by more than eps),
/// then `cooldown` epochs pass before bad epochs count again.
#[derive(Clone, Debug)]
pub struct ReduceLrOnPlateau {
    /// The settings.
    pub config: PlateauConfig,
    best: f64,
    num_bad_epochs: u64,
    cooldown_counter: u64,
    last_epoch: u64,
    last_lrs: Vec<f64>,
}

impl ReduceLrOnPlateau {
    /// A scheduler with no history over `opt`, whose current rates are the
    /// first [`ReduceLrOnPlateau::last_lr`] (as PyTorch's `ReduceLROnPlateau(optimizer, ...)`).
    pub fn new<T: Element>(opt: &dyn Optimizer<T>, config: PlateauConfig) -> Self {
        let best = match config.mode {
            PlateauMode::Min => f64::INFINITY,
            PlateauMode::Max => f64::NEG_INFINITY,
        };
        ReduceLrOnPlateau {
            config,
            best,
            num_bad_epochs: 0,
            cooldown_counter: 0,
            last_epoch: 0,
            last_lrs: rates(opt),
        }
    }

    fn is_better(&self, a: f64) -> bool {
        let (t, best) = (self.config.threshold, self.best);
        match (self.config.mode, self.config.threshold_mode) {
            (PlateauMode::Min, ThresholdMode::Rel) => a < best * (1.0 - t),
            (PlateauMode::Min, ThresholdMode::Abs) => a < best - t,
            (PlateauMode::Max, ThresholdMode::Rel) => a > best * (t + 1.0),
            (PlateauMode::Max, ThresholdMode::Abs) => a > best + t,
        }
    }

    /// Records this epoch's metric and reduces the rates if it has plateaued.
    pub fn step<T: Element>(&mut self, opt: &mut dyn Optimizer<T>, metric: f64) {
        self.last_epoch += 1;
        if self.is_better(metric) {
            self.best = metric;
            self.num_bad_epochs = 0;
        } else {
            self.num_bad_epochs += 1;
        }
        if self.cooldown_counter > 0 {
            self.cooldown_counter -= 1;
            self.num_bad_epochs = 0;
        }
        if self.num_bad_epochs > self.config.patience {
            for (i, old) in rates(opt).into_iter().enumerate() {
                let new = (old * self.config.factor).max(self.config.min_lr);
                if old - new > self.config.eps {
                    let _ = opt.set_hyperparameter(i, "lr", Hyper::F64(new));
                }
            }
            self.cooldown_counter = self.config.cooldown;
            self.num_bad_epochs = 0;
        }
        self.last_lrs = rates(opt);
    }

    /// Each group's rate after the last step (at creation: the rates then),
    /// as [`crate::Scheduler::last_lr`] and PyTorch's `get_last_lr()`.
    pub fn last_lr(&self) -> &[f64] {
        &self.last_lrs
    }

    /// Everything needed to resume: (best, bad epochs, cooldown left, epochs seen).
    pub fn state(&self) -> PlateauState {
        PlateauState {
            best: self.best,
            num_bad_epochs: self.num_bad_epochs,
            cooldown_counter: self.cooldown_counter,
            last_epoch: self.last_epoch,
        }
    }

    /// Resumes from [`ReduceLrOnPlateau::state`] (the rates themselves are
    /// the optimizer's state; [`ReduceLrOnPlateau::last_lr`] reads them
    /// again at the next step).
    pub fn load_state(&mut self, state: PlateauState) {
        self.best = state.best;
        self.num_bad_epochs = state.num_bad_epochs;
        self.cooldown_counter = state.cooldown_counter;
        self.last_epoch = state.last_epoch;
    }

    /// The best metric seen so far.
    pub fn best(&self) -> f64 {
        self.best
    }

    /// Epochs without improvement so far.
    pub fn num_bad_epochs(&self) -> u64 {
        self.num_bad_epochs
    }
}

/// Every group's learning rate (0 for a group without one).
fn rates<T: Element>(opt: &dyn Optimizer<T>) -> Vec<f64> {
    (0..opt.num_groups())
        .map(|g| {
            opt.hyperparameter(g, "lr")
                .ok()
                .and_then(Hyper::as_f64)
                .unwrap_or(0.0)
        })
        .collect()
}
