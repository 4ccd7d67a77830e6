//! Forward kernels shared by many ops: elementwise maps, broadcasting binary
//! maps, strided gathers (permute, broadcast) and axis reductions.
//!
//! Large inputs are split across rayon's pool; small ones run inline so a
//! one-element op never pays for thread hand-off. Chunking is fixed by the
//! shape, never by timing, so parallel results are bit-reproducible.

use crate::shape::{contiguous_strides, numel, Shape};
use rayon::prelude::*;
use std::mem::MaybeUninit;

/// Inputs with at least this many elements are processed in parallel.
pub const PARALLEL_MIN_ELEMENTS: usize = 1 << 15;

/// Elements per parallel work item for flat elementwise maps.
const CHUNK: usize = 1 << 13;

/// `f` applied to every element.
pub fn map<T: Copy + Send + Sync>(x: &[T], f: impl Fn(T) -> T + Sync + Send) -> Vec<T> {
    build_chunks(x.len(), |start, dst| {
        let src = &x[start..start + dst.len()];
        for (d, &v) in dst.iter_mut().zip(src) {
            d.write(f(v));
        }
        dst.len().min(src.len())
    })
}

/// `f` applied pairwise to two equally long slices.
pub fn zip_map<T: Copy + Send + Sync>(
    a: &[T],
    b: &[T],
    f: impl Fn(T, T) -> T + Sync + Send,
) -> Vec<T> {
    assert_eq!(a.len(), b.len(), "zip_map: operands of different lengths");
    build_chunks(a.len(), |start, dst| {
        let end = start + dst.len();
        let (ra, rb) = (&a[start..end], &b[start..end]);
        for ((d, &x), &y) in dst.iter_mut().zip(ra).zip(rb) {
            d.write(f(x, y));
        }
        dst.len().min(ra.len()).min(rb.len())
    })
}

/// A new vector of `n` elements built in chunks of [`CHUNK`] ([`build_rows`]
/// with rows of CHUNK): `fill(start, chunk)` writes every element of
/// `chunk`, which holds elements `start..start + chunk.len()`, and returns
/// how many it wrote. Each chunk is a plain slice loop the compiler can vectorise.
fn build_chunks<T: Copy + Send>(
    n: usize,
    fill: impl Fn(usize, &mut [MaybeUninit<T>]) -> usize + Sync,
) -> Vec<T> {
    build_rows(Vec::with_capacity(n), n, CHUNK, |i, dst| {
        fill(i * CHUNK, dst)
    })
}

/// In-place `a[i] = f(a[i], b[i])`.
pub fn zip_assign<T: Copy + Send + Sync>(
    a: &mut [T],
    b: &[T],
    f: impl Fn(T, T) -> T + Sync + Send,
) {
    debug_assert_eq!(a.len(), b.len());
    if a.len() < PARALLEL_MIN_ELEMENTS {
        a.iter_mut().zip(b).for_each(|(x, &y)| *x = f(*x, y));
    } else {
        a.par_chunks_mut(CHUNK)
            .zip(b.par_chunks(CHUNK))
            .for_each(|(xs, ys)| xs.iter_mut().zip(ys).for_each(|(x, &y)| *x = f(*x, y)));
    }
}

/// Offsets of row `r` (a flat index over all but the last dimension) in each operand.
#[inline]
fn row_offsets<const K: usize>(
    shape: &[usize],
    strides: &[&[usize]; K],
    mut r: usize,
) -> [usize; K] {
    let mut offs = [0usize; K];
    let outer = shape.len().saturating_sub(1);
    for d in (0..outer).rev() {
        let i = r % shape[d];
        r /= shape[d];
        for k in 0..K {
            offs[k] += i * strides[k][d];
        }
    }
    offs
}

