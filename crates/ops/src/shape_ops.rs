//! Shape ops: reshape (no copy), permute and transpose (copy into the new
//! order), concatenation and stacking, split/chunk (narrowed views, see
//! `indexing`), squeeze/unsqueeze/flatten (reshapes), expand and repeat
//! (broadcasts). Each op's registry cases follow it.

use crate::indexing::narrow;
use crate::VarOps;
use chainrule_tape::error::{Error, Result};
use chainrule_tape::shape::{add_size, fmt_shape, mul_size, normalize_axis, try_numel, Shape};
use chainrule_tape::{BackwardContext, Element, InputGrads, Op, Tensor, Var};
use smallvec::{smallvec, SmallVec};

#[cfg(feature = "strategies")]
use crate::registry::{case, fixed, unary_case, unary_fixed, OpCase, ANY};

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
            d if d >= 0 => known = mul_size("reshape", "known dimensions", known, d as usize)?,
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

/// reshape's case: through an explicit [n, 1], then back with an inferred −1.
#[cfg(feature = "strategies")]
fn reshape_cases() -> Vec<OpCase> {
    vec![case!(
        "reshape" for [reshape_to, reshape],
        ["reshape"],
        unary_case(1..=3, ANY),
        |v| v[0].try_reshape_to(&[v[0].numel(), 1])?.try_reshape(&[-1])
    )]
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

#[cfg(feature = "strategies")]
fn permute_cases() -> Vec<OpCase> {
    vec![case!(
        "permute" for [permute],
        ["permute"],
        unary_case(3..=3, ANY),
        |v| v[0].try_permute(&[2, 0, 1])
    )]
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

#[cfg(feature = "strategies")]
fn transpose_cases() -> Vec<OpCase> {
    vec![case!(
        "transpose" for [transpose],
        ["permute"],
        unary_case(2..=3, ANY),
        |v| v[0].try_transpose(0, -1)
    )]
}

/// Concatenation along `axis`. ∂/∂xᵢ = the gradient's slice for xᵢ.
pub struct Concat {
    /// The axis.
    pub axis: usize,
}
impl<T: Element> Op<T> for Concat {
    fn name(&self) -> &str {
        "concat"
    }
    fn formula(&self, input: usize) -> Option<String> {
        Some(format!("G narrowed to input {input}'s rows"))
    }
    fn backward(&self, cx: &BackwardContext<'_, T>) -> Result<InputGrads<T>> {
        let mut out: InputGrads<T> = SmallVec::new();
        let mut start = 0;
        for (i, x) in cx.inputs.iter().enumerate() {
            let len = x.shape()[self.axis];
            out.push(if cx.needs(i) {
                Some(narrow(cx.grad, self.axis as isize, start, len)?)
            } else {
                None
            });
            start += len;
        }
        Ok(out)
    }
}

/// Joins tensors along an existing axis (`torch.cat`).
#[track_caller]
pub fn try_concat<T: Element>(xs: &[&Var<T>], axis: isize) -> Result<Var<T>> {
    let first = xs
        .first()
        .ok_or_else(|| Error::argument("concat", "nothing to concatenate"))?;
    let rank = first.shape().len();
    let a = normalize_axis("concat", axis, rank)?;
    for x in xs {
        let same = x.shape().len() == rank
            && (0..rank).all(|d| d == a || x.shape()[d] == first.shape()[d]);
        if !same {
            return Err(Error::shape(
                "concat",
                format!(
                    "{} and {} differ outside dimension {a}",
                    fmt_shape(first.shape()),
                    fmt_shape(x.shape())
                ),
            ));
        }
    }
    let mut out_shape = first.shape().to_vec();
    out_shape[a] = xs.iter().try_fold(0, |sum, x| {
        add_size("concat", "concatenated dimension", sum, x.shape()[a])
    })?;
    let total = try_numel("concat", &out_shape)?;
    let outer: usize = out_shape[..a].iter().product();
    let inner: usize = out_shape[a + 1..].iter().product();
    let mut data = Vec::with_capacity(total);
    for o in 0..outer {
        for x in xs {
            let rows = x.shape()[a] * inner;
            data.extend_from_slice(&x.value().data()[o * rows..(o + 1) * rows]);
        }
    }
    Var::from_op(Concat { axis: a }, xs, Tensor::from_vec(&out_shape, data))
}

panicking_twin!(
    /// As [`try_concat`].
    concat / try_concat[T: Element](xs: &[&Var<T>], axis: isize) -> Var<T>
);

#[cfg(feature = "strategies")]
fn concat_cases() -> Vec<OpCase> {
    vec![case!(
        "concat" for [concat],
        ["concat"],
        fixed(vec![(vec![2, 3], ANY), (vec![2, 1], ANY), (vec![2, 2], ANY)]),
        |v| try_concat(&[&v[0], &v[1], &v[2]], 1)
    )]
}

/// Joins tensors of equal shape along a new axis (`torch.stack`).
#[track_caller]
pub fn try_stack<T: Element>(xs: &[&Var<T>], axis: isize) -> Result<Var<T>> {
    let first = xs
        .first()
        .ok_or_else(|| Error::argument("stack", "nothing to stack"))?;
    if let Some(x) = xs.iter().find(|x| x.shape() != first.shape()) {
        return Err(Error::shape(
            "stack",
            format!(
                "all inputs need one shape: {} and {}",
                fmt_shape(first.shape()),
                fmt_shape(x.shape())
            ),
        ));
    }
    let a = normalize_axis("stack", axis, first.shape().len() + 1)?;
    let expanded: Vec<Var<T>> = xs
        .iter()
        .map(|x| unsqueeze(x, a as isize))
        .collect::<Result<_>>()?;
    let refs: Vec<&Var<T>> = expanded.iter().collect();
    try_concat(&refs, a as isize)
}

panicking_twin!(
    /// As [`try_stack`].
    stack / try_stack[T: Element](xs: &[&Var<T>], axis: isize) -> Var<T>
);

#[cfg(feature = "strategies")]
fn stack_cases() -> Vec<OpCase> {
    vec![case!(
        "stack" for [stack],
        ["concat", "reshape"],
        fixed(vec![(vec![2, 3], ANY), (vec![2, 3], ANY)]),
        |v| try_stack(&[&v[0], &v[1]], 1)
    )]
}

/// Pieces of `size` along `axis` (the last may be smaller), as `torch.split`.
#[track_caller]
pub(crate) fn split<T: Element>(x: &Var<T>, size: usize, axis: isize) -> Result<Vec<Var<T>>> {
    let a = normalize_axis("split", axis, x.shape().len())?;
    if size == 0 {
        return Err(Error::argument("split", "piece size must be at least 1"));
    }
    let n = x.shape()[a];
    (0..n)
        .step_by(size)
        .map(|start| narrow(x, a as isize, start, size.min(n - start)))
        .collect()
}

/// `chunks` pieces along `axis` of size ⌈n/chunks⌉ (fewer if they run out), as `torch.chunk`.
#[track_caller]
pub(crate) fn chunk<T: Element>(x: &Var<T>, chunks: usize, axis: isize) -> Result<Vec<Var<T>>> {
    let a = normalize_axis("chunk", axis, x.shape().len())?;
    if chunks == 0 {
        return Err(Error::argument("chunk", "need at least one chunk"));
    }
    split(x, x.shape()[a].div_ceil(chunks).max(1), a as isize)
}

/// split's and chunk's case: pieces of 2, 2, 1 rows and chunks of 3, 2
/// rows, reassembled in another order.
#[cfg(feature = "strategies")]
fn split_chunk_cases() -> Vec<OpCase> {
    vec![case!(
        "split_chunk" for [split, chunk, concat, mul_scalar],
        ["take", "concat"],
        unary_fixed(&[5, 2], ANY),
        |v| {
            let p = v[0].try_split(2, 0)?;
            let c = v[0].try_chunk(2, 0)?;
            try_concat(&[&p[2], &c[1], &p[0].mul_scalar(2.0), &c[0]], 0)
        }
    )]
}

/// A size-1 dimension inserted at `axis` (a reshape).
#[track_caller]
pub(crate) fn unsqueeze<T: Element>(x: &Var<T>, axis: isize) -> Result<Var<T>> {
    let a = normalize_axis("unsqueeze", axis, x.shape().len() + 1)?;
    let mut shape = x.shape().to_vec();
    shape.insert(a, 1);
    x.try_reshape_to(&shape)
}

/// Size-1 dimensions removed: `axis` only, or all of them (a reshape).
#[track_caller]
pub(crate) fn squeeze<T: Element>(x: &Var<T>, axis: Option<isize>) -> Result<Var<T>> {
    let shape: Vec<usize> = match axis {
        Some(ax) => {
            let a = normalize_axis("squeeze", ax, x.shape().len())?;
            let mut s = x.shape().to_vec();
            if s[a] == 1 {
                s.remove(a);
            }
            s
        }
        None => x.shape().iter().copied().filter(|&d| d != 1).collect(),
    };
    x.try_reshape_to(&shape)
}

/// Dimensions `start..=end` merged into one (a reshape), as `torch.flatten`.
#[track_caller]
pub(crate) fn flatten<T: Element>(x: &Var<T>, start: isize, end: isize) -> Result<Var<T>> {
    let rank = x.shape().len();
    if rank == 0 {
        return x.try_reshape_to(&[1]);
    }
    let s = normalize_axis("flatten", start, rank)?;
    let e = normalize_axis("flatten", end, rank)?;
    if s > e {
        return Err(Error::argument(
            "flatten",
            format!("start dimension {s} is after end dimension {e}"),
        ));
    }
    let mut shape = x.shape()[..s].to_vec();
    shape.push(x.shape()[s..=e].iter().product());
    shape.extend_from_slice(&x.shape()[e + 1..]);
    x.try_reshape_to(&shape)
}

/// squeeze's, unsqueeze's and flatten's case: [2, 1, 3] → [2, 3] → [1, 2, 3] → [1, 6].
#[cfg(feature = "strategies")]
fn squeeze_unsqueeze_flatten_cases() -> Vec<OpCase> {
    vec![case!(
        "squeeze_unsqueeze_flatten" for [squeeze, unsqueeze, flatten],
        ["reshape"],
        unary_fixed(&[2, 1, 3], ANY),
        |v| v[0]
            .try_squeeze(Some(1))?
            .try_unsqueeze(0)?
            .try_flatten(1, 2)
    )]
}

/// Broadcast to `shape`, where −1 keeps a dimension (`torch.expand`).
#[track_caller]
pub(crate) fn expand<T: Element>(x: &Var<T>, shape: &[isize]) -> Result<Var<T>> {
    let offset = shape.len().checked_sub(x.shape().len()).ok_or_else(|| {
        Error::shape(
            "expand",
            format!(
                "{} has more dimensions than {shape:?}",
                fmt_shape(x.shape())
            ),
        )
    })?;
    let target: Vec<usize> = shape
        .iter()
        .enumerate()
        .map(|(i, &d)| {
            if d < 0 && i >= offset {
                x.shape()[i - offset]
            } else {
                d.max(0) as usize
            }
        })
        .collect();
    x.try_broadcast_to(&target)
}

#[cfg(feature = "strategies")]
fn expand_cases() -> Vec<OpCase> {
    vec![case!(
        "expand" for [expand],
        ["broadcast_to"],
        unary_fixed(&[3, 1], ANY),
        |v| v[0].try_expand(&[2, -1, 4])
    )]
}

/// Tiles x `reps[i]` times along dimension i (`torch.Tensor.repeat`):
/// a reshape that interleaves size-1 axes, a broadcast, and a reshape back.
#[track_caller]
pub(crate) fn repeat<T: Element>(x: &Var<T>, reps: &[usize]) -> Result<Var<T>> {
    if reps.len() < x.shape().len() {
        return Err(Error::argument(
            "repeat",
            format!(
                "{} repetitions for a tensor of rank {}",
                reps.len(),
                x.shape().len()
            ),
        ));
    }
    let mut shape = vec![1; reps.len() - x.shape().len()];
    shape.extend_from_slice(x.shape());
    let interleaved: Vec<usize> = shape.iter().flat_map(|&d| [1, d]).collect();
    let tiled: Vec<usize> = shape.iter().zip(reps).flat_map(|(&d, &r)| [r, d]).collect();
    let out = shape
        .iter()
        .zip(reps)
        .map(|(&d, &r)| mul_size("repeat", "repeated dimension", d, r))
        .collect::<Result<Vec<usize>>>()?;
    try_numel("repeat", &out)?;
    x.try_reshape_to(&interleaved)?
        .try_broadcast_to(&tiled)?
        .try_reshape_to(&out)
}

#[cfg(feature = "strategies")]
fn repeat_cases() -> Vec<OpCase> {
    vec![case!(
        "repeat" for [repeat],
        ["broadcast_to", "reshape"],
        unary_fixed(&[2, 3], ANY),
        |v| v[0].try_repeat(&[2, 1, 3])
    )]
}

/// This family's registry cases.
#[cfg(feature = "strategies")]
pub(crate) fn cases() -> Vec<OpCase> {
    [
        reshape_cases(),
        transpose_cases(),
        permute_cases(),
        concat_cases(),
        stack_cases(),
        split_chunk_cases(),
        squeeze_unsqueeze_flatten_cases(),
        repeat_cases(),
        expand_cases(),
    ]
    .concat()
}
