//! Levenberg–Marquardt for least-squares losses of small networks.

use crate::non_negative;
use chainrule_tape::error::{Error, ErrorKind, Result};
use chainrule_tape::{no_grad, try_grad, Element, GradOptions, Graph, Parameter, Tensor, Var};

/// Levenberg–Marquardt settings (MATLAB `trainlm`'s defaults).
#[derive(Clone, Copy, Debug)]
pub struct LmConfig {
    /// Initial damping μ (1e-3).
    pub mu: f64,
    /// μ ← μ·mu_dec after an accepted step (0.1).
    pub mu_dec: f64,
    /// μ ← μ·mu_inc after a rejected step (10).
    pub mu_inc: f64,
    /// Give up when μ exceeds this (1e10).
    pub mu_max: f64,
}

impl Default for LmConfig {
    fn default() -> Self {
        LmConfig {
            mu: 1e-3,
            mu_dec: 0.1,
            mu_inc: 10.0,
            mu_max: 1e10,
        }
    }
}

/// What one [`LevenbergMarquardt::step`] did.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LmStep {
    /// E = ½Σe² before the step.
    pub loss_before: f64,
    /// E after the step (equal to `loss_before` if no step was accepted).
    pub loss_after: f64,
    /// The damping μ now.
    pub mu: f64,
    /// Rejected trial steps before acceptance.
    pub rejected: u32,
}

/// Levenberg–Marquardt: for residuals e(w) with Jacobian J = ∂e/∂w
/// (N residuals × P parameters), Δw = −(JᵀJ + μI)⁻¹Jᵀe. A step that lowers
/// E = ½Σe² is accepted and μ ← μ·mu_dec; otherwise μ ← μ·mu_inc and the
/// solve is retried. Costs one P×P solve and N backward passes per step,
/// so it suits small networks.
pub struct LevenbergMarquardt<T: Element> {
    params: Vec<Parameter<T>>,
    /// The settings; `config.mu` is the current damping.
    pub config: LmConfig,
}

impl<T: Element> LevenbergMarquardt<T> {
    /// LM over `params`.
    pub fn new(params: Vec<Parameter<T>>, config: LmConfig) -> Result<Self> {
        if !(non_negative(config.mu)
            && config.mu_dec > 0.0
            && config.mu_dec < 1.0
            && config.mu_inc > 1.0)
        {
            return Err(Error::argument(
                "LevenbergMarquardt",
                "need mu ≥ 0, 0 < mu_dec < 1 < mu_inc",
            ));
        }
        Ok(LevenbergMarquardt { params, config })
    }

    fn loss_at(&self, residuals: &impl Fn(&[Var<T>]) -> Var<T>, values: &[Tensor<T>]) -> f64 {
        no_grad(|| {
            let vars: Vec<Var<T>> = values.iter().cloned().map(Var::constant).collect();
            0.5 * residuals(&vars)
                .value()
                .data()
                .iter()
                .map(|v| v.as_f64().powi(2))
                .sum::<f64>()
        })
    }

    /// One LM step. `residuals` maps the parameters (as graph values, in the
    /// order given to `new`) to the residual vector e.
    pub fn step(&mut self, residuals: impl Fn(&[Var<T>]) -> Var<T>) -> Result<LmStep> {
        let graph = Graph::new();
        let leaves: Vec<Var<T>> = self.params.iter().map(|p| graph.leaf(p.value())).collect();
        let e = residuals(&leaves);
        let n = e.numel();
        let p_total: usize = self.params.iter().map(|p| p.numel()).sum();
        let e_vals: Vec<f64> = e.value().data().iter().map(|v| v.as_f64()).collect();
        let loss_before = 0.5 * e_vals.iter().map(|v| v * v).sum::<f64>();
        // J, one row per residual: a vector-Jacobian product with e_i's one-hot.
        let wrt: Vec<&Var<T>> = leaves.iter().collect();
        let mut j = nalgebra::DMatrix::<f64>::zeros(n, p_total);
        for i in 0..n {
            let mut seed = Tensor::zeros(e.shape());
            seed.data_mut()[i] = T::one();
            let seed = Var::constant(seed);
            let rows = try_grad(
                &[&e],
                &[Some(&seed)],
                &wrt,
                GradOptions {
                    create_graph: false,
                    retain_graph: true,
                },
            )?;
            let mut col = 0;
            for r in rows {
                for v in r.value().data() {
                    j[(i, col)] = v.as_f64();
                    col += 1;
                }
            }
        }
        let ev = nalgebra::DVector::from_vec(e_vals);
        let jtj = j.transpose() * &j;
        let jte = j.transpose() * ev;
        let current: Vec<Tensor<T>> = self.params.iter().map(|p| p.value()).collect();
        let mut rejected = 0;
        loop {
            let damped =
                &jtj + nalgebra::DMatrix::<f64>::identity(p_total, p_total) * self.config.mu;
            let delta = damped.cholesky().map(|c| c.solve(&(-&jte)));
            if let Some(delta) = delta {
                let mut offset = 0;
                let trial: Vec<Tensor<T>> = current
                    .iter()
                    .map(|t| {
                        let d = &delta.as_slice()[offset..offset + t.numel()];
                        offset += t.numel();
                        Tensor::from_fn(t.shape(), |k| T::from_f64(t.data()[k].as_f64() + d[k]))
                    })
                    .collect();
                let loss_after = self.loss_at(&residuals, &trial);
                if loss_after < loss_before {
                    for (p, t) in self.params.iter().zip(trial) {
                        p.set_value(t);
                    }
                    self.config.mu *= self.config.mu_dec;
                    return Ok(LmStep {
                        loss_before,
                        loss_after,
                        mu: self.config.mu,
                        rejected,
                    });
                }
            }
            rejected += 1;
            self.config.mu *= self.config.mu_inc;
            if self.config.mu > self.config.mu_max {
                return Err(Error::new(
                    "LevenbergMarquardt",
                    ErrorKind::Argument,
                    format!("no decreasing step found (mu {:.3e} > mu_max); the fit has converged or stalled at E = {loss_before:.6e}", self.config.mu),
                ));
            }
        }
    }
}
