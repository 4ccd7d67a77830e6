//! NAdam (Adam with Nesterov momentum) and RAdam (rectified Adam).

use crate::hyper::{check, hyperparameters};
use crate::rule::{optimizer_impl, step_each};
use crate::StateLayout;
use chainrule_tape::Element;

hyperparameters! {
    /// NAdam hyperparameters (PyTorch defaults).
    pub struct NadamConfig for "NAdam" {
        /// Learning rate γ (2e-3).
        lr: f64 = 2e-3 => check::non_negative,
        /// (β1, β2) ((0.9, 0.999)).
        betas: (f64, f64) = (0.9, 0.999) => check::betas,
        /// ε (1e-8).
        eps: f64 = 1e-8 => check::non_negative,
        /// Weight decay λ (0): L2, or decoupled as in AdamW.
        weight_decay: f64 = 0.0 => check::non_negative,
        /// ψ in the momentum schedule μ_t = β1(1 − ½·0.96^(tψ)) (4e-3).
        momentum_decay: f64 = 4e-3 => check::non_negative,
        /// Decoupled weight decay θ ← θ(1 − γλ) instead of L2.
        decoupled_weight_decay: bool = false,
        /// Ascend instead of descend.
        maximize: bool = false,
    }
}

optimizer_impl!(
    /// NAdam (Dozat 2016), as `torch.optim.NAdam`: with μ_t = β1(1 − ½·0.96^(tψ)),
    /// m and v as in Adam, d = √(v/(1−β2ᵗ)) + ε,
    /// θ ← θ − γ(1−μ_t)/(1−∏_{i≤t}μ_i)·g/d − γμ_{t+1}/(1−∏_{i≤t+1}μ_i)·m/d.
    Nadam,
    NadamConfig,
    StateLayout {
        buffers: &["exp_avg", "exp_avg_sq"],
        optional: &[],
        scalars: &["mu_product"],
    }
);

impl<T: Element> Nadam<T> {
    fn step_impl(&mut self) {
        step_each(
            &self.groups,
            &mut self.states,
            &["exp_avg", "exp_avg_sq"],
            |c| (c.maximize, 0.0),
            |_, _| 0.0,
            |c, t, b, scalars, x, grad| {
                let (lr, (b1, b2), eps, wd, psi) =
                    (c.lr, c.betas, c.eps, c.weight_decay, c.momentum_decay);
                let decay = WeightDecay::of(wd, c.decoupled_weight_decay);
                let t = t as f64;
                let bias2 = T::from_f64(1.0 - b2.powf(t));
                let mu = b1 * (1.0 - 0.5 * 0.96f64.powf(t * psi));
                let mu_next = b1 * (1.0 - 0.5 * 0.96f64.powf((t + 1.0) * psi));
                let product = scalars.entry("mu_product".into()).or_insert(1.0);
                *product *= mu;
                let product_next = *product * mu_next;
                let coef_g = T::from_f64(-lr * (1.0 - mu) / (1.0 - *product));
                let coef_m = T::from_f64((-lr * mu_next) / (1.0 - product_next));
                let (w1, tb2, tb2c, teps) = (
                    T::from_f64(1.0 - b1),
                    T::from_f64(b2),
                    T::from_f64(1.0 - b2),
                    T::from_f64(eps),
                );
                let (m, v) = b.split_at_mut(1);
                for i in 0..x.len() {
                    let gi = decay.apply(&mut x[i], grad[i], lr, wd);
                    m[0][i] = m[0][i] + w1 * (gi - m[0][i]);
                    v[0][i] = v[0][i] * tb2 + tb2c * gi * gi;
                    let denom = (v[0][i] / bias2).sqrt() + teps;
                    x[i] = x[i] + coef_g * (gi / denom);
                    x[i] = x[i] + coef_m * (m[0][i] / denom);
                }
            },
        );
    }
}

/// How a group applies weight decay λ: none, L2 (g ← g + λθ), or decoupled (θ ← θ(1 − γλ)).
#[derive(Clone, Copy)]
enum WeightDecay {
    None,
    L2,
    Decoupled,
}

impl WeightDecay {
    fn of(weight_decay: f64, decoupled: bool) -> Self {
        if weight_decay == 0.0 {
            WeightDecay::None
        } else if decoupled {
            WeightDecay::Decoupled
        } else {
            WeightDecay::L2
        }
    }

