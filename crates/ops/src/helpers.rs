//! Non-differentiable helpers on plain tensors: argmax/argmin, top-k
//! indices, one-hot encoding and comparisons. They return [`Tensor`]s or
//! [`Indices`], never graph values: nothing flows back through them (use the
//! results as masks with `where_` or as indices with `gather`).

use crate::indexing::Indices;
use chainrule_tape::error::{Error, Result};
use chainrule_tape::shape::{fmt_shape, normalize_axis};
use chainrule_tape::{Element, Tensor};

/// Iterates over the lanes along `axis`: calls `f(lane_values, out_index)`.
fn lanes<T: Element>(x: &Tensor<T>, axis: usize, mut f: impl FnMut(&[T], usize)) {
    let shape = x.shape();
    let n = shape[axis];
    let inner: usize = shape[axis + 1..].iter().product();
    let outer: usize = shape[..axis].iter().product();
    let mut lane = Vec::with_capacity(n);
    for o in 0..outer {
        for i in 0..inner {
            lane.clear();
            lane.extend((0..n).map(|k| x.data()[(o * n + k) * inner + i]));
            f(&lane, o * inner + i);
        }
    }
}

fn reduced(shape: &[usize], axis: usize) -> Vec<usize> {
    let mut s = shape.to_vec();
    s.remove(axis);
    s
}

pub(crate) fn arg_extreme<T: Element>(
    x: &Tensor<T>,
    axis: isize,
    max: bool,
    op: &'static str,
) -> Result<Indices> {
    let a = normalize_axis(op, axis, x.rank())?;
    if x.shape().get(a) == Some(&0) || x.numel() == 0 {
        return Err(Error::argument(
            op,
            format!("empty dimension in {}", fmt_shape(x.shape())),
        ));
    }
    if x.rank() == 0 {
        return Indices::new(Vec::new(), vec![0]);
    }
    let out_shape = reduced(x.shape(), a);
    let mut data = vec![0; out_shape.iter().product()];
    lanes(x, a, |lane, o| {
        // First index of the extremum; NaN counts as the extremum, as in PyTorch.
        let mut best = 0;
        for (k, &v) in lane.iter().enumerate() {
            let b = lane[best];
            if b.is_nan() {
                break;
            }
            if v.is_nan() || (max && v > b) || (!max && v < b) {
                best = k;
            }
        }
        data[o] = best;
    });
    Indices::new(out_shape, data)
}

/// Index of the largest value along `axis` (the first on ties; NaN wins), as `torch.argmax(dim)`.
pub fn try_argmax<T: Element>(x: &Tensor<T>, axis: isize) -> Result<Indices> {
    arg_extreme(x, axis, true, "argmax")
}

panicking_twin!(
    /// As [`try_argmax`].
    argmax / try_argmax[T: Element](x: &Tensor<T>, axis: isize) -> Indices
);

/// Index of the smallest value along `axis` (the first on ties; NaN wins), as `torch.argmin(dim)`.
pub fn try_argmin<T: Element>(x: &Tensor<T>, axis: isize) -> Result<Indices> {
    arg_extreme(x, axis, false, "argmin")
}

panicking_twin!(
    /// As [`try_argmin`].
    argmin / try_argmin[T: Element](x: &Tensor<T>, axis: isize) -> Indices
);

/// Indices of the `k` largest (or smallest) values along `axis`, sorted by
/// value (largest first for `largest`), as `torch.topk(...).indices`.
pub fn try_topk_indices<T: Element>(
    x: &Tensor<T>,
    k: usize,
    axis: isize,
    largest: bool,
) -> Result<Indices> {
    let a = normalize_axis("topk", axis, x.rank())?;
    let n = x.shape().get(a).copied().unwrap_or(1);
    if k > n {
        return Err(Error::argument(
            "topk",
            format!("k = {k} exceeds dimension {a} of {}", fmt_shape(x.shape())),
        ));
    }
    let mut out_shape = x.shape().to_vec();
    out_shape[a] = k;
    let inner: usize = x.shape()[a + 1..].iter().product();
    let mut data = vec![0; out_shape.iter().product()];
    lanes(x, a, |lane, o| {
        let mut order: Vec<usize> = (0..lane.len()).collect();
        order.sort_by(|&i, &j| {
            let c = lane[i]
                .partial_cmp(&lane[j])
                .unwrap_or(std::cmp::Ordering::Equal);
            if largest {
                c.reverse()
            } else {
                c
            }
        });
        let (outer, i) = (o / inner, o % inner);
        for (r, &idx) in order.iter().take(k).enumerate() {
            data[(outer * k + r) * inner + i] = idx;
        }
    });
    Indices::new(out_shape, data)
}

