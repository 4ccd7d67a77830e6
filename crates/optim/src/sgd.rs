//! Stochastic gradient descent with momentum, dampening, Nesterov and weight decay.

use crate::group::{restore, snapshot, OptimizerState, ParamGroup, ParamState};
use crate::{effective_grad, non_negative, Optimizer};
use chainrule_tape::error::{Error, Result};
use chainrule_tape::{Element, Parameter, Tensor};

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

/// SGD, as `torch.optim.SGD`:
/// g ← ∇θ (−∇θ when maximizing) + λθ;
/// with μ > 0: b₁ = g, b_t = μ·b_{t−1} + (1−τ)·g, and g ← g + μ·b_t (Nesterov) or g ← b_t;
/// θ ← θ − γ·g.
pub struct Sgd<T: Element> {
    groups: Vec<ParamGroup<T>>,
    states: Vec<ParamState<T>>,
}

fn group<T: Element>(params: Vec<Parameter<T>>, c: &SgdConfig) -> Result<ParamGroup<T>> {
    let bad = |m: String| Err(Error::argument("SGD", m));
    if !non_negative(c.lr) {
        return bad(format!("invalid learning rate {}", c.lr));
    }
    if !non_negative(c.momentum) || !non_negative(c.weight_decay) {
        return bad(format!(
            "invalid momentum {} or weight_decay {}",
            c.momentum, c.weight_decay
        ));
    }
    if c.nesterov && (c.momentum <= 0.0 || c.dampening != 0.0) {
        return bad("Nesterov momentum requires a momentum and zero dampening".into());
    }
    Ok(ParamGroup::new(
        params,
        &[
            ("lr", c.lr),
            ("momentum", c.momentum),
            ("dampening", c.dampening),
            ("weight_decay", c.weight_decay),
            ("nesterov", c.nesterov as u8 as f64),
            ("maximize", c.maximize as u8 as f64),
        ],
    ))
}

impl<T: Element> Sgd<T> {
    /// SGD over one group of parameters.
    pub fn new(params: Vec<Parameter<T>>, config: SgdConfig) -> Result<Self> {
        Self::with_groups(vec![(params, config)])
    }

    /// SGD over several groups, each with its own hyperparameters.
    pub fn with_groups(groups: Vec<(Vec<Parameter<T>>, SgdConfig)>) -> Result<Self> {
        let groups = groups
            .into_iter()
            .map(|(p, c)| group(p, &c))
            .collect::<Result<Vec<_>>>()?;
        let n = groups.iter().map(|g| g.params.len()).sum();
        Ok(Sgd {
            groups,
            states: vec![ParamState::default(); n],
        })
    }
}

impl<T: Element> Optimizer<T> for Sgd<T> {
    fn name(&self) -> &str {
        "SGD"
    }
    fn groups(&self) -> &[ParamGroup<T>] {
        &self.groups
    }
    fn groups_mut(&mut self) -> &mut [ParamGroup<T>] {
        &mut self.groups
    }
    fn state(&self) -> OptimizerState<T> {
        snapshot("SGD", &self.groups, &self.states)
    }
    fn load_state(&mut self, state: OptimizerState<T>) -> Result<()> {
        restore("SGD", &mut self.groups, &mut self.states, state)
    }

    fn step(&mut self) -> Result<()> {
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
        Ok(())
    }
}
