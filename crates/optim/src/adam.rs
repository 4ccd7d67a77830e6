//! Adam, AMSGrad and AdamW (decoupled weight decay).

use crate::hyper::{check, hyperparameters};
use crate::rule::optimizer_impl;
use crate::StateLayout;
use chainrule_tape::{Element, Tensor};
use rayon::prelude::*;

hyperparameters! {
    /// Adam hyperparameters; `Default` is `torch.optim.Adam`'s, and
    /// [`AdamConfig::adamw`] is `torch.optim.AdamW`'s (weight decay 1e-2, decoupled).
    pub struct AdamConfig for "Adam" {
        /// Learning rate γ.
        lr: f64 = 1e-3 => check::non_negative,
        /// Decays (β1, β2) of the first- and second-moment estimates.
        betas: (f64, f64) = (0.9, 0.999) => check::betas,
        /// ε added to the denominator.
        eps: f64 = 1e-8 => check::non_negative,
        /// Weight decay λ: L2 (g ← g + λθ), or θ ← θ(1 − γλ) with
        /// `decoupled_weight_decay`.
        weight_decay: f64 = 0.0 => check::non_negative,
        /// AMSGrad: divide by the running maximum of the second moment.
        amsgrad: bool = false,
        /// Ascend instead of descend.
        maximize: bool = false,
        /// Decoupled weight decay θ ← θ(1 − γλ) instead of L2: AdamW.
        decoupled_weight_decay: bool = false,
    }
}

impl AdamConfig {
    /// `torch.optim.AdamW`'s defaults: as Adam, with decoupled weight decay 1e-2.
    pub fn adamw() -> Self {
        AdamConfig {
            weight_decay: 1e-2,
            decoupled_weight_decay: true,
            ..Default::default()
        }
    }
}

optimizer_impl!(
    /// Adam, as `torch.optim.Adam` (and `AdamW`, per group, with
    /// `decoupled_weight_decay`):
    /// m ← β1·m + (1−β1)·g; v ← β2·v + (1−β2)·g²; (AMSGrad: v̂ ← max(v̂, v));
    /// θ ← θ − (γ / (1−β1ᵗ)) · m / (√v / √(1−β2ᵗ) + ε).
    Adam,
    AdamConfig,
    StateLayout {
        buffers: &["exp_avg", "exp_avg_sq"],
        // Created once `amsgrad` is on; kept if it is turned off.
        optional: &["max_exp_avg_sq"],
        scalars: &[],
    }
);

impl<T: Element> Adam<T> {
    fn step_impl(&mut self) {
        let mut index = 0;
        for g in &self.groups {
            let c = g.config;
            let (b1, b2) = c.betas;
            let decoupled = c.decoupled_weight_decay;
            for p in &g.params {
                let state = &mut self.states[index];
                index += 1;
                if p.grad().is_none() {
                    continue;
                }
                state.step += 1;
                let t = state.step as i32;
                let zeros = || Tensor::zeros(p.shape());
                let mut m = state.buffers.remove("exp_avg").unwrap_or_else(zeros);
                let mut v = state.buffers.remove("exp_avg_sq").unwrap_or_else(zeros);
                let mut v_max = c
                    .amsgrad
                    .then(|| state.buffers.remove("max_exp_avg_sq").unwrap_or_else(zeros));
                let bias1 = 1.0 - b1.powi(t);
                let rule = AdamRule {
                    l2: T::from_f64(if decoupled { 0.0 } else { c.weight_decay }),
                    maximize: c.maximize,
                    one_minus_beta1: T::from_f64(1.0 - b1),
                    beta2: T::from_f64(b2),
                    one_minus_beta2: T::from_f64(1.0 - b2),
                    bias2_sqrt: T::from_f64((1.0 - b2.powi(t)).sqrt()),
                    step_size: T::from_f64(c.lr / bias1),
                    eps: T::from_f64(c.eps),
                    decay: (decoupled && c.weight_decay != 0.0)
                        .then(|| T::from_f64(1.0 - c.lr * c.weight_decay)),
                };
                p.update(|value, grad| {
                    let Some(grad) = grad else { return };
                    rule.apply(
                        value.data_mut(),
                        grad.data(),
                        m.data_mut(),
                        v.data_mut(),
                        v_max.as_mut().map(|t| t.data_mut()),
                    );
                });
                state.buffers.insert("exp_avg".into(), m);
                state.buffers.insert("exp_avg_sq".into(), v);
                if let Some(v_max) = v_max {
                    state.buffers.insert("max_exp_avg_sq".into(), v_max);
                }
            }
        }
    }
}

