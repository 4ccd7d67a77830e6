//! Indexing: `take` (gather by flat index) and its adjoint `put_add`
//! (scatter-add by flat index) are the two primitive ops; gather,
//! index_select, narrow/slice (with step), scatter_add and pad are built on
//! them, so each is differentiable to any order (take's backward is a
//! put_add, whose backward is a take). `where_`/masked_fill select
//! elementwise. (Concatenation, in `shape_ops`, narrows its gradient.)
//! Each op's registry cases follow it; their index and mask patterns are
//! `registry::pattern_indices` and `registry::pattern_mask`.

use chainrule_tape::error::{Error, ErrorKind, Result};
use chainrule_tape::shape::{
    add_size, contiguous_strides, fmt_shape, normalize_axis, numel, try_filled, try_numel, Shape,
};
use chainrule_tape::{BackwardContext, Element, InputGrads, Op, Tensor, Var};
use smallvec::smallvec;
use std::sync::Arc;

#[cfg(feature = "strategies")]
use crate::registry::{case, fixed, pattern_indices, pattern_mask, unary_fixed, OpCase, ANY};
#[cfg(feature = "strategies")]
use crate::VarOps;

/// Integer indices with a shape (class targets, gather indices, argmax
/// results). Not differentiable; ops take them as constants.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Indices {
    /// Dimensions.
    pub shape: Vec<usize>,
    /// Row-major values.
    pub data: Vec<usize>,
}

/// A 1-D index vector, as [`Indices::vector`].
impl From<Vec<usize>> for Indices {
    fn from(data: Vec<usize>) -> Self {
        Indices::vector(data)
    }
}

/// A 1-D index vector copied from a slice, as [`Indices::vector`].
impl From<&[usize]> for Indices {
    fn from(data: &[usize]) -> Self {
        Indices::vector(data.to_vec())
    }
}

/// A 1-D index vector copied from an array.
impl<const N: usize> From<[usize; N]> for Indices {
    fn from(data: [usize; N]) -> Self {
        Indices::vector(data.to_vec())
    }
}

impl Indices {
    /// Indices of the given shape; `data.len()` must equal the shape's size.
    pub fn new(shape: impl Into<Vec<usize>>, data: Vec<usize>) -> Result<Self> {
        let shape = shape.into();
        if try_numel("indices", &shape)? != data.len() {
            return Err(Error::shape(
                "indices",
                format!("{} values for shape {}", data.len(), fmt_shape(&shape)),
            ));
        }
        Ok(Indices { shape, data })
    }

    /// A 1-D index vector.
    pub fn vector(data: Vec<usize>) -> Self {
        Indices {
            shape: vec![data.len()],
            data,
        }
    }

    /// Number of indices.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
}

/// `y = x.flat[indices]`, shaped like the index array. ∂/∂x = `put_add(g, indices)`.
pub struct Take {
    /// Flat source index of each output element.
    pub indices: Arc<[usize]>,
}
impl<T: Element> Op<T> for Take {
    fn name(&self) -> &str {
        "take"
    }
    fn formula(&self, input: usize) -> Option<String> {
        let _ = input;
        Some("scatter-add of G to the taken positions".into())
    }
    fn backward(&self, cx: &BackwardContext<'_, T>) -> Result<InputGrads<T>> {
        let shape = cx.input(0).shape();
        Ok(smallvec![Some(put_add(
            cx.grad,
            self.indices.clone(),
            shape
        )?)])
    }
}

/// `y = zeros(shape); y.flat[indices[i]] += x.flat[i]`. ∂/∂x = `take(g, indices)`.
pub struct PutAdd {
    /// Flat destination index of each input element.
    pub indices: Arc<[usize]>,
}
impl<T: Element> Op<T> for PutAdd {
    fn name(&self) -> &str {
        "put_add"
    }
    fn formula(&self, input: usize) -> Option<String> {
        let _ = input;
        Some("G at the destinations (a take)".into())
    }
    fn backward(&self, cx: &BackwardContext<'_, T>) -> Result<InputGrads<T>> {
        let g = take(cx.grad, self.indices.clone(), cx.input(0).shape())?;
        Ok(smallvec![Some(g)])
    }
}

