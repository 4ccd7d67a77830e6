//! Lion (sign momentum) and Lookahead (slow weights around any optimizer).

use crate::group::OptimizerState;
use crate::hyper::{check, hyperparameters, Hyper};
use crate::rule::{optimizer_impl, step_each};
use crate::{Optimizer, StateLayout};
use chainrule_tape::error::{Error, Result};
use chainrule_tape::{Element, Parameter, Tensor};

hyperparameters! {
    /// Lion hyperparameters (the paper's defaults).
    pub struct LionConfig for "Lion" {
        /// Learning rate η (1e-4; Lion wants 3–10× smaller rates than Adam).
        lr: f64 = 1e-4 => check::non_negative,
        /// (β1, β2): interpolation for the update direction, and momentum
        /// decay ((0.9, 0.99)).
        betas: (f64, f64) = (0.9, 0.99) => check::betas,
        /// Decoupled weight decay λ (0).
        weight_decay: f64 = 0.0 => check::non_negative,
        /// Ascend instead of descend.
        maximize: bool = false,
    }
}

optimizer_impl!(
    /// Lion (Chen et al. 2023, "Symbolic Discovery of Optimization Algorithms"):
    /// c = β1·m + (1−β1)·g; θ ← θ(1 − ηλ) − η·sign(c); m ← β2·m + (1−β2)·g.
    Lion,
    LionConfig,
    StateLayout {
        buffers: &["exp_avg"],
        optional: &[],
        scalars: &[],
    }
);

impl<T: Element> Lion<T> {
    fn step_impl(&mut self) {
        step_each(
            &self.groups,
            &mut self.states,
            &["exp_avg"],
            |c| (c.maximize, 0.0),
            |_, _| 0.0,
            |c, _, b, _, x, grad| {
                let (lr, (b1, b2), wd) = (c.lr, c.betas, c.weight_decay);
                let (tb1, tb1c, tb2, tb2c) = (
                    T::from_f64(b1),
                    T::from_f64(1.0 - b1),
                    T::from_f64(b2),
                    T::from_f64(1.0 - b2),
                );
                let (tlr, decay) = (T::from_f64(lr), T::from_f64(1.0 - lr * wd));
                for i in 0..x.len() {
                    let (gi, m) = (grad[i], b[0][i]);
                    let c = tb1 * m + tb1c * gi;
                    let sign = if c > T::zero() {
                        T::one()
                    } else if c < T::zero() {
                        -T::one()
                    } else {
                        T::zero()
                    };
                    x[i] = x[i] * decay - tlr * sign;
                    b[0][i] = tb2 * m + tb2c * gi;
                }
            },
        );
    }
}

/// Lookahead (Zhang et al. 2019) around any optimizer: the inner optimizer
/// takes k "fast" steps; then the slow weights move φ ← φ + α(θ − φ) and
/// the fast weights restart from them (θ ← φ).
pub struct Lookahead<T: Element, O: Optimizer<T>> {
    /// The inner (fast) optimizer.
    pub inner: O,
    /// Steps between synchronisations (5).
    pub k: u64,
    /// Slow-weight step size α (0.5).
    pub alpha: f64,
    slow: Vec<Tensor<T>>,
    steps: u64,
    name: String,
}

impl<T: Element, O: Optimizer<T>> Lookahead<T, O> {
    /// Wraps `inner`; the current parameter values are the first slow weights.
    pub fn new(inner: O, k: u64, alpha: f64) -> Result<Self> {
        if k == 0 || !(0.0..=1.0).contains(&alpha) {
            return Err(Error::argument(
                "Lookahead",
                format!("need k ≥ 1 and α in [0, 1], got k {k}, α {alpha}"),
            ));
        }
        let slow = (0..inner.num_groups())
            .flat_map(|g| inner.params(g).iter().map(|p| p.value()))
            .collect();
        let name = format!("Lookahead({})", inner.name());
        Ok(Lookahead {
            inner,
            k,
            alpha,
            slow,
            steps: 0,
            name,
        })
    }
}

