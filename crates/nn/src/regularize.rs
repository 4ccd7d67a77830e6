//! Regularization over a module's parameters: L1 and L2 penalties (to add
//! to a loss) and the max-norm constraint (applied after an optimizer step).

use crate::module::Module;
use chainrule_ops::VarOps;
use chainrule_tape::error::{or_panic, Error, Result};
use chainrule_tape::{Element, Graph, Parameter, Tensor, Var};

/// Which parameters a penalty covers.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Scope {
    /// Every parameter.
    All,
    /// Weights only: parameters of rank ≥ 2, which leaves out biases and the
    /// scales and shifts of normalization layers (rank 1).
    WeightsOnly,
}

fn selected<T: Element>(m: &(impl Module<T> + ?Sized), scope: Scope) -> Vec<Parameter<T>> {
    m.parameters()
        .into_iter()
        .filter(|p| scope == Scope::All || p.shape().len() >= 2)
        .collect()
}

fn penalty<T: Element>(
    g: &Graph<T>,
    params: Vec<Parameter<T>>,
    term: impl Fn(&Var<T>) -> Result<Var<T>>,
) -> Result<Var<T>> {
    let mut total = Var::constant(Tensor::scalar(T::zero()));
    for p in params {
        total = total.try_add(&term(&g.param(&p))?.try_sum_all()?)?;
    }
    Ok(total)
}

/// Σ |θ| over the chosen parameters (add λ·this to the loss: lasso, sparse weights).
pub fn l1_penalty<T: Element>(
    g: &Graph<T>,
    m: &(impl Module<T> + ?Sized),
    scope: Scope,
) -> Result<Var<T>> {
    penalty(g, selected(m, scope), |v| v.try_abs())
}

/// Σ θ² over the chosen parameters (add (λ/2)·this to the loss: weight
/// decay's gradient λθ, as SGD's `weight_decay = λ`).
pub fn l2_penalty<T: Element>(
    g: &Graph<T>,
    m: &(impl Module<T> + ?Sized),
    scope: Scope,
) -> Result<Var<T>> {
    penalty(g, selected(m, scope), |v| v.try_square())
}

/// Max-norm constraint (Srebro et al.; used with dropout by Srivastava et
/// al. 2014): each output unit's incoming weight vector (row i of
/// [out, …]) with L2 norm above `max_norm` is rescaled to norm `max_norm`,
/// as `torch.renorm(w, 2, 0, max_norm)`. Returns how many rows were rescaled.
///
/// # Panics
///
/// If `max_norm` is negative or NaN; [`try_max_norm`] returns the error.
#[track_caller]
pub fn max_norm<T: Element>(p: &Parameter<T>, max_norm: f64) -> usize {
    or_panic(try_max_norm(p, max_norm))
}

/// [`max_norm`], or an argument error naming `max_norm` if it is negative
/// or NaN (`torch.renorm` rejects a negative maxnorm; a NaN one would never
/// clip).
pub fn try_max_norm<T: Element>(p: &Parameter<T>, max_norm: f64) -> Result<usize> {
    if max_norm.is_nan() || max_norm < 0.0 {
        return Err(Error::argument(
            "max_norm",
            format!("max_norm must be ≥ 0, got {max_norm}"),
        ));
    }
    let v = p.value();
    if v.rank() == 0 {
        return Ok(0);
    }
    let rows = v.shape()[0];
    let width = v.numel() / rows.max(1);
    let mut data = v.to_vec();
    let mut clipped = 0;
    for row in data.chunks_mut(width.max(1)) {
        let norm = row.iter().map(|x| x.as_f64().powi(2)).sum::<f64>().sqrt();
        if norm > max_norm {
            // PyTorch's renorm divides by (norm + 1e-7).
            let scale = T::from_f64(max_norm / (norm + 1e-7));
            row.iter_mut().for_each(|x| *x = *x * scale);
            clipped += 1;
        }
    }
    p.set_value(Tensor::from_vec(v.shape(), data));
    Ok(clipped)
}
