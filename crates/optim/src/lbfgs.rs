//! L-BFGS (limited-memory BFGS), closure-based, as `torch.optim.LBFGS`, with
//! a fixed step or PyTorch's strong-Wolfe line search.

use crate::line_search::{strong_wolfe, LinePoint, WolfeSettings};
use chainrule_tape::error::{Error, Result};
use chainrule_tape::{Element, Parameter, Tensor};
use std::collections::VecDeque;

/// L-BFGS settings (PyTorch defaults).
#[derive(Clone, Copy, Debug)]
pub struct LbfgsConfig {
    /// Step length (1).
    pub lr: f64,
    /// Iterations per `step` call (20).
    pub max_iter: usize,
    /// Function evaluations per `step` call (default max_iter·5/4).
    pub max_eval: Option<usize>,
    /// Stop when max|g| ≤ this (1e-7).
    pub tolerance_grad: f64,
    /// Stop when the step or the loss change is below this (1e-9).
    pub tolerance_change: f64,
    /// Curvature pairs (s, y) remembered (100).
    pub history_size: usize,
    /// Choose each step length by a strong-Wolfe line search (c1 = 1e-4,
    /// c2 = 0.9, at most 25 evaluations), as `line_search_fn="strong_wolfe"`;
    /// false takes the fixed step (PyTorch's default `None`).
    pub strong_wolfe: bool,
}

impl Default for LbfgsConfig {
    fn default() -> Self {
        LbfgsConfig {
            lr: 1.0,
            max_iter: 20,
            max_eval: None,
            tolerance_grad: 1e-7,
            tolerance_change: 1e-9,
            history_size: 100,
            strong_wolfe: false,
        }
    }
}

/// L-BFGS: the search direction d = −H·g comes from the two-loop recursion
/// over the last `history_size` pairs s = Δθ, y = Δg (pairs with sᵀy ≤ 1e-10
/// are skipped), with initial scaling H0 = sᵀy/yᵀy. The first step is
/// min(1, 1/‖g‖₁)·lr, later ones lr; θ ← θ + t·d, or with `strong_wolfe` that
/// t is the line search's first trial and θ moves by the step it accepts. Each `step(closure)` runs up
/// to `max_iter` iterations; the closure must zero the gradients, compute
/// the loss, backpropagate it and return it.
pub struct Lbfgs<T: Element> {
    params: Vec<Parameter<T>>,
    /// The settings.
    pub config: LbfgsConfig,
    state: LbfgsState,
}

/// Everything L-BFGS carries between `step` calls (PyTorch's `state`):
/// saving it with [`Lbfgs::state`] and restoring it with
/// [`Lbfgs::load_state`] (with the same parameter values) resumes a run
/// bit-identically.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LbfgsState {
    /// Curvature pairs (s, y, 1/yᵀs), oldest first.
    pub dirs: VecDeque<(Vec<f64>, Vec<f64>, f64)>,
    /// The last search direction d.
    pub direction: Vec<f64>,
    /// The last step length t.
    pub step_len: f64,
    /// Initial Hessian scaling sᵀy/yᵀy.
    pub h_diag: f64,
    /// The gradient before the last step.
    pub prev_grad: Vec<f64>,
    /// The loss before the last step.
    pub prev_loss: f64,
    /// Iterations so far (over all calls).
    pub iterations: usize,
    /// Closure evaluations so far.
    pub evaluations: usize,
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

impl<T: Element> Lbfgs<T> {
    /// L-BFGS over `params`.
    pub fn new(params: Vec<Parameter<T>>, config: LbfgsConfig) -> Result<Self> {
        if config.max_iter == 0
            || config.history_size == 0
            || config.lr.is_nan()
            || config.lr <= 0.0
        {
            return Err(Error::argument(
                "LBFGS",
                "need lr > 0, max_iter ≥ 1 and history_size ≥ 1",
            ));
        }
        Ok(Lbfgs {
            params,
            config,
            state: LbfgsState {
                h_diag: 1.0,
                ..Default::default()
            },
        })
    }

    /// The state to save for resuming.
    pub fn state(&self) -> LbfgsState {
        self.state.clone()
    }

    /// Restores a state from [`Lbfgs::state`]; its vectors must match the
    /// parameters' total size.
    pub fn load_state(&mut self, state: LbfgsState) -> Result<()> {
        let n: usize = self.params.iter().map(|p| p.numel()).sum();
        let sizes_match = [&state.direction, &state.prev_grad]
            .iter()
            .all(|v| v.is_empty() || v.len() == n)
            && state
                .dirs
                .iter()
                .all(|(s, y, _)| s.len() == n && y.len() == n);
        if !sizes_match {
            return Err(Error::argument(
                "LBFGS",
                format!("the state's vectors do not match the {n} parameters"),
            ));
        }
        self.state = state;
        Ok(())
    }

    fn flat_grad(&self) -> Vec<f64> {
        self.params
            .iter()
            .flat_map(|p| match p.grad() {
                Some(g) => g.data().iter().map(|v| v.as_f64()).collect::<Vec<_>>(),
                None => vec![0.0; p.numel()],
            })
            .collect()
    }

