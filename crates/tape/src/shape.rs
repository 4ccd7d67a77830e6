//! Shapes, strides, broadcasting and axis normalisation.

use crate::error::{Error, ErrorKind, Result};
use smallvec::SmallVec;

/// Dimensions kept inline (no allocation) up to this rank.
const INLINE_RANK: usize = 4;

/// A tensor shape: dimension sizes, row-major.
///
/// Shapes are cloned with every tensor, so up to four dimensions are stored
/// in a fixed, zero-padded array that clones and compares as plain words;
/// larger ranks go to the heap.
#[derive(Clone)]
pub struct Shape(ShapeRepr);

#[derive(Clone)]
enum ShapeRepr {
    Inline { len: u8, dims: [usize; INLINE_RANK] },
    Heap(Box<[usize]>),
}

impl Default for Shape {
    fn default() -> Self {
        Shape::new()
    }
}

impl Shape {
    /// The scalar shape `[]`.
    pub const fn new() -> Self {
        Shape(ShapeRepr::Inline {
            len: 0,
            dims: [0; INLINE_RANK],
        })
    }

    /// A shape with the given dimensions.
    pub fn from_slice(dims: &[usize]) -> Self {
        if dims.len() <= INLINE_RANK {
            let mut a = [0; INLINE_RANK];
            for (slot, &d) in a.iter_mut().zip(dims) {
                *slot = d;
            }
            Shape(ShapeRepr::Inline {
                len: dims.len() as u8,
                dims: a,
            })
        } else {
            Shape(ShapeRepr::Heap(dims.into()))
        }
    }

    /// `n` dimensions, all equal to `v`.
    pub fn filled(v: usize, n: usize) -> Self {
        Shape::from_slice(&SmallVec::<[usize; 8]>::from_elem(v, n))
    }

    /// The dimensions as a slice.
    #[inline]
    pub fn as_slice(&self) -> &[usize] {
        match &self.0 {
            ShapeRepr::Inline { len, dims } => &dims[..*len as usize],
            ShapeRepr::Heap(b) => b,
        }
    }

    fn edit(&mut self, f: impl FnOnce(&mut Vec<usize>)) {
        let mut v = self.as_slice().to_vec();
        f(&mut v);
        *self = Shape::from_slice(&v);
    }

    /// Appends a dimension.
    pub fn push(&mut self, d: usize) {
        self.edit(|v| v.push(d))
    }

    /// Removes and returns the last dimension.
    pub fn pop(&mut self) -> Option<usize> {
        let mut out = None;
        self.edit(|v| out = v.pop());
        out
    }

    /// Removes and returns dimension `i`.
    pub fn remove(&mut self, i: usize) -> usize {
        let mut out = 0;
        self.edit(|v| out = v.remove(i));
        out
    }

    /// Inserts a dimension at `i`.
    pub fn insert(&mut self, i: usize, d: usize) {
        self.edit(|v| v.insert(i, d))
    }
}

impl PartialEq for Shape {
    #[inline]
    fn eq(&self, other: &Self) -> bool {
        match (&self.0, &other.0) {
            // Unused inline slots are always zero, so whole arrays compare.
            (ShapeRepr::Inline { len: a, dims: x }, ShapeRepr::Inline { len: b, dims: y }) => {
                a == b && x == y
            }
            _ => self.as_slice() == other.as_slice(),
        }
    }
}

impl Eq for Shape {}

impl std::hash::Hash for Shape {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_slice().hash(state)
    }
}

impl std::ops::Deref for Shape {
    type Target = [usize];
    fn deref(&self) -> &[usize] {
        self.as_slice()
    }
}

impl std::ops::DerefMut for Shape {
    fn deref_mut(&mut self) -> &mut [usize] {
        match &mut self.0 {
            ShapeRepr::Inline { len, dims } => &mut dims[..*len as usize],
            ShapeRepr::Heap(b) => b,
        }
    }
}

