//! Pooling over NCHW. max_pool2d takes the argmax of each window (a
//! [`Take`](crate::indexing::Take), so its gradient goes to the argmax only, first on ties, as
//! PyTorch); avg_pool2d sums an unfold; adaptive average pooling multiplies
//! by constant averaging matrices on each side (P_h·X·P_wᵀ).

use crate::conv::{unfold, valid_range, Size2, Window};
use crate::indexing::take_computed;
use crate::VarOps;
use chainrule_tape::error::{Error, Result};
use chainrule_tape::shape::{fmt_shape, mul_size, try_numel};
use chainrule_tape::{Element, Tensor, Var};
use rayon::prelude::*;

#[cfg(feature = "strategies")]
use crate::registry::{case, distinct, unary_fixed, OpCase, ANY};

/// The input's [N, C, H, W]. As in PyTorch, the batch may be empty (the
/// result is then empty too) but channels and spatial sizes may not.
fn nchw<T: Element>(op: &'static str, x: &Var<T>) -> Result<(usize, usize, usize, usize)> {
    match *x.shape() {
        [n, c, h, w] if c > 0 && h > 0 && w > 0 => Ok((n, c, h, w)),
        [_, _, _, _] => Err(Error::shape(
            op,
            format!(
                "{}: channels, height and width must be non-zero (only the batch may be empty)",
                fmt_shape(x.shape())
            ),
        )),
        _ => Err(Error::shape(
            op,
            format!("expected [N, C, H, W], got {}", fmt_shape(x.shape())),
        )),
    }
}

fn check_padding(op: &'static str, win: &Window) -> Result<()> {
    let (kh, kw) = win.kernel;
    if win.padding.0 > kh / 2 || win.padding.1 > kw / 2 {
        return Err(Error::argument(
            op,
            format!(
                "padding {:?} must be at most half the kernel {:?}",
                win.padding, win.kernel
            ),
        ));
    }
    Ok(())
}

/// Settings of [`max_pool2d`] and [`avg_pool2d`] with PyTorch's defaults:
/// the stride is the kernel size unless set (`F.max_pool2d(x, 2)` has
/// stride 2), padding 0, dilation 1, `count_include_pad` true. A kernel
/// size converts into options, so `max_pool2d(&x, 2)` reads as in PyTorch;
/// builder methods set the rest: `Pool2dOptions::new(3).stride(1).padding(1)`.
/// Pair values accept a single `usize` for a square value ([`Size2`]).
/// `ceil_mode` is not supported (always floor).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pool2dOptions {
    /// Window (height, width).
    pub kernel: Size2,
    /// Stride (height, width); `None` (the default) is the kernel size.
    pub stride: Option<Size2>,
    /// Implicit padding on each side (height, width), at most half the kernel; 0.
    pub padding: Size2,
    /// Spacing between window taps (max pooling only); 1.
    pub dilation: Size2,
    /// Average pooling only: count the padding in the divisor (true, as PyTorch).
    pub count_include_pad: bool,
}

impl Pool2dOptions {
    /// A `kernel` window with PyTorch's defaults (stride = kernel).
    pub fn new(kernel: impl Into<Size2>) -> Self {
        Pool2dOptions {
            kernel: kernel.into(),
            stride: None,
            padding: Size2(0, 0),
            dilation: Size2(1, 1),
            count_include_pad: true,
        }
    }
    /// With this stride.
    pub fn stride(self, stride: impl Into<Size2>) -> Self {
        Pool2dOptions {
            stride: Some(stride.into()),
            ..self
        }
    }
    /// With this padding.
    pub fn padding(self, padding: impl Into<Size2>) -> Self {
        Pool2dOptions {
            padding: padding.into(),
            ..self
        }
    }
    /// With this dilation (max pooling only).
    pub fn dilation(self, dilation: impl Into<Size2>) -> Self {
        Pool2dOptions {
            dilation: dilation.into(),
            ..self
        }
    }
    /// Whether average pooling counts the padding in the divisor.
    pub fn count_include_pad(self, count_include_pad: bool) -> Self {
        Pool2dOptions {
            count_include_pad,
            ..self
        }
    }
    /// The explicit window: the stride filled in from the kernel if unset.
    pub fn window(&self) -> Window {
        Window {
            kernel: self.kernel.into(),
            stride: self.stride.unwrap_or(self.kernel).into(),
            padding: self.padding.into(),
            dilation: self.dilation.into(),
        }
    }
}

/// An explicit window (its stride as given), counting padding in averages.
impl From<Window> for Pool2dOptions {
    fn from(w: Window) -> Self {
        Pool2dOptions::new(w.kernel)
            .stride(w.stride)
            .padding(w.padding)
            .dilation(w.dilation)
    }
}

