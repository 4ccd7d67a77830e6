//! Convolution over NCHW through im2col: `unfold` copies each receptive
//! field into a column (as `torch.nn.functional.unfold`, per sample
//! [N, C·k, L]), one filter bank applied to every sample's columns
//! (`batch_gemm`) writes the output in place, and `fold` (col2im) is
//! unfold's adjoint. Unfold's backward is a fold and fold's backward an
//! unfold, and the two products are each other's backward, so conv1d,
//! conv2d and conv_transpose2d, composed from them, are differentiable to
//! any order in input, weight and bias.

mod batch_gemm;

use crate::VarOps;
use batch_gemm::shared_matmul;
pub use batch_gemm::{BatchSumMatMul, SharedMatMul};
use chainrule_tape::error::{Error, ErrorKind, Result};
use chainrule_tape::shape::{fmt_shape, mul_size, try_filled, try_numel};
use chainrule_tape::{BackwardContext, Element, InputGrads, Op, Tensor, Var};
use rayon::prelude::*;
use smallvec::smallvec;

#[cfg(feature = "strategies")]
use crate::registry::{case, fixed, Domain, OpCase};

/// Weights and images of the convolution cases.
#[cfg(feature = "strategies")]
const SMALL: Domain = Domain::Range(-1.0, 1.0);

/// A (height, width) pair that a single `usize` converts into as a square
/// pair, like PyTorch's int-or-tuple arguments: `Size2::from(3)` is
/// `Size2(3, 3)` and `Size2::from((1, 2))` is `Size2(1, 2)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Size2(pub usize, pub usize);

impl From<usize> for Size2 {
    fn from(v: usize) -> Self {
        Size2(v, v)
    }
}

impl From<(usize, usize)> for Size2 {
    fn from((h, w): (usize, usize)) -> Self {
        Size2(h, w)
    }
}

impl From<Size2> for (usize, usize) {
    fn from(s: Size2) -> Self {
        (s.0, s.1)
    }
}

/// The geometry of a 2-D sliding window, every field explicit. Ops take
/// [`Conv2dOptions`] or [`Pool2dOptions`](crate::Pool2dOptions), which fill
/// in PyTorch's defaults and build this.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    /// Kernel (height, width).
    pub kernel: (usize, usize),
    /// Stride (height, width).
    pub stride: (usize, usize),
    /// Zero padding on each side (height, width).
    pub padding: (usize, usize),
    /// Dilation (height, width).
    pub dilation: (usize, usize),
}

impl Window {
    /// Output size along one axis: ⌊(n + 2p − d(k − 1) − 1)/s⌋ + 1, or
    /// `None` when the window is larger than the padded input or a term
    /// overflows (k ≥ 1 and s ≥ 1 are checked by the caller).
    fn out_len(n: usize, k: usize, s: usize, p: usize, d: usize) -> Option<usize> {
        let span = d.checked_mul(k - 1)?.checked_add(1)?;
        let padded = p.checked_mul(2)?.checked_add(n)?;
        padded.checked_sub(span).map(|r| r / s + 1)
    }

    /// Checks the geometry against an input of spatial size (h, w) and
    /// returns the output size.
    pub fn output_size(&self, op: &'static str, h: usize, w: usize) -> Result<(usize, usize)> {
        let Window {
            kernel: (kh, kw),
            stride: (sh, sw),
            padding: (ph, pw),
            dilation: (dh, dw),
        } = *self;
        if kh == 0 || kw == 0 || sh == 0 || sw == 0 || dh == 0 || dw == 0 {
            return Err(Error::argument(
                op,
                format!(
                    "kernel {:?}, stride {:?} and dilation {:?} must be positive",
                    self.kernel, self.stride, self.dilation
                ),
            ));
        }
        match (
            Self::out_len(h, kh, sh, ph, dh),
            Self::out_len(w, kw, sw, pw, dw),
        ) {
            (Some(oh), Some(ow)) if oh > 0 && ow > 0 => {
                mul_size(op, "output positions", oh, ow)?;
                Ok((oh, ow))
            }
            _ => {
                let padded = |n: usize, p: usize| p.checked_mul(2).and_then(|p| p.checked_add(n));
                match (padded(h, ph), padded(w, pw)) {
                    (Some(ph), Some(pw)) => Err(Error::argument(
                        op,
                        format!(
                            "kernel {:?} (dilation {:?}) is larger than the padded input {ph}x{pw}",
                            self.kernel, self.dilation,
                        ),
                    )),
                    _ => Err(Error::new(
                        op,
                        ErrorKind::Overflow,
                        format!("padding {:?} overflows for the input {h}x{w}", self.padding),
                    )),
                }
            }
        }
    }
}

