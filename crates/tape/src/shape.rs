//! Shapes, strides, broadcasting and axis normalisation.

use crate::error::{Error, ErrorKind, Result};
use smallvec::SmallVec;

/// A tensor shape: dimension sizes, row-major. Up to four dimensions live inline.
pub type Shape = SmallVec<[usize; 4]>;

/// Formats a shape as PyTorch prints sizes in messages: `[3, 4]`.
pub fn fmt_shape(shape: &[usize]) -> String {
    format!("{shape:?}")
}

/// Number of elements of a shape (1 for a scalar shape `[]`).
pub fn numel(shape: &[usize]) -> usize {
    shape.iter().product()
}

/// Row-major (C-contiguous) strides, in elements.
pub fn contiguous_strides(shape: &[usize]) -> Shape {
    let mut strides: Shape = smallvec::smallvec![0; shape.len()];
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
    let mut out: Shape = smallvec::smallvec![0; rank];
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
    Ok(out)
}

/// Strides for reading a tensor of shape `src` as if broadcast to `dst`:
/// broadcast dimensions get stride 0. `src` must broadcast to `dst`.
pub fn broadcast_strides(src: &[usize], dst: &[usize]) -> Shape {
    let offset = dst.len() - src.len();
    let src_strides = contiguous_strides(src);
    let mut strides: Shape = smallvec::smallvec![0; dst.len()];
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
    let mut out: Shape = SmallVec::new();
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
    let r = rank as isize;
    let a = if axis < 0 { axis + r } else { axis };
    if a < 0 || a >= r.max(1) || (rank == 0 && a != 0) {
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
