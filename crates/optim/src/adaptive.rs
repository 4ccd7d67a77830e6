//! Adaptive-rate optimizers: Adagrad, RMSprop, Adadelta, Adamax — the
//! formulas of `torch.optim`, in its operation order.

use crate::rule::{check_betas, check_non_negative, optimizer_impl, step_each, OptimizerConfig};
use chainrule_tape::error::Result;
use chainrule_tape::Element;

fn flag(b: bool) -> f64 {
    b as u8 as f64
}

/// Adagrad hyperparameters (PyTorch defaults).
#[derive(Clone, Copy, Debug)]
pub struct AdagradConfig {
    /// Learning rate γ (1e-2).
    pub lr: f64,
    /// η: the rate decays as γ/(1 + (t−1)η) (0).
    pub lr_decay: f64,
    /// L2 penalty λ (0).
    pub weight_decay: f64,
    /// Starting value τ of the squared-gradient sum (0).
    pub initial_accumulator_value: f64,
    /// ε added to √s (1e-10).
    pub eps: f64,
    /// Ascend instead of descend.
    pub maximize: bool,
}

impl Default for AdagradConfig {
    fn default() -> Self {
        AdagradConfig {
            lr: 1e-2,
            lr_decay: 0.0,
            weight_decay: 0.0,
            initial_accumulator_value: 0.0,
            eps: 1e-10,
            maximize: false,
        }
    }
}

optimizer_impl!(
    /// Adagrad (Duchi et al. 2011), as `torch.optim.Adagrad`:
    /// γ̃ = γ/(1 + (t−1)η); s ← s + g²; θ ← θ − γ̃·g/(√s + ε).
    Adagrad,
    AdagradConfig,
    "Adagrad"
);

impl OptimizerConfig for AdagradConfig {
    const NAME: &'static str = "Adagrad";
    const STATE: crate::group::StateLayout = crate::group::StateLayout {
        buffers: &["sum"],
        optional: &[],
        scalars: &[],
    };
    fn validate(&self) -> Result<()> {
        check_non_negative(
            Self::NAME,
            &[
                ("lr", self.lr),
                ("lr_decay", self.lr_decay),
                ("weight_decay", self.weight_decay),
                ("initial_accumulator_value", self.initial_accumulator_value),
                ("eps", self.eps),
            ],
        )
    }
    fn hyperparameters(&self) -> Vec<(&'static str, f64)> {
        vec![
            ("lr", self.lr),
            ("lr_decay", self.lr_decay),
            ("weight_decay", self.weight_decay),
            ("initial_accumulator_value", self.initial_accumulator_value),
            ("eps", self.eps),
            ("maximize", flag(self.maximize)),
        ]
    }
}

impl<T: Element> Adagrad<T> {
    fn step_impl(&mut self) {
        step_each(
            &self.groups,
            &mut self.states,
            &["sum"],
            true,
            |g, _| g.h("initial_accumulator_value"),
            |g, t, b, _, x, grad| {
                let clr = T::from_f64(-(g.h("lr") / (1.0 + (t - 1) as f64 * g.h("lr_decay"))));
                let eps = T::from_f64(g.h("eps"));
                for ((xi, si), &gi) in x.iter_mut().zip(b[0].iter_mut()).zip(grad) {
                    *si = *si + gi * gi;
                    *xi = *xi + clr * (gi / (si.sqrt() + eps));
                }
            },
        );
    }
}

/// RMSprop hyperparameters (PyTorch defaults).
#[derive(Clone, Copy, Debug)]
pub struct RmspropConfig {
    /// Learning rate γ (1e-2).
    pub lr: f64,
    /// Smoothing α of the squared-gradient average (0.99).
    pub alpha: f64,
    /// ε added after the square root (1e-8).
    pub eps: f64,
    /// L2 penalty λ (0).
    pub weight_decay: f64,
    /// Momentum μ (0).
    pub momentum: f64,
    /// Divide by the centred second moment v − ḡ² (false).
    pub centered: bool,
    /// Ascend instead of descend.
    pub maximize: bool,
}

impl Default for RmspropConfig {
    fn default() -> Self {
        RmspropConfig {
            lr: 1e-2,
            alpha: 0.99,
            eps: 1e-8,
            weight_decay: 0.0,
            momentum: 0.0,
            centered: false,
            maximize: false,
        }
    }
}