/// Output positions o in [lo, hi) whose input coordinate o·stride + offset
/// lies in [0, size). In `i128`: sizes, strides and paddings are any `usize`
/// (a geometry of 2⁶³-sized strides and padding can still give a small
/// output), and their sums and differences must neither wrap nor flip sign.
pub(crate) fn valid_range(
    out_len: usize,
    size: usize,
    stride: usize,
    offset: i128,
) -> (usize, usize) {
    let s = stride as i128;
    let lo = if offset >= 0 {
        0
    } else {
        (-offset + s - 1) / s
    };
    let hi = (size as i128 - offset + s - 1)
        .div_euclid(s)
        .clamp(0, out_len as i128);
    (lo.min(hi) as usize, hi as usize)
}

/// For one kernel tap and each output row, the run of valid output columns:
/// `f(first output position, first input offset, count)`; consecutive
/// output positions step the input offset by the column stride. Shared by
/// unfold and fold, so padding never costs a per-pixel branch. Coordinates
/// are computed in `i128` once per row (see [`valid_range`]); every
/// position handed to `f` lies inside the image.
fn for_each_run(
    win: &Window,
    (h, w): (usize, usize),
    (oh, ow): (usize, usize),
    tap: usize,
    mut f: impl FnMut(usize, usize, usize),
) {
    let Window {
        kernel: (_, kw),
        stride: (sh, sw),
        padding: (ph, pw),
        dilation: (dh, dw),
    } = *win;
    let (i, j) = (tap / kw, tap % kw);
    let y_off = i as i128 * dh as i128 - ph as i128;
    let (y_lo, y_hi) = valid_range(oh, h, sh, y_off);
    let x_off = j as i128 * dw as i128 - pw as i128;
    let (x_lo, x_hi) = valid_range(ow, w, sw, x_off);
    if x_lo >= x_hi {
        return;
    }
    let x0 = (x_lo as i128 * sw as i128 + x_off) as usize;
    for oy in y_lo..y_hi {
        let y = (oy as i128 * sh as i128 + y_off) as usize;
        f(oy * ow + x_lo, y * w + x0, x_hi - x_lo);
    }
}

/// Where the columns of [`Unfold`] (and the input of [`Fold`]) put sample
/// n's L positions of row r = c·k + tap (k kernel taps, C·k rows).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ColsLayout {
    /// [C·k, N·L]: row r, columns n·L .. (n + 1)·L (one GEMM spans the batch).
    Batched,
    /// [N, C·k, L], PyTorch's `F.unfold`: sample n's matrix, row r.
    PerSample,
}

impl ColsLayout {
    /// The (sample, row) of segment `seg` (of L elements) of the columns.
    fn sample_row(self, seg: usize, n: usize, rows: usize) -> (usize, usize) {
        match self {
            ColsLayout::Batched => (seg % n, seg / n),
            ColsLayout::PerSample => (seg / rows, seg % rows),
        }
    }
    /// The segment index of (sample, row): the inverse of [`Self::sample_row`].
    fn segment(self, (sample, row): (usize, usize), n: usize, rows: usize) -> usize {
        match self {
            ColsLayout::Batched => row * n + sample,
            ColsLayout::PerSample => sample * rows + row,
        }
    }
    /// The columns' shape for N samples, C·k rows and L positions.
    fn shape(self, n: usize, rows: usize, l: usize) -> Vec<usize> {
        match self {
            ColsLayout::Batched => vec![rows, n * l],
            ColsLayout::PerSample => vec![n, rows, l],
        }
    }
}

