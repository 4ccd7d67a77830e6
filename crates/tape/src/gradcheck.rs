//! `gradcheck` and `gradgradcheck`: analytical Jacobians from the engine
//! against central finite differences, in f64, with PyTorch's tolerances.

use crate::backward::{try_grad, GradOptions};
use crate::error::Result;
use crate::graph::Graph;
use crate::mode::no_grad;
use crate::tensor::Tensor;
use crate::var::Var;
use rand::{rngs::StdRng, SeedableRng};
use std::fmt;

/// Tolerances for gradient checks. Defaults are PyTorch's
/// (`torch.autograd.gradcheck`): eps 1e-6, atol 1e-5, rtol 1e-3.
#[derive(Clone, Copy, Debug)]
pub struct GradcheckOptions {
    /// Central-difference step: (f(x+eps) − f(x−eps)) / 2eps.
    pub eps: f64,
    /// Absolute tolerance.
    pub atol: f64,
    /// Relative tolerance: an element passes if |analytical − numerical| ≤ atol + rtol·|numerical|.
    pub rtol: f64,
}

impl Default for GradcheckOptions {
    fn default() -> Self {
        GradcheckOptions {
            eps: 1e-6,
            atol: 1e-5,
            rtol: 1e-3,
        }
    }
}

/// The Jacobian entry that misses its tolerance by the most.
#[derive(Clone, Debug)]
pub struct WorstElement {
    /// Which output of the checked function.
    pub output: usize,
    /// Flat index into that output.
    pub output_element: usize,
    /// Flat index into the input.
    pub input_element: usize,
    /// The engine's value of ∂output/∂input at that entry.
    pub analytical: f64,
    /// The finite-difference value.
    pub numerical: f64,
}

/// Per-input result of a gradient check.
#[derive(Clone, Debug)]
pub struct InputReport {
    /// The input's position.
    pub input: usize,
    /// Its shape.
    pub shape: Vec<usize>,
    /// Largest |analytical − numerical| over the input's Jacobian entries.
    pub max_abs_error: f64,
    /// Largest |analytical − numerical| / |numerical| over entries with numerical ≠ 0.
    pub max_rel_error: f64,
    /// The entry furthest outside tolerance (or closest to it, when all pass).
    pub worst: Option<WorstElement>,
    /// Whether every entry is within tolerance.
    pub passed: bool,
}

/// The outcome of [`gradcheck`] or [`gradgradcheck`].
#[derive(Clone, Debug)]
pub struct GradcheckReport {
    /// 1 for gradcheck, 2 for gradgradcheck.
    pub order: u8,
    /// One report per checked input.
    pub inputs: Vec<InputReport>,
    /// Set when the function or its backward failed outright.
    pub error: Option<String>,
    /// The tolerances used.
    pub options: GradcheckOptions,
}

impl GradcheckReport {
    /// True when no error occurred and every input passed.
    pub fn passed(&self) -> bool {
        self.error.is_none() && self.inputs.iter().all(|r| r.passed)
    }

    /// The largest absolute error over all inputs.
    pub fn max_abs_error(&self) -> f64 {
        self.inputs
            .iter()
            .map(|r| r.max_abs_error)
            .fold(0.0, f64::max)
    }

    /// The largest relative error over all inputs.
    pub fn max_rel_error(&self) -> f64 {
        self.inputs
            .iter()
            .map(|r| r.max_rel_error)
            .fold(0.0, f64::max)
    }
}

/// Multi-index of a flat row-major index, for messages.
fn unravel(mut flat: usize, shape: &[usize]) -> Vec<usize> {
    let mut idx = vec![0; shape.len()];
    for d in (0..shape.len()).rev() {
        idx[d] = flat % shape[d].max(1);
        flat /= shape[d].max(1);
    }
    idx
}

impl fmt::Display for GradcheckReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = if self.order == 1 {
            "gradcheck"
        } else {
            "gradgradcheck"
        };
        let verdict = if self.passed() { "passed" } else { "FAILED" };
        writeln!(
            f,
            "{what} {verdict} (eps {:e}, atol {:e}, rtol {:e})",
            self.options.eps, self.options.atol, self.options.rtol
        )?;
        if let Some(e) = &self.error {
            writeln!(f, "  error: {e}")?;
        }
        for r in &self.inputs {
            // gradgradcheck also differentiates with respect to the upstream
            // gradient v it feeds the first backward: that is its last input.
            let name = if self.order == 2 && r.input + 1 == self.inputs.len() {
                "upstream v".to_string()
            } else {
                format!("input {}", r.input)
            };
            write!(
                f,
                "  {name} {:?}: max abs error {:.3e}, max rel error {:.3e}",
                r.shape, r.max_abs_error, r.max_rel_error
            )?;
            match (&r.worst, r.passed) {
                (Some(w), false) => writeln!(
                    f,
                    " — worst at input element {:?} → output {} element {}: analytical {:.9e}, numerical {:.9e}",
                    unravel(w.input_element, &r.shape),
                    w.output,
                    w.output_element,
                    w.analytical,
                    w.numerical
                )?,
                _ => writeln!(f, " ok")?,
            }
        }
        Ok(())
    }
}