optimizer_impl!(
    /// RMSprop (Hinton's lecture 6e), as `torch.optim.RMSprop`:
    /// v ← αv + (1−α)g²; centred: ḡ ← αḡ + (1−α)g, ṽ = v − ḡ²; d = √ṽ + ε;
    /// μ > 0: b ← μb + g/d, θ ← θ − γb; else θ ← θ − γ·g/d.
    Rmsprop,
    RmspropConfig,
    "RMSprop"
);

impl OptimizerConfig for RmspropConfig {
    const NAME: &'static str = "RMSprop";
    const STATE: crate::group::StateLayout = crate::group::StateLayout {
        buffers: &["square_avg", "grad_avg", "momentum_buffer"],
        optional: &[],
        scalars: &[],
    };
    fn validate(&self) -> Result<()> {
        check_non_negative(
            Self::NAME,
            &[
                ("lr", self.lr),
                ("alpha", self.alpha),
                ("eps", self.eps),
                ("weight_decay", self.weight_decay),
                ("momentum", self.momentum),
            ],
        )
    }
    fn hyperparameters(&self) -> Vec<(&'static str, f64)> {
        vec![
            ("lr", self.lr),
            ("alpha", self.alpha),
            ("eps", self.eps),
            ("weight_decay", self.weight_decay),
            ("momentum", self.momentum),
            ("centered", flag(self.centered)),
            ("maximize", flag(self.maximize)),
        ]
    }
}

impl<T: Element> Rmsprop<T> {
    fn step_impl(&mut self) {
        let names = ["square_avg", "grad_avg", "momentum_buffer"];
        step_each(
            &self.groups,
            &mut self.states,
            &names,
            true,
            |_, _| 0.0,
            |g, _, b, _, x, grad| {
                let (alpha, one_minus) =
                    (T::from_f64(g.h("alpha")), T::from_f64(1.0 - g.h("alpha")));
                let (eps, lr, mu) = (
                    T::from_f64(g.h("eps")),
                    T::from_f64(-g.h("lr")),
                    g.h("momentum"),
                );
                let centered = g.h("centered") != 0.0;
                let (sq, rest) = b.split_at_mut(1);
                let (ga, buf) = rest.split_at_mut(1);
                for i in 0..x.len() {
                    let gi = grad[i];
                    sq[0][i] = sq[0][i] * alpha + one_minus * gi * gi;
                    let avg = if centered {
                        ga[0][i] = ga[0][i] + one_minus * (gi - ga[0][i]);
                        (sq[0][i] - ga[0][i] * ga[0][i]).sqrt() + eps
                    } else {
                        sq[0][i].sqrt() + eps
                    };
                    if mu > 0.0 {
                        buf[0][i] = buf[0][i] * T::from_f64(mu) + gi / avg;
                        x[i] = x[i] + lr * buf[0][i];
                    } else {
                        x[i] = x[i] + lr * (gi / avg);
                    }
                }
            },
        );
    }
}

/// Adadelta hyperparameters (PyTorch defaults).
#[derive(Clone, Copy, Debug)]
pub struct AdadeltaConfig {
    /// Scale γ of the computed step (1.0).
    pub lr: f64,
    /// Smoothing ρ of both running averages (0.9).
    pub rho: f64,
    /// ε inside both square roots (1e-6).
    pub eps: f64,
    /// L2 penalty λ (0).
    pub weight_decay: f64,
    /// Ascend instead of descend.
    pub maximize: bool,
}

impl Default for AdadeltaConfig {
    fn default() -> Self {
        AdadeltaConfig {
            lr: 1.0,
            rho: 0.9,
            eps: 1e-6,
            weight_decay: 0.0,
            maximize: false,
        }
    }
}

optimizer_impl!(
    /// Adadelta (Zeiler 2012), as `torch.optim.Adadelta`:
    /// v ← ρv + (1−ρ)g²; Δ = √(u + ε)/√(v + ε)·g; u ← ρu + (1−ρ)Δ²; θ ← θ − γΔ.
    Adadelta,
    AdadeltaConfig,
    "Adadelta"
);