/// im2col: x [N, C, H, W] → the columns in `layout`, segment (n, c·k + tap)
/// holding x[n, c] read at that tap for each of the L output positions
/// (zero where the tap falls in the padding).
fn unfold_kernel<T: Element>(
    x: &Tensor<T>,
    win: &Window,
    out_hw: (usize, usize),
    layout: ColsLayout,
) -> Result<Tensor<T>> {
    let s = x.shape();
    let (n, c, h, w) = (s[0], s[1], s[2], s[3]);
    let k = win.kernel.0 * win.kernel.1;
    let l = out_hw.0 * out_hw.1;
    let mut cols = try_filled("unfold", c * k * n * l, T::zero())?;
    if cols.is_empty() {
        return Tensor::try_from_vec(layout.shape(n, c * k, l), cols);
    }
    let plane = h * w;
    let sw = win.stride.1;
    let src = x.data();
    // One task per segment (sample, channel, tap): each writes its own L run.
    cols.par_chunks_mut(l)
        .with_min_len(64usize.div_ceil(l))
        .enumerate()
        .for_each(|(seg, dst)| {
            let (sample, row) = layout.sample_row(seg, n, c * k);
            let (ch, tap) = (row / k, row % k);
            let plane_src = &src[(sample * c + ch) * plane..(sample * c + ch + 1) * plane];
            for_each_run(win, (h, w), out_hw, tap, |pos, off, count| {
                let d = &mut dst[pos..pos + count];
                if sw == 1 {
                    d.copy_from_slice(&plane_src[off..off + count]);
                } else {
                    for (d, s) in d.iter_mut().zip(plane_src[off..].iter().step_by(sw)) {
                        *d = *s;
                    }
                }
            });
        });
    Tensor::try_from_vec(layout.shape(n, c * k, l), cols)
}

/// col2im, the adjoint of [`unfold_kernel`]: cols in `layout` → [N, C, H, W], overlaps summed.
fn fold_kernel<T: Element>(
    cols: &Tensor<T>,
    win: &Window,
    (n, c, h, w): (usize, usize, usize, usize),
    out_hw: (usize, usize),
    layout: ColsLayout,
) -> Result<Tensor<T>> {
    let k = win.kernel.0 * win.kernel.1;
    let l = out_hw.0 * out_hw.1;
    let plane = h * w;
    let sw = win.stride.1;
    let src = cols.data();
    let mut out = try_filled("fold", n * c * plane, T::zero())?;
    if out.is_empty() {
        return Tensor::try_from_vec([n, c, h, w], out);
    }
    // One task per output plane (sample, channel): it reads its k row segments.
    out.par_chunks_mut(plane).enumerate().for_each(|(p, dst)| {
        let (sample, ch) = (p / c, p % c);
        for tap in 0..k {
            let seg = layout.segment((sample, ch * k + tap), n, c * k);
            let row = &src[seg * l..(seg + 1) * l];
            for_each_run(win, (h, w), out_hw, tap, |pos, off, count| {
                let src = &row[pos..pos + count];
                if sw == 1 {
                    // Contiguous runs: a slice loop the compiler vectorises.
                    for (d, s) in dst[off..off + count].iter_mut().zip(src) {
                        *d = *d + *s;
                    }
                } else {
                    for (d, s) in dst[off..].iter_mut().step_by(sw).zip(src) {
                        *d = *d + *s;
                    }
                }
            });
        }
    });
    Tensor::try_from_vec([n, c, h, w], out)
}

/// im2col: [N, C, H, W] → [C·kh·kw, N·L] or [N, C·kh·kw, L] (`layout`;
/// L output positions per image). ∂/∂x = fold(G).
pub struct Unfold {
    /// Window geometry.
    pub window: Window,
    /// Layout of the columns.
    pub layout: ColsLayout,
}
impl<T: Element> Op<T> for Unfold {
    fn name(&self) -> &str {
        "unfold"
    }
    fn formula(&self, _input: usize) -> Option<String> {
        Some("fold(G) (col2im)".into())
    }
    fn describe(&self) -> String {
        format!("unfold({:?}, {:?})", self.window, self.layout)
    }
    fn backward(&self, cx: &BackwardContext<'_, T>) -> Result<InputGrads<T>> {
        let s = cx.input(0).shape();
        let g = fold_as(cx.grad, (s[2], s[3]), self.window, self.layout)?;
        Ok(smallvec![Some(g)])
    }
}

