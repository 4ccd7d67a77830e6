//! Reductions over axes: sum, mean, max, min (with keepdim), and over all
//! elements. Each op's registry cases follow it.

use crate::helpers::arg_extreme;
use crate::indexing::Indices;
use crate::VarOps;
use chainrule_tape::error::{Error, Result};
use chainrule_tape::shape::{fmt_shape, normalize_axes, normalize_axis, reduced_shape, Shape};
use chainrule_tape::{BackwardContext, Element, InputGrads, Op, Tensor, Var};
use smallvec::smallvec;

#[cfg(feature = "strategies")]
use crate::registry::{case, distinct, shape, unary_case, Inputs, OpCase, ANY};
#[cfg(feature = "strategies")]
use proptest::prelude::*;

/// Brings a reduced gradient back to the input's shape: reinsert the reduced
/// axes as size 1 (if they were dropped), then broadcast.
#[track_caller]
fn expand_back<T: Element>(g: &Var<T>, input_shape: &[usize], axes: &[usize]) -> Result<Var<T>> {
    let kept = reduced_shape(input_shape, axes, true);
    g.try_reshape_to(&kept)?.try_broadcast_to(input_shape)
}

/// Σ over `axes`. ∂/∂x = the upstream gradient broadcast back over the reduced axes.
pub struct Sum {
    /// The reduced axes (normalised, ascending).
    pub axes: Shape,
    /// Whether reduced axes stay as size-1 dimensions.
    pub keepdim: bool,
}
impl<T: Element> Op<T> for Sum {
    fn name(&self) -> &str {
        "sum"
    }
    fn formula(&self, input: usize) -> Option<String> {
        let _ = input;
        Some("1 (broadcast over the reduced axes)".into())
    }
    fn describe(&self) -> String {
        format!(
            "sum(axes={:?}, keepdim={})",
            self.axes.as_slice(),
            self.keepdim
        )
    }
    fn backward(&self, cx: &BackwardContext<'_, T>) -> Result<InputGrads<T>> {
        Ok(smallvec![Some(expand_back(
            cx.grad,
            cx.input(0).shape(),
            &self.axes
        )?)])
    }
}

/// Forward of [`Sum`]; `axes` may be negative. Empty `axes` means all axes.
#[track_caller]
pub(crate) fn sum<T: Element>(x: &Var<T>, axes: &[isize], keepdim: bool) -> Result<Var<T>> {
    let axes = resolve("sum", x, axes)?;
    let v = x.value().sum_axes(&axes, keepdim);
    Var::from_op(Sum { axes, keepdim }, &[x], v)
}

#[cfg(feature = "strategies")]
fn sum_cases() -> Vec<OpCase> {
    vec![
        case!(
            "sum_axis1" for [sum],
            ["sum"],
            unary_case(2..=4, ANY),
            |v| v[0].try_sum(&[1], false)
        ),
        case!(
            "sum_last_keepdim" for [sum],
            ["sum"],
            unary_case(1..=3, ANY),
            |v| v[0].try_sum(&[-1], true)
        ),
        case!("sum_all" for [sum_all], ["sum"], unary_case(0..=3, ANY), |v| v[0].try_sum_all()),
    ]
}

/// Mean over `axes` = Σ / (number of reduced elements); composed of [`Sum`] and a scale.
#[track_caller]
pub(crate) fn mean<T: Element>(x: &Var<T>, axes: &[isize], keepdim: bool) -> Result<Var<T>> {
    let resolved = resolve("mean", x, axes)?;
    let count: usize = resolved.iter().map(|&a| x.shape()[a]).product();
    if count == 0 {
        return Err(Error::argument(
            "mean",
            format!("mean over an empty dimension of {}", fmt_shape(x.shape())),
        ));
    }
    Ok(sum(x, axes, keepdim)?.mul_scalar(T::one() / T::from_f64(count as f64)))
}

#[cfg(feature = "strategies")]
fn mean_cases() -> Vec<OpCase> {
    vec![
        case!(
            "mean_axis0" for [mean],
            ["sum", "mul_scalar"],
            unary_case(1..=3, ANY),
            |v| v[0].try_mean(&[0], false)
        ),
        case!(
            "mean_all" for [mean_all],
            ["sum", "mul_scalar"],
            unary_case(0..=3, ANY),
            |v| v[0].try_mean_all()
        ),
    ]
}

/// Normalises axes; an empty list means every axis.
fn resolve<T: Element>(op: &'static str, x: &Var<T>, axes: &[isize]) -> Result<Shape> {
    let rank = x.shape().len();
    if axes.is_empty() {
        Ok((0..rank).collect())
    } else if rank == 0 {
        // A 0-d tensor's one admissible axis (0 or −1, as in PyTorch) is
        // checked, then reduces nothing: the value itself.
        normalize_axes(op, axes, 1).map(|_| Shape::new())
    } else {
        normalize_axes(op, axes, rank)
    }
}