type MultiFn<'a> = dyn Fn(&[Var<f64>]) -> Result<Vec<Var<f64>>> + 'a;

/// Compares analytical and numerical Jacobians of `f` at `inputs`, for the
/// inputs whose index is below `checked` (the rest are held fixed).
fn check_jacobians(
    f: &MultiFn<'_>,
    inputs: &[Tensor<f64>],
    checked: usize,
    order: u8,
    opt: GradcheckOptions,
) -> GradcheckReport {
    let mut report = GradcheckReport {
        order,
        inputs: Vec::new(),
        error: None,
        options: opt,
    };
    match jacobians(f, inputs, checked, opt) {
        Ok(reports) => report.inputs = reports,
        Err(e) => report.error = Some(e.to_string()),
    }
    report
}

fn jacobians(
    f: &MultiFn<'_>,
    inputs: &[Tensor<f64>],
    checked: usize,
    opt: GradcheckOptions,
) -> Result<Vec<InputReport>> {
    // Analytical: one vector-Jacobian product per output element, on one retained graph.
    let graph = Graph::<f64>::new();
    let leaves: Vec<Var<f64>> = inputs.iter().map(|t| graph.leaf(t.clone())).collect();
    let outputs = f(&leaves)?;
    let targets: Vec<&Var<f64>> = leaves.iter().take(checked).collect();
    // analytical[o][j][i] = ∂out_o[j]/∂input_i, a tensor shaped like input i.
    let mut analytical: Vec<Vec<Vec<Tensor<f64>>>> = Vec::with_capacity(outputs.len());
    for out in &outputs {
        let mut rows = Vec::with_capacity(out.numel());
        for j in 0..out.numel() {
            if !out.requires_grad() {
                rows.push(targets.iter().map(|t| t.value().zeros_like()).collect());
                continue;
            }
            let mut seed = Tensor::zeros(out.shape());
            seed.data_mut()[j] = 1.0;
            let seed = Var::constant(seed);
            let g = try_grad(
                &[out],
                &[Some(&seed)],
                &targets,
                GradOptions {
                    create_graph: false,
                    retain_graph: true,
                },
            )?;
            rows.push(g.into_iter().map(Var::into_value).collect());
        }
        analytical.push(rows);
    }

    // Numerical: evaluate on a fresh graph (not under no_grad), because for
    // gradgradcheck `f` itself takes a gradient and needs its inputs tracked.
    let eval = |xs: &[Tensor<f64>]| -> Result<Vec<Tensor<f64>>> {
        let graph = Graph::<f64>::new();
        let vars: Vec<Var<f64>> = xs.iter().map(|t| graph.leaf(t.clone())).collect();
        Ok(f(&vars)?.into_iter().map(Var::into_value).collect())
    };

    let mut reports = Vec::with_capacity(checked);
    for i in 0..checked {
        let mut r = InputReport {
            input: i,
            shape: inputs[i].shape().to_vec(),
            max_abs_error: 0.0,
            max_rel_error: 0.0,
            worst: None,
            passed: true,
        };
        let mut worst_excess = f64::NEG_INFINITY;
        for k in 0..inputs[i].numel() {
            let mut xs = inputs.to_vec();
            let x0 = inputs[i].data()[k];
            xs[i].data_mut()[k] = x0 + opt.eps;
            let plus = eval(&xs)?;
            xs[i].data_mut()[k] = x0 - opt.eps;
            let minus = eval(&xs)?;
            for (o, (p, m)) in plus.iter().zip(&minus).enumerate() {
                let rows = &analytical[o];
                for (j, (row, (&pj, &mj))) in
                    rows.iter().zip(p.data().iter().zip(m.data())).enumerate()
                {
                    let numerical = (pj - mj) / (2.0 * opt.eps);
                    let a = row[i].data()[k];
                    let err = (a - numerical).abs();
                    let err = if err.is_nan() { f64::INFINITY } else { err };
                    r.max_abs_error = r.max_abs_error.max(err);
                    if numerical != 0.0 {
                        r.max_rel_error = r.max_rel_error.max(err / numerical.abs());
                    }
                    let excess = err - (opt.atol + opt.rtol * numerical.abs());
                    if excess > 0.0 {
                        r.passed = false;
                    }
                    if excess > worst_excess {
                        worst_excess = excess;
                        r.worst = Some(WorstElement {
                            output: o,
                            output_element: j,
                            input_element: k,
                            analytical: a,
                            numerical,
                        });
                    }
                }
            }
        }
        reports.push(r);
    }
    Ok(reports)
}