/// col2im: [C·kh·kw, N·L] or [N, C·kh·kw, L] (`layout`) → [N, C, H, W],
/// summing overlaps. ∂/∂cols = unfold(G).
pub struct Fold {
    /// Window geometry.
    pub window: Window,
    /// Layout of the columns.
    pub layout: ColsLayout,
}
impl<T: Element> Op<T> for Fold {
    fn name(&self) -> &str {
        "fold"
    }
    fn formula(&self, _input: usize) -> Option<String> {
        Some("unfold(G) (im2col)".into())
    }
    fn describe(&self) -> String {
        format!("fold({:?}, {:?})", self.window, self.layout)
    }
    fn backward(&self, cx: &BackwardContext<'_, T>) -> Result<InputGrads<T>> {
        Ok(smallvec![Some(unfold_as(
            cx.grad,
            self.window,
            self.layout
        )?)])
    }
}

fn check_rank<T: Element>(op: &'static str, x: &Var<T>, rank: usize, layout: &str) -> Result<()> {
    if x.shape().len() != rank {
        return Err(Error::shape(
            op,
            format!("expected a {layout} input, got {}", fmt_shape(x.shape())),
        ));
    }
    Ok(())
}

/// [`Unfold`] to the batched layout [C·k, N·L].
#[track_caller]
pub(crate) fn unfold<T: Element>(x: &Var<T>, window: Window) -> Result<Var<T>> {
    unfold_as(x, window, ColsLayout::Batched)
}

/// [`Unfold`] to `layout` (`torch.nn.functional.unfold` for [`ColsLayout::PerSample`]).
#[track_caller]
fn unfold_as<T: Element>(x: &Var<T>, window: Window, layout: ColsLayout) -> Result<Var<T>> {
    check_rank("unfold", x, 4, "[N, C, H, W]")?;
    let s = x.shape();
    let out_hw = window.output_size("unfold", s[2], s[3])?;
    // The columns' shape [C·k, N·L], checked before anything is allocated.
    let k = mul_size("unfold", "kernel taps", window.kernel.0, window.kernel.1)?;
    let rows = mul_size("unfold", "rows C·k", s[1], k)?;
    let positions = mul_size("unfold", "columns N·L", s[0], out_hw.0 * out_hw.1)?;
    try_numel("unfold", &[rows, positions])?;
    let v = unfold_kernel(x.value(), &window, out_hw, layout)?;
    Var::from_op(Unfold { window, layout }, &[x], v)
}

/// [`Fold`] of columns in `layout` to spatial size `out`
/// (`torch.nn.functional.fold` for [`ColsLayout::PerSample`]).
#[track_caller]
fn fold_as<T: Element>(
    cols: &Var<T>,
    out: (usize, usize),
    window: Window,
    layout: ColsLayout,
) -> Result<Var<T>> {
    let k = mul_size("fold", "kernel taps", window.kernel.0, window.kernel.1)?;
    let out_hw = window.output_size("fold", out.0, out.1)?;
    let l = out_hw.0 * out_hw.1;
    // (rows C·k, samples N, positions L) as stored.
    let (rows, n, positions) = match layout {
        ColsLayout::Batched => {
            check_rank("fold", cols, 2, "[C·kh·kw, N·L]")?;
            let s = cols.shape();
            (s[0], s[1] / l.max(1), s[1])
        }
        ColsLayout::PerSample => {
            check_rank("fold", cols, 3, "[N, C·kh·kw, L]")?;
            let s = cols.shape();
            (s[1], s[0], s[2])
        }
    };
    let per_sample_ok = layout == ColsLayout::Batched || positions == l;
    let s = cols.shape();
    if !rows.is_multiple_of(k) || !positions.is_multiple_of(l) || !per_sample_ok {
        return Err(Error::shape(
            "fold",
            format!(
                "{} does not match kernel {:?} and {l} output positions of a {}x{} image",
                fmt_shape(s),
                window.kernel,
                out.0,
                out.1
            ),
        ));
    }
    let c = rows / k;
    try_numel("fold", &[n, c, out.0, out.1])?;
    let v = fold_kernel(cols.value(), &window, (n, c, out.0, out.1), out_hw, layout)?;
    Var::from_op(Fold { window, layout }, &[cols], v)
}

