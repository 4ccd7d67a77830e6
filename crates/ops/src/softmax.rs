//! softmax, log_softmax and logsumexp over one axis, computed stably by
//! subtracting the maximum (inputs of ±1000 give finite values and
//! gradients). Backwards are written in differentiable ops:
//!   softmax:     ∂/∂x = y ⊙ (G − Σ G⊙y),
//!   log_softmax: ∂/∂x = G − softmax(x) ⊙ Σ G, with softmax(x) = exp(y),
//!   logsumexp:   ∂/∂x = G ⊙ exp(x − y).

use crate::VarOps;
use chainrule_tape::error::Result;
use chainrule_tape::shape::normalize_axis;
use chainrule_tape::{BackwardContext, Element, InputGrads, Op, Tensor, Var};
use smallvec::smallvec;

#[cfg(feature = "strategies")]
use crate::registry::{case, unary_case, unary_fixed, OpCase, ANY};

/// For each lane along `axis`: (max, ln Σ exp(x − max)), via `f(lane) -> value per element`.
fn lane_apply<T: Element>(
    x: &Tensor<T>,
    axis: usize,
    keep_lane: bool,
    f: impl Fn(&[T], &mut [T]),
) -> Tensor<T> {
    let shape = x.shape();
    let n = shape[axis];
    let inner: usize = shape[axis + 1..].iter().product();
    let outer: usize = shape[..axis].iter().product();
    let out_n = if keep_lane { n } else { 1 };
    let mut out = vec![T::zero(); outer * inner * out_n];
    let mut lane = vec![T::zero(); n];
    let mut res = vec![T::zero(); out_n];
    let data = x.data();
    for o in 0..outer {
        for i in 0..inner {
            for (k, l) in lane.iter_mut().enumerate() {
                *l = data[(o * n + k) * inner + i];
            }
            f(&lane, &mut res);
            for (k, &r) in res.iter().enumerate() {
                out[(o * out_n + k) * inner + i] = r;
            }
        }
    }
    let mut out_shape = shape.to_vec();
    out_shape[axis] = out_n;
    Tensor::from_vec(&out_shape, out)
}

/// ln Σ exp(lane), stably; −∞ for an all −∞ lane; NaN propagates.
fn lse<T: Element>(lane: &[T]) -> T {
    let m = lane.iter().copied().fold(
        T::neg_infinity(),
        |a, b| if b > a || b.is_nan() { b } else { a },
    );
    if m.is_nan() {
        return m;
    }
    if m == T::neg_infinity() || m == T::infinity() {
        return m;
    }
    m + lane.iter().map(|&v| (v - m).exp()).sum::<T>().ln()
}

fn axis_of<T: Element>(op: &'static str, x: &Var<T>, axis: isize) -> Result<usize> {
    normalize_axis(op, axis, x.shape().len().max(1))
}

/// Lifts a 0-d input to 1-d for the lane kernels (and back).
fn as_lanes<T: Element>(x: &Tensor<T>) -> Tensor<T> {
    if x.rank() == 0 {
        x.reshape([1])
    } else {
        x.clone()
    }
}

/// softmax along an axis.
pub struct Softmax {
    /// The axis.
    pub axis: usize,
}
impl<T: Element> Op<T> for Softmax {
    fn name(&self) -> &str {
        "softmax"
    }
    fn formula(&self, _input: usize) -> Option<String> {
        Some("y ⊙ (G − Σ G⊙y)".into())
    }
    fn backward(&self, cx: &BackwardContext<'_, T>) -> Result<InputGrads<T>> {
        let y = cx.output;
        let gy = cx.grad.try_mul(y)?;
        let s = gy.try_sum(&[self.axis as isize], true)?;
        Ok(smallvec![Some(gy.try_sub(&y.try_mul(&s)?)?)])
    }
}

/// Forward of [`Softmax`]: exp(x − logsumexp(x)) per lane.
#[track_caller]
pub(crate) fn softmax<T: Element>(x: &Var<T>, axis: isize) -> Result<Var<T>> {
    let a = axis_of("softmax", x, axis)?;
    let v = lane_apply(&as_lanes(x.value()), a, true, |lane, out| {
        let l = lse(lane);
        for (o, &v) in out.iter_mut().zip(lane) {
            *o = (v - l).exp();
        }
    });
    Var::from_op(Softmax { axis: a }, &[x], v.reshape(x.shape()))
}