/// `n` elements built row by row into `out` (empty, with room for at least
/// `n`, so that callers whose output can outgrow their inputs reserve it
/// fallibly first): `fill(row_index, row)` is
/// called once for each row of `last` elements (inline for small outputs, in
/// parallel across rows for large ones), writes the row's elements in order
/// from the first, and returns how many it wrote. The buffer is never zeroed
/// first, which saves a full pass over memory.
///
/// # Panics
/// If a `fill` reports fewer elements than its row holds (a kernel bug;
/// the check keeps uninitialised memory from ever being read).
fn build_rows<T: Copy + Send>(
    mut out: Vec<T>,
    n: usize,
    last: usize,
    fill: impl Fn(usize, &mut [MaybeUninit<T>]) -> usize + Sync,
) -> Vec<T> {
    assert!(out.is_empty(), "build_rows writes into an empty buffer");
    if n == 0 {
        return out;
    }
    // Slicing the spare capacity panics unless `out` has room for `n`.
    let spare = &mut out.spare_capacity_mut()[..n];
    let fill_row = |r: usize, dst: &mut [MaybeUninit<T>]| {
        let written = fill(r, dst);
        assert_eq!(written, dst.len(), "kernel row {r} left elements unwritten");
    };
    if n < PARALLEL_MIN_ELEMENTS {
        for (r, dst) in spare.chunks_mut(last).enumerate() {
            fill_row(r, dst);
        }
    } else {
        spare
            .par_chunks_mut(last)
            .enumerate()
            .for_each(|(r, dst)| fill_row(r, dst));
    }
    // SAFETY: invariant: the first `n` slots are initialised. The chunks
    // above cover all `n` slots of the spare capacity (`last > 0` because
    // `n > 0`; a zero-size chunk would have panicked), and `fill_row`
    // asserts that each `fill` wrote its whole row (every caller's loop
    // writes from the row's first slot on and returns the number of
    // iterations its zip made: the length of the shortest zipped sequence,
    // so a source shorter than the row fails that assert).
    unsafe { out.set_len(n) };
    out
}

/// Merges adjacent dimensions that every operand steps through as one
/// (`stride[d] == stride[d + 1] · shape[d + 1]` for each of them), so that
/// rows get longer and fewer row offsets are computed: a [N, C, H, W]
/// tensor against a per-channel [1, C, 1, 1] one becomes [N, C, H·W], with
/// rows of H·W elements instead of W. Size-1 dimensions are dropped (their
/// strides never matter). Returns the shape and each operand's strides.
fn coalesce<const K: usize>(shape: &[usize], strides: [&[usize]; K]) -> (Shape, [Shape; K]) {
    let mut out_shape = Shape::default();
    let mut out_strides: [Shape; K] = std::array::from_fn(|_| Shape::default());
    for d in 0..shape.len() {
        if shape[d] == 1 {
            continue;
        }
        let merges = !out_shape.is_empty()
            && (0..K).all(|k| {
                let last = out_strides[k].len() - 1;
                out_strides[k][last] == strides[k][d] * shape[d]
            });
        if merges {
            let last = out_shape.len() - 1;
            out_shape[last] *= shape[d];
            for k in 0..K {
                out_strides[k][last] = strides[k][d];
            }
        } else {
            out_shape.push(shape[d]);
            for k in 0..K {
                out_strides[k].push(strides[k][d]);
            }
        }
    }
    if out_shape.is_empty() {
        // Every dimension was 1: one row of one element.
        out_shape.push(1);
        for s in &mut out_strides {
            s.push(0);
        }
    }
    (out_shape, out_strides)
}

/// Elementwise `f(a, b)` with NumPy broadcasting to `out_shape`, written
/// into `buffer` (empty, with room for `∏ out_shape` elements).
/// `sa` and `sb` are the operands' broadcast strides (0 on broadcast dimensions).
pub fn binary_broadcast<T: Copy + Send + Sync + Default>(
    (a, sa): (&[T], &[usize]),
    (b, sb): (&[T], &[usize]),
    out_shape: &[usize],
    f: impl Fn(T, T) -> T + Sync + Send,
    buffer: Vec<T>,
) -> Vec<T> {
    let n = numel(out_shape);
    if out_shape.is_empty() {
        return vec![f(a[0], b[0])];
    }
    if n == 0 {
        return Vec::new();
    }
    let (shape, [sa, sb]) = coalesce(out_shape, [sa, sb]);
    let last = *shape.last().unwrap();
    let (la, lb) = (sa[sa.len() - 1], sb[sb.len() - 1]);
    // Each branch returns how many elements its loop wrote: the length of
    // the shortest sequence it zips.
    let fill = |r: usize, dst: &mut [MaybeUninit<T>]| {
        let [oa, ob] = row_offsets(&shape, &[&sa, &sb], r);
        match (la, lb) {
            (1, 1) => {
                let (ra, rb) = (&a[oa..oa + last], &b[ob..ob + last]);
                for ((d, &x), &y) in dst.iter_mut().zip(ra).zip(rb) {
                    d.write(f(x, y));
                }
                dst.len().min(ra.len()).min(rb.len())
            }
            (1, 0) => {
                let (y, ra) = (b[ob], &a[oa..oa + last]);
                for (d, &x) in dst.iter_mut().zip(ra) {
                    d.write(f(x, y));
                }
                dst.len().min(ra.len())
            }
            (0, 1) => {
                let (x, rb) = (a[oa], &b[ob..ob + last]);
                for (d, &y) in dst.iter_mut().zip(rb) {
                    d.write(f(x, y));
                }
                dst.len().min(rb.len())
            }
            _ => {
                for (j, d) in dst.iter_mut().enumerate() {
                    d.write(f(a[oa + j * la], b[ob + j * lb]));
                }
                dst.len()
            }
        }
    };
    build_rows(buffer, n, last, fill)
}