/// Settings of [`conv2d`] with PyTorch's defaults (`Default`): stride 1,
/// padding 0, dilation 1, groups 1. Pair fields accept a single `usize` for
/// a square value through [`Size2`]'s `From`, as PyTorch's int-or-tuple:
/// `Conv2dOptions::default().padding(1)` or
/// `Conv2dOptions { padding: (1, 2).into(), ..Default::default() }`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv2dOptions {
    /// Stride (height, width); 1.
    pub stride: Size2,
    /// Zero padding on each side (height, width); 0.
    pub padding: Size2,
    /// Spacing between kernel taps (height, width); 1.
    pub dilation: Size2,
    /// Channel groups; 1.
    pub groups: usize,
}

impl Default for Conv2dOptions {
    fn default() -> Self {
        Conv2dOptions {
            stride: Size2(1, 1),
            padding: Size2(0, 0),
            dilation: Size2(1, 1),
            groups: 1,
        }
    }
}

impl Conv2dOptions {
    /// With this stride.
    pub fn stride(self, stride: impl Into<Size2>) -> Self {
        Conv2dOptions {
            stride: stride.into(),
            ..self
        }
    }
    /// With this padding.
    pub fn padding(self, padding: impl Into<Size2>) -> Self {
        Conv2dOptions {
            padding: padding.into(),
            ..self
        }
    }
    /// With this dilation.
    pub fn dilation(self, dilation: impl Into<Size2>) -> Self {
        Conv2dOptions {
            dilation: dilation.into(),
            ..self
        }
    }
    /// With this many groups.
    pub fn groups(self, groups: usize) -> Self {
        Conv2dOptions { groups, ..self }
    }
}

/// conv2d over x `[N, C, H, W]` with weight `[O, C/groups, kh, kw]` and
/// optional bias `[O]`, as `torch.nn.functional.conv2d` (cross-correlation):
/// `out[n, o] = bias[o] + Σ_c Σ_(i,j) weight[o, c, i, j]·x[n, c, s·y + d·i − p, s·x + d·j − p]`.
#[track_caller]
pub fn try_conv2d<T: Element>(
    x: &Var<T>,
    weight: &Var<T>,
    bias: Option<&Var<T>>,
    options: Conv2dOptions,
) -> Result<Var<T>> {
    let Conv2dOptions {
        stride,
        padding,
        dilation,
        groups,
    } = options;
    let (stride, padding, dilation) = (stride.into(), padding.into(), dilation.into());
    let op = "conv2d";
    check_rank(op, x, 4, "[N, C, H, W]")?;
    check_rank(op, weight, 4, "[O, C/groups, kh, kw] weight")?;
    let (xs, ws) = (x.shape(), weight.shape());
    let (n, c) = (xs[0], xs[1]);
    let o = ws[0];
    if groups == 0 || c % groups != 0 || o % groups != 0 || ws[1].checked_mul(groups) != Some(c) {
        return Err(Error::shape(
            op,
            format!(
                "input {} and weight {} with groups = {groups}: need C = weight[1]·groups and both C and O divisible by groups",
                fmt_shape(xs),
                fmt_shape(ws)
            ),
        ));
    }
    let window = Window {
        kernel: (ws[2], ws[3]),
        stride,
        padding,
        dilation,
    };
    let (oh, ow) = window.output_size(op, xs[2], xs[3])?;
    let k = ws[1] * ws[2] * ws[3];
    let l = oh * ow;
    // Per sample and group, out[n, j] = W[j]·cols[n, j]: [O/g, k]·[k, L],
    // written straight into [N, O, L] (no permute).
    let cols = unfold_as(x, window, ColsLayout::PerSample)?.try_reshape_to(&[n, groups, k, l])?;
    let filters = weight.try_reshape_to(&[groups, o / groups, k])?;
    let mut out = shared_matmul(&filters, &cols, false, false)?.try_reshape_to(&[n, o, oh, ow])?;
    if let Some(b) = bias {
        out = add_channel_bias(op, &out, b, o)?;
    }
    Ok(out)
}

