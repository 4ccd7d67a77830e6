//! Adam, AMSGrad and AdamW (decoupled weight decay).

use crate::group::{restore, snapshot, OptimizerState, ParamGroup, ParamState};
use crate::{effective_grad, non_negative, Optimizer};
use chainrule_tape::error::{Error, Result};
use chainrule_tape::{Element, Parameter, Tensor};

/// Adam hyperparameters; `Default` is `torch.optim.Adam`'s, and
/// [`AdamConfig::adamw`] is `torch.optim.AdamW`'s (weight decay 1e-2, decoupled).
#[derive(Clone, Copy, Debug)]
pub struct AdamConfig {
    /// Learning rate γ.
    pub lr: f64,
    /// Decay β1 of the first-moment estimate.
    pub beta1: f64,
    /// Decay β2 of the second-moment estimate.
    pub beta2: f64,
    /// ε added to the denominator.
    pub eps: f64,
    /// Weight decay λ: L2 (g ← g + λθ) for Adam, θ ← θ(1 − γλ) for AdamW.
    pub weight_decay: f64,
    /// AMSGrad: divide by the running maximum of the second moment.
    pub amsgrad: bool,
    /// Ascend instead of descend.
    pub maximize: bool,
    /// Decoupled weight decay (AdamW).
    pub decoupled: bool,
}

impl Default for AdamConfig {
    fn default() -> Self {
        AdamConfig {
            lr: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
            amsgrad: false,
            maximize: false,
            decoupled: false,
        }
    }
}

impl AdamConfig {
    /// `torch.optim.AdamW`'s defaults: as Adam, with decoupled weight decay 1e-2.
    pub fn adamw() -> Self {
        AdamConfig {
            weight_decay: 1e-2,
            decoupled: true,
            ..Default::default()
        }
    }
}

/// Adam, as `torch.optim.Adam` / `AdamW`:
/// m ← β1·m + (1−β1)·g; v ← β2·v + (1−β2)·g²; (AMSGrad: v̂ ← max(v̂, v));
/// θ ← θ − (γ / (1−β1ᵗ)) · m / (√v / √(1−β2ᵗ) + ε).
pub struct Adam<T: Element> {
    groups: Vec<ParamGroup<T>>,
    states: Vec<ParamState<T>>,
    name: &'static str,
}

fn group<T: Element>(params: Vec<Parameter<T>>, c: &AdamConfig) -> Result<ParamGroup<T>> {
    let name = if c.decoupled { "AdamW" } else { "Adam" };
    let bad = |m: String| Err(Error::argument(name, m));
    if !non_negative(c.lr) || !non_negative(c.eps) || !non_negative(c.weight_decay) {
        return bad(format!(
            "invalid lr {}, eps {} or weight_decay {}",
            c.lr, c.eps, c.weight_decay
        ));
    }
    crate::rule::check_betas(name, c.beta1, c.beta2)?;
    Ok(ParamGroup::new(
        params,
        &[
            ("lr", c.lr),
            ("beta1", c.beta1),
            ("beta2", c.beta2),
            ("eps", c.eps),
            ("weight_decay", c.weight_decay),
            ("amsgrad", c.amsgrad as u8 as f64),
            ("maximize", c.maximize as u8 as f64),
        ],
    ))
}

impl<T: Element> Adam<T> {
    /// Adam (or AdamW, with [`AdamConfig::adamw`]) over one group.
    pub fn new(params: Vec<Parameter<T>>, config: AdamConfig) -> Result<Self> {
        Self::with_groups(vec![(params, config)])
    }

