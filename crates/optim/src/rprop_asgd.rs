//! Rprop (resilient backpropagation) and ASGD (averaged SGD).

use crate::group::ParamGroup;
use crate::rule::{check_non_negative, optimizer_impl, step_each, OptimizerConfig};
use chainrule_tape::error::{Error, Result};
use chainrule_tape::{Element, Tensor};

/// Rprop hyperparameters (PyTorch defaults).
#[derive(Clone, Copy, Debug)]
pub struct RpropConfig {
    /// Initial step size η₀ (1e-2).
    pub lr: f64,
    /// Step-size factor η− on a sign change (0.5).
    pub eta_minus: f64,
    /// Step-size factor η+ while the sign holds (1.2).
    pub eta_plus: f64,
    /// Smallest step size Γmin (1e-6).
    pub step_size_min: f64,
    /// Largest step size Γmax (50).
    pub step_size_max: f64,
    /// Ascend instead of descend.
    pub maximize: bool,
}

impl Default for RpropConfig {
    fn default() -> Self {
        RpropConfig {
            lr: 1e-2,
            eta_minus: 0.5,
            eta_plus: 1.2,
            step_size_min: 1e-6,
            step_size_max: 50.0,
            maximize: false,
        }
    }
}

impl OptimizerConfig for RpropConfig {
    const NAME: &'static str = "Rprop";
    const STATE: crate::group::StateLayout = crate::group::StateLayout {
        buffers: &["prev", "step_size"],
        optional: &[],
        scalars: &[],
    };
    fn validate(&self) -> Result<()> {
        check_non_negative(
            Self::NAME,
            &[("lr", self.lr), ("step_size_min", self.step_size_min)],
        )?;
        if !(0.0 < self.eta_minus && self.eta_minus < 1.0 && 1.0 < self.eta_plus) {
            return Err(Error::argument(
                Self::NAME,
                format!(
                    "need 0 < eta_minus < 1 < eta_plus, got ({}, {})",
                    self.eta_minus, self.eta_plus
                ),
            ));
        }
        Ok(())
    }
    fn hyperparameters(&self) -> Vec<(&'static str, f64)> {
        vec![
            ("lr", self.lr),
            ("eta_minus", self.eta_minus),
            ("eta_plus", self.eta_plus),
            ("step_size_min", self.step_size_min),
            ("step_size_max", self.step_size_max),
            ("maximize", self.maximize as u8 as f64),
        ]
    }
}

optimizer_impl!(
    /// Rprop (Riedmiller & Braun 1993), as `torch.optim.Rprop`: per element,
    /// if g·g_prev > 0 the step grows (η ← min(η·η+, Γmax)); if < 0 it shrinks
    /// (η ← max(η·η−, Γmin)) and this step is skipped (g ← 0, iRprop⁻);
    /// θ ← θ − η·sign(g); g_prev ← g.
    Rprop,
    RpropConfig,
    "Rprop"
);

impl<T: Element> Rprop<T> {
    fn step_impl(&mut self) {
        let init =
            |g: &ParamGroup<T>, name: &str| if name == "step_size" { g.h("lr") } else { 0.0 };
        step_each(
            &self.groups,
            &mut self.states,
            &["prev", "step_size"],
            false,
            init,
            |g, _, b, _, x, grad| {
                let (minus, plus) = (T::from_f64(g.h("eta_minus")), T::from_f64(g.h("eta_plus")));
                let (lo, hi) = (
                    T::from_f64(g.h("step_size_min")),
                    T::from_f64(g.h("step_size_max")),
                );
                let (prev, size) = b.split_at_mut(1);
                for i in 0..x.len() {
                    let s = grad[i] * prev[0][i];
                    let factor = if s > T::zero() {
                        plus
                    } else if s < T::zero() {
                        minus
                    } else {
                        T::one()
                    };
                    size[0][i] = (size[0][i] * factor).max(lo).min(hi);
                    let gi = if factor == minus { T::zero() } else { grad[i] };
                    let sign = if gi > T::zero() {
                        T::one()
                    } else if gi < T::zero() {
                        -T::one()
                    } else {
                        T::zero()
                    };
                    x[i] = x[i] - sign * size[0][i];
                    prev[0][i] = gi;
                }
            },
        );
    }
}