impl AsRef<[usize]> for Shape {
    fn as_ref(&self) -> &[usize] {
        self.as_slice()
    }
}

impl From<&[usize]> for Shape {
    fn from(dims: &[usize]) -> Self {
        Shape::from_slice(dims)
    }
}

impl<const N: usize> From<[usize; N]> for Shape {
    fn from(dims: [usize; N]) -> Self {
        Shape::from_slice(&dims)
    }
}

impl From<Vec<usize>> for Shape {
    fn from(dims: Vec<usize>) -> Self {
        Shape::from_slice(&dims)
    }
}

impl FromIterator<usize> for Shape {
    fn from_iter<I: IntoIterator<Item = usize>>(iter: I) -> Self {
        let v: SmallVec<[usize; INLINE_RANK]> = iter.into_iter().collect();
        Shape::from_slice(&v)
    }
}

impl std::fmt::Debug for Shape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.as_slice().fmt(f)
    }
}

/// Formats a shape as PyTorch prints sizes in messages: `[3, 4]`.
pub fn fmt_shape(shape: &[usize]) -> String {
    format!("{shape:?}")
}

/// The most elements a tensor may hold: `isize::MAX` bytes of 8-byte
/// elements, the largest allocation Rust allows for an `f64` buffer.
pub const MAX_ELEMENTS: usize = isize::MAX as usize / 8;

/// The extent of a shape: the product of its dimensions with each zero
/// counted as one, or `None` past [`MAX_ELEMENTS`].
///
/// A shape is *valid* when its extent is at most [`MAX_ELEMENTS`]. Every
/// tensor's shape is valid (its constructors check), and then every product of
/// any subset of its dimensions — a row length, a plane, a stride, a batch —
/// fits in `usize`, so kernels may multiply them without checks.
pub fn extent(shape: &[usize]) -> Option<usize> {
    shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d.max(1)))
        .filter(|&e| e <= MAX_ELEMENTS)
}

/// Number of elements of a shape that may come from user input:
/// the product `∏ dᵢ`, or an [`ErrorKind::Overflow`] error naming `op`
/// and the shape when the shape is not valid (see [`extent`]).
pub fn try_numel(op: &'static str, shape: &[usize]) -> Result<usize> {
    match extent(shape) {
        Some(_) => Ok(shape.iter().product()),
        None => Err(Error::new(
            op,
            ErrorKind::Overflow,
            format!(
                "shape {} has more than {} elements (the largest buffer this machine can address)",
                fmt_shape(shape),
                MAX_ELEMENTS
            ),
        )),
    }
}

/// Number of elements of a valid shape (1 for a scalar shape `[]`): `∏ dᵢ`.
///
/// # Panics
/// If the shape is not valid (see [`extent`]); shapes that come from input
/// go through [`try_numel`] first, so this is a broken internal invariant.
#[track_caller]
pub fn numel(shape: &[usize]) -> usize {
    crate::error::or_panic(try_numel("numel", shape))
}

/// `a · b` for a size computed from input, or an [`ErrorKind::Overflow`]
/// error naming `op` and `what` is being computed.
pub fn mul_size(op: &'static str, what: &str, a: usize, b: usize) -> Result<usize> {
    a.checked_mul(b)
        .ok_or_else(|| overflow(op, format!("{what}: {a} x {b} overflows")))
}

/// `a + b` for a size computed from input, or an [`ErrorKind::Overflow`]
/// error naming `op` and `what` is being computed.
pub fn add_size(op: &'static str, what: &str, a: usize, b: usize) -> Result<usize> {
    a.checked_add(b)
        .ok_or_else(|| overflow(op, format!("{what}: {a} + {b} overflows")))
}