/// max (or min) over `axes`, NaN-propagating. The gradient is split evenly
/// among the elements that attain the extremum, as `torch.amax` does.
pub struct ExtremeReduce {
    /// The reduced axes (normalised, ascending).
    pub axes: Shape,
    /// Whether reduced axes stay as size-1 dimensions.
    pub keepdim: bool,
    /// true for max, false for min.
    pub max: bool,
}
impl<T: Element> Op<T> for ExtremeReduce {
    fn name(&self) -> &str {
        if self.max {
            "max"
        } else {
            "min"
        }
    }
    fn formula(&self, input: usize) -> Option<String> {
        let _ = input;
        Some("[x = extremum] / count".into())
    }
    fn describe(&self) -> String {
        format!(
            "{}(axes={:?}, keepdim={})",
            Op::<T>::name(self),
            self.axes.as_slice(),
            self.keepdim
        )
    }
    fn backward(&self, cx: &BackwardContext<'_, T>) -> Result<InputGrads<T>> {
        let x = cx.input(0);
        let kept = reduced_shape(x.shape(), &self.axes, true);
        let out = cx.output.value().try_reshape(&kept)?;
        // weight = [x attains the extremum] / (number of elements attaining it), a constant.
        let hits =
            x.value().broadcast_zip(
                &out,
                "max",
                |v, m| if v == m { T::one() } else { T::zero() },
            )?;
        let count = hits.sum_axes(&self.axes, true);
        let weight = Var::constant(hits.broadcast_zip(&count, "max", |h, c| h / c)?);
        let g = expand_back(cx.grad, x.shape(), &self.axes)?;
        Ok(smallvec![Some(g.try_mul(&weight)?)])
    }
}

/// Forward of [`ExtremeReduce`].
#[track_caller]
pub(crate) fn extreme<T: Element>(
    x: &Var<T>,
    axes: &[isize],
    keepdim: bool,
    max: bool,
) -> Result<Var<T>> {
    let name = if max { "max" } else { "min" };
    let axes = resolve(name, x, axes)?;
    if axes.iter().any(|&a| x.shape()[a] == 0) || x.numel() == 0 {
        return Err(Error::argument(
            name,
            format!(
                "cannot reduce an empty dimension of {}",
                fmt_shape(x.shape())
            ),
        ));
    }
    let (init, pick): (T, fn(T, T) -> T) = if max {
        (T::neg_infinity(), |acc, v| {
            if v > acc || v.is_nan() {
                v
            } else {
                acc
            }
        })
    } else {
        (
            T::infinity(),
            |acc, v| if v < acc || v.is_nan() { v } else { acc },
        )
    };
    let v: Tensor<T> = x.value().reduce_axes(&axes, keepdim, init, pick);
    Var::from_op(ExtremeReduce { axes, keepdim, max }, &[x], v)
}

/// One input of random rank in `ranks` with distinct values, so the
/// extremum is unique.
#[cfg(feature = "strategies")]
fn distinct_case(ranks: std::ops::RangeInclusive<usize>) -> BoxedStrategy<Inputs> {
    shape(ranks, 4).prop_flat_map(distinct).boxed()
}

/// max's and min's cases, over axes and over all elements.
#[cfg(feature = "strategies")]
fn extreme_cases() -> Vec<OpCase> {
    vec![
        case!("max_axis1" for [max], ["max"], distinct_case(2..=3), |v| v[0].try_max(&[1], false)),
        case!("max_all" for [max_all], ["max"], distinct_case(0..=3), |v| v[0].try_max_all()),
        case!(
            "min_axis0_keepdim" for [min],
            ["min"],
            distinct_case(1..=3),
            |v| v[0].try_min(&[0], true)
        ),
        case!("min_all" for [min_all], ["min"], distinct_case(0..=3), |v| v[0].try_min_all()),
    ]
}

/// `torch.max(x, dim, keepdim)` / `torch.min(x, dim, keepdim)`: the
/// extremum along `dim` and its index (the first on ties; NaN counts as
/// the extremum and propagates, as in PyTorch). The values are a gather at
/// the indices, so the gradient goes to the chosen element only
/// (∂/∂x = scatter of G to the index), unlike [`extreme`], which splits it
/// among ties as `torch.amax` does.
#[track_caller]
pub(crate) fn extreme_dim<T: Element>(
    x: &Var<T>,
    dim: isize,
    keepdim: bool,
    max: bool,
) -> Result<(Var<T>, Indices)> {
    let name = if max { "max_dim" } else { "min_dim" };
    if x.shape().is_empty() {
        // A 0-d value: dim 0 or −1 selects it, as PyTorch.
        normalize_axis(name, dim, 1)?;
        return Ok((x.clone(), Indices::new(Vec::new(), vec![0])?));
    }
    let a = normalize_axis(name, dim, x.shape().len())?;
    let idx = arg_extreme(x.value(), dim, max, name)?;
    let mut kept = idx.shape.clone();
    kept.insert(a, 1);
    let kept = Indices::new(kept, idx.data.clone())?;
    let values = crate::indexing::gather(x, a as isize, &kept)?;
    if keepdim {
        Ok((values, kept))
    } else {
        Ok((values.try_squeeze(Some(a as isize))?, idx))
    }
}

/// max_dim's and min_dim's cases (the values; the indices are constants),
/// on distinct values so the chosen element is unique.
#[cfg(feature = "strategies")]
fn extreme_dim_cases() -> Vec<OpCase> {
    vec![
        case!(
            "max_dim" for [max_dim],
            ["take"],
            distinct_case(2..=3),
            |v| Ok(v[0].try_max_dim(1, false)?.0)
        ),
        case!(
            "min_dim_keepdim" for [min_dim],
            ["take"],
            distinct_case(1..=3),
            |v| Ok(v[0].try_min_dim(0, true)?.0)
        ),
    ]
}

/// This family's registry cases.
#[cfg(feature = "strategies")]
pub(crate) fn cases() -> Vec<OpCase> {
    [
        sum_cases(),
        mean_cases(),
        extreme_cases(),
        extreme_dim_cases(),
    ]
    .concat()
}