panicking_twin!(
    /// conv2d as [`try_conv2d`]: `conv2d(&x, &w, Some(&b), Conv2dOptions::default().padding(1))`.
    conv2d / try_conv2d[T: Element](x: &Var<T>, weight: &Var<T>, bias: Option<&Var<T>>, options: Conv2dOptions) -> Var<T>
);

/// conv2d's cases: padded with bias; strided, dilated and grouped without.
#[cfg(feature = "strategies")]
fn conv2d_cases() -> Vec<OpCase> {
    vec![
        case!(
            "conv2d" for [conv2d],
            ["unfold", "shared_matmul"],
            fixed(vec![
                (vec![2, 2, 4, 4], SMALL),
                (vec![3, 2, 3, 3], SMALL),
                (vec![3], SMALL)
            ]),
            |v| try_conv2d(&v[0], &v[1], Some(&v[2]), Conv2dOptions::default().padding(1))
        ),
        case!(
            "conv2d_stride_dilation_groups" for [conv2d],
            ["unfold", "shared_matmul"],
            fixed(vec![(vec![1, 4, 6, 5], SMALL), (vec![2, 2, 2, 2], SMALL)]),
            |v| {
                let o = Conv2dOptions::default()
                    .stride((2, 1))
                    .padding((1, 2))
                    .dilation((2, 1))
                    .groups(2);
                try_conv2d(&v[0], &v[1], None, o)
            }
        ),
    ]
}

fn add_channel_bias<T: Element>(
    op: &'static str,
    out: &Var<T>,
    b: &Var<T>,
    channels: usize,
) -> Result<Var<T>> {
    if b.shape() != [channels] {
        return Err(Error::shape(
            op,
            format!(
                "bias {} for {channels} output channels",
                fmt_shape(b.shape())
            ),
        ));
    }
    let mut shape = vec![1; out.shape().len()];
    shape[1] = channels;
    out.try_add(&b.try_reshape_to(&shape)?)
}

/// Settings of [`conv1d`] with PyTorch's defaults (`Default`): stride 1,
/// padding 0, dilation 1, groups 1; builder methods as [`Conv2dOptions`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv1dOptions {
    /// Stride; 1.
    pub stride: usize,
    /// Zero padding on each side; 0.
    pub padding: usize,
    /// Spacing between kernel taps; 1.
    pub dilation: usize,
    /// Channel groups; 1.
    pub groups: usize,
}

impl Default for Conv1dOptions {
    fn default() -> Self {
        Conv1dOptions {
            stride: 1,
            padding: 0,
            dilation: 1,
            groups: 1,
        }
    }
}

impl Conv1dOptions {
    /// With this stride.
    pub fn stride(self, stride: usize) -> Self {
        Conv1dOptions { stride, ..self }
    }
    /// With this padding.
    pub fn padding(self, padding: usize) -> Self {
        Conv1dOptions { padding, ..self }
    }
    /// With this dilation.
    pub fn dilation(self, dilation: usize) -> Self {
        Conv1dOptions { dilation, ..self }
    }
    /// With this many groups.
    pub fn groups(self, groups: usize) -> Self {
        Conv1dOptions { groups, ..self }
    }
}

/// conv1d over x `[N, C, L]` with weight `[O, C/groups, k]` and optional bias
/// `[O]` (`torch.nn.functional.conv1d`): conv2d on a height-1 image.
#[track_caller]
pub fn try_conv1d<T: Element>(
    x: &Var<T>,
    weight: &Var<T>,
    bias: Option<&Var<T>>,
    options: Conv1dOptions,
) -> Result<Var<T>> {
    check_rank("conv1d", x, 3, "[N, C, L]")?;
    check_rank("conv1d", weight, 3, "[O, C/groups, k] weight")?;
    let (xs, ws) = (x.shape(), weight.shape());
    let x4 = x.try_reshape_to(&[xs[0], xs[1], 1, xs[2]])?;
    let w4 = weight.try_reshape_to(&[ws[0], ws[1], 1, ws[2]])?;
    let o = options;
    let y = try_conv2d(
        &x4,
        &w4,
        bias,
        Conv2dOptions {
            stride: Size2(1, o.stride),
            padding: Size2(0, o.padding),
            dilation: Size2(1, o.dilation),
            groups: o.groups,
        },
    )?;
    let ys = y.shape().to_vec();
    y.try_reshape_to(&[ys[0], ys[1], ys[3]])
}

