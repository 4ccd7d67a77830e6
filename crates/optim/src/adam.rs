//! Adam, AMSGrad and AdamW (decoupled weight decay).

use crate::group::{restore, snapshot, OptimizerState, ParamGroup, ParamState, StateLayout};
use crate::{non_negative, Optimizer};
use chainrule_tape::error::{Error, Result};
use chainrule_tape::{Element, Parameter, Tensor};
use rayon::prelude::*;

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
        const LAYOUT: StateLayout = StateLayout {
            buffers: &["exp_avg", "exp_avg_sq"],
            // Created once `amsgrad` is on; kept if it is turned off.
            optional: &["max_exp_avg_sq"],
            scalars: &[],
        };
        restore(
            self.name,
            &LAYOUT,
            &mut self.groups,
            &mut self.states,
            state,
        )
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
                if p.grad().is_none() {
                    continue;
                }
                state.step += 1;
                let t = state.step as i32;
                let zeros = || Tensor::zeros(p.shape());
                let mut m = state.buffers.remove("exp_avg").unwrap_or_else(zeros);
                let mut v = state.buffers.remove("exp_avg_sq").unwrap_or_else(zeros);
                let mut v_max =
                    amsgrad.then(|| state.buffers.remove("max_exp_avg_sq").unwrap_or_else(zeros));
                let bias1 = 1.0 - b1.powi(t);
                let rule = AdamRule {
                    l2: T::from_f64(if decoupled { 0.0 } else { wd }),
                    maximize,
                    one_minus_beta1: T::from_f64(1.0 - b1),
                    beta2: T::from_f64(b2),
                    one_minus_beta2: T::from_f64(1.0 - b2),
                    bias2_sqrt: T::from_f64((1.0 - b2.powi(t)).sqrt()),
                    step_size: T::from_f64(lr / bias1),
                    eps: T::from_f64(eps),
                    decay: (decoupled && wd != 0.0).then(|| T::from_f64(1.0 - lr * wd)),
                };
                p.update(|value, grad| {
                    let grad = grad.expect("checked above").data();
                    rule.apply(
                        value.data_mut(),
                        grad,
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
        Ok(())
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
