//! Stochastic gradient descent with momentum, dampening, Nesterov and weight decay.

use crate::effective_grad;
use crate::hyper::{check, hyperparameters};
use crate::rule::optimizer_impl;
use crate::StateLayout;
use chainrule_tape::{Element, Tensor};

hyperparameters! {
    /// SGD hyperparameters; defaults are PyTorch's (`lr` has none there: 1e-3 here).
    pub struct SgdConfig for "SGD" {
        /// Learning rate γ.
        lr: f64 = 1e-3 => check::non_negative,
        /// Momentum μ (0 disables the buffer).
        momentum: f64 = 0.0 => check::non_negative,
        /// Dampening τ of the momentum update.
        dampening: f64 = 0.0 => check::not_nan,
        /// L2 penalty λ: g ← g + λθ.
        weight_decay: f64 = 0.0 => check::non_negative,
        /// Nesterov momentum (needs μ > 0 and τ = 0).
        nesterov: bool = false,
        /// Ascend instead of descend.
        maximize: bool = false,
    }
    check = nesterov_needs_momentum;
}

/// PyTorch's condition: Nesterov momentum needs μ > 0 and τ = 0.
fn nesterov_needs_momentum(c: &SgdConfig) -> std::result::Result<(), String> {
    if c.nesterov && (c.momentum <= 0.0 || c.dampening != 0.0) {
        Err("Nesterov momentum requires a momentum and zero dampening".into())
    } else {
        Ok(())
    }
}

optimizer_impl!(
    /// SGD, as `torch.optim.SGD`:
    /// g ← ∇θ (−∇θ when maximizing) + λθ;
    /// with μ > 0: b₁ = g, b_t = μ·b_{t−1} + (1−τ)·g, and g ← g + μ·b_t (Nesterov) or g ← b_t;
    /// θ ← θ − γ·g.
    Sgd,
    SgdConfig,
    StateLayout {
        buffers: &[],
        optional: &["momentum_buffer"],
        scalars: &[],
    }
);

impl<T: Element> Sgd<T> {
    fn step_impl(&mut self) {
        let mut index = 0;
        for g in &self.groups {
            let SgdConfig {
                lr,
                momentum: mu,
                dampening: damp,
                weight_decay: wd,
                nesterov,
                maximize,
            } = g.config;
            for p in &g.params {
                let state = &mut self.states[index];
                index += 1;
                let Some(mut grad) = effective_grad(p, maximize, wd) else {
                    continue;
                };
                state.step += 1;
                if mu != 0.0 {
                    let (m, one_minus_damp) = (T::from_f64(mu), T::from_f64(1.0 - damp));
                    let buf = match state.buffers.remove("momentum_buffer") {
                        None => grad.clone(),
                        Some(mut b) => {
                            for (bi, &gi) in b.data_mut().iter_mut().zip(&grad) {
                                *bi = *bi * m + gi * one_minus_damp;
                            }
                            b.to_vec()
                        }
                    };
                    if nesterov {
                        for (gi, &bi) in grad.iter_mut().zip(&buf) {
                            *gi = *gi + m * bi;
                        }
                    } else {
                        grad.clone_from(&buf);
                    }
                    state
                        .buffers
                        .insert("momentum_buffer".into(), Tensor::from_vec(p.shape(), buf));
                }
                let step = T::from_f64(-lr);
                p.update(|value, _| {
                    for (x, &gi) in value.data_mut().iter_mut().zip(&grad) {
                        *x = *x + step * gi;
                    }
                });
            }
        }
    }
}
