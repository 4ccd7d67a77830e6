//! Adaptive-rate optimizers: Adagrad, RMSprop, Adadelta, Adamax — the
//! formulas of `torch.optim`, in its operation order.

use crate::hyper::{check, hyperparameters};
use crate::rule::{optimizer_impl, step_each};
use crate::StateLayout;
use chainrule_tape::Element;

hyperparameters! {
    /// Adagrad hyperparameters (PyTorch defaults).
    pub struct AdagradConfig for "Adagrad" {
        /// Learning rate γ (1e-2).
        lr: f64 = 1e-2 => check::non_negative,
        /// η: the rate decays as γ/(1 + (t−1)η) (0).
        lr_decay: f64 = 0.0 => check::non_negative,
        /// L2 penalty λ (0).
        weight_decay: f64 = 0.0 => check::non_negative,
        /// Starting value τ of the squared-gradient sum (0).
        initial_accumulator_value: f64 = 0.0 => check::non_negative,
        /// ε added to √s (1e-10).
        eps: f64 = 1e-10 => check::non_negative,
        /// Ascend instead of descend.
        maximize: bool = false,
    }
}

optimizer_impl!(
    /// Adagrad (Duchi et al. 2011), as `torch.optim.Adagrad`:
    /// γ̃ = γ/(1 + (t−1)η); s ← s + g²; θ ← θ − γ̃·g/(√s + ε).
    Adagrad,
    AdagradConfig,
    StateLayout {
        buffers: &["sum"],
        optional: &[],
        scalars: &[],
    }
);

impl<T: Element> Adagrad<T> {
    fn step_impl(&mut self) {
        step_each(
            &self.groups,
            &mut self.states,
            &["sum"],
            |c| (c.maximize, c.weight_decay),
            |c, _| c.initial_accumulator_value,
            |c, t, b, _, x, grad| {
                let clr = T::from_f64(-(c.lr / (1.0 + (t - 1) as f64 * c.lr_decay)));
                let eps = T::from_f64(c.eps);
                for ((xi, si), &gi) in x.iter_mut().zip(b[0].iter_mut()).zip(grad) {
                    *si = *si + gi * gi;
                    *xi = *xi + clr * (gi / (si.sqrt() + eps));
                }
            },
        );
    }
}

hyperparameters! {
    /// RMSprop hyperparameters (PyTorch defaults).
    pub struct RmspropConfig for "RMSprop" {
        /// Learning rate γ (1e-2).
        lr: f64 = 1e-2 => check::non_negative,
        /// Smoothing α of the squared-gradient average (0.99).
        alpha: f64 = 0.99 => check::non_negative,
        /// ε added after the square root (1e-8).
        eps: f64 = 1e-8 => check::non_negative,
        /// L2 penalty λ (0).
        weight_decay: f64 = 0.0 => check::non_negative,
        /// Momentum μ (0).
        momentum: f64 = 0.0 => check::non_negative,
        /// Divide by the centred second moment v − ḡ² (false).
        centered: bool = false,
        /// Ascend instead of descend.
        maximize: bool = false,
    }
}

optimizer_impl!(
    /// RMSprop (Hinton's lecture 6e), as `torch.optim.RMSprop`:
    /// v ← αv + (1−α)g²; centred: ḡ ← αḡ + (1−α)g, ṽ = v − ḡ²; d = √ṽ + ε;
    /// μ > 0: b ← μb + g/d, θ ← θ − γb; else θ ← θ − γ·g/d.
    Rmsprop,
    RmspropConfig,
    StateLayout {
        buffers: &["square_avg", "grad_avg", "momentum_buffer"],
        optional: &[],
        scalars: &[],
    }
);

impl<T: Element> Rmsprop<T> {
    fn step_impl(&mut self) {
        let names = ["square_avg", "grad_avg", "momentum_buffer"];
        step_each(
            &self.groups,
            &mut self.states,
            &names,
            |c| (c.maximize, c.weight_decay),
            |_, _| 0.0,
            |c, _, b, _, x, grad| {
                let (alpha, one_minus) = (T::from_f64(c.alpha), T::from_f64(1.0 - c.alpha));
                let (eps, lr, mu) = (T::from_f64(c.eps), T::from_f64(-c.lr), c.momentum);
                let centered = c.centered;
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

hyperparameters! {
    /// Adadelta hyperparameters (PyTorch defaults).
    pub struct AdadeltaConfig for "Adadelta" {
        /// Scale γ of the computed step (1.0).
        lr: f64 = 1.0 => check::non_negative,
        /// Smoothing ρ of both running averages (0.9).
        rho: f64 = 0.9 => check::non_negative,
        /// ε inside both square roots (1e-6).
        eps: f64 = 1e-6 => check::non_negative,
        /// L2 penalty λ (0).
        weight_decay: f64 = 0.0 => check::non_negative,
        /// Ascend instead of descend.
        maximize: bool = false,
    }
}

optimizer_impl!(
    /// Adadelta (Zeiler 2012), as `torch.optim.Adadelta`:
    /// v ← ρv + (1−ρ)g²; Δ = √(u + ε)/√(v + ε)·g; u ← ρu + (1−ρ)Δ²; θ ← θ − γΔ.
    Adadelta,
    AdadeltaConfig,
    StateLayout {
        buffers: &["square_avg", "acc_delta"],
        optional: &[],
        scalars: &[],
    }
);

impl<T: Element> Adadelta<T> {
    fn step_impl(&mut self) {
        step_each(
            &self.groups,
            &mut self.states,
            &["square_avg", "acc_delta"],
            |c| (c.maximize, c.weight_decay),
            |_, _| 0.0,
            |c, _, b, _, x, grad| {
                let (rho, one_minus) = (T::from_f64(c.rho), T::from_f64(1.0 - c.rho));
                let (eps, lr) = (T::from_f64(c.eps), T::from_f64(-c.lr));
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

hyperparameters! {
    /// Adamax hyperparameters (PyTorch defaults).
    pub struct AdamaxConfig for "Adamax" {
        /// Learning rate γ (2e-3).
        lr: f64 = 2e-3 => check::non_negative,
        /// (β1, β2) ((0.9, 0.999)).
        betas: (f64, f64) = (0.9, 0.999) => check::betas,
        /// ε (1e-8).
        eps: f64 = 1e-8 => check::non_negative,
        /// L2 penalty λ (0).
        weight_decay: f64 = 0.0 => check::non_negative,
        /// Ascend instead of descend.
        maximize: bool = false,
    }
}

optimizer_impl!(
    /// Adamax (Kingma & Ba 2015, §7.1), as `torch.optim.Adamax`:
    /// m ← β1m + (1−β1)g; u ← max(β2u, |g| + ε); θ ← θ − γ/(1−β1ᵗ)·m/u.
    Adamax,
    AdamaxConfig,
    StateLayout {
        buffers: &["exp_avg", "exp_inf"],
        optional: &[],
        scalars: &[],
    }
);

impl<T: Element> Adamax<T> {
    fn step_impl(&mut self) {
        step_each(
            &self.groups,
            &mut self.states,
            &["exp_avg", "exp_inf"],
            |c| (c.maximize, c.weight_decay),
            |_, _| 0.0,
            |c, t, b, _, x, grad| {
                let (b1, b2) = c.betas;
                let (w1, tb2, eps) = (T::from_f64(1.0 - b1), T::from_f64(b2), T::from_f64(c.eps));
                let clr = T::from_f64(-(c.lr / (1.0 - b1.powi(t as i32))));
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
