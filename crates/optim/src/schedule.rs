//! Learning-rate schedules, as `torch.optim.lr_scheduler`.
//!
//! A [`Schedule`] says what the learning rate is at step t given the
//! group's initial rate; a [`Scheduler`] counts steps and writes the rate
//! into an optimizer's groups. As in PyTorch, creating the scheduler applies
//! the rate for t = 0, and each `step` advances t by one (call it once per
//! epoch, or once per batch for per-batch schedules).
//!
//! ```
//! use chainrule_optim::{Optimizer, Scheduler, Sgd, SgdConfig, StepLr};
//! use chainrule_tape::{Parameter, Tensor};
//! let p = Parameter::new(Tensor::<f64>::zeros([1]));
//! let mut opt = Sgd::new(vec![p], SgdConfig { lr: 0.1, ..Default::default() }).unwrap();
//! let mut sched = Scheduler::new(&mut opt, StepLr { step_size: 2, gamma: 0.5 });
//! let mut lrs = vec![opt.lr()];
//! for _ in 0..4 {
//!     sched.step(&mut opt);
//!     lrs.push(opt.lr());
//! }
//! assert_eq!(lrs, [0.1, 0.1, 0.05, 0.05, 0.025]);
//! ```

use crate::Optimizer;
use chainrule_tape::Element;

/// A learning rate as a function of the step count.
pub trait Schedule {
    /// The learning rate at step `t` for a group whose initial rate is `base`.
    fn lr(&self, base: f64, t: u64) -> f64;
}

/// A boxed schedule (e.g. one chosen at run time) is a schedule.
impl<S: Schedule + ?Sized> Schedule for Box<S> {
    fn lr(&self, base: f64, t: u64) -> f64 {
        (**self).lr(base, t)
    }
}

/// Drives an optimizer's learning rates with a [`Schedule`].
pub struct Scheduler<S: Schedule> {
    /// The schedule.
    pub schedule: S,
    base_lrs: Vec<f64>,
    last_epoch: u64,
    last_lrs: Vec<f64>,
}

impl<S: Schedule> Scheduler<S> {
    /// Records each group's current rate as its initial rate and applies the
    /// schedule's rate for t = 0.
    pub fn new<T: Element>(opt: &mut dyn Optimizer<T>, schedule: S) -> Self {
        let base_lrs: Vec<f64> = opt
            .groups()
            .iter()
            .map(|g| g.get("lr").unwrap_or(f64::NAN))
            .collect();
        let mut s = Scheduler {
            schedule,
            base_lrs,
            last_epoch: 0,
            last_lrs: Vec::new(),
        };
        s.apply(opt);
        s
    }

    fn apply<T: Element>(&mut self, opt: &mut dyn Optimizer<T>) {
        self.last_lrs = self
            .base_lrs
            .iter()
            .map(|&b| self.schedule.lr(b, self.last_epoch))
            .collect();
        for (i, &lr) in self.last_lrs.iter().enumerate() {
            let _ = opt.set(i, "lr", lr);
        }
    }

    /// Advances one step and writes the new rates into `opt`.
    pub fn step<T: Element>(&mut self, opt: &mut dyn Optimizer<T>) {
        self.last_epoch += 1;
        self.apply(opt);
    }

    /// The rates set by the last step, one per group.
    pub fn last_lr(&self) -> &[f64] {
        &self.last_lrs
    }

    /// Steps taken (PyTorch's `last_epoch`).
    pub fn last_epoch(&self) -> u64 {
        self.last_epoch
    }

    /// (steps taken, initial rates): everything needed to resume.
    pub fn state(&self) -> (u64, Vec<f64>) {
        (self.last_epoch, self.base_lrs.clone())
    }

    /// Resumes from [`Scheduler::state`] and re-applies the rate to `opt`.
    pub fn load_state<T: Element>(&mut self, opt: &mut dyn Optimizer<T>, state: (u64, Vec<f64>)) {
        (self.last_epoch, self.base_lrs) = state;
        self.apply(opt);
    }
}

/// StepLR: η = η0·γ^⌊t/step_size⌋.
#[derive(Clone, Copy, Debug)]
pub struct StepLr {
    /// Steps between decays.
    pub step_size: u64,
    /// Decay factor γ.
    pub gamma: f64,
}
impl Schedule for StepLr {
    fn lr(&self, base: f64, t: u64) -> f64 {
        base * self.gamma.powi((t / self.step_size.max(1)) as i32)
    }
}