/// [`Take`]: output of shape `out_shape` (whose size is `indices.len()`).
#[track_caller]
pub(crate) fn take<T: Element>(
    x: &Var<T>,
    indices: Arc<[usize]>,
    out_shape: &[usize],
) -> Result<Var<T>> {
    debug_assert_eq!(numel(out_shape), indices.len());
    let src = x.value().data();
    if let Some(&bad) = indices.iter().find(|&&i| i >= src.len()) {
        return Err(Error::new(
            "take",
            ErrorKind::Argument,
            format!("index {bad} is out of range for {} elements", src.len()),
        ));
    }
    let data: Vec<T> = indices.iter().map(|&i| src[i]).collect();
    Var::from_op(Take { indices }, &[x], Tensor::from_vec(out_shape, data))
}

/// A [`Take`] node whose output the caller has already gathered
/// (`out.flat[i] = x.flat[indices[i]]`), e.g. max-pooling's maxima found
/// while scanning for the argmax. The caller guarantees that the indices
/// are in range and match `out` (checked in debug builds).
#[track_caller]
pub(crate) fn take_computed<T: Element>(
    x: &Var<T>,
    indices: Arc<[usize]>,
    out: Tensor<T>,
) -> Result<Var<T>> {
    debug_assert_eq!(out.numel(), indices.len());
    debug_assert!(indices.iter().zip(out.data()).all(|(&i, v)| {
        let s = x.value().data()[i];
        s == *v || (s.is_nan() && v.is_nan())
    }));
    Var::from_op(Take { indices }, &[x], out)
}

/// [`PutAdd`] into zeros of `shape`.
#[track_caller]
pub(crate) fn put_add<T: Element>(
    x: &Var<T>,
    indices: Arc<[usize]>,
    shape: &[usize],
) -> Result<Var<T>> {
    let n = numel(shape);
    let mut data = try_filled("put_add", n, T::zero())?;
    for (&i, &v) in indices.iter().zip(x.value().data()) {
        if i >= n {
            return Err(Error::argument(
                "put_add",
                format!("index {i} is out of range for {}", fmt_shape(shape)),
            ));
        }
        data[i] = data[i] + v;
    }
    Var::from_op(PutAdd { indices }, &[x], Tensor::from_vec(shape, data))
}

/// Flat source indices for selecting positions `pick(p)` along `axis` for
/// every multi-index p of `out_shape` (all other coordinates kept).
fn along_axis(
    src_shape: &[usize],
    out_shape: &[usize],
    axis: usize,
    mut pick: impl FnMut(usize, usize) -> usize,
) -> Vec<usize> {
    let src_strides = contiguous_strides(src_shape);
    let n = numel(out_shape);
    let mut out = Vec::with_capacity(n);
    let mut coord: Shape = Shape::filled(0, out_shape.len());
    for flat in 0..n {
        let mut offset = 0;
        for (d, &c) in coord.iter().enumerate() {
            let c = if d == axis { pick(flat, c) } else { c };
            offset += c * src_strides[d];
        }
        out.push(offset);
        // Advance the row-major coordinate.
        for d in (0..out_shape.len()).rev() {
            coord[d] += 1;
            if coord[d] < out_shape[d] {
                break;
            }
            coord[d] = 0;
        }
    }
    out
}

fn index_error(op: &'static str, index: usize, axis: usize, shape: &[usize]) -> Error {
    Error::new(
        op,
        ErrorKind::Argument,
        format!(
            "index {index} is out of range for dimension {axis} (size {}) of {}",
            shape[axis],
            fmt_shape(shape)
        ),
    )
}

/// Elements `start, start+step, ...` (before `end`) along `axis`, as
/// `x[..., start:end:step, ...]`. Differentiable (a [`Take`]).
#[track_caller]
pub(crate) fn slice<T: Element>(
    x: &Var<T>,
    axis: isize,
    start: usize,
    end: usize,
    step: usize,
) -> Result<Var<T>> {
    let a = normalize_axis("slice", axis, x.shape().len())?;
    let size = x.shape()[a];
    if step == 0 || start > end || end > size {
        return Err(Error::argument(
            "slice",
            format!(
                "{}: [{start}:{end}:{step}] along dimension {a} of size {size} (need start ≤ end ≤ size, step ≥ 1)",
                fmt_shape(x.shape())
            ),
        ));
    }
    let len = (end - start).div_ceil(step);
    let mut out_shape = x.shape().to_vec();
    out_shape[a] = len;
    let idx = along_axis(x.shape(), &out_shape, a, |_, c| start + c * step);
    take(x, idx.into(), &out_shape)
}