impl<T: Element, O: Optimizer<T>> Optimizer<T> for Lookahead<T, O> {
    fn name(&self) -> &str {
        &self.name
    }
    fn num_groups(&self) -> usize {
        self.inner.num_groups()
    }
    fn params(&self, group: usize) -> &[Parameter<T>] {
        self.inner.params(group)
    }
    fn hyperparameters(&self, group: usize) -> Result<Vec<(&'static str, Hyper)>> {
        self.inner.hyperparameters(group)
    }
    fn hyperparameter(&self, group: usize, key: &str) -> Result<Hyper> {
        self.inner.hyperparameter(group, key)
    }
    fn set_hyperparameter(&mut self, group: usize, key: &str, value: Hyper) -> Result<()> {
        self.inner.set_hyperparameter(group, key, value)
    }

    fn step(&mut self) -> Result<()> {
        self.inner.step()?;
        self.steps += 1;
        if self.steps.is_multiple_of(self.k) {
            let alpha = T::from_f64(self.alpha);
            let inner = &self.inner;
            let params = (0..inner.num_groups()).flat_map(|g| inner.params(g).iter());
            for (p, slow) in params.zip(self.slow.iter_mut()) {
                let fast = p.value();
                for (s, &f) in slow.data_mut().iter_mut().zip(fast.data()) {
                    *s = *s + alpha * (f - *s);
                }
                p.set_value(slow.clone());
            }
        }
        Ok(())
    }

    /// The inner optimizer's state, with each parameter's slow weights as
    /// the buffer `lookahead_slow` and the step count as the scalar `lookahead_steps`.
    fn state(&self) -> OptimizerState<T> {
        let mut s = self.inner.state();
        s.optimizer = self.name.clone();
        for (ps, slow) in s.params.iter_mut().zip(&self.slow) {
            ps.buffers.insert("lookahead_slow".into(), slow.clone());
            ps.scalars
                .insert("lookahead_steps".into(), self.steps as f64);
        }
        s
    }

    fn load_state(&mut self, mut state: OptimizerState<T>) -> Result<()> {
        let err = |m: String| Error::argument(self.name.clone(), m);
        let saved_inner = state
            .optimizer
            .strip_prefix("Lookahead(")
            .and_then(|n| n.strip_suffix(')'))
            .map(str::to_string);
        let Some(saved_inner) =
            saved_inner.filter(|n| crate::group::same_optimizer(n, self.inner.name()))
        else {
            return Err(err(format!("cannot load a {} state", state.optimizer)));
        };
        let inner = &self.inner;
        let shapes: Vec<Vec<usize>> = (0..inner.num_groups())
            .flat_map(|g| inner.params(g).iter().map(|p| p.shape()))
            .collect();
        if state.params.len() != shapes.len() {
            return Err(err(format!(
                "state has {} parameters, optimizer has {}",
                state.params.len(),
                shapes.len()
            )));
        }
        let mut slow = Vec::with_capacity(state.params.len());
        let mut steps = None;
        for (i, (ps, shape)) in state.params.iter_mut().zip(&shapes).enumerate() {
            let s = ps
                .buffers
                .remove("lookahead_slow")
                .ok_or_else(|| err(format!("parameter {i}: state lacks slow weights")))?;
            if s.shape() != shape.as_slice() {
                return Err(err(format!(
                    "parameter {i}: slow weights have shape {:?}, expected {shape:?}",
                    s.shape()
                )));
            }
            slow.push(s);
            let n = ps.scalars.remove("lookahead_steps");
            let n = n
                .filter(|n| n.fract() == 0.0 && (0.0..=crate::MAX_STEPS as f64).contains(n))
                .ok_or_else(|| {
                    err(format!(
                        "parameter {i}: lookahead_steps is {n:?}, expected a whole number of steps"
                    ))
                })? as u64;
            if steps.is_some_and(|s| s != n) {
                return Err(err(format!(
                    "parameter {i}: lookahead_steps {n} differs from the other parameters' {steps:?}"
                )));
            }
            steps = Some(n);
        }
        state.optimizer = saved_inner;
        self.inner.load_state(state)?;
        self.slow = slow;
        self.steps = steps.unwrap_or(0);
        Ok(())
    }
}