/// ASGD hyperparameters (PyTorch defaults).
#[derive(Clone, Copy, Debug)]
pub struct AsgdConfig {
    /// Learning rate γ (1e-2).
    pub lr: f64,
    /// Decay term λ (1e-4).
    pub lambd: f64,
    /// Power α of the η update (0.75).
    pub alpha: f64,
    /// Step t0 at which averaging starts (1e6).
    pub t0: f64,
    /// L2 penalty (0).
    pub weight_decay: f64,
    /// Ascend instead of descend.
    pub maximize: bool,
}

impl Default for AsgdConfig {
    fn default() -> Self {
        AsgdConfig {
            lr: 1e-2,
            lambd: 1e-4,
            alpha: 0.75,
            t0: 1e6,
            weight_decay: 0.0,
            maximize: false,
        }
    }
}

impl OptimizerConfig for AsgdConfig {
    const NAME: &'static str = "ASGD";
    const STATE: crate::group::StateLayout = crate::group::StateLayout {
        buffers: &["ax"],
        optional: &[],
        scalars: &["eta", "mu"],
    };
    fn validate(&self) -> Result<()> {
        check_non_negative(
            Self::NAME,
            &[
                ("lr", self.lr),
                ("lambd", self.lambd),
                ("weight_decay", self.weight_decay),
            ],
        )
    }
    fn hyperparameters(&self) -> Vec<(&'static str, f64)> {
        vec![
            ("lr", self.lr),
            ("lambd", self.lambd),
            ("alpha", self.alpha),
            ("t0", self.t0),
            ("weight_decay", self.weight_decay),
            ("maximize", self.maximize as u8 as f64),
        ]
    }
}

optimizer_impl!(
    /// Averaged SGD (Polyak & Juditsky 1992), as `torch.optim.ASGD`:
    /// θ ← θ(1 − λη_t) − η_t·g; ā ← ā + μ_t(θ − ā) (ā = θ while μ_t = 1);
    /// η_{t+1} = γ/(1 + λγt)^α; μ_{t+1} = 1/max(1, t − t0). The average ā is
    /// what [`Asgd::averaged`] returns.
    Asgd,
    AsgdConfig,
    "ASGD"
);

impl<T: Element> Asgd<T> {
    /// The averaged value ā of parameter `index` (in group order), once it has stepped.
    pub fn averaged(&self, index: usize) -> Option<Tensor<T>> {
        self.states
            .get(index)
            .and_then(|s| s.buffers.get("ax").cloned())
    }

    fn step_impl(&mut self) {
        step_each(
            &self.groups,
            &mut self.states,
            &["ax"],
            true,
            |_, _| 0.0,
            |g, t, b, scalars, x, grad| {
                let (lr, lambd, alpha, t0) = (g.h("lr"), g.h("lambd"), g.h("alpha"), g.h("t0"));
                let eta = *scalars.entry("eta".into()).or_insert(lr);
                let mu = *scalars.entry("mu".into()).or_insert(1.0);
                let (decay, step, tmu) = (
                    T::from_f64(1.0 - lambd * eta),
                    T::from_f64(-eta),
                    T::from_f64(mu),
                );
                for i in 0..x.len() {
                    x[i] = x[i] * decay;
                    x[i] = x[i] + step * grad[i];
                    b[0][i] = if mu != 1.0 {
                        b[0][i] + (x[i] - b[0][i]) * tmu
                    } else {
                        x[i]
                    };
                }
                let t = t as f64;
                scalars.insert("eta".into(), lr / (1.0 + lambd * lr * t).powf(alpha));
                scalars.insert("mu".into(), 1.0 / (t - t0).max(1.0));
            },
        );
    }
}