impl From<usize> for Pool2dOptions {
    fn from(kernel: usize) -> Self {
        Pool2dOptions::new(kernel)
    }
}

impl From<(usize, usize)> for Pool2dOptions {
    fn from(kernel: (usize, usize)) -> Self {
        Pool2dOptions::new(kernel)
    }
}

impl From<Size2> for Pool2dOptions {
    fn from(kernel: Size2) -> Self {
        Pool2dOptions::new(kernel)
    }
}

/// Max over each window (padding never wins), as
/// `torch.nn.functional.max_pool2d`: out[n, c, y, x] = max over the window
/// at (s·y − p, s·x − p). ∂/∂x routes G to each window's argmax (the first
/// on ties).
#[track_caller]
pub fn try_max_pool2d<T: Element>(x: &Var<T>, options: impl Into<Pool2dOptions>) -> Result<Var<T>> {
    let op = "max_pool2d";
    let window = options.into().window();
    let (n, c, h, w) = nchw(op, x)?;
    check_padding(op, &window)?;
    let (oh, ow) = window.output_size(op, h, w)?;
    let Window {
        kernel: (kh, kw),
        stride: (sh, sw),
        padding: (ph, pw),
        dilation: (dh, dw),
    } = window;
    let data = x.value().data();
    // A candidate wins if it is larger, or NaN over a number (NaN propagates,
    // as in PyTorch); ties keep the first maximum in row-major order. Written
    // as selects, not branches: on real data the comparison is unpredictable.
    let better = |v: T, best: T| (v > best) | (v.is_nan() & !best.is_nan());
    let planes = (n * c, h * w, oh * ow);
    let unpadded = window.padding == (0, 0) && window.dilation == (1, 1);
    let idx = if unpadded && (kh, kw, sh, sw) == (2, 2, 2, 2) {
        // The CNN's 2×2/2 pool: two source rows per output row, four taps unrolled.
        argmax_planes(data, planes, |src, out| {
            for (oy, out_row) in out.chunks_exact_mut(ow).enumerate() {
                let top = 2 * oy * w;
                let r0 = &src[top..top + 2 * ow];
                let r1 = &src[top + w..top + w + 2 * ow];
                for (ox, o) in out_row.iter_mut().enumerate() {
                    let j = 2 * ox;
                    let (mut at, mut best) = (top + j, r0[j]);
                    for (cand, v) in [
                        (top + j + 1, r0[j + 1]),
                        (top + w + j, r1[j]),
                        (top + w + j + 1, r1[j + 1]),
                    ] {
                        let take = better(v, best);
                        at = if take { cand } else { at };
                        best = if take { v } else { best };
                    }
                    *o = at;
                }
            }
        })
    } else if unpadded {
        // Windows lie inside the image: no bounds to check.
        argmax_planes(data, planes, |src, out| {
            for oy in 0..oh {
                for ox in 0..ow {
                    let first = oy * sh * w + ox * sw;
                    let (mut best_at, mut best) = (first, src[first]);
                    for i in 0..kh {
                        let row = first + i * w;
                        for (j, &v) in src[row..row + kw].iter().enumerate() {
                            let take = better(v, best);
                            best_at = if take { row + j } else { best_at };
                            best = if take { v } else { best };
                        }
                    }
                    out[oy * ow + ox] = best_at;
                }
            }
        })
    } else {
        // Only the taps that land inside the image are visited (taps i with
        // i·d + o·s − p in [0, size), found arithmetically), so a huge
        // padded kernel costs no more than the pixels under it.
        let taps = |o: usize, s: usize, p: usize, d: usize, k: usize, size: usize| {
            let offset = o as i128 * s as i128 - p as i128;
            let (lo, hi) = valid_range(k, size, d, offset);
            (lo..hi).map(move |i| (i as i128 * d as i128 + offset) as usize)
        };
        // With dilation a window can miss every pixel (1 row, kernel 2,
        // dilation 2, padding 1); PyTorch outputs −∞ there with an index
        // outside the window. Refused instead, before any work.
        let misses = |o_len: usize, s: usize, p: usize, d: usize, k: usize, size: usize| {
            (0..o_len).any(|o| taps(o, s, p, d, k, size).next().is_none())
        };
        if misses(oh, sh, ph, dh, kh, h) || misses(ow, sw, pw, dw, kw, w) {
            return Err(Error::argument(
                op,
                format!(
                    "a window of kernel {:?} with dilation {:?} and padding {:?} covers only padding somewhere in {}",
                    window.kernel,
                    window.dilation,
                    window.padding,
                    fmt_shape(x.shape())
                ),
            ));
        }
        argmax_planes(data, planes, |src, out| {
            for oy in 0..oh {
                let rows: smallvec::SmallVec<[usize; 8]> = taps(oy, sh, ph, dh, kh, h).collect();
                for ox in 0..ow {
                    let cols = taps(ox, sw, pw, dw, kw, w);
                    // Padding ≤ half the kernel: every window holds a real pixel.
                    let mut best_at = rows[0] * w + cols.clone().next().unwrap_or(0);
                    let mut best = src[best_at];
                    for &y in &rows {
                        for xx in cols.clone() {
                            let at = y * w + xx;
                            let v = src[at];
                            let take = better(v, best);
                            best_at = if take { at } else { best_at };
                            best = if take { v } else { best };
                        }
                    }
                    out[oy * ow + ox] = best_at;
                }
            }
        })
    };
    let (idx, values) = idx;
    take_computed(x, idx.into(), Tensor::from_vec([n, c, oh, ow], values))
}