#[cfg(feature = "strategies")]
fn slice_cases() -> Vec<OpCase> {
    vec![case!(
        "slice_step" for [slice],
        ["take"],
        unary_fixed(&[3, 5], ANY),
        |v| v[0].try_slice(-1, 1, 5, 2)
    )]
}

/// `len` elements from `start` along `axis` (`torch.narrow`).
#[track_caller]
pub(crate) fn narrow<T: Element>(
    x: &Var<T>,
    axis: isize,
    start: usize,
    len: usize,
) -> Result<Var<T>> {
    slice(x, axis, start, start.saturating_add(len), 1)
}

#[cfg(feature = "strategies")]
fn narrow_cases() -> Vec<OpCase> {
    vec![case!(
        "narrow" for [narrow],
        ["take"],
        unary_fixed(&[4, 3], ANY),
        |v| v[0].try_narrow(0, 1, 2)
    )]
}

/// Rows `index` along `axis` (`torch.index_select`); `index` is 1-D.
#[track_caller]
pub(crate) fn index_select<T: Element>(x: &Var<T>, axis: isize, index: &Indices) -> Result<Var<T>> {
    let a = normalize_axis("index_select", axis, x.shape().len())?;
    if index.shape.len() != 1 {
        return Err(Error::shape(
            "index_select",
            format!("index must be 1-D, got {}", fmt_shape(&index.shape)),
        ));
    }
    let index = index.data.as_slice();
    if let Some(&bad) = index.iter().find(|&&i| i >= x.shape()[a]) {
        return Err(index_error("index_select", bad, a, x.shape()));
    }
    let mut out_shape = x.shape().to_vec();
    out_shape[a] = index.len();
    let idx = along_axis(x.shape(), &out_shape, a, |_, c| index[c]);
    take(x, idx.into(), &out_shape)
}

/// index_select's case: a repeated index, so gradients collide.
#[cfg(feature = "strategies")]
fn index_select_cases() -> Vec<OpCase> {
    vec![case!(
        "index_select" for [index_select],
        ["take"],
        unary_fixed(&[2, 4, 3], ANY),
        |v| v[0].try_index_select(1, &Indices::from([3, 0, 3]))
    )]
}

fn check_gather_shape(
    op: &'static str,
    x_shape: &[usize],
    a: usize,
    index: &Indices,
) -> Result<()> {
    let ok = index.shape.len() == x_shape.len()
        && index
            .shape
            .iter()
            .zip(x_shape)
            .enumerate()
            .all(|(d, (&i, &s))| d == a || i <= s);
    if !ok {
        return Err(Error::shape(
            op,
            format!(
                "index {} must have the rank of {} and no larger size outside dimension {a}",
                fmt_shape(&index.shape),
                fmt_shape(x_shape)
            ),
        ));
    }
    if let Some(&bad) = index.data.iter().find(|&&i| i >= x_shape[a]) {
        return Err(index_error(op, bad, a, x_shape));
    }
    Ok(())
}

/// out[p] = x[p with p[axis] = index[p]] (`torch.gather`).
/// ∂/∂x = scatter-add of G to the gathered positions.
#[track_caller]
pub(crate) fn gather<T: Element>(x: &Var<T>, axis: isize, index: &Indices) -> Result<Var<T>> {
    let a = normalize_axis("gather", axis, x.shape().len())?;
    check_gather_shape("gather", x.shape(), a, index)?;
    let idx = along_axis(x.shape(), &index.shape, a, |flat, _| index.data[flat]);
    take(x, idx.into(), &index.shape)
}

#[cfg(feature = "strategies")]
fn gather_cases() -> Vec<OpCase> {
    vec![case!(
        "gather" for [gather],
        ["take"],
        unary_fixed(&[3, 4], ANY),
        |v| v[0].try_gather(1, &pattern_indices(&[3, 5], 4))
    )]
}

