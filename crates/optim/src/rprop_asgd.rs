//! Rprop (resilient backpropagation) and ASGD (averaged SGD).

use crate::hyper::{check, hyperparameters};
use crate::rule::{optimizer_impl, step_each};
use crate::StateLayout;
use chainrule_tape::{Element, Tensor};

hyperparameters! {
    /// Rprop hyperparameters (PyTorch defaults).
    pub struct RpropConfig for "Rprop" {
        /// Initial step size η₀ (1e-2).
        lr: f64 = 1e-2 => check::non_negative,
        /// (η−, η+): step-size factors on a sign change and while the sign
        /// holds ((0.5, 1.2)).
        etas: (f64, f64) = (0.5, 1.2) => check::etas,
        /// (Γmin, Γmax): the smallest and largest step size ((1e-6, 50)).
        step_sizes: (f64, f64) = (1e-6, 50.0) => check::non_negative_pair,
        /// Ascend instead of descend.
        maximize: bool = false,
    }
}

optimizer_impl!(
    /// Rprop (Riedmiller & Braun 1993), as `torch.optim.Rprop`: per element,
    /// if g·g_prev > 0 the step grows (η ← min(η·η+, Γmax)); if < 0 it shrinks
    /// (η ← max(η·η−, Γmin)) and this step is skipped (g ← 0, iRprop⁻);
    /// θ ← θ − η·sign(g); g_prev ← g.
    Rprop,
    RpropConfig,
    StateLayout {
        buffers: &["prev", "step_size"],
        optional: &[],
        scalars: &[],
    }
);

impl<T: Element> Rprop<T> {
    fn step_impl(&mut self) {
        let init = |c: &RpropConfig, name: &str| if name == "step_size" { c.lr } else { 0.0 };
        step_each(
            &self.groups,
            &mut self.states,
            &["prev", "step_size"],
            |c| (c.maximize, 0.0),
            init,
            |c, _, b, _, x, grad| {
                let (minus, plus) = (T::from_f64(c.etas.0), T::from_f64(c.etas.1));
                let (lo, hi) = (T::from_f64(c.step_sizes.0), T::from_f64(c.step_sizes.1));
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

hyperparameters! {
    /// ASGD hyperparameters (PyTorch defaults).
    pub struct AsgdConfig for "ASGD" {
        /// Learning rate γ (1e-2).
        lr: f64 = 1e-2 => check::non_negative,
        /// Decay term λ (1e-4).
        lambd: f64 = 1e-4 => check::non_negative,
        /// Power α of the η update (0.75).
        alpha: f64 = 0.75 => check::not_nan,
        /// Step t0 at which averaging starts (1e6).
        t0: f64 = 1e6 => check::not_nan,
        /// L2 penalty (0).
        weight_decay: f64 = 0.0 => check::non_negative,
        /// Ascend instead of descend.
        maximize: bool = false,
    }
}

optimizer_impl!(
    /// Averaged SGD (Polyak & Juditsky 1992), as `torch.optim.ASGD`:
    /// θ ← θ(1 − λη_t) − η_t·g; ā ← ā + μ_t(θ − ā) (ā = θ while μ_t = 1);
    /// η_{t+1} = γ/(1 + λγt)^α; μ_{t+1} = 1/max(1, t − t0). The average ā is
    /// what [`Asgd::averaged`] returns.
    Asgd,
    AsgdConfig,
    StateLayout {
        buffers: &["ax"],
        optional: &[],
        scalars: &["eta", "mu"],
    }
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
            |c| (c.maximize, c.weight_decay),
            |_, _| 0.0,
            |c, t, b, scalars, x, grad| {
                let (lr, lambd, alpha, t0) = (c.lr, c.lambd, c.alpha, c.t0);
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