panicking_twin!(
    /// conv1d as [`try_conv1d`].
    conv1d / try_conv1d[T: Element](x: &Var<T>, weight: &Var<T>, bias: Option<&Var<T>>, options: Conv1dOptions) -> Var<T>
);

#[cfg(feature = "strategies")]
fn conv1d_cases() -> Vec<OpCase> {
    vec![case!(
        "conv1d" for [conv1d],
        ["unfold", "shared_matmul"],
        fixed(vec![
            (vec![2, 2, 7], SMALL),
            (vec![4, 1, 3], SMALL),
            (vec![4], SMALL)
        ]),
        |v| {
            let o = Conv1dOptions::default().stride(2).padding(1).groups(2);
            try_conv1d(&v[0], &v[1], Some(&v[2]), o)
        }
    )]
}

/// Settings of [`conv_transpose2d`] with PyTorch's defaults (`Default`):
/// stride 1, padding 0, output_padding 0, groups 1, dilation 1; pair fields
/// and builder methods as [`Conv2dOptions`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvTranspose2dOptions {
    /// Stride (height, width); 1.
    pub stride: Size2,
    /// Padding removed from each side of the output (height, width); 0.
    pub padding: Size2,
    /// Extra size added to one side of the output (height, width); 0.
    pub output_padding: Size2,
    /// Channel groups; 1.
    pub groups: usize,
    /// Spacing between kernel taps (height, width); 1.
    pub dilation: Size2,
}

impl Default for ConvTranspose2dOptions {
    fn default() -> Self {
        ConvTranspose2dOptions {
            stride: Size2(1, 1),
            padding: Size2(0, 0),
            output_padding: Size2(0, 0),
            groups: 1,
            dilation: Size2(1, 1),
        }
    }
}

impl ConvTranspose2dOptions {
    /// With this stride.
    pub fn stride(self, stride: impl Into<Size2>) -> Self {
        ConvTranspose2dOptions {
            stride: stride.into(),
            ..self
        }
    }
    /// With this padding.
    pub fn padding(self, padding: impl Into<Size2>) -> Self {
        ConvTranspose2dOptions {
            padding: padding.into(),
            ..self
        }
    }
    /// With this output padding.
    pub fn output_padding(self, output_padding: impl Into<Size2>) -> Self {
        ConvTranspose2dOptions {
            output_padding: output_padding.into(),
            ..self
        }
    }
    /// With this many groups.
    pub fn groups(self, groups: usize) -> Self {
        ConvTranspose2dOptions { groups, ..self }
    }
    /// With this dilation.
    pub fn dilation(self, dilation: impl Into<Size2>) -> Self {
        ConvTranspose2dOptions {
            dilation: dilation.into(),
            ..self
        }
    }
}

