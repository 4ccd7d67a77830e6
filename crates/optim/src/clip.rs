//! Gradient clipping, as `torch.nn.utils.clip_grad_norm_` / `clip_grad_value_`.

use chainrule_tape::error::{Error, ErrorKind, Result};
use chainrule_tape::{Element, Parameter};

/// ‖x‖_p of a slice: (Σ|x|ᵖ)^(1/p); p = ∞ gives max|x|, p = 0 the number of non-zeros.
fn vector_norm<T: Element>(x: impl Iterator<Item = T>, p: f64) -> f64 {
    let x = x.map(|v| v.as_f64().abs());
    if p == f64::INFINITY {
        x.fold(0.0, |m: f64, v| if v.is_nan() || v > m { v } else { m })
    } else if p == 0.0 {
        x.filter(|&v| v != 0.0).count() as f64
    } else if p == 1.0 {
        x.sum()
    } else if p == 2.0 {
        x.map(|v| v * v).sum::<f64>().sqrt()
    } else {
        x.map(|v| v.powf(p)).sum::<f64>().powf(1.0 / p)
    }
}

/// The optional arguments of [`clip_grad_norm`], with PyTorch's defaults
/// (`clip_grad_norm_(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False)`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ClipGradNormOptions {
    /// The order p of the norm (2; `f64::INFINITY` for the max norm).
    pub norm_type: f64,
    /// Make a NaN or infinite total norm an error (false).
    pub error_if_nonfinite: bool,
}

impl Default for ClipGradNormOptions {
    fn default() -> Self {
        ClipGradNormOptions {
            norm_type: 2.0,
            error_if_nonfinite: false,
        }
    }
}

/// Scales all gradients together so that their global p-norm (the norm of
/// the per-parameter norms, as if all gradients were concatenated) is at
/// most `max_norm`: g ← g·min(1, max_norm/(‖g‖ + 1e-6)). Returns the norm
/// before clipping. Parameters without a gradient are skipped.
/// With `error_if_nonfinite`, a NaN or infinite norm is an error and
/// nothing is changed. A `max_norm` that is negative or NaN is an error
/// (a negative one would flip every gradient's sign, a NaN one make them
/// NaN); infinity never clips.
///
/// ```
/// use chainrule_optim::{clip_grad_norm, ClipGradNormOptions};
/// use chainrule_tape::{Parameter, Tensor};
/// let p = Parameter::new(Tensor::<f64>::zeros([2]));
/// p.set_grad(Some(Tensor::from_vec([2], vec![3.0, 4.0])));
/// let norm = clip_grad_norm(std::slice::from_ref(&p), 1.0, ClipGradNormOptions::default()).unwrap();
/// assert_eq!(norm, 5.0);
/// ```
pub fn clip_grad_norm<T: Element>(
    params: &[Parameter<T>],
    max_norm: f64,
    options: ClipGradNormOptions,
) -> Result<f64> {
    let ClipGradNormOptions {
        norm_type,
        error_if_nonfinite,
    } = options;
    if !crate::non_negative(max_norm) {
        return Err(Error::argument(
            "clip_grad_norm",
            format!("max_norm must be ≥ 0, got {max_norm}"),
        ));
    }
    if !crate::non_negative(norm_type) {
        return Err(Error::argument(
            "clip_grad_norm",
            format!("norm_type must be ≥ 0 or infinity, got {norm_type}"),
        ));
    }
    let grads: Vec<_> = params
        .iter()
        .filter_map(|p| p.grad().map(|g| (p, g)))
        .collect();
    if grads.is_empty() {
        return Ok(0.0);
    }
    let norms: Vec<f64> = grads
        .iter()
        .map(|(_, g)| vector_norm(g.data().iter().copied(), norm_type))
        .collect();
    let total = vector_norm(norms.iter().copied(), norm_type);
    if error_if_nonfinite && !total.is_finite() {
        return Err(Error::new(
            "clip_grad_norm",
            ErrorKind::NonFinite,
            format!("the total norm of order {norm_type} of the gradients is {total}; gradients left unchanged"),
        ));
    }
    // PyTorch clamps with `torch.clamp(coef, max=1.0)`, which keeps a NaN
    // (a NaN norm makes every gradient NaN); `f64::min` would return 1.0
    // and leave the gradients silently unchanged.
    let ratio = max_norm / (total + 1e-6);
    let coef = T::from_f64(if ratio.is_nan() {
        ratio
    } else {
        ratio.min(1.0)
    });
    for (p, mut g) in grads {
        for v in g.data_mut() {
            *v = *v * coef;
        }
        p.set_grad(Some(g));
    }
    Ok(total)
}

/// Clamps every gradient element to [−clip_value, clip_value].
pub fn clip_grad_value<T: Element>(params: &[Parameter<T>], clip_value: f64) -> Result<()> {
    if !crate::non_negative(clip_value) {
        return Err(Error::argument(
            "clip_grad_value",
            format!("clip_value must be ≥ 0, got {clip_value}"),
        ));
    }
    let (lo, hi) = (T::from_f64(-clip_value), T::from_f64(clip_value));
    for p in params {
        if let Some(mut g) = p.grad() {
            for v in g.data_mut() {
                *v = v.max(lo).min(hi);
            }
            p.set_grad(Some(g));
        }
    }
    Ok(())
}