    fn add_to_params(&self, t: f64, d: &[f64]) {
        let mut offset = 0;
        for p in &self.params {
            let n = p.numel();
            let v = p.value();
            p.set_value(Tensor::from_fn(v.shape(), |k| {
                T::from_f64(v.data()[k].as_f64() + t * d[offset + k])
            }));
            offset += n;
        }
    }

    /// Runs up to `max_iter` iterations and returns the loss at the start.
    pub fn step(&mut self, mut closure: impl FnMut() -> Result<f64>) -> Result<f64> {
        let c = self.config;
        let max_eval = c.max_eval.unwrap_or(c.max_iter * 5 / 4);
        let max_abs = |v: &[f64]| v.iter().fold(0.0f64, |m, x| m.max(x.abs()));
        let first_loss = closure()?;
        let mut loss = first_loss;
        self.state.evaluations += 1;
        let mut evals = 1;
        let mut grad = self.flat_grad();
        if max_abs(&grad) <= c.tolerance_grad {
            return Ok(first_loss);
        }
        let mut n_iter = 0;
        while n_iter < c.max_iter {
            n_iter += 1;
            self.state.iterations += 1;
            if self.state.iterations == 1 {
                self.state.direction = grad.iter().map(|g| -g).collect();
                self.state.dirs.clear();
                self.state.h_diag = 1.0;
            } else {
                let y: Vec<f64> = grad
                    .iter()
                    .zip(&self.state.prev_grad)
                    .map(|(g, p)| g - p)
                    .collect();
                let s: Vec<f64> = self
                    .state
                    .direction
                    .iter()
                    .map(|d| d * self.state.step_len)
                    .collect();
                let ys = dot(&y, &s);
                if ys > 1e-10 {
                    if self.state.dirs.len() == c.history_size {
                        self.state.dirs.pop_front();
                    }
                    self.state.h_diag = ys / dot(&y, &y);
                    self.state.dirs.push_back((s, y, 1.0 / ys));
                }
                // Two-loop recursion: d = −H·g.
                let mut q: Vec<f64> = grad.iter().map(|g| -g).collect();
                let mut alphas = vec![0.0; self.state.dirs.len()];
                for (i, (s, y, rho)) in self.state.dirs.iter().enumerate().rev() {
                    alphas[i] = dot(s, &q) * rho;
                    q.iter_mut()
                        .zip(y)
                        .for_each(|(qi, yi)| *qi -= alphas[i] * yi);
                }
                let mut r: Vec<f64> = q.iter().map(|v| v * self.state.h_diag).collect();
                for (i, (s, y, rho)) in self.state.dirs.iter().enumerate() {
                    let beta = dot(y, &r) * rho;
                    r.iter_mut()
                        .zip(s)
                        .for_each(|(ri, si)| *ri += si * (alphas[i] - beta));
                }
                self.state.direction = r;
            }
            self.state.prev_grad.clone_from(&grad);
            self.state.prev_loss = loss;
            self.state.step_len = if self.state.iterations == 1 {
                (1.0f64).min(1.0 / grad.iter().map(|g| g.abs()).sum::<f64>()) * c.lr
            } else {
                c.lr
            };
            let gtd = dot(&grad, &self.state.direction);
            if gtd > -c.tolerance_change {
                break;
            }
            let mut optimal = false;
            if c.strong_wolfe {
                let x0: Vec<Tensor<T>> = self.params.iter().map(|p| p.value()).collect();
                let direction = self.state.direction.clone();
                let start = LinePoint {
                    t: 0.0,
                    f: loss,
                    g: grad.clone(),
                    gtd,
                };
                // φ(t): move to x0 + t·d, evaluate, and move back to x0.
                let evaluate = |t: f64| -> Result<(f64, Vec<f64>)> {
                    self.add_to_params(t, &direction);
                    let value = closure();
                    let g = self.flat_grad();
                    for (p, v) in self.params.iter().zip(&x0) {
                        p.set_value(v.clone());
                    }
                    Ok((value?, g))
                };
                let (accepted, n) = strong_wolfe(
                    evaluate,
                    &direction,
                    start,
                    self.state.step_len,
                    &WolfeSettings::default(),
                )?;
                self.state.step_len = accepted.t;
                self.add_to_params(self.state.step_len, &direction);
                loss = accepted.f;
                grad = accepted.g;
                optimal = max_abs(&grad) <= c.tolerance_grad;
                self.state.evaluations += n;
                evals += n;
            } else {
                self.add_to_params(self.state.step_len, &self.state.direction.clone());
                if n_iter != c.max_iter {
                    loss = closure()?;
                    self.state.evaluations += 1;
                    evals += 1;
                    grad = self.flat_grad();
                    optimal = max_abs(&grad) <= c.tolerance_grad;
                }
            }
            if n_iter == c.max_iter || evals >= max_eval || optimal {
                break;
            }
            if max_abs(&self.state.direction) * self.state.step_len <= c.tolerance_change
                || (loss - self.state.prev_loss).abs() < c.tolerance_change
            {
                break;
            }
        }
        Ok(first_loss)
    }
}