    /// Applies the decay to θ (decoupled) or returns the decayed gradient (L2).
    fn apply<T: Element>(self, x: &mut T, g: T, lr: f64, wd: f64) -> T {
        match self {
            WeightDecay::None => g,
            WeightDecay::L2 => g + T::from_f64(wd) * *x,
            WeightDecay::Decoupled => {
                *x = *x * T::from_f64(1.0 - lr * wd);
                g
            }
        }
    }
}

hyperparameters! {
    /// RAdam hyperparameters (PyTorch defaults).
    pub struct RadamConfig for "RAdam" {
        /// Learning rate γ (1e-3).
        lr: f64 = 1e-3 => check::non_negative,
        /// (β1, β2) ((0.9, 0.999)).
        betas: (f64, f64) = (0.9, 0.999) => check::betas,
        /// ε (1e-8).
        eps: f64 = 1e-8 => check::non_negative,
        /// Weight decay λ (0): L2, or decoupled as in AdamW.
        weight_decay: f64 = 0.0 => check::non_negative,
        /// Decoupled weight decay θ ← θ(1 − γλ) instead of L2.
        decoupled_weight_decay: bool = false,
        /// Ascend instead of descend.
        maximize: bool = false,
    }
}

optimizer_impl!(
    /// RAdam (Liu et al. 2020), as `torch.optim.RAdam`: m, v as in Adam,
    /// ρ∞ = 2/(1−β2) − 1, ρ_t = ρ∞ − 2tβ2ᵗ/(1−β2ᵗ); when ρ_t > 5,
    /// θ ← θ − γ·m̂·√(1−β2ᵗ)/(√v + ε)·r_t with r_t = √((ρ_t−4)(ρ_t−2)ρ∞/((ρ∞−4)(ρ∞−2)ρ_t)),
    /// otherwise θ ← θ − γ·m̂ (m̂ = m/(1−β1ᵗ)).
    Radam,
    RadamConfig,
    StateLayout {
        buffers: &["exp_avg", "exp_avg_sq"],
        optional: &[],
        scalars: &[],
    }
);

impl<T: Element> Radam<T> {
    fn step_impl(&mut self) {
        step_each(
            &self.groups,
            &mut self.states,
            &["exp_avg", "exp_avg_sq"],
            |c| (c.maximize, 0.0),
            |_, _| 0.0,
            |c, t, b, _, x, grad| {
                let (lr, (b1, b2), eps, wd) = (c.lr, c.betas, c.eps, c.weight_decay);
                let decay = WeightDecay::of(wd, c.decoupled_weight_decay);
                let t = t as f64;
                let (bc1, bc2) = (1.0 - b1.powf(t), 1.0 - b2.powf(t));
                let rho_inf = 2.0 / (1.0 - b2) - 1.0;
                let rho_t = rho_inf - 2.0 * t * b2.powf(t) / bc2;
                let rect = (rho_t > 5.0).then(|| {
                    T::from_f64(
                        (((rho_t - 4.0) * (rho_t - 2.0) * rho_inf)
                            / ((rho_inf - 4.0) * (rho_inf - 2.0) * rho_t))
                            .sqrt(),
                    )
                });
                let (w1, tb2, tb2c, teps) = (
                    T::from_f64(1.0 - b1),
                    T::from_f64(b2),
                    T::from_f64(1.0 - b2),
                    T::from_f64(eps),
                );
                let (tbc1, sqrt_bc2, tlr) =
                    (T::from_f64(bc1), T::from_f64(bc2.sqrt()), T::from_f64(lr));
                let (m, v) = b.split_at_mut(1);
                for i in 0..x.len() {
                    let gi = decay.apply(&mut x[i], grad[i], lr, wd);
                    m[0][i] = m[0][i] + w1 * (gi - m[0][i]);
                    v[0][i] = v[0][i] * tb2 + tb2c * gi * gi;
                    let corrected = m[0][i] / tbc1;
                    let update = match rect {
                        Some(r) => corrected * tlr * (sqrt_bc2 / (v[0][i].sqrt() + teps)) * r,
                        None => corrected * tlr,
                    };
                    x[i] = x[i] - update;
                }
            },
        );
    }
}