/// Copies a strided view of `x` into `buffer` (empty, with room for
/// `∏ out_shape` elements), contiguous in `out_shape`.
/// `src_strides[d]` is the step in `x` for dimension `d` of the output
/// (0 for broadcast dimensions). Used by permute, transpose and broadcast_to.
pub fn gather_strided<T: Copy + Send + Sync + Default>(
    x: &[T],
    out_shape: &[usize],
    src_strides: &[usize],
    buffer: Vec<T>,
) -> Vec<T> {
    let n = numel(out_shape);
    if out_shape.is_empty() {
        return vec![x[0]];
    }
    if n == 0 {
        return Vec::new();
    }
    let (shape, [strides]) = coalesce(out_shape, [src_strides]);
    let last = *shape.last().unwrap();
    let ls = strides[strides.len() - 1];
    let fill = |r: usize, dst: &mut [MaybeUninit<T>]| {
        let [o] = row_offsets(&shape, &[&strides], r);
        if ls == 1 {
            let src = &x[o..o + last];
            for (d, &v) in dst.iter_mut().zip(src) {
                d.write(v);
            }
            dst.len().min(src.len())
        } else {
            for (j, d) in dst.iter_mut().enumerate() {
                d.write(x[o + j * ls]);
            }
            dst.len()
        }
    };
    build_rows(buffer, n, last, fill)
}

/// Reduces `x` (of `shape`) over the sorted axes `axes` with `combine`,
/// starting every output element at `init`. The result has the keepdim shape
/// (reduced axes of size 1), row-major.
pub fn reduce<T: Copy + Send + Sync>(
    x: &[T],
    shape: &[usize],
    axes: &[usize],
    init: T,
    combine: impl Fn(T, T) -> T + Sync + Send,
) -> Vec<T> {
    if shape.is_empty() {
        // A 0-d tensor reduced over its one admissible axis (0 or −1, as in
        // PyTorch): the single element combined once.
        return vec![combine(init, x[0])];
    }
    let kept: Shape = shape
        .iter()
        .enumerate()
        .map(|(i, &d)| if axes.contains(&i) { 1 } else { d })
        .collect();
    let mut ostrides = contiguous_strides(&kept);
    for &a in axes {
        ostrides[a] = 0;
    }
    let mut out = vec![init; numel(&kept)];
    if x.is_empty() {
        return out;
    }
    let rows0 = shape[0];
    let per0 = x.len() / rows0;
    if x.len() < PARALLEL_MIN_ELEMENTS || rows0 < 2 {
        reduce_rows(x, shape, &ostrides, &mut out, &combine);
        return out;
    }
    let parts = (rayon::current_num_threads() * 4).min(rows0);
    let block = rows0.div_ceil(parts);
    if ostrides[0] == 0 {
        // Axis 0 is reduced: each block yields a partial result; partials are
        // combined in block order so the sum is the same on every run.
        let partials: Vec<Vec<T>> = x
            .par_chunks(block * per0)
            .map(|xs| {
                let mut sub: Shape = shape.into();
                sub[0] = xs.len() / per0;
                let mut part = vec![init; out.len()];
                reduce_rows(xs, &sub, &ostrides, &mut part, &combine);
                part
            })
            .collect();
        for part in partials {
            for (o, p) in out.iter_mut().zip(part) {
                *o = combine(*o, p);
            }
        }
    } else {
        // Axis 0 is kept: blocks write disjoint slices of the output.
        let out_per0 = ostrides[0];
        out.par_chunks_mut(block * out_per0)
            .zip(x.par_chunks(block * per0))
            .for_each(|(os, xs)| {
                let mut sub: Shape = shape.into();
                sub[0] = xs.len() / per0;
                reduce_rows(xs, &sub, &ostrides, os, &combine);
            });
    }
    out
}

