//! Shape ops: reshape (no copy), permute and transpose (copy into the new order).

use crate::VarOps;
use chainrule_tape::error::{Error, Result};
use chainrule_tape::shape::{fmt_shape, normalize_axis, Shape};
use chainrule_tape::{BackwardContext, Element, InputGrads, Op, Var};
use smallvec::smallvec;

/// A new shape for the same elements in the same order. ∂/∂x = the gradient reshaped back.
pub struct Reshape;
impl<T: Element> Op<T> for Reshape {
    fn name(&self) -> &str {
        "reshape"
    }
    fn formula(&self, input: usize) -> Option<String> {
        let _ = input;
        Some("1 (reshaped back)".into())
    }
    fn backward(&self, cx: &BackwardContext<'_, T>) -> Result<InputGrads<T>> {
        Ok(smallvec![Some(
            cx.grad.try_reshape_to(cx.input(0).shape())?
        )])
    }
}

/// Forward of [`Reshape`]; one dimension may be −1 (inferred), as in PyTorch.
#[track_caller]
pub(crate) fn reshape<T: Element>(x: &Var<T>, shape: &[isize]) -> Result<Var<T>> {
    let n = x.numel();
    let mut inferred: Option<usize> = None;
    let mut known = 1usize;
    for (i, &d) in shape.iter().enumerate() {
        match d {
            -1 if inferred.is_none() => inferred = Some(i),
            d if d >= 0 => known *= d as usize,
            _ => {
                return Err(Error::argument(
                    "reshape",
                    format!(
                        "{} -> {shape:?}: invalid size {d} (only one -1 is allowed)",
                        fmt_shape(x.shape())
                    ),
                ))
            }
        }
    }
    let mut out: Shape = shape.iter().map(|&d| d.max(0) as usize).collect();
    if let Some(i) = inferred {
        if known == 0 || !n.is_multiple_of(known) {
            return Err(Error::shape(
                "reshape",
                format!(
                    "{} -> {shape:?}: {n} elements do not divide into that shape",
                    fmt_shape(x.shape())
                ),
            ));
        }
        out[i] = n / known;
    }
    reshape_to(x, &out)
}

/// [`Reshape`] to an explicit shape.
#[track_caller]
pub(crate) fn reshape_to<T: Element>(x: &Var<T>, shape: &[usize]) -> Result<Var<T>> {
    if shape == x.shape() {
        return Ok(x.clone());
    }
    let v = x.value().try_reshape(shape)?;
    Var::from_op(Reshape, &[x], v)
}

/// Reorders dimensions: output dimension i is input dimension `perm[i]`.
/// ∂/∂x = the gradient permuted by the inverse permutation.
pub struct Permute {
    /// The permutation.
    pub perm: Shape,
}
impl<T: Element> Op<T> for Permute {
    fn name(&self) -> &str {
        "permute"
    }
    fn formula(&self, input: usize) -> Option<String> {
        let _ = input;
        Some("1 (inverse permutation)".into())
    }
    fn describe(&self) -> String {
        format!("permute({:?})", self.perm.as_slice())
    }
    fn backward(&self, cx: &BackwardContext<'_, T>) -> Result<InputGrads<T>> {
        let mut inverse = Shape::filled(0, self.perm.len());
        for (i, &p) in self.perm.iter().enumerate() {
            inverse[p] = i;
        }
        Ok(smallvec![Some(permute(cx.grad, &inverse)?)])
    }
}

/// Forward of [`Permute`].
#[track_caller]
pub(crate) fn permute<T: Element>(x: &Var<T>, perm: &[usize]) -> Result<Var<T>> {
    if perm.iter().enumerate().all(|(i, &p)| i == p) && perm.len() == x.shape().len() {
        return Ok(x.clone());
    }
    let v = x.value().permute(perm)?;
    Var::from_op(Permute { perm: perm.into() }, &[x], v)
}

/// Swaps two dimensions (negative indices count from the end).
#[track_caller]
pub(crate) fn transpose<T: Element>(x: &Var<T>, d0: isize, d1: isize) -> Result<Var<T>> {
    let rank = x.shape().len();
    if rank == 0 {
        normalize_axis("transpose", d0, rank)?;
        normalize_axis("transpose", d1, rank)?;
        return Ok(x.clone());
    }
    let a = normalize_axis("transpose", d0, rank)?;
    let b = normalize_axis("transpose", d1, rank)?;
    let mut perm: Shape = (0..rank).collect();
    perm.swap(a, b);
    permute(x, &perm)
}