impl OptimizerConfig for AdadeltaConfig {
    const NAME: &'static str = "Adadelta";
    const STATE: crate::group::StateLayout = crate::group::StateLayout {
        buffers: &["square_avg", "acc_delta"],
        optional: &[],
        scalars: &[],
    };
    fn validate(&self) -> Result<()> {
        check_non_negative(
            Self::NAME,
            &[
                ("lr", self.lr),
                ("rho", self.rho),
                ("eps", self.eps),
                ("weight_decay", self.weight_decay),
            ],
        )
    }
    fn hyperparameters(&self) -> Vec<(&'static str, f64)> {
        vec![
            ("lr", self.lr),
            ("rho", self.rho),
            ("eps", self.eps),
            ("weight_decay", self.weight_decay),
            ("maximize", flag(self.maximize)),
        ]
    }
}

impl<T: Element> Adadelta<T> {
    fn step_impl(&mut self) {
        step_each(
            &self.groups,
            &mut self.states,
            &["square_avg", "acc_delta"],
            true,
            |_, _| 0.0,
            |g, _, b, _, x, grad| {
                let (rho, one_minus) = (T::from_f64(g.h("rho")), T::from_f64(1.0 - g.h("rho")));
                let (eps, lr) = (T::from_f64(g.h("eps")), T::from_f64(-g.h("lr")));
                let (sq, acc) = b.split_at_mut(1);
                for i in 0..x.len() {
                    let gi = grad[i];
                    sq[0][i] = sq[0][i] * rho + one_minus * gi * gi;
                    let std = (sq[0][i] + eps).sqrt();
                    let delta = (acc[0][i] + eps).sqrt() / std * gi;
                    acc[0][i] = acc[0][i] * rho + one_minus * delta * delta;
                    x[i] = x[i] + lr * delta;
                }
            },
        );
    }
}

/// Adamax hyperparameters (PyTorch defaults).
#[derive(Clone, Copy, Debug)]
pub struct AdamaxConfig {
    /// Learning rate γ (2e-3).
    pub lr: f64,
    /// β1 (0.9).
    pub beta1: f64,
    /// β2 (0.999).
    pub beta2: f64,
    /// ε (1e-8).
    pub eps: f64,
    /// L2 penalty λ (0).
    pub weight_decay: f64,
    /// Ascend instead of descend.
    pub maximize: bool,
}

impl Default for AdamaxConfig {
    fn default() -> Self {
        AdamaxConfig {
            lr: 2e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
            maximize: false,
        }
    }
}

optimizer_impl!(
    /// Adamax (Kingma & Ba 2015, §7.1), as `torch.optim.Adamax`:
    /// m ← β1m + (1−β1)g; u ← max(β2u, |g| + ε); θ ← θ − γ/(1−β1ᵗ)·m/u.
    Adamax,
    AdamaxConfig,
    "Adamax"
);

impl OptimizerConfig for AdamaxConfig {
    const NAME: &'static str = "Adamax";
    const STATE: crate::group::StateLayout = crate::group::StateLayout {
        buffers: &["exp_avg", "exp_inf"],
        optional: &[],
        scalars: &[],
    };
    fn validate(&self) -> Result<()> {
        check_non_negative(
            Self::NAME,
            &[
                ("lr", self.lr),
                ("eps", self.eps),
                ("weight_decay", self.weight_decay),
            ],
        )?;
        check_betas(Self::NAME, self.beta1, self.beta2)
    }
    fn hyperparameters(&self) -> Vec<(&'static str, f64)> {
        vec![
            ("lr", self.lr),
            ("beta1", self.beta1),
            ("beta2", self.beta2),
            ("eps", self.eps),
            ("weight_decay", self.weight_decay),
            ("maximize", flag(self.maximize)),
        ]
    }
}

impl<T: Element> Adamax<T> {
    fn step_impl(&mut self) {
        step_each(
            &self.groups,
            &mut self.states,
            &["exp_avg", "exp_inf"],
            true,
            |_, _| 0.0,
            |g, t, b, _, x, grad| {
                let (b1, b2) = (g.h("beta1"), g.h("beta2"));
                let (w1, tb2, eps) = (
                    T::from_f64(1.0 - b1),
                    T::from_f64(b2),
                    T::from_f64(g.h("eps")),
                );
                let clr = T::from_f64(-(g.h("lr") / (1.0 - b1.powi(t as i32))));
                let (m, u) = b.split_at_mut(1);
                for i in 0..x.len() {
                    let gi = grad[i];
                    m[0][i] = m[0][i] + w1 * (gi - m[0][i]);
                    u[0][i] = (u[0][i] * tb2).max(gi.abs() + eps);
                    x[i] = x[i] + clr * (m[0][i] / u[0][i]);
                }
            },
        );
    }
}