/// `n` copies of `v` in a new vector, or an [`ErrorKind::Overflow`] error
/// naming `op` when the allocator refuses the buffer (instead of aborting
/// the process, as `vec![v; n]` does). Its twin is std's `vec![v; n]`,
/// hence the prefix, as std's `try_reserve` beside `reserve`.
pub fn try_filled<T: Clone>(op: &'static str, n: usize, v: T) -> Result<Vec<T>> {
    let mut out = try_with_capacity(op, n)?;
    out.resize(n, v);
    Ok(out)
}

/// An empty vector with room for `n` elements, or an
/// [`ErrorKind::Overflow`] error naming `op` when the allocator refuses it.
/// Its twin is std's `Vec::with_capacity` (which aborts), hence the prefix.
pub fn try_with_capacity<T>(op: &'static str, n: usize) -> Result<Vec<T>> {
    let mut out = Vec::new();
    out.try_reserve_exact(n).map_err(|_| {
        overflow(
            op,
            format!(
                "cannot allocate {n} elements of {} bytes",
                std::mem::size_of::<T>()
            ),
        )
    })?;
    Ok(out)
}

fn overflow(op: &'static str, message: String) -> Error {
    Error::new(op, ErrorKind::Overflow, message)
}

/// Row-major (C-contiguous) strides, in elements.
pub fn contiguous_strides(shape: &[usize]) -> Shape {
    let mut strides: Shape = Shape::filled(0, shape.len());
    let mut acc = 1;
    for i in (0..shape.len()).rev() {
        strides[i] = acc;
        acc *= shape[i];
    }
    strides
}

/// NumPy broadcasting of two shapes: align trailing dimensions; each pair must
/// be equal or contain a 1.
pub fn broadcast_shapes(op: &'static str, a: &[usize], b: &[usize]) -> Result<Shape> {
    let rank = a.len().max(b.len());
    let mut out = Shape::filled(0, rank);
    for i in 0..rank {
        let da = if i + a.len() >= rank {
            a[i + a.len() - rank]
        } else {
            1
        };
        let db = if i + b.len() >= rank {
            b[i + b.len() - rank]
        } else {
            1
        };
        out[i] = match (da, db) {
            (x, y) if x == y => x,
            (1, y) => y,
            (x, 1) => x,
            _ => {
                return Err(Error::shape(
                    op,
                    format!(
                        "{} and {}: cannot broadcast (dimension {} is {} and {})",
                        fmt_shape(a),
                        fmt_shape(b),
                        i,
                        da,
                        db
                    ),
                ))
            }
        };
    }
    try_numel(op, &out)?;
    Ok(out)
}

/// Strides for reading a tensor of shape `src` as if broadcast to `dst`:
/// broadcast dimensions get stride 0. `src` must broadcast to `dst`.
pub fn broadcast_strides(src: &[usize], dst: &[usize]) -> Shape {
    let offset = dst.len() - src.len();
    let src_strides = contiguous_strides(src);
    let mut strides = Shape::filled(0, dst.len());
    for i in 0..src.len() {
        strides[i + offset] = if src[i] == 1 && dst[i + offset] != 1 {
            0
        } else {
            src_strides[i]
        };
    }
    strides
}

/// Checks that `src` broadcasts to `dst` (the broadcast result equals `dst`).
pub fn check_broadcastable(op: &'static str, src: &[usize], dst: &[usize]) -> Result<()> {
    let ok = src.len() <= dst.len()
        && src
            .iter()
            .rev()
            .zip(dst.iter().rev())
            .all(|(&s, &d)| s == d || s == 1);
    if ok {
        Ok(())
    } else {
        Err(Error::shape(
            op,
            format!(
                "{} cannot be broadcast to {}",
                fmt_shape(src),
                fmt_shape(dst)
            ),
        ))
    }
}

