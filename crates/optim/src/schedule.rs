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

use crate::{Hyper, Optimizer};
use chainrule_tape::error::{Error, Result};
use chainrule_tape::Element;

/// A learning rate as a function of the step count.
pub trait Schedule {
    /// The learning rate at step `t` for a group whose initial rate is `base`.
    fn lr(&self, base: f64, t: u64) -> f64;

    /// The momentum (SGD's `momentum`, or β1 of Adam's `betas`) at step `t`, for
    /// schedules that cycle it; `None` leaves it alone.
    fn momentum(&self, t: u64) -> Option<f64> {
        let _ = t;
        None
    }

    /// The rate for parameter group `group`; the same for every group unless
    /// the schedule has per-group settings (see [`PerGroup`]).
    fn group_lr(&self, group: usize, base: f64, t: u64) -> f64 {
        let _ = group;
        self.lr(base, t)
    }

    /// The momentum for parameter group `group` (see [`Schedule::momentum`]).
    fn group_momentum(&self, group: usize, t: u64) -> Option<f64> {
        let _ = group;
        self.momentum(t)
    }
}

/// A boxed schedule (e.g. one chosen at run time) is a schedule.
impl<S: Schedule + ?Sized> Schedule for Box<S> {
    fn lr(&self, base: f64, t: u64) -> f64 {
        (**self).lr(base, t)
    }
    fn momentum(&self, t: u64) -> Option<f64> {
        (**self).momentum(t)
    }
    fn group_lr(&self, group: usize, base: f64, t: u64) -> f64 {
        (**self).group_lr(group, base, t)
    }
    fn group_momentum(&self, group: usize, t: u64) -> Option<f64> {
        (**self).group_momentum(group, t)
    }
}

/// One schedule per parameter group — PyTorch's per-group lists such as
/// `OneCycleLR(max_lr=[0.5, 0.2])` or `CyclicLR(base_lr=[...], max_lr=[...])`.
/// Group i follows schedule i; groups past the end follow the last one.
///
/// ```
/// use chainrule_optim::{OneCycleLr, PerGroup, Schedule};
/// let s = PerGroup(vec![OneCycleLr::new(0.5, 100), OneCycleLr::new(0.2, 100)]);
/// assert!((s.group_lr(1, 0.0, 30) - 0.2).abs() < 1e-3);
/// ```
pub struct PerGroup<S: Schedule>(pub Vec<S>);

impl<S: Schedule> PerGroup<S> {
    fn pick(&self, group: usize) -> &S {
        &self.0[group.min(self.0.len() - 1)]
    }
}

impl<S: Schedule> Schedule for PerGroup<S> {
    fn lr(&self, base: f64, t: u64) -> f64 {
        self.pick(0).lr(base, t)
    }
    fn momentum(&self, t: u64) -> Option<f64> {
        self.pick(0).momentum(t)
    }
    fn group_lr(&self, group: usize, base: f64, t: u64) -> f64 {
        self.pick(group).group_lr(group, base, t)
    }
    fn group_momentum(&self, group: usize, t: u64) -> Option<f64> {
        self.pick(group).group_momentum(group, t)
    }
}

/// ChainedScheduler: several multiplicative schedules at once, e.g. a
/// warm-up factor times an exponential decay:
/// η_t = η0 · Π_i (η_i(t)/η0), where η_i is schedule i's rate alone.
/// This equals PyTorch's chain for schedules whose rate is η0·f(t) (StepLR,
/// MultiStepLR, ExponentialLR, ConstantLR, LinearLR, PolynomialLR, LambdaLR,
/// MultiplicativeLR, inverse time); the momentum comes from the last
/// schedule that sets one.
pub struct ChainedLr(pub Vec<Box<dyn Schedule>>);