/// Sequential core of [`reduce`]: walks `x` row by row (rows of the last
/// dimension), tracking the output offset with a multi-index counter.
fn reduce_rows<T: Copy>(
    x: &[T],
    shape: &[usize],
    ostrides: &[usize],
    out: &mut [T],
    combine: &impl Fn(T, T) -> T,
) {
    let r = shape.len();
    let last = shape[r - 1];
    if last == 0 {
        return;
    }
    let ls = ostrides[r - 1];
    let mut idx = Shape::filled(0, r - 1);
    let mut obase = 0usize;
    for xr in x.chunks_exact(last) {
        if ls == 0 {
            out[obase] = combine(out[obase], fold_lanes(xr.len(), |i| xr[i], combine));
        } else {
            for (j, &v) in xr.iter().enumerate() {
                let o = obase + j * ls;
                out[o] = combine(out[o], v);
            }
        }
        for d in (0..r - 1).rev() {
            idx[d] += 1;
            obase += ostrides[d];
            if idx[d] < shape[d] {
                break;
            }
            obase -= ostrides[d] * shape[d];
            idx[d] = 0;
        }
    }
}

/// Combines `item(0), …, item(len − 1)` (len ≥ 1) in eight interleaved
/// lanes, then the lanes pairwise: eight independent dependency chains
/// instead of one, so a sum runs at the adder's throughput rather than its
/// latency. The order is fixed by `len` alone, so results are reproducible.
/// Shared by axis reductions and fused kernels (BatchNorm's statistics).
#[inline(always)]
pub fn fold_lanes<T: Copy>(
    len: usize,
    item: impl Fn(usize) -> T,
    combine: impl Fn(T, T) -> T,
) -> T {
    const LANES: usize = 8;
    if len < 2 * LANES {
        let mut acc = item(0);
        for i in 1..len {
            acc = combine(acc, item(i));
        }
        return acc;
    }
    let mut lanes: [T; LANES] = std::array::from_fn(&item);
    let whole = len / LANES * LANES;
    for base in (LANES..whole).step_by(LANES) {
        for (j, lane) in lanes.iter_mut().enumerate() {
            *lane = combine(*lane, item(base + j));
        }
    }
    for (lane, i) in lanes.iter_mut().zip(whole..len) {
        *lane = combine(*lane, item(i));
    }
    let mut width = LANES;
    while width > 1 {
        width /= 2;
        for i in 0..width {
            lanes[i] = combine(lanes[i], lanes[i + width]);
        }
    }
    lanes[0]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coalesce_merges_only_dimensions_every_operand_walks_as_one() {
        // [N, C, H, W] against a per-channel operand: H and W merge, C stays.
        let (shape, [a, b]) = coalesce(&[2, 3, 4, 5], [&[60, 20, 5, 1], &[0, 1, 0, 0]]);
        assert_eq!(shape.as_slice(), &[2, 3, 20]);
        assert_eq!(
            (a.as_slice(), b.as_slice()),
            (&[60, 20, 1][..], &[0, 1, 0][..])
        );
        // A transpose read (strides [1, 3] of a [3, 2] matrix read as [2, 3]) cannot merge.
        let (shape, [t]) = coalesce(&[2, 3], [&[1, 2]]);
        assert_eq!((shape.as_slice(), t.as_slice()), (&[2, 3][..], &[1, 2][..]));
        // Size-1 dimensions are dropped; all of them leaves one element.
        let (shape, [u]) = coalesce(&[1, 4, 1], [&[4, 1, 1]]);
        assert_eq!((shape.as_slice(), u.as_slice()), (&[4][..], &[1][..]));
        let (shape, [v]) = coalesce(&[1, 1], [&[1, 1]]);
        assert_eq!((shape.as_slice(), v.as_slice()), (&[1][..], &[0][..]));
    }

    #[test]
    fn per_channel_broadcast_matches_elementwise_indexing() {
        // x[n, c, h, w] * s[c] over a shape big enough to run in parallel.
        let (n, c, h, w) = (3, 5, 70, 40);
        let x: Vec<f64> = (0..n * c * h * w).map(|i| i as f64 * 0.5).collect();
        let s: Vec<f64> = (0..c).map(|i| i as f64 + 1.0).collect();
        let out = binary_broadcast(
            (&x, &[c * h * w, h * w, w, 1]),
            (&s, &[0, 1, 0, 0]),
            &[n, c, h, w],
            |a, b| a * b,
            Vec::with_capacity(n * c * h * w),
        );
        for (i, &o) in out.iter().enumerate() {
            assert_eq!(o, x[i] * s[(i / (h * w)) % c], "element {i}");
        }
    }

    #[test]
    fn reduce_over_middle_axis_matches_hand_sum() {
        // x[i, j, k] = 100 i + 10 j + k, shape [2, 3, 2]; sum over j.
        let x: Vec<f64> = (0..12)
            .map(|f| (100 * (f / 6) + 10 * ((f / 2) % 3) + f % 2) as f64)
            .collect();
        let s = reduce(&x, &[2, 3, 2], &[1], 0.0, |a, b| a + b);
        assert_eq!(s, vec![30.0, 33.0, 330.0, 333.0]);
    }

    #[test]
    fn parallel_reduce_equals_sequential_reduce_bit_for_bit() {
        let x: Vec<f32> = (0..200_000)
            .map(|i| ((i * 7919) % 1000) as f32 * 1e-3)
            .collect();
        for axes in [&[0usize][..], &[1], &[0, 1]] {
            let shape = [400, 500];
            let par = reduce(&x, &shape, axes, 0.0, |a, b| a + b);
            let kept: Vec<usize> = (0..2)
                .map(|i| if axes.contains(&i) { 1 } else { shape[i] })
                .collect();
            let mut ostrides = contiguous_strides(&kept);
            for &a in axes {
                ostrides[a] = 0;
            }
            let mut seq = vec![0.0f32; numel(&kept)];
            reduce_rows(&x, &shape, &ostrides, &mut seq, &|a, b| a + b);
            let close = par
                .iter()
                .zip(&seq)
                .all(|(p, s)| (p - s).abs() <= 1e-3 * s.abs().max(1.0));
            assert!(close, "axes {axes:?}");
            assert_eq!(
                par,
                reduce(&x, &shape, axes, 0.0, |a, b| a + b),
                "deterministic"
            );
        }
    }

    #[test]
    fn last_axis_reduction_in_lanes_covers_every_element() {
        // Rows of 37: the eight-lane loop (4 chunks) and a remainder of 5.
        // Small integers sum exactly in any order, so the expected sums are exact.
        let x: Vec<f64> = (0..3 * 37).map(|i| ((i * 7) % 11) as f64).collect();
        let sums = reduce(&x, &[3, 37], &[1], 0.0, |a, b| a + b);
        let maxes = reduce(&x, &[3, 37], &[1], f64::NEG_INFINITY, f64::max);
        for r in 0..3 {
            let row = &x[r * 37..(r + 1) * 37];
            assert_eq!(sums[r], row.iter().sum::<f64>(), "row {r}");
            assert_eq!(
                maxes[r],
                row.iter().cloned().fold(f64::NEG_INFINITY, f64::max)
            );
        }
        // Every position counts: a one-hot row sums to 1 wherever the 1 is.
        for at in 0..37 {
            let mut row = vec![0.0f64; 37];
            row[at] = 1.0;
            assert_eq!(
                reduce(&row, &[1, 37], &[1], 0.0, |a, b| a + b),
                vec![1.0],
                "{at}"
            );
        }
    }

    #[test]
    fn broadcast_binary_handles_every_stride_pattern() {
        // [2, 3] + [3] and [2, 1] + [1, 3]
        let a = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        let b = [10.0, 20.0, 30.0];
        let buffer = || Vec::with_capacity(6);
        let out = binary_broadcast(
            (&a, &[3, 1]),
            (&b, &[0, 1]),
            &[2, 3],
            |x, y| x + y,
            buffer(),
        );
        assert_eq!(out, vec![11.0, 22.0, 33.0, 14.0, 25.0, 36.0]);
        let (a2, s2) = ([1.0, 2.0], [1, 0]);
        let out = binary_broadcast((&a2, &s2), (&b, &[0, 1]), &[2, 3], |x, y| x * y, buffer());
        assert_eq!(out, vec![10.0, 20.0, 30.0, 20.0, 40.0, 60.0]);
    }
}