    /// Over several groups; all must agree on `decoupled` (Adam vs AdamW).
    pub fn with_groups(groups: Vec<(Vec<Parameter<T>>, AdamConfig)>) -> Result<Self> {
        let decoupled = groups.first().is_some_and(|(_, c)| c.decoupled);
        if groups.iter().any(|(_, c)| c.decoupled != decoupled) {
            return Err(Error::argument(
                "Adam",
                "all groups must be Adam or all AdamW",
            ));
        }
        let groups = groups
            .into_iter()
            .map(|(p, c)| group(p, &c))
            .collect::<Result<Vec<_>>>()?;
        let n = groups.iter().map(|g| g.params.len()).sum();
        Ok(Adam {
            groups,
            states: vec![ParamState::default(); n],
            name: if decoupled { "AdamW" } else { "Adam" },
        })
    }
}

impl<T: Element> Optimizer<T> for Adam<T> {
    fn name(&self) -> &str {
        self.name
    }
    fn groups(&self) -> &[ParamGroup<T>] {
        &self.groups
    }
    fn groups_mut(&mut self) -> &mut [ParamGroup<T>] {
        &mut self.groups
    }
    fn state(&self) -> OptimizerState<T> {
        snapshot(self.name, &self.groups, &self.states)
    }
    fn load_state(&mut self, state: OptimizerState<T>) -> Result<()> {
        restore(self.name, &mut self.groups, &mut self.states, state)
    }

    fn step(&mut self) -> Result<()> {
        let decoupled = self.name == "AdamW";
        let mut index = 0;
        for g in &self.groups {
            let (lr, b1, b2, eps, wd) = (
                g.h("lr"),
                g.h("beta1"),
                g.h("beta2"),
                g.h("eps"),
                g.h("weight_decay"),
            );
            let (amsgrad, maximize) = (g.h("amsgrad") != 0.0, g.h("maximize") != 0.0);
            for p in &g.params {
                let state = &mut self.states[index];
                index += 1;
                let Some(grad) = effective_grad(p, maximize, if decoupled { 0.0 } else { wd })
                else {
                    continue;
                };
                state.step += 1;
                let t = state.step as i32;
                let zeros = || Tensor::zeros(p.shape());
                let mut m = state.buffers.remove("exp_avg").unwrap_or_else(zeros);
                let mut v = state.buffers.remove("exp_avg_sq").unwrap_or_else(zeros);
                let (w1, tb2, tb2c) = (
                    T::from_f64(1.0 - b1),
                    T::from_f64(b2),
                    T::from_f64(1.0 - b2),
                );
                for ((mi, vi), &gi) in m
                    .data_mut()
                    .iter_mut()
                    .zip(v.data_mut().iter_mut())
                    .zip(&grad)
                {
                    *mi = *mi + w1 * (gi - *mi); // torch's lerp(m, g, 1 − β1)
                    *vi = *vi * tb2 + gi * gi * tb2c;
                }
                let denom_source = if amsgrad {
                    let mut vmax = state.buffers.remove("max_exp_avg_sq").unwrap_or_else(zeros);
                    for (a, &b) in vmax.data_mut().iter_mut().zip(v.data()) {
                        *a = a.max(b);
                    }
                    vmax
                } else {
                    v.clone()
                };
                let bias1 = 1.0 - b1.powi(t);
                let bias2_sqrt = T::from_f64((1.0 - b2.powi(t)).sqrt());
                let step_size = T::from_f64(lr / bias1);
                let (teps, decay) = (T::from_f64(eps), T::from_f64(1.0 - lr * wd));
                p.update(|value, _| {
                    for ((x, &mi), &si) in value
                        .data_mut()
                        .iter_mut()
                        .zip(m.data())
                        .zip(denom_source.data())
                    {
                        if decoupled && wd != 0.0 {
                            *x = *x * decay;
                        }
                        let denom = si.sqrt() / bias2_sqrt + teps;
                        *x = *x - step_size * (mi / denom);
                    }
                });
                state.buffers.insert("exp_avg".into(), m);
                state.buffers.insert("exp_avg_sq".into(), v);
                if amsgrad {
                    state.buffers.insert("max_exp_avg_sq".into(), denom_source);
                }
            }
        }
        Ok(())
    }
}