/// Checks first derivatives of `f` at `inputs` against central differences
/// with PyTorch's default tolerances. All inputs are differentiated.
///
/// ```
/// use chainrule_tape::{gradcheck, Tensor};
/// let x = Tensor::from_vec([3], vec![0.5, -1.0, 2.0]);
/// let report = gradcheck(|v| &(&v[0] * &v[0]) * 3.0, &[x]);
/// assert!(report.passed(), "{report}");
/// ```
pub fn gradcheck(f: impl Fn(&[Var<f64>]) -> Var<f64>, inputs: &[Tensor<f64>]) -> GradcheckReport {
    gradcheck_with(f, inputs, GradcheckOptions::default())
}

/// [`gradcheck`] with explicit tolerances.
pub fn gradcheck_with(
    f: impl Fn(&[Var<f64>]) -> Var<f64>,
    inputs: &[Tensor<f64>],
    options: GradcheckOptions,
) -> GradcheckReport {
    try_gradcheck_with(|v| Ok(f(v)), inputs, options)
}

/// [`gradcheck`] for a fallible function (an error becomes a failed report).
pub fn try_gradcheck_with(
    f: impl Fn(&[Var<f64>]) -> Result<Var<f64>>,
    inputs: &[Tensor<f64>],
    options: GradcheckOptions,
) -> GradcheckReport {
    let multi = |v: &[Var<f64>]| f(v).map(|o| vec![o]);
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        check_jacobians(&multi, inputs, inputs.len(), 1, options)
    }));
    caught.unwrap_or_else(|p| panicked(1, options, p))
}

fn panicked(
    order: u8,
    options: GradcheckOptions,
    p: Box<dyn std::any::Any + Send>,
) -> GradcheckReport {
    let msg = p
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()));
    GradcheckReport {
        order,
        inputs: Vec::new(),
        error: Some(format!("panicked: {}", msg.unwrap_or_default())),
        options,
    }
}

/// Checks second derivatives: the gradient of `f` (a vector-Jacobian product
/// with a fixed random upstream gradient `v`) is itself gradchecked with
/// respect to the inputs and `v`, as `torch.autograd.gradgradcheck` does.
pub fn gradgradcheck(
    f: impl Fn(&[Var<f64>]) -> Var<f64>,
    inputs: &[Tensor<f64>],
) -> GradcheckReport {
    gradgradcheck_with(f, inputs, GradcheckOptions::default())
}

/// [`gradgradcheck`] with explicit tolerances.
pub fn gradgradcheck_with(
    f: impl Fn(&[Var<f64>]) -> Var<f64>,
    inputs: &[Tensor<f64>],
    options: GradcheckOptions,
) -> GradcheckReport {
    try_gradgradcheck_with(|v| Ok(f(v)), inputs, options)
}

/// [`gradgradcheck`] for a fallible function.
pub fn try_gradgradcheck_with(
    f: impl Fn(&[Var<f64>]) -> Result<Var<f64>>,
    inputs: &[Tensor<f64>],
    options: GradcheckOptions,
) -> GradcheckReport {
    let n = inputs.len();
    let out_shape = match no_grad(|| {
        f(&inputs
            .iter()
            .cloned()
            .map(Var::constant)
            .collect::<Vec<_>>())
    }) {
        Ok(o) => o.shape().to_vec(),
        Err(e) => {
            return GradcheckReport {
                order: 2,
                inputs: Vec::new(),
                error: Some(e.to_string()),
                options,
            };
        }
    };
    let mut rng = StdRng::seed_from_u64(0x5eed);
    let upstream = Tensor::<f64>::rand_uniform(&out_shape, -1.0, 1.0, &mut rng);
    let mut all = inputs.to_vec();
    all.push(upstream);
    let vjp = |vars: &[Var<f64>]| -> Result<Vec<Var<f64>>> {
        let out = f(&vars[..n])?;
        if !out.requires_grad() {
            return Ok(vars[..n]
                .iter()
                .map(|v| Var::constant(v.value().zeros_like()))
                .collect());
        }
        let xs: Vec<&Var<f64>> = vars[..n].iter().collect();
        try_grad(
            &[&out],
            &[Some(&vars[n])],
            &xs,
            GradOptions {
                create_graph: true,
                retain_graph: true,
            },
        )
    };
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        check_jacobians(&vjp, &all, n + 1, 2, options)
    }));
    caught.unwrap_or_else(|p| panicked(2, options, p))
}