/// x + (src scattered along `axis` by `index`, summing collisions)
/// (`torch.scatter_add`). Differentiable in x and src.
#[track_caller]
pub(crate) fn scatter_add<T: Element>(
    x: &Var<T>,
    axis: isize,
    index: &Indices,
    src: &Var<T>,
) -> Result<Var<T>> {
    let a = normalize_axis("scatter_add", axis, x.shape().len())?;
    check_gather_shape("scatter_add", x.shape(), a, index)?;
    if src.shape().len() != index.shape.len()
        || src.shape().iter().zip(&index.shape).any(|(&s, &i)| s < i)
    {
        return Err(Error::shape(
            "scatter_add",
            format!(
                "src {} must be at least as large as index {} in every dimension",
                fmt_shape(src.shape()),
                fmt_shape(&index.shape)
            ),
        ));
    }
    let dst = along_axis(x.shape(), &index.shape, a, |flat, _| index.data[flat]);
    // The part of src the index covers (src may be larger, as in PyTorch).
    let src_part = if src.shape() == index.shape.as_slice() {
        src.clone()
    } else {
        let picks = along_axis(src.shape(), &index.shape, usize::MAX, |_, c| c);
        take(src, picks.into(), &index.shape)?
    };
    x.try_add(&put_add(&src_part, dst.into(), x.shape())?)
}

#[cfg(feature = "strategies")]
fn scatter_add_cases() -> Vec<OpCase> {
    vec![case!(
        "scatter_add" for [scatter_add],
        ["put_add", "add"],
        fixed(vec![(vec![3, 4], ANY), (vec![3, 5], ANY)]),
        |v| v[0].try_scatter_add(1, &pattern_indices(&[3, 5], 4), &v[1])
    )]
}

/// Constant padding. `pads` lists (before, after) pairs from the last
/// dimension backwards, as `torch.nn.functional.pad`: `[left, right, top,
/// bottom]` pads width then height. Differentiable in x (a [`PutAdd`]).
#[track_caller]
pub(crate) fn pad<T: Element>(x: &Var<T>, pads: &[usize], value: T) -> Result<Var<T>> {
    let rank = x.shape().len();
    if !pads.len().is_multiple_of(2) || pads.len() / 2 > rank {
        return Err(Error::argument(
            "pad",
            format!(
                "{} pad values for {}: need (before, after) pairs for at most {rank} dimensions",
                pads.len(),
                fmt_shape(x.shape())
            ),
        ));
    }
    let mut before = vec![0; rank];
    let mut out_shape = x.shape().to_vec();
    for (k, pair) in pads.chunks(2).enumerate() {
        let d = rank - 1 - k;
        before[d] = pair[0];
        let grown = add_size("pad", "padding", pair[0], pair[1])?;
        out_shape[d] = add_size("pad", "padded dimension", out_shape[d], grown)?;
    }
    try_numel("pad", &out_shape)?;
    let out_strides = contiguous_strides(&out_shape);
    let n = x.numel();
    let mut dst = Vec::with_capacity(n);
    let mut coord = vec![0usize; rank];
    for _ in 0..n {
        dst.push(
            coord
                .iter()
                .zip(&before)
                .zip(out_strides.iter())
                .map(|((c, b), s)| (c + b) * s)
                .sum(),
        );
        for d in (0..rank).rev() {
            coord[d] += 1;
            if coord[d] < x.shape()[d] {
                break;
            }
            coord[d] = 0;
        }
    }
    let dst: Arc<[usize]> = dst.into();
    let placed = put_add(x, dst.clone(), &out_shape)?;
    if value == T::zero() {
        return Ok(placed);
    }
    let mut border = Tensor::try_full(&out_shape, value)?;
    for &i in dst.iter() {
        border.data_mut()[i] = T::zero();
    }
    placed.try_add(&Var::constant(border))
}

#[cfg(feature = "strategies")]
fn pad_cases() -> Vec<OpCase> {
    vec![case!(
        "pad" for [pad],
        ["put_add", "add"],
        unary_fixed(&[2, 2, 3], ANY),
        |v| v[0].try_pad(&[1, 2, 0, 1], 0.5)
    )]
}