impl Schedule for ChainedLr {
    fn lr(&self, base: f64, t: u64) -> f64 {
        self.group_lr(0, base, t)
    }
    fn momentum(&self, t: u64) -> Option<f64> {
        self.group_momentum(0, t)
    }
    fn group_lr(&self, group: usize, base: f64, t: u64) -> f64 {
        self.0
            .iter()
            .fold(base, |lr, s| lr * (s.group_lr(group, base, t) / base))
    }
    fn group_momentum(&self, group: usize, t: u64) -> Option<f64> {
        self.0.iter().rev().find_map(|s| s.group_momentum(group, t))
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
    ///
    /// # Panics
    ///
    /// If the optimizer refuses the rate (or momentum) for t = 0, as
    /// [`Scheduler::try_new`] reports it.
    #[track_caller]
    pub fn new<T: Element>(opt: &mut dyn Optimizer<T>, schedule: S) -> Self {
        Self::try_new(opt, schedule).unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`Scheduler::new`], with an error if the optimizer refuses the rate
    /// or momentum the schedule gives for t = 0 (a negative or NaN rate, β1
    /// outside [0, 1)).
    pub fn try_new<T: Element>(opt: &mut dyn Optimizer<T>, schedule: S) -> Result<Self> {
        let base_lrs: Vec<f64> = (0..opt.num_groups())
            .map(|g| {
                opt.hyperparameter(g, "lr")
                    .ok()
                    .and_then(Hyper::as_f64)
                    .unwrap_or(f64::NAN)
            })
            .collect();
        let mut s = Scheduler {
            schedule,
            base_lrs,
            last_epoch: 0,
            last_lrs: Vec::new(),
        };
        s.apply(opt)?;
        Ok(s)
    }

    /// Writes the schedule's rates (and momenta) for `last_epoch` into
    /// `opt`. A value the optimizer's checks refuse is an error naming the
    /// group and key; groups before it already hold their new values.
    fn apply<T: Element>(&mut self, opt: &mut dyn Optimizer<T>) -> Result<()> {
        self.last_lrs = self
            .base_lrs
            .iter()
            .enumerate()
            .map(|(i, &b)| self.schedule.group_lr(i, b, self.last_epoch))
            .collect();
        for (i, &lr) in self.last_lrs.iter().enumerate() {
            opt.set_hyperparameter(i, "lr", Hyper::F64(lr))?;
            if let Some(m) = self.schedule.group_momentum(i, self.last_epoch) {
                set_momentum(opt, i, m)?;
            }
        }
        Ok(())
    }

    /// Advances one step and writes the new rates into `opt`.
    ///
    /// # Panics
    ///
    /// If the optimizer refuses a rate or momentum, as
    /// [`Scheduler::try_step`] reports it.
    #[track_caller]
    pub fn step<T: Element>(&mut self, opt: &mut dyn Optimizer<T>) {
        self.try_step(opt).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Advances one step and writes the new rates into `opt`; a rate or
    /// momentum the optimizer's checks refuse (a custom schedule's negative
    /// or NaN rate, a cycled β1 of 1) is an error, never silently dropped.
    pub fn try_step<T: Element>(&mut self, opt: &mut dyn Optimizer<T>) -> Result<()> {
        self.last_epoch += 1;
        self.apply(opt)
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
    /// The state needs one finite initial rate per group of `opt`; otherwise
    /// it is an error and nothing changes.
    pub fn load_state<T: Element>(
        &mut self,
        opt: &mut dyn Optimizer<T>,
        state: (u64, Vec<f64>),
    ) -> Result<()> {
        let (last_epoch, base_lrs) = state;
        let groups = opt.num_groups();
        if base_lrs.len() != groups {
            return Err(Error::argument(
                "Scheduler",
                format!(
                    "state has {} initial learning rates, the optimizer has {groups} groups",
                    base_lrs.len()
                ),
            ));
        }
        if let Some((i, lr)) = base_lrs.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(Error::argument(
                "Scheduler",
                format!("state's initial learning rate of group {i} is {lr}"),
            ));
        }
        (self.last_epoch, self.base_lrs) = (last_epoch, base_lrs);
        self.apply(opt)
    }
}

/// Sets group `group`'s momentum as PyTorch's cycling schedulers do:
/// `momentum` where the optimizer has one (SGD, RMSprop), else β1 of
/// `betas` (Adam-like optimizers); neither: nothing changes. A value the
/// optimizer refuses is its error.
fn set_momentum<T: Element>(opt: &mut dyn Optimizer<T>, group: usize, m: f64) -> Result<()> {
    if opt.hyperparameter(group, "momentum").is_ok() {
        opt.set_hyperparameter(group, "momentum", Hyper::F64(m))
    } else if let Ok(Hyper::Pair(_, beta2)) = opt.hyperparameter(group, "betas") {
        opt.set_hyperparameter(group, "betas", Hyper::Pair(m, beta2))
    } else {
        Ok(())
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
        base * self.gamma.powf((t / self.step_size.max(1)) as f64)
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
            .powf(self.milestones.iter().filter(|&&m| m <= t).count() as f64)
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
        base * self.gamma.powf(t as f64)
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

/// CosineAnnealingWarmRestarts: the cosine of [`CosineAnnealingLr`] over a
/// period T_i that restarts (T_cur ← 0) when it ends, with T_{i+1} = T_i·T_mult.
#[derive(Clone, Copy, Debug)]
pub struct CosineAnnealingWarmRestarts {
    /// First period T_0.
    pub t_0: u64,
    /// Period growth factor T_mult (1).
    pub t_mult: u64,
    /// Floor η_min (0).
    pub eta_min: f64,
}
impl Schedule for CosineAnnealingWarmRestarts {
    fn lr(&self, base: f64, t: u64) -> f64 {
        let (mut t_cur, mut t_i) = (t, self.t_0.max(1));
        if self.t_mult <= 1 {
            // Equal periods: no loop over (possibly very many) restarts.
            t_cur %= t_i;
        }
        while t_cur >= t_i {
            t_cur -= t_i;
            t_i = t_i.saturating_mul(self.t_mult.max(1));
        }
        self.eta_min
            + (base - self.eta_min)
                * (1.0 + (std::f64::consts::PI * t_cur as f64 / t_i as f64).cos())
                / 2.0
    }
}

/// MultiplicativeLR: η_t = η_{t−1}·f(t) for t ≥ 1, i.e. η0·∏_{i=1..t} f(i).
pub struct MultiplicativeLr<F: Fn(u64) -> f64>(pub F);
impl<F: Fn(u64) -> f64> Schedule for MultiplicativeLr<F> {
    fn lr(&self, base: f64, t: u64) -> f64 {
        // Multiplied in the same order as PyTorch's step-by-step updates.
        (1..=t).fold(base, |lr, i| lr * (self.0)(i))
    }
}

/// SequentialLR: schedule i runs from milestone i−1 (its own t restarting at
/// 0) to milestone i — e.g. a linear warm-up, then cosine decay.
pub struct SequentialLr {
    /// The schedules, in order.
    pub schedules: Vec<Box<dyn Schedule>>,
    /// Steps at which the next schedule takes over (one fewer than schedules).
    pub milestones: Vec<u64>,
}
impl SequentialLr {
    fn active(&self, t: u64) -> (usize, u64) {
        let i = self.milestones.iter().filter(|&&m| m <= t).count();
        let start = if i == 0 { 0 } else { self.milestones[i - 1] };
        (i.min(self.schedules.len() - 1), t - start)
    }
}
impl Schedule for SequentialLr {
    fn lr(&self, base: f64, t: u64) -> f64 {
        let (i, local) = self.active(t);
        self.schedules[i].lr(base, local)
    }
    fn momentum(&self, t: u64) -> Option<f64> {
        let (i, local) = self.active(t);
        self.schedules[i].momentum(local)
    }
}

/// How [`OneCycleLr`] and [`CyclicLr`] interpolate.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Anneal {
    /// end + (start − end)/2·(1 + cos(π·pct)).
    Cos,
    /// start + (end − start)·pct.
    Linear,
}

impl Anneal {
    fn at(self, start: f64, end: f64, pct: f64) -> f64 {
        match self {
            Anneal::Cos => end + (start - end) / 2.0 * ((std::f64::consts::PI * pct).cos() + 1.0),
            Anneal::Linear => (end - start) * pct + start,
        }
    }
}

/// OneCycleLR (Smith & Topin 2017): from max_lr/div_factor up to max_lr over
/// pct_start of the steps while momentum goes max → base, then down to
/// max_lr/(div_factor·final_div_factor) while momentum returns to max
/// (three_phase: up, back down to the initial rate, then the final anneal).
/// Step it once per batch. The optimizer's own lr is ignored, as in PyTorch.
#[derive(Clone, Copy, Debug)]
pub struct OneCycleLr {
    /// Peak rate.
    pub max_lr: f64,
    /// Total number of steps.
    pub total_steps: u64,
    /// Fraction of the steps spent rising (0.3).
    pub pct_start: f64,
    /// Cosine or linear annealing (cos).
    pub anneal: Anneal,
    /// Cycle momentum / beta1 inversely to the rate (true).
    pub cycle_momentum: bool,
    /// Momentum at the peak rate (0.85).
    pub base_momentum: f64,
    /// Momentum at the ends (0.95).
    pub max_momentum: f64,
    /// initial rate = max_lr/div_factor (25).
    pub div_factor: f64,
    /// final rate = initial/final_div_factor (1e4).
    pub final_div_factor: f64,
    /// Use the three-phase schedule.
    pub three_phase: bool,
}

impl OneCycleLr {
    /// PyTorch's defaults for a given peak rate and step count.
    pub fn new(max_lr: f64, total_steps: u64) -> Self {
        OneCycleLr {
            max_lr,
            total_steps,
            pct_start: 0.3,
            anneal: Anneal::Cos,
            cycle_momentum: true,
            base_momentum: 0.85,
            max_momentum: 0.95,
            div_factor: 25.0,
            final_div_factor: 1e4,
            three_phase: false,
        }
    }

    /// (lr, momentum) at step t.
    fn at(&self, t: u64) -> (f64, f64) {
        let initial = self.max_lr / self.div_factor;
        let min = initial / self.final_div_factor;
        let n = self.total_steps as f64;
        let (lo_m, hi_m) = (self.base_momentum, self.max_momentum);
        // (end step, start lr, end lr, start momentum, end momentum)
        let phases: Vec<(f64, f64, f64, f64, f64)> = if self.three_phase {
            vec![
                (self.pct_start * n - 1.0, initial, self.max_lr, hi_m, lo_m),
                (
                    2.0 * self.pct_start * n - 2.0,
                    self.max_lr,
                    initial,
                    lo_m,
                    hi_m,
                ),
                (n - 1.0, initial, min, hi_m, hi_m),
            ]
        } else {
            vec![
                (self.pct_start * n - 1.0, initial, self.max_lr, hi_m, lo_m),
                (n - 1.0, self.max_lr, min, lo_m, hi_m),
            ]
        };
        let t = t as f64;
        let mut start = 0.0;
        for (i, &(end, l0, l1, m0, m1)) in phases.iter().enumerate() {
            if t <= end || i == phases.len() - 1 {
                let pct = (t - start) / (end - start);
                return (self.anneal.at(l0, l1, pct), self.anneal.at(m0, m1, pct));
            }
            start = end;
        }
        unreachable!("the last phase always matches")
    }
}

impl Schedule for OneCycleLr {
    fn lr(&self, _base: f64, t: u64) -> f64 {
        self.at(t).0
    }
    fn momentum(&self, t: u64) -> Option<f64> {
        self.cycle_momentum.then(|| self.at(t).1)
    }
}

/// The amplitude policy of [`CyclicLr`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum CyclicMode {
    /// Constant amplitude.
    Triangular,
    /// Amplitude halved every cycle.
    Triangular2,
    /// Amplitude scaled by γ^t (t counts steps).
    ExpRange(f64),
}

/// CyclicLR (Smith 2017): the rate moves linearly between base_lr and max_lr
/// (step_size_up steps up, step_size_down down) with the amplitude policy of
/// `mode`; momentum, if cycled, moves the opposite way between base and max.
#[derive(Clone, Copy, Debug)]
pub struct CyclicLr {
    /// Lower rate.
    pub base_lr: f64,
    /// Upper rate.
    pub max_lr: f64,
    /// Steps rising (2000).
    pub step_size_up: u64,
    /// Steps falling (defaults to step_size_up).
    pub step_size_down: Option<u64>,
    /// Amplitude policy.
    pub mode: CyclicMode,
    /// Cycle momentum / beta1 (true).
    pub cycle_momentum: bool,
    /// Momentum at the peak rate (0.8).
    pub base_momentum: f64,
    /// Momentum at the base rate (0.9).
    pub max_momentum: f64,
}

impl CyclicLr {
    /// PyTorch's defaults for the given rates and half-cycle.
    pub fn new(base_lr: f64, max_lr: f64, step_size_up: u64) -> Self {
        CyclicLr {
            base_lr,
            max_lr,
            step_size_up,
            step_size_down: None,
            mode: CyclicMode::Triangular,
            cycle_momentum: true,
            base_momentum: 0.8,
            max_momentum: 0.9,
        }
    }

    /// (scale factor within the cycle, amplitude scale) at step t.
    fn position(&self, t: u64) -> (f64, f64) {
        let up = self.step_size_up as f64;
        let total = up + self.step_size_down.map_or(up, |d| d as f64);
        let ratio = up / total;
        let t = t as f64;
        let cycle = (1.0 + t / total).floor();
        let x = 1.0 + t / total - cycle;
        let factor = if x <= ratio {
            x / ratio
        } else {
            (x - 1.0) / (ratio - 1.0)
        };
        let scale = match self.mode {
            CyclicMode::Triangular => 1.0,
            CyclicMode::Triangular2 => 1.0 / 2f64.powf(cycle - 1.0),
            CyclicMode::ExpRange(gamma) => gamma.powf(t),
        };
        (factor, scale)
    }
}

impl Schedule for CyclicLr {
    fn lr(&self, _base: f64, t: u64) -> f64 {
        let (factor, scale) = self.position(t);
        self.base_lr + (self.max_lr - self.base_lr) * factor * scale
    }
    fn momentum(&self, t: u64) -> Option<f64> {
        let (factor, scale) = self.position(t);
        self.cycle_momentum.then_some(
            self.max_momentum - (self.max_momentum - self.base_momentum) * factor * scale,
        )
    }
}