/// Parameters at least this long are updated in parallel chunks.
const PARALLEL_UPDATE: usize = 1 << 15;
/// Elements per parallel chunk of the update.
const UPDATE_CHUNK: usize = 1 << 13;

/// One Adam step's constants, applied to every element in a single pass
/// over (θ, g, m, v[, v̂]) — the fused update: each array is read and
/// written once, instead of once per formula line.
struct AdamRule<T> {
    /// L2 weight decay folded into the gradient (0 for AdamW).
    l2: T,
    maximize: bool,
    one_minus_beta1: T,
    beta2: T,
    one_minus_beta2: T,
    /// √(1 − β2ᵗ).
    bias2_sqrt: T,
    /// γ / (1 − β1ᵗ).
    step_size: T,
    eps: T,
    /// AdamW's 1 − γλ, when λ ≠ 0.
    decay: Option<T>,
}

impl<T: Element> AdamRule<T> {
    /// One element, in torch's order of operations: g ← ±g + λθ;
    /// m ← m + (1−β1)(g − m); v ← β2·v + (1−β2)·g²; (v̂ ← max(v̂, v));
    /// θ ← θ·(1 − γλ) (AdamW); θ ← θ − step·m / (√v / √(1−β2ᵗ) + ε).
    #[inline(always)]
    fn element(&self, x: &mut T, g: T, m: &mut T, v: &mut T, v_max: Option<&mut T>) {
        let g = if self.maximize { -g } else { g };
        let g = if self.l2 != T::zero() {
            g + self.l2 * *x
        } else {
            g
        };
        *m = *m + self.one_minus_beta1 * (g - *m);
        *v = *v * self.beta2 + g * g * self.one_minus_beta2;
        let second = match v_max {
            Some(vm) => {
                *vm = vm.max(*v);
                *vm
            }
            None => *v,
        };
        if let Some(decay) = self.decay {
            *x = *x * decay;
        }
        let denom = second.sqrt() / self.bias2_sqrt + self.eps;
        *x = *x - self.step_size * (*m / denom);
    }

    /// A run of elements (one thread's share).
    fn run(&self, x: &mut [T], g: &[T], m: &mut [T], v: &mut [T], v_max: Option<&mut [T]>) {
        match v_max {
            Some(vm) => {
                for ((((x, &g), m), v), vm) in x.iter_mut().zip(g).zip(m).zip(v).zip(vm) {
                    self.element(x, g, m, v, Some(vm));
                }
            }
            None => {
                for (((x, &g), m), v) in x.iter_mut().zip(g).zip(m).zip(v) {
                    self.element(x, g, m, v, None);
                }
            }
        }
    }

    /// The whole parameter, split across rayon's threads when large. Every
    /// element's arithmetic is the same either way, so results do not depend
    /// on the split.
    fn apply(&self, x: &mut [T], g: &[T], m: &mut [T], v: &mut [T], v_max: Option<&mut [T]>) {
        if x.len() < PARALLEL_UPDATE {
            return self.run(x, g, m, v, v_max);
        }
        let chunks = x
            .par_chunks_mut(UPDATE_CHUNK)
            .zip(g.par_chunks(UPDATE_CHUNK))
            .zip(m.par_chunks_mut(UPDATE_CHUNK))
            .zip(v.par_chunks_mut(UPDATE_CHUNK));
        match v_max {
            Some(vm) => chunks
                .zip(vm.par_chunks_mut(UPDATE_CHUNK))
                .for_each(|((((x, g), m), v), vm)| self.run(x, g, m, v, Some(vm))),
            None => chunks.for_each(|(((x, g), m), v)| self.run(x, g, m, v, None)),
        }
    }
}