panicking_twin!(
    /// As [`try_topk_indices`].
    topk_indices / try_topk_indices[T: Element](x: &Tensor<T>, k: usize, axis: isize, largest: bool) -> Indices
);

/// One-hot rows: shape `indices.shape + [classes]`, 1 at each index
/// (`torch.nn.functional.one_hot`, as floats).
pub fn try_one_hot<T: Element>(indices: &Indices, classes: usize) -> Result<Tensor<T>> {
    if let Some(&bad) = indices.data.iter().find(|&&i| i >= classes) {
        return Err(Error::argument(
            "one_hot",
            format!("class index {bad} is out of range for {classes} classes"),
        ));
    }
    let mut shape = indices.shape.clone();
    shape.push(classes);
    let n = chainrule_tape::shape::try_numel("one_hot", &shape)?;
    let mut data = chainrule_tape::shape::try_filled("one_hot", n, T::zero())?;
    for (row, &c) in indices.data.iter().enumerate() {
        data[row * classes + c] = T::one();
    }
    Ok(Tensor::from_vec(&shape, data))
}

panicking_twin!(
    /// As [`try_one_hot`].
    one_hot / try_one_hot[T: Element](indices: &Indices, classes: usize) -> Tensor<T>
);

/// Elementwise comparisons with broadcasting, as 1/0 masks.
pub trait Compare<T: Element> {
    /// 1 where self = other.
    fn eq_mask(&self, other: &Tensor<T>) -> Result<Tensor<T>>;
    /// 1 where self > other.
    fn gt_mask(&self, other: &Tensor<T>) -> Result<Tensor<T>>;
    /// 1 where self ≥ other.
    fn ge_mask(&self, other: &Tensor<T>) -> Result<Tensor<T>>;
    /// 1 where self < other.
    fn lt_mask(&self, other: &Tensor<T>) -> Result<Tensor<T>>;
    /// 1 where self ≤ other.
    fn le_mask(&self, other: &Tensor<T>) -> Result<Tensor<T>>;
}

fn bit<T: Element>(b: bool) -> T {
    if b {
        T::one()
    } else {
        T::zero()
    }
}

impl<T: Element> Compare<T> for Tensor<T> {
    fn eq_mask(&self, other: &Tensor<T>) -> Result<Tensor<T>> {
        self.broadcast_zip(other, "eq", |a, b| bit(a == b))
    }
    fn gt_mask(&self, other: &Tensor<T>) -> Result<Tensor<T>> {
        self.broadcast_zip(other, "gt", |a, b| bit(a > b))
    }
    fn ge_mask(&self, other: &Tensor<T>) -> Result<Tensor<T>> {
        self.broadcast_zip(other, "ge", |a, b| bit(a >= b))
    }
    fn lt_mask(&self, other: &Tensor<T>) -> Result<Tensor<T>> {
        self.broadcast_zip(other, "lt", |a, b| bit(a < b))
    }
    fn le_mask(&self, other: &Tensor<T>) -> Result<Tensor<T>> {
        self.broadcast_zip(other, "le", |a, b| bit(a <= b))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argmax_topk_one_hot_and_masks() {
        let x = Tensor::from_vec([2, 3], vec![1.0f64, 5.0, 5.0, -1.0, -3.0, 2.0]);
        assert_eq!(argmax(&x, 1).data, vec![1, 2]); // first of the tie
        assert_eq!(argmin(&x, 0).data, vec![1, 1, 1]);
        let top = topk_indices(&x, 2, -1, true);
        assert_eq!(
            (top.shape.clone(), top.data.clone()),
            (vec![2, 2], vec![1, 2, 2, 0])
        );
        let oh: Tensor<f64> = one_hot(&Indices::vector(vec![2, 0]), 3);
        assert_eq!(oh.data(), &[0.0, 0.0, 1.0, 1.0, 0.0, 0.0]);
        assert!(try_one_hot::<f64>(&Indices::vector(vec![3]), 3).is_err());
        let m = x.gt_mask(&Tensor::scalar(1.5)).unwrap();
        assert_eq!(m.data(), &[0.0, 1.0, 1.0, 0.0, 0.0, 1.0]);
    }
}