#[cfg(feature = "strategies")]
fn softmax_cases() -> Vec<OpCase> {
    vec![case!(
        "softmax" for [softmax],
        ["softmax"],
        unary_case(1..=3, ANY),
        |v| v[0].try_softmax(-1)
    )]
}

/// log_softmax along an axis.
pub struct LogSoftmax {
    /// The axis.
    pub axis: usize,
}
impl<T: Element> Op<T> for LogSoftmax {
    fn name(&self) -> &str {
        "log_softmax"
    }
    fn formula(&self, _input: usize) -> Option<String> {
        Some("G − exp(y) ⊙ Σ G".into())
    }
    fn backward(&self, cx: &BackwardContext<'_, T>) -> Result<InputGrads<T>> {
        let p = cx.output.try_exp()?;
        let s = cx.grad.try_sum(&[self.axis as isize], true)?;
        Ok(smallvec![Some(cx.grad.try_sub(&p.try_mul(&s)?)?)])
    }
}

/// Forward of [`LogSoftmax`]: x − logsumexp(x) per lane.
#[track_caller]
pub(crate) fn log_softmax<T: Element>(x: &Var<T>, axis: isize) -> Result<Var<T>> {
    let a = axis_of("log_softmax", x, axis)?;
    let v = lane_apply(&as_lanes(x.value()), a, true, |lane, out| {
        let l = lse(lane);
        for (o, &v) in out.iter_mut().zip(lane) {
            *o = v - l;
        }
    });
    Var::from_op(LogSoftmax { axis: a }, &[x], v.reshape(x.shape()))
}

#[cfg(feature = "strategies")]
fn log_softmax_cases() -> Vec<OpCase> {
    vec![case!(
        "log_softmax" for [log_softmax],
        ["log_softmax"],
        unary_case(1..=3, ANY),
        |v| v[0].try_log_softmax(0)
    )]
}

/// logsumexp along an axis.
pub struct LogSumExp {
    /// The axis.
    pub axis: usize,
    /// Whether the reduced axis stays as size 1.
    pub keepdim: bool,
}
impl<T: Element> Op<T> for LogSumExp {
    fn name(&self) -> &str {
        "logsumexp"
    }
    fn formula(&self, _input: usize) -> Option<String> {
        Some("G ⊙ exp(x − y) = G ⊙ softmax(x)".into())
    }
    fn backward(&self, cx: &BackwardContext<'_, T>) -> Result<InputGrads<T>> {
        let x = cx.input(0);
        let mut kept = x.shape().to_vec();
        if let Some(k) = kept.get_mut(self.axis) {
            *k = 1;
        }
        let y = cx.output.try_reshape_to(&kept)?;
        let g = cx.grad.try_reshape_to(&kept)?;
        Ok(smallvec![Some(g.try_mul(&x.try_sub(&y)?.try_exp()?)?)])
    }
}

/// Forward of [`LogSumExp`]: m + ln Σ exp(x − m), m the lane's max.
#[track_caller]
pub(crate) fn logsumexp<T: Element>(x: &Var<T>, axis: isize, keepdim: bool) -> Result<Var<T>> {
    let a = axis_of("logsumexp", x, axis)?;
    let lanes = as_lanes(x.value());
    let mut v = lane_apply(&lanes, a, false, |lane, out| out[0] = lse(lane));
    if !keepdim {
        let mut s = lanes.shape().to_vec();
        s.remove(a);
        v = v.reshape(&s);
    }
    if x.shape().is_empty() {
        v = v.reshape(if keepdim { vec![1] } else { vec![] });
    }
    Var::from_op(LogSumExp { axis: a, keepdim }, &[x], v)
}

#[cfg(feature = "strategies")]
fn logsumexp_cases() -> Vec<OpCase> {
    vec![
        case!(
            "logsumexp" for [logsumexp],
            ["logsumexp"],
            unary_case(2..=4, ANY),
            |v| v[0].try_logsumexp(1, false)
        ),
        case!(
            "logsumexp_keepdim" for [logsumexp],
            ["logsumexp"],
            unary_fixed(&[3, 4], ANY),
            |v| v[0].try_logsumexp(-1, true)
        ),
    ]
}

/// This family's registry cases.
#[cfg(feature = "strategies")]
pub(crate) fn cases() -> Vec<OpCase> {
    [softmax_cases(), log_softmax_cases(), logsumexp_cases()].concat()
}
