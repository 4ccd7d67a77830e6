//! Stochastic gradient descent with momentum, dampening, Nesterov and weight decay.

use crate::effective_grad;
use crate::rule::{check_non_negative, optimizer_impl, OptimizerConfig};
use chainrule_tape::error::{Error, Result};
use chainrule_tape::{Element, Tensor};

/// SGD hyperparameters; defaults are PyTorch's (`lr` has none there: 1e-3 here).
#[derive(Clone, Copy, Debug)]
pub struct SgdConfig {
    /// Learning rate γ.
    pub lr: f64,
    /// Momentum μ (0 disables the buffer).
    pub momentum: f64,
    /// Dampening τ of the momentum update.
    pub dampening: f64,
    /// L2 penalty λ: g ← g + λθ.
    pub weight_decay: f64,
    /// Nesterov momentum (needs μ > 0 and τ = 0).
    pub nesterov: bool,
    /// Ascend instead of descend.
    pub maximize: bool,
}

impl Default for SgdConfig {
    fn default() -> Self {
        SgdConfig {
            lr: 1e-3,
            momentum: 0.0,
            dampening: 0.0,
            weight_decay: 0.0,
            nesterov: false,
            maximize: false,
        }
    }
}

impl OptimizerConfig for SgdConfig {
    const NAME: &'static str = "SGD";
    const STATE: crate::group::StateLayout = crate::group::StateLayout {
        buffers: &[],
        optional: &["momentum_buffer"],
        scalars: &[],
    };
    fn validate(&self) -> Result<()> {
        check_non_negative(
            Self::NAME,
            &[
                ("lr", self.lr),
                ("momentum", self.momentum),
                ("weight_decay", self.weight_decay),
            ],
        )?;
        if self.nesterov && (self.momentum <= 0.0 || self.dampening != 0.0) {
            return Err(Error::argument(
                Self::NAME,
                "Nesterov momentum requires a momentum and zero dampening",
            ));
        }
        Ok(())
    }
    fn hyperparameters(&self) -> Vec<(&'static str, f64)> {
        vec![
            ("lr", self.lr),
            ("momentum", self.momentum),
            ("dampening", self.dampening),
            ("weight_decay", self.weight_decay),
            ("nesterov", self.nesterov as u8 as f64),
            ("maximize", self.maximize as u8 as f64),
        ]
    }
}

optimizer_impl!(
    /// SGD, as `torch.optim.SGD`:
    /// g ← ∇θ (−∇θ when maximizing) + λθ;
    /// with μ > 0: b₁ = g, b_t = μ·b_{t−1} + (1−τ)·g, and g ← g + μ·b_t (Nesterov) or g ← b_t;
    /// θ ← θ − γ·g.
    Sgd,
    SgdConfig,
    "SGD"
);

impl<T: Element> Sgd<T> {
    fn step_impl(&mut self) {
        let mut index = 0;
        for g in &self.groups {
            let (lr, mu, damp, wd) = (
                g.h("lr"),
                g.h("momentum"),
                g.h("dampening"),
                g.h("weight_decay"),
            );
            let (nesterov, maximize) = (g.h("nesterov") != 0.0, g.h("maximize") != 0.0);
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