/// Max pooling as [`try_max_pool2d`]: `max_pool2d(&x, 2)` is PyTorch's `F.max_pool2d(x, 2)`.
///
/// # Panics
///
/// With the error [`try_max_pool2d`] returns, at the caller's line.
#[track_caller]
pub fn max_pool2d<T: Element>(x: &Var<T>, options: impl Into<Pool2dOptions>) -> Var<T> {
    chainrule_tape::error::or_panic(try_max_pool2d(x, options))
}

/// max_pool2d's cases on distinct values (a unique argmax per window):
/// 2×2 windows, and overlapping padded 3×3 windows of stride 2.
#[cfg(feature = "strategies")]
fn max_pool2d_cases() -> Vec<OpCase> {
    vec![
        case!(
            "max_pool2d" for [max_pool2d],
            ["take"],
            distinct(vec![2, 2, 4, 4]),
            |v| try_max_pool2d(&v[0], 2)
        ),
        case!(
            "max_pool2d_padded_overlapping" for [max_pool2d],
            ["take"],
            distinct(vec![1, 2, 5, 5]),
            |v| try_max_pool2d(&v[0], Pool2dOptions::new(3).stride(2).padding(1))
        ),
    ]
}

/// Flat argmax indices and the maxima for `count` planes of `plane_in`
/// inputs and `plane_out` outputs each, planes in parallel: `scan(plane,
/// out)` writes indices within its plane, offset here to indices into
/// `data`; each plane's maxima are read while it is still in cache.
fn argmax_planes<T: Element>(
    data: &[T],
    (count, plane_in, plane_out): (usize, usize, usize),
    scan: impl Fn(&[T], &mut [usize]) + Sync,
) -> (Vec<usize>, Vec<T>) {
    let mut idx = vec![0usize; count * plane_out];
    let mut values = vec![T::zero(); count * plane_out];
    if plane_out == 0 {
        return (idx, values);
    }
    idx.par_chunks_mut(plane_out)
        .zip(values.par_chunks_mut(plane_out))
        .with_min_len(8)
        .enumerate()
        .for_each(|(plane, (out, vals))| {
            let base = plane * plane_in;
            let src = &data[base..base + plane_in];
            scan(src, out);
            for (o, v) in out.iter_mut().zip(vals) {
                *v = src[*o];
                *o += base;
            }
        });
    (idx, values)
}

/// Mean over each window, as `torch.nn.functional.avg_pool2d`; with
/// `count_include_pad` (the default) the padding's zeros count in the
/// divisor, otherwise only real pixels do. No dilation, as PyTorch.
#[track_caller]
pub fn try_avg_pool2d<T: Element>(x: &Var<T>, options: impl Into<Pool2dOptions>) -> Result<Var<T>> {
    let op = "avg_pool2d";
    let options = options.into();
    let (window, count_include_pad) = (options.window(), options.count_include_pad);
    let (n, c, h, w) = nchw(op, x)?;
    check_padding(op, &window)?;
    if window.dilation != (1, 1) {
        return Err(Error::argument(op, "avg_pool2d has no dilation"));
    }
    let (oh, ow) = window.output_size(op, h, w)?;
    let k = mul_size(op, "kernel taps", window.kernel.0, window.kernel.1)?;
    // cols [C·k, N·L] → [C, k, N, L], summed over the window's k taps.
    let sums = unfold(x, window)?
        .try_reshape_to(&[c, k, n, oh * ow])?
        .try_sum(&[1], false)?;
    let divisor: Vec<T> = (0..oh * ow)
        .map(|pos| {
            let count = if count_include_pad {
                // Windows are clipped to the padded image only.
                k
            } else {
                let (oy, ox) = (pos / ow, pos % ow);
                let rows = (0..window.kernel.0)
                    .filter(|i| {
                        let y = (oy * window.stride.0 + i) as isize - window.padding.0 as isize;
                        y >= 0 && y < h as isize
                    })
                    .count();
                let cols = (0..window.kernel.1)
                    .filter(|j| {
                        let xx = (ox * window.stride.1 + j) as isize - window.padding.1 as isize;
                        xx >= 0 && xx < w as isize
                    })
                    .count();
                rows * cols
            };
            T::one() / T::from_f64(count as f64)
        })
        .collect();
    sums.try_mul(&Var::constant(Tensor::from_vec([oh * ow], divisor)))?
        .try_permute(&[1, 0, 2])?
        .try_reshape_to(&[n, c, oh, ow])
}

