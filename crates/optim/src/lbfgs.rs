//! L-BFGS (limited-memory BFGS), closure-based, as `torch.optim.LBFGS`, with
//! a fixed step or PyTorch's strong-Wolfe line search.

use crate::line_search::{strong_wolfe, LinePoint, WolfeSettings};
use chainrule_tape::error::{Error, Result};
use chainrule_tape::{Element, Parameter, Tensor};

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
    /// How to choose each step length: `None` takes the fixed step
    /// (PyTorch's default), `Some(LineSearchFn::StrongWolfe)` searches.
    pub line_search_fn: Option<LineSearchFn>,
}

/// L-BFGS's line searches (PyTorch's `line_search_fn` values).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LineSearchFn {
    /// `"strong_wolfe"`: a step satisfying the strong Wolfe conditions
    /// (c1 = 1e-4, c2 = 0.9, at most 25 evaluations).
    StrongWolfe,
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
            line_search_fn: None,
        }
    }
}

/// L-BFGS: the search direction d = −H·g comes from the two-loop recursion
/// over the last `history_size` pairs s = Δθ, y = Δg (pairs with sᵀy ≤ 1e-10
/// are skipped), with initial scaling H0 = sᵀy/yᵀy. The first step is
/// min(1, 1/‖g‖₁)·lr, later ones lr; θ ← θ + t·d, or with a line search that
/// t is the line search's first trial and θ moves by the step it accepts. Each `step(closure)` runs up
/// to `max_iter` iterations; the closure must zero the gradients, compute
/// the loss, backpropagate it and return it.
pub struct Lbfgs<T: Element> {
    params: Vec<Parameter<T>>,
    /// The settings.
    pub config: LbfgsConfig,
    state: LbfgsState,
}