/// MultiStepLR: η = η0·γ^(number of milestones ≤ t).
#[derive(Clone, Debug)]
pub struct MultiStepLr {
    /// Steps at which the rate decays.
    pub milestones: Vec<u64>,
    /// Decay factor γ.
    pub gamma: f64,
}
impl Schedule for MultiStepLr {
    fn lr(&self, base: f64, t: u64) -> f64 {
        base * self
            .gamma
            .powi(self.milestones.iter().filter(|&&m| m <= t).count() as i32)
    }
}

/// ExponentialLR: η = η0·γᵗ.
#[derive(Clone, Copy, Debug)]
pub struct ExponentialLr {
    /// Decay factor γ per step.
    pub gamma: f64,
}
impl Schedule for ExponentialLr {
    fn lr(&self, base: f64, t: u64) -> f64 {
        base * self.gamma.powi(t as i32)
    }
}

/// LambdaLR: η = η0·f(t) for a user function f.
pub struct LambdaLr<F: Fn(u64) -> f64>(pub F);
impl<F: Fn(u64) -> f64> Schedule for LambdaLr<F> {
    fn lr(&self, base: f64, t: u64) -> f64 {
        base * (self.0)(t)
    }
}

/// Inverse-time decay (the lecture notes' η_k ∝ 1/k): η = η0/(1 + k·t).
#[derive(Clone, Copy, Debug)]
pub struct InverseTimeLr {
    /// Decay rate k.
    pub decay: f64,
}
impl Schedule for InverseTimeLr {
    fn lr(&self, base: f64, t: u64) -> f64 {
        base / (1.0 + self.decay * t as f64)
    }
}

/// LinearLR: η = η0·(s + (e − s)·min(t, N)/N), from factor s to factor e over
/// N steps, then constant. The lecture notes' linear decay from η0 to η_τ
/// over τ steps is `start_factor: 1, end_factor: η_τ/η0, total_iters: τ`.
#[derive(Clone, Copy, Debug)]
pub struct LinearLr {
    /// Factor s at t = 0 (PyTorch: 1/3).
    pub start_factor: f64,
    /// Factor e from t = N on (1).
    pub end_factor: f64,
    /// N (5).
    pub total_iters: u64,
}
impl Default for LinearLr {
    fn default() -> Self {
        LinearLr {
            start_factor: 1.0 / 3.0,
            end_factor: 1.0,
            total_iters: 5,
        }
    }
}
impl Schedule for LinearLr {
    fn lr(&self, base: f64, t: u64) -> f64 {
        let n = self.total_iters.max(1);
        base * (self.start_factor
            + (self.end_factor - self.start_factor) * t.min(n) as f64 / n as f64)
    }
}

/// PolynomialLR: η = η0·(1 − min(t, N)/N)^power.
#[derive(Clone, Copy, Debug)]
pub struct PolynomialLr {
    /// N (PyTorch: 5).
    pub total_iters: u64,
    /// The power (1).
    pub power: f64,
}
impl Schedule for PolynomialLr {
    fn lr(&self, base: f64, t: u64) -> f64 {
        let n = self.total_iters.max(1);
        base * (1.0 - t.min(n) as f64 / n as f64).powf(self.power)
    }
}

/// CosineAnnealingLR: η = η_min + ½(η0 − η_min)(1 + cos(π·t/T_max)); past
/// T_max it keeps following the cosine (not clamped), as in PyTorch.
#[derive(Clone, Copy, Debug)]
pub struct CosineAnnealingLr {
    /// Half-period T_max.
    pub t_max: u64,
    /// Floor η_min (0).
    pub eta_min: f64,
}
impl Schedule for CosineAnnealingLr {
    fn lr(&self, base: f64, t: u64) -> f64 {
        self.eta_min
            + (base - self.eta_min)
                * (1.0 + (std::f64::consts::PI * t as f64 / self.t_max as f64).cos())
                / 2.0
    }
}

/// ConstantLR: η = η0·factor for t < N, then η0.
#[derive(Clone, Copy, Debug)]
pub struct ConstantLr {
    /// The factor (PyTorch: 1/3).
    pub factor: f64,
    /// N (5).
    pub total_iters: u64,
}
impl Schedule for ConstantLr {
    fn lr(&self, base: f64, t: u64) -> f64 {
        if t < self.total_iters {
            base * self.factor
        } else {
            base
        }
    }
}