/// Transposed convolution (the gradient of conv2d with respect to its
/// input) over x `[N, Cin, H, W]` with weight `[Cin, Cout/groups, kh, kw]` and
/// optional bias `[Cout]`: output size (H − 1)·s − 2p + d(k − 1) +
/// output_padding + 1, as `torch.nn.functional.conv_transpose2d`.
#[track_caller]
pub fn try_conv_transpose2d<T: Element>(
    x: &Var<T>,
    weight: &Var<T>,
    bias: Option<&Var<T>>,
    options: ConvTranspose2dOptions,
) -> Result<Var<T>> {
    let ConvTranspose2dOptions {
        stride,
        padding,
        output_padding,
        groups,
        dilation,
    } = options;
    let (stride, padding, dilation): ((usize, usize), (usize, usize), (usize, usize)) =
        (stride.into(), padding.into(), dilation.into());
    let output_padding: (usize, usize) = output_padding.into();
    let op = "conv_transpose2d";
    check_rank(op, x, 4, "[N, C, H, W]")?;
    check_rank(op, weight, 4, "[Cin, Cout/groups, kh, kw] weight")?;
    let (xs, ws) = (x.shape(), weight.shape());
    let (n, cin, h, w) = (xs[0], xs[1], xs[2], xs[3]);
    if groups == 0 || ws[0] != cin || cin % groups != 0 {
        return Err(Error::shape(
            op,
            format!(
                "input {} and weight {} with groups = {groups}",
                fmt_shape(xs),
                fmt_shape(ws)
            ),
        ));
    }
    if output_padding.0 >= stride.0.max(dilation.0) || output_padding.1 >= stride.1.max(dilation.1)
    {
        return Err(Error::argument(
            op,
            format!("output_padding {output_padding:?} must be smaller than stride or dilation"),
        ));
    }
    let cout = mul_size(op, "output channels", ws[1], groups)?;
    let (kh, kw) = (ws[2], ws[3]);
    mul_size(op, "columns' rows", cout, ws[2] * ws[3])?;
    // (n − 1)·s + d(k − 1) + output_padding + 1 − 2p, checked (None also
    // for an empty spatial input, which PyTorch rejects too).
    let span = |n: usize, s: usize, p: usize, d: usize, k: usize, op_: usize| {
        let grown = n.checked_sub(1)?.checked_mul(s)?;
        let reach = d.checked_mul(k.checked_sub(1)?)?;
        grown
            .checked_add(reach)?
            .checked_add(op_ + 1)?
            .checked_sub(p.checked_mul(2)?)
            .filter(|&o| o > 0)
    };
    let (Some(ho), Some(wo)) = (
        span(h, stride.0, padding.0, dilation.0, kh, output_padding.0),
        span(w, stride.1, padding.1, dilation.1, kw, output_padding.1),
    ) else {
        return Err(Error::argument(
            op,
            format!("padding {padding:?} leaves no output for {}", fmt_shape(xs)),
        ));
    };
    let window = Window {
        kernel: (kh, kw),
        stride,
        padding,
        dilation,
    };
    let k = ws[1] * kh * kw;
    let filters = weight.try_reshape_to(&[groups, cin / groups, k])?;
    // Per sample and group, cols[n, j] = W[j]ᵀ·x[n, j]: [k, Cin/g]·[Cin/g, H·W].
    let x2 = x.try_reshape_to(&[n, groups, cin / groups, h * w])?;
    let cols =
        shared_matmul(&filters, &x2, true, false)?.try_reshape_to(&[n, cout * kh * kw, h * w])?;
    let mut out = fold_as(&cols, (ho, wo), window, ColsLayout::PerSample)?;
    if let Some(b) = bias {
        out = add_channel_bias(op, &out, b, cout)?;
    }
    Ok(out)
}

panicking_twin!(
    /// conv_transpose2d as [`try_conv_transpose2d`].
    conv_transpose2d / try_conv_transpose2d[T: Element](x: &Var<T>, weight: &Var<T>, bias: Option<&Var<T>>, options: ConvTranspose2dOptions) -> Var<T>
);

/// conv_transpose2d's cases: strided with output padding and bias; grouped
/// and dilated without.
#[cfg(feature = "strategies")]
fn conv_transpose2d_cases() -> Vec<OpCase> {
    vec![
        case!(
            "conv_transpose2d" for [conv_transpose2d],
            ["fold", "shared_matmul"],
            fixed(vec![
                (vec![1, 2, 3, 3], SMALL),
                (vec![2, 3, 3, 3], SMALL),
                (vec![3], SMALL)
            ]),
            |v| {
                let o = ConvTranspose2dOptions::default()
                    .stride(2)
                    .padding(1)
                    .output_padding(1);
                try_conv_transpose2d(&v[0], &v[1], Some(&v[2]), o)
            }
        ),
        case!(
            "conv_transpose2d_groups_dilation" for [conv_transpose2d],
            ["fold", "shared_matmul"],
            fixed(vec![(vec![1, 4, 3, 2], SMALL), (vec![4, 1, 2, 2], SMALL)]),
            |v| {
                let o = ConvTranspose2dOptions::default()
                    .stride((1, 2))
                    .padding((0, 1))
                    .dilation((2, 1))
                    .groups(2);
                try_conv_transpose2d(&v[0], &v[1], None, o)
            }
        ),
    ]
}

/// This family's registry cases.
#[cfg(feature = "strategies")]
pub(crate) fn cases() -> Vec<OpCase> {
    [conv2d_cases(), conv1d_cases(), conv_transpose2d_cases()].concat()
}