/// Average pooling as [`try_avg_pool2d`]: `avg_pool2d(&x, 2)` is PyTorch's `F.avg_pool2d(x, 2)`.
///
/// # Panics
///
/// With the error [`try_avg_pool2d`] returns, at the caller's line.
#[track_caller]
pub fn avg_pool2d<T: Element>(x: &Var<T>, options: impl Into<Pool2dOptions>) -> Var<T> {
    chainrule_tape::error::or_panic(try_avg_pool2d(x, options))
}

/// avg_pool2d's cases: padding counted in the divisor, and not.
#[cfg(feature = "strategies")]
fn avg_pool2d_cases() -> Vec<OpCase> {
    vec![
        case!(
            "avg_pool2d" for [avg_pool2d],
            ["unfold", "sum"],
            unary_fixed(&[2, 2, 4, 5], ANY),
            |v| try_avg_pool2d(&v[0], Pool2dOptions::new(2).padding(1))
        ),
        case!(
            "avg_pool2d_exclude_pad" for [avg_pool2d],
            ["unfold", "sum"],
            unary_fixed(&[1, 2, 5, 5], ANY),
            |v| {
                let o = Pool2dOptions::new(3)
                    .stride(2)
                    .padding(1)
                    .count_include_pad(false);
                try_avg_pool2d(&v[0], o)
            }
        ),
    ]
}

/// Averaging matrix [out, n]: row i averages [⌊i·n/out⌋, ⌈(i+1)·n/out⌉).
/// The caller has checked that `out · n` (and so `(i + 1)·n`) fits.
fn averaging_matrix<T: Element>(out: usize, n: usize) -> Tensor<T> {
    let mut m = vec![T::zero(); out * n];
    for i in 0..out {
        let (start, end) = (i * n / out, ((i + 1) * n).div_ceil(out));
        let v = T::one() / T::from_f64((end - start) as f64);
        for j in start..end {
            m[i * n + j] = v;
        }
    }
    Tensor::from_vec([out, n], m)
}

/// Adaptive average pooling to (oh, ow), as `torch.nn.functional.adaptive_avg_pool2d`.
#[track_caller]
pub fn try_adaptive_avg_pool2d<T: Element>(
    x: &Var<T>,
    output_size: impl Into<Size2>,
) -> Result<Var<T>> {
    let out: (usize, usize) = output_size.into().into();
    let op = "adaptive_avg_pool2d";
    let (_, _, h, w) = nchw(op, x)?;
    if out.0 == 0 || out.1 == 0 || h == 0 || w == 0 {
        return Err(Error::argument(
            op,
            format!("output size {out:?} for input {}", fmt_shape(x.shape())),
        ));
    }
    // The averaging matrices and the output, checked before any is built.
    let (n, c) = (x.shape()[0], x.shape()[1]);
    try_numel(op, &[out.0, h])?;
    try_numel(op, &[out.1, w])?;
    try_numel(op, &[n, c, out.0, out.1])?;
    let ph = Var::constant(averaging_matrix::<T>(out.0, h));
    let pw = Var::constant(averaging_matrix::<T>(out.1, w));
    ph.try_matmul(x)?
        .try_matmul_t(&pw, crate::matmul::Transpose::Second)
}

/// Adaptive average pooling as [`try_adaptive_avg_pool2d`].
///
/// # Panics
///
/// With the error [`try_adaptive_avg_pool2d`] returns, at the caller's line.
#[track_caller]
pub fn adaptive_avg_pool2d<T: Element>(x: &Var<T>, output_size: impl Into<Size2>) -> Var<T> {
    chainrule_tape::error::or_panic(try_adaptive_avg_pool2d(x, output_size))
}

#[cfg(feature = "strategies")]
fn adaptive_avg_pool2d_cases() -> Vec<OpCase> {
    vec![case!(
        "adaptive_avg_pool2d" for [adaptive_avg_pool2d],
        ["matmul"],
        unary_fixed(&[2, 2, 5, 7], ANY),
        |v| try_adaptive_avg_pool2d(&v[0], (3, 2))
    )]
}

/// This family's registry cases.
#[cfg(feature = "strategies")]
pub(crate) fn cases() -> Vec<OpCase> {
    [
        max_pool2d_cases(),
        avg_pool2d_cases(),
        adaptive_avg_pool2d_cases(),
    ]
    .concat()
}