/// Everything L-BFGS carries between `step` calls: PyTorch's L-BFGS
/// `state`, with its keys as field names (`H_diag` is `h_diag`). Saving
/// it with [`Lbfgs::state`] and restoring it with [`Lbfgs::load_state`]
/// (with the same parameter values) resumes a run bit-identically.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LbfgsState {
    /// The last search direction d.
    pub d: Vec<f64>,
    /// The last step length t.
    pub t: f64,
    /// Gradient changes y = Δg of the remembered pairs, oldest first.
    pub old_dirs: Vec<Vec<f64>>,
    /// Steps s = Δθ of the remembered pairs, oldest first.
    pub old_stps: Vec<Vec<f64>>,
    /// 1/(yᵀs) of the remembered pairs.
    pub ro: Vec<f64>,
    /// Initial Hessian scaling sᵀy/yᵀy (PyTorch's `H_diag`).
    pub h_diag: f64,
    /// The gradient before the last step.
    pub prev_flat_grad: Vec<f64>,
    /// The loss before the last step.
    pub prev_loss: f64,
    /// Iterations so far (over all calls).
    pub n_iter: usize,
    /// Closure evaluations so far.
    pub func_evals: usize,
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
        let sizes_match = [&state.d, &state.prev_flat_grad]
            .iter()
            .all(|v| v.is_empty() || v.len() == n)
            && state
                .old_dirs
                .iter()
                .chain(&state.old_stps)
                .all(|v| v.len() == n);
        if !sizes_match {
            return Err(Error::argument(
                "LBFGS",
                format!("the state's vectors do not match the {n} parameters"),
            ));
        }
        let pairs = state.ro.len();
        if state.old_dirs.len() != pairs || state.old_stps.len() != pairs {
            return Err(Error::argument(
                "LBFGS",
                format!(
                    "the state has {} old_dirs, {} old_stps and {pairs} ro; they must be equal",
                    state.old_dirs.len(),
                    state.old_stps.len()
                ),
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

    /// The next search direction d from the gradient `grad`: −g on the
    /// first iteration; later, the pair (s = t·d, y = g − g_prev) joins the
    /// history if yᵀs > 1e-10 (dropping the oldest beyond `history_size`,
    /// H_diag ← yᵀs/yᵀy), and the two-loop recursion gives d = −H·g.
    fn update_direction(&mut self, grad: &[f64], history_size: usize) {
        let st = &mut self.state;
        if st.n_iter == 1 {
            st.d = grad.iter().map(|g| -g).collect();
            st.old_dirs.clear();
            st.old_stps.clear();
            st.ro.clear();
            st.h_diag = 1.0;
            return;
        }
        let y: Vec<f64> = grad
            .iter()
            .zip(&st.prev_flat_grad)
            .map(|(g, p)| g - p)
            .collect();
        let s: Vec<f64> = st.d.iter().map(|d| d * st.t).collect();
        let ys = dot(&y, &s);
        if ys > 1e-10 {
            if st.ro.len() == history_size {
                st.old_dirs.remove(0);
                st.old_stps.remove(0);
                st.ro.remove(0);
            }
            st.h_diag = ys / dot(&y, &y);
            st.old_dirs.push(y);
            st.old_stps.push(s);
            st.ro.push(1.0 / ys);
        }
        // Two-loop recursion: d = −H·g.
        let mut q: Vec<f64> = grad.iter().map(|g| -g).collect();
        let mut al = vec![0.0; st.ro.len()];
        for i in (0..st.ro.len()).rev() {
            al[i] = dot(&st.old_stps[i], &q) * st.ro[i];
            q.iter_mut()
                .zip(&st.old_dirs[i])
                .for_each(|(qi, yi)| *qi -= al[i] * yi);
        }
        let mut r: Vec<f64> = q.iter().map(|v| v * st.h_diag).collect();
        for (((y, s), ro), al_i) in st.old_dirs.iter().zip(&st.old_stps).zip(&st.ro).zip(&al) {
            let be_i = dot(y, &r) * ro;
            r.iter_mut()
                .zip(s)
                .for_each(|(ri, si)| *ri += si * (al_i - be_i));
        }
        st.d = r;
    }

    /// Moves θ along d by the step a strong-Wolfe line search accepts
    /// (its first trial is the current t); returns the loss and gradient
    /// there and the closure evaluations the search took.
    fn wolfe_move(
        &mut self,
        closure: &mut impl FnMut() -> Result<f64>,
        loss: f64,
        grad: &[f64],
        gtd: f64,
    ) -> Result<(f64, Vec<f64>, usize)> {
        let x0: Vec<Tensor<T>> = self.params.iter().map(|p| p.value()).collect();
        let direction = self.state.d.clone();
        let start = LinePoint {
            t: 0.0,
            f: loss,
            g: grad.to_vec(),
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
            self.state.t,
            &WolfeSettings::default(),
        )?;
        self.state.t = accepted.t;
        self.add_to_params(self.state.t, &direction);
        Ok((accepted.f, accepted.g, n))
    }

    /// Runs up to `max_iter` iterations and returns the loss at the start.
    pub fn step(&mut self, mut closure: impl FnMut() -> Result<f64>) -> Result<f64> {
        let c = self.config;
        let max_eval = c.max_eval.unwrap_or(c.max_iter * 5 / 4);
        let max_abs = |v: &[f64]| v.iter().fold(0.0f64, |m, x| m.max(x.abs()));
        let first_loss = closure()?;
        let mut loss = first_loss;
        self.state.func_evals += 1;
        let mut evals = 1;
        let mut grad = self.flat_grad();
        if max_abs(&grad) <= c.tolerance_grad {
            return Ok(first_loss);
        }
        let mut n_iter = 0;
        while n_iter < c.max_iter {
            n_iter += 1;
            self.state.n_iter += 1;
            self.update_direction(&grad, c.history_size);
            self.state.prev_flat_grad.clone_from(&grad);
            self.state.prev_loss = loss;
            self.state.t = if self.state.n_iter == 1 {
                (1.0f64).min(1.0 / grad.iter().map(|g| g.abs()).sum::<f64>()) * c.lr
            } else {
                c.lr
            };
            let gtd = dot(&grad, &self.state.d);
            if gtd > -c.tolerance_change {
                break;
            }
            let mut optimal = false;
            if c.line_search_fn == Some(LineSearchFn::StrongWolfe) {
                let (l, g, n) = self.wolfe_move(&mut closure, loss, &grad, gtd)?;
                (loss, grad) = (l, g);
                optimal = max_abs(&grad) <= c.tolerance_grad;
                self.state.func_evals += n;
                evals += n;
            } else {
                self.add_to_params(self.state.t, &self.state.d.clone());
                if n_iter != c.max_iter {
                    loss = closure()?;
                    self.state.func_evals += 1;
                    evals += 1;
                    grad = self.flat_grad();
                    optimal = max_abs(&grad) <= c.tolerance_grad;
                }
            }
            if n_iter == c.max_iter || evals >= max_eval || optimal {
                break;
            }
            if max_abs(&self.state.d) * self.state.t <= c.tolerance_change
                || (loss - self.state.prev_loss).abs() < c.tolerance_change
            {
                break;
            }
        }
        Ok(first_loss)
    }
}
