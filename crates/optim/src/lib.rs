#![deny(missing_docs)]
//! # chainrule-optim
//!
//! Optimizers that update [`Parameter`]s from their accumulated gradients,
//! with PyTorch's formulas and defaults (`docs` of `torch.optim`), parameter
//! groups, hyperparameters declared once as typed config fields and also
//! readable and settable by name as a [`Hyper`] (so schedulers can drive
//! `lr`, `momentum` or `betas`), and a state that saves and restores
//! exactly: resuming from a saved state gives bit-identical parameters.
//!
//! So far: [`Sgd`] (momentum, dampening, Nesterov, weight decay, maximize),
//! [`Adam`] (AMSGrad, maximize; AdamW through `decoupled_weight_decay`, with
//! AdamW's defaults in [`AdamConfig::adamw`]),
//! [`Adagrad`], [`Rmsprop`] (centred, momentum), [`Adadelta`], [`Adamax`],
//! [`Nadam`] and [`Radam`] (each with L2 or decoupled weight decay),
//! [`Rprop`], [`Asgd`], [`Lion`], [`Quickprop`], [`Lookahead`] (around any optimizer) and
//! [`LevenbergMarquardt`] (least squares), [`Lbfgs`] (closure-based); [`clip_grad_norm`] and [`clip_grad_value`];
//! learning-rate schedules through [`Scheduler`] (step, multi-step,
//! exponential, lambda, multiplicative, inverse-time, linear, polynomial,
//! cosine, cosine with warm restarts, constant, sequential, one-cycle,
//! cyclic, chained, per-group settings through [`PerGroup`]) and [`ReduceLrOnPlateau`].
//!
//! ```
//! use chainrule_optim::{Adam, AdamConfig, Optimizer};
//! use chainrule_tape::{Graph, Parameter, Tensor};
//!
//! // Minimise (w − 3)² with Adam.
//! let w = Parameter::new(Tensor::scalar(0.0f64));
//! let mut opt = Adam::new(vec![w.clone()], AdamConfig { lr: 0.1, ..Default::default() }).unwrap();
//! for _ in 0..500 {
//!     let g = Graph::new();
//!     let d = &g.param(&w) - 3.0;
//!     (&d * &d).backward();
//!     opt.step().unwrap();
//!     opt.zero_grad();
//! }
//! assert!((w.value().item() - 3.0).abs() < 1e-3);
//! ```

mod adam;
mod adaptive;
mod by_name;
mod clip;
mod group;
mod hyper;
mod lbfgs;
mod line_search;
mod lion_lookahead;
mod lm;
mod nadam_radam;
mod plateau;
mod quickprop;
mod rprop_asgd;
mod rule;
mod schedule;
mod sgd;

pub use adam::{Adam, AdamConfig};
pub use adaptive::{
    Adadelta, AdadeltaConfig, Adagrad, AdagradConfig, Adamax, AdamaxConfig, Rmsprop, RmspropConfig,
};
pub use by_name::{optimizer_by_name, OPTIMIZER_NAMES};
pub use clip::{clip_grad_norm, clip_grad_value, ClipGradNormOptions};
pub use group::{
    flatten_hyperparameters, OptimizerState, ParamGroup, ParamState, StateLayout, MAX_STEPS,
};
pub use hyper::{Hyper, OptimizerConfig};
pub use lbfgs::{Lbfgs, LbfgsConfig, LbfgsState, LineSearchFn};
pub use lion_lookahead::{Lion, LionConfig, Lookahead};
pub use lm::{LevenbergMarquardt, LmConfig, LmStep};
pub use nadam_radam::{Nadam, NadamConfig, Radam, RadamConfig};
pub use plateau::{PlateauConfig, PlateauMode, PlateauState, ReduceLrOnPlateau, ThresholdMode};
pub use quickprop::{Quickprop, QuickpropConfig};
pub use rprop_asgd::{Asgd, AsgdConfig, Rprop, RpropConfig};
pub use schedule::{
    Anneal, ChainedLr, ConstantLr, CosineAnnealingLr, CosineAnnealingWarmRestarts, CyclicLr,
    CyclicMode, ExponentialLr, InverseTimeLr, LambdaLr, LinearLr, MultiStepLr, MultiplicativeLr,
    OneCycleLr, PerGroup, PolynomialLr, Schedule, Scheduler, SequentialLr, StepLr,
};
pub use sgd::{Sgd, SgdConfig};