/// Picks `a` where `mask` is nonzero and `b` elsewhere, all three
/// broadcasting together. ∂/∂a = G·mask, ∂/∂b = G·(1 − mask), each summed
/// back to its operand's shape. Unlike a·m + b·(1 − m), an infinite `b`
/// under the mask does not turn into NaN.
pub struct Where<T: Element> {
    /// The mask (1 picks a), broadcast to the output's shape.
    pub mask: Tensor<T>,
}
impl<T: Element> Op<T> for Where<T> {
    fn name(&self) -> &str {
        "where"
    }
    fn formula(&self, input: usize) -> Option<String> {
        Some(if input == 0 { "mask" } else { "1 − mask" }.into())
    }
    fn backward(&self, cx: &BackwardContext<'_, T>) -> Result<InputGrads<T>> {
        let mut out: InputGrads<T> = smallvec![None, None];
        let m = Var::constant(self.mask.clone());
        if cx.needs(0) {
            let g = cx.grad.try_mul(&m)?;
            out[0] = Some(chainrule_tape::arith::reduce_to(g, cx.input(0).shape())?);
        }
        if cx.needs(1) {
            let g = cx.grad.try_mul(&m.rsub_scalar(T::one()))?;
            out[1] = Some(chainrule_tape::arith::reduce_to(g, cx.input(1).shape())?);
        }
        Ok(out)
    }
}

/// [`Where`]: mask ? a : b with broadcasting (`torch.where`).
#[track_caller]
pub fn try_where_<T: Element>(mask: &Tensor<T>, a: &Var<T>, b: &Var<T>) -> Result<Var<T>> {
    let ab = chainrule_tape::shape::broadcast_shapes("where", a.shape(), b.shape())?;
    let out_shape = chainrule_tape::shape::broadcast_shapes("where", &ab, mask.shape())?;
    let m = mask
        .broadcast_to(&out_shape)?
        .map(|v| if v != T::zero() { T::one() } else { T::zero() });
    let (av, bv) = (
        a.value().broadcast_to(&out_shape)?,
        b.value().broadcast_to(&out_shape)?,
    );
    let data: Vec<T> = m
        .data()
        .iter()
        .zip(av.data().iter().zip(bv.data()))
        .map(|(&k, (&x, &y))| if k != T::zero() { x } else { y })
        .collect();
    Var::from_op(
        Where { mask: m },
        &[a, b],
        Tensor::from_vec(&out_shape, data),
    )
}

panicking_twin!(
    /// As [`try_where_`].
    where_ / try_where_[T: Element](mask: &Tensor<T>, a: &Var<T>, b: &Var<T>) -> Var<T>
);

#[cfg(feature = "strategies")]
fn where_cases() -> Vec<OpCase> {
    vec![case!(
        "where" for [where_],
        ["where"],
        fixed(vec![(vec![2, 3], ANY), (vec![3], ANY)]),
        |v| try_where_(&pattern_mask(&[2, 3]), &v[0], &v[1])
    )]
}

/// x with `value` where `mask` is nonzero (`torch.masked_fill`).
#[track_caller]
pub(crate) fn masked_fill<T: Element>(x: &Var<T>, mask: &Tensor<T>, value: T) -> Result<Var<T>> {
    try_where_(mask, &Var::constant(Tensor::scalar(value)), x)
}

#[cfg(feature = "strategies")]
fn masked_fill_cases() -> Vec<OpCase> {
    vec![case!(
        "masked_fill" for [masked_fill],
        ["where"],
        unary_fixed(&[3, 4], ANY),
        |v| v[0].try_masked_fill(&pattern_mask(&[3, 4]), -1.5)
    )]
}

/// This family's registry cases.
#[cfg(feature = "strategies")]
pub(crate) fn cases() -> Vec<OpCase> {
    [
        slice_cases(),
        narrow_cases(),
        index_select_cases(),
        gather_cases(),
        scatter_add_cases(),
        pad_cases(),
        where_cases(),
        masked_fill_cases(),
    ]
    .concat()
}