/// Resolves possibly negative axes against `rank`, rejecting out-of-range and repeated axes.
/// The result is sorted ascending.
pub fn normalize_axes(op: &'static str, axes: &[isize], rank: usize) -> Result<Shape> {
    let mut out = Shape::new();
    for &ax in axes {
        let a = normalize_axis(op, ax, rank)?;
        if out.contains(&a) {
            return Err(Error::new(
                op,
                ErrorKind::Axis,
                format!("axis {ax} is repeated in {axes:?}"),
            ));
        }
        out.push(a);
    }
    out.sort_unstable();
    Ok(out)
}

/// Resolves one possibly negative axis against `rank`.
pub fn normalize_axis(op: &'static str, axis: isize, rank: usize) -> Result<usize> {
    // A 0-d tensor has no axis to index: ops that accept PyTorch's axis 0
    // (or −1) on a 0-d input (reductions, softmax) resolve it against rank 1
    // themselves, so an op that indexes `shape[axis]` can never get one.
    let r = rank as isize;
    let a = if axis < 0 { axis + r } else { axis };
    if a < 0 || a >= r {
        return Err(Error::new(
            op,
            ErrorKind::Axis,
            format!("axis {axis} is out of range for a tensor of rank {rank}"),
        ));
    }
    Ok(a as usize)
}

/// The shape left after reducing `axes` (sorted, normalised) of `shape`.
pub fn reduced_shape(shape: &[usize], axes: &[usize], keepdim: bool) -> Shape {
    let mut out = Shape::new();
    for (i, &d) in shape.iter().enumerate() {
        if axes.contains(&i) {
            if keepdim {
                out.push(1);
            }
        } else {
            out.push(d);
        }
    }
    out
}

/// The axes along which `src` was broadcast to reach `dst`, expressed in `dst`'s
/// dimensions, for summing a gradient back to `src`'s shape.
pub fn broadcast_axes(src: &[usize], dst: &[usize]) -> Shape {
    let offset = dst.len() - src.len();
    (0..dst.len())
        .filter(|&i| i < offset || (src[i - offset] == 1 && dst[i] != 1))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broadcast_aligns_trailing_dimensions() {
        assert_eq!(
            broadcast_shapes("t", &[3, 1, 5], &[4, 5])
                .unwrap()
                .as_slice(),
            &[3, 4, 5]
        );
        assert_eq!(
            broadcast_shapes("t", &[], &[2, 2]).unwrap().as_slice(),
            &[2, 2]
        );
        let e = broadcast_shapes("add", &[3, 4], &[5]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "add: [3, 4] and [5]: cannot broadcast (dimension 1 is 4 and 5)"
        );
    }

    #[test]
    fn broadcast_strides_zero_the_broadcast_dimensions() {
        assert_eq!(
            broadcast_strides(&[4, 1], &[2, 4, 3]).as_slice(),
            &[0, 1, 0]
        );
        assert_eq!(broadcast_axes(&[4, 1], &[2, 4, 3]).as_slice(), &[0, 2]);
    }

    #[test]
    fn shapes_of_any_rank_behave_like_slices() {
        for rank in 0..9 {
            let dims: Vec<usize> = (1..=rank).collect();
            let mut s = Shape::from_slice(&dims);
            assert_eq!(s.as_slice(), dims.as_slice());
            assert_eq!(s.clone(), s);
            s.push(7);
            assert_eq!(s.last(), Some(&7));
            assert_eq!(s.len(), rank + 1);
            assert_eq!(s.pop(), Some(7));
            s.insert(0, 9);
            assert_eq!(s.remove(0), 9);
            assert_eq!(s.as_slice(), dims.as_slice());
        }
    }

    #[test]
    fn axes_are_normalised_and_checked() {
        assert_eq!(
            normalize_axes("sum", &[-1, 0], 3).unwrap().as_slice(),
            &[0, 2]
        );
        assert_eq!(
            normalize_axes("sum", &[3], 3).unwrap_err().kind,
            ErrorKind::Axis
        );
        assert_eq!(
            normalize_axes("sum", &[1, -2], 3).unwrap_err().kind,
            ErrorKind::Axis
        );
    }
}