use chainrule_tape::error::{Error, Result};
use chainrule_tape::{Element, Parameter};

/// An optimizer over parameter groups.
///
/// Each concrete optimizer also gives typed access to its groups'
/// settings (`Adam::groups()[0].config.betas`, `Adam::set_config`); this
/// trait reads and writes them by name, for code that works with any
/// optimizer (schedulers, the command line).
pub trait Optimizer<T: Element> {
    /// The optimizer's name, as PyTorch spells the class (`"Adam"`).
    fn name(&self) -> &str;

    /// The number of parameter groups.
    fn num_groups(&self) -> usize;

    /// Group `group`'s parameters (empty if there is no such group).
    fn params(&self, group: usize) -> &[Parameter<T>];

    /// Every hyperparameter of group `group` as (name, value), in PyTorch's order.
    fn hyperparameters(&self, group: usize) -> Result<Vec<(&'static str, Hyper)>>;

    /// Hyperparameter `key` of group `group` (`"lr"`, `"momentum"`,
    /// `"betas"`...); an error naming the optimizer and the key if it has
    /// no such hyperparameter or group.
    fn hyperparameter(&self, group: usize, key: &str) -> Result<Hyper>;

    /// Sets hyperparameter `key` of group `group`. An error (and no change)
    /// if there is no such key or group, `value` is of another kind
    /// (a number for a bool...), or the settings would be invalid.
    fn set_hyperparameter(&mut self, group: usize, key: &str, value: Hyper) -> Result<()>;

    /// One update of every parameter that has a gradient.
    fn step(&mut self) -> Result<()>;

    /// The per-parameter state (moment estimates, step counts) and the groups'
    /// hyperparameters, for checkpoints.
    fn state(&self) -> OptimizerState<T>;

    /// Restores a state saved by [`Optimizer::state`] from an optimizer of the
    /// same kind over parameters of the same shapes.
    fn load_state(&mut self, state: OptimizerState<T>) -> Result<()>;

    /// Clears every parameter's gradient (PyTorch's `set_to_none=True`).
    fn zero_grad(&self) {
        for g in 0..self.num_groups() {
            for p in self.params(g) {
                p.zero_grad();
            }
        }
    }

    /// The learning rate of the first group (NaN if the optimizer has none).
    fn lr(&self) -> f64 {
        self.hyperparameter(0, "lr")
            .ok()
            .and_then(Hyper::as_f64)
            .unwrap_or(f64::NAN)
    }

    /// Sets the learning rate of every group. A rate the optimizer refuses
    /// (negative, NaN) is an error and changes no group: every group checks
    /// `lr` by the same rule, so the first refuses it.
    fn set_lr(&mut self, lr: f64) -> Result<()> {
        for g in 0..self.num_groups() {
            self.set_hyperparameter(g, "lr", Hyper::F64(lr))?;
        }
        Ok(())
    }
}

/// The error for a group index past the end.
pub(crate) fn no_group(op: &'static str, group: usize) -> Error {
    Error::argument(op, format!("there is no parameter group {group}"))
}

/// Group `group` of `groups`, or an error naming the optimizer.
pub(crate) fn group_config<T: Element, C: OptimizerConfig>(
    groups: &[ParamGroup<T, C>],
    group: usize,
) -> Result<&ParamGroup<T, C>> {
    groups
        .get(group)
        .ok_or_else(|| no_group(C::OPTIMIZER, group))
}

/// True for finite or infinite values ≥ 0; false for negatives and NaN.
pub(crate) fn non_negative(v: f64) -> bool {
    v >= 0.0
}

/// The gradient a step uses: the parameter's gradient, negated for
/// `maximize`, plus `weight_decay·θ` (L2 form) when asked.
pub(crate) fn effective_grad<T: Element>(
    p: &Parameter<T>,
    maximize: bool,
    weight_decay: f64,
) -> Option<Vec<T>> {
    let grad = p.grad()?;
    let value = p.value();
    let wd = T::from_f64(weight_decay);
    Some(
        grad.data()
            .iter()
            .zip(value.data())
            .map(|(&g, &x)| {
                let g = if maximize { -g } else { g };
                if weight_decay != 0.0 {
                    g + wd * x
                } else {
                    g
                }
            })
            .collect(),
    )
}
