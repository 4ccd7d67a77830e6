//! Activation functions, as `torch.nn.functional`. Each is an op with its
//! backward written in differentiable ops, or a composition of ops (then
//! its derivative is the chain rule through them); either way every one is
//! differentiable twice.
//!
//! Gradients at kinks follow PyTorch: leaky_relu'(0) = slope, elu'(0) = α,
//! hardtanh' = 0 at both bounds, clamp' = 1 at both bounds (and
//! relu'(0) = 0, see `unary`). Each op's registry cases follow it; domains
//! keep samples away from the kinks.

use crate::indexing::try_where_;
use crate::unary::{mask_where, unary};
use crate::VarOps;
use chainrule_tape::error::{Error, Result};
use chainrule_tape::{BackwardContext, Element, InputGrads, Op, Var};
use smallvec::smallvec;

#[cfg(feature = "strategies")]
use crate::registry::{case, grid, unary_case, unary_fixed, Domain, OpCase, ANY};

/// leaky_relu: x for x > 0, slope·x otherwise. d/dx = 1 or slope (slope at 0).
pub struct LeakyRelu<T>(pub T);
impl<T: Element> Op<T> for LeakyRelu<T> {
    fn name(&self) -> &str {
        "leaky_relu"
    }
    fn formula(&self, _input: usize) -> Option<String> {
        Some(format!("[x > 0] + {}·[x ≤ 0]", self.0))
    }
    fn backward(&self, cx: &BackwardContext<'_, T>) -> Result<InputGrads<T>> {
        let s = self.0;
        let local = cx
            .input(0)
            .value()
            .map(|v| if v > T::zero() { T::one() } else { s });
        Ok(smallvec![Some(cx.grad.try_mul(&Var::constant(local))?)])
    }
}

#[track_caller]
pub(crate) fn leaky_relu<T: Element>(x: &Var<T>, slope: T) -> Result<Var<T>> {
    unary(x, LeakyRelu(slope), move |v| {
        if v > T::zero() {
            v
        } else {
            slope * v
        }
    })
}

#[cfg(feature = "strategies")]
fn leaky_relu_cases() -> Vec<OpCase> {
    vec![case!(
        "leaky_relu" for [leaky_relu],
        ["leaky_relu"],
        unary_case(1..=3, Domain::AwayFromZero),
        |v| v[0].try_leaky_relu(0.2)
    )]
}

/// elu: x for x > 0, α(eˣ − 1) otherwise. d/dx = 1, or y + α (α at 0).
pub struct Elu<T>(pub T);
impl<T: Element> Op<T> for Elu<T> {
    fn name(&self) -> &str {
        "elu"
    }
    fn formula(&self, _input: usize) -> Option<String> {
        Some(format!("[x > 0] + [x ≤ 0]·(y + {})", self.0))
    }
    fn backward(&self, cx: &BackwardContext<'_, T>) -> Result<InputGrads<T>> {
        let positive = mask_where(cx.input(0).value(), |v| v > T::zero());
        let one = Var::constant(positive.value().ones_like());
        let local = try_where_(positive.value(), &one, &cx.output.add_scalar(self.0))?;
        Ok(smallvec![Some(cx.grad.try_mul(&local)?)])
    }
}

#[track_caller]
pub(crate) fn elu<T: Element>(x: &Var<T>, alpha: T) -> Result<Var<T>> {
    unary(x, Elu(alpha), move |v| {
        if v > T::zero() {
            v
        } else {
            alpha * v.exp_m1()
        }
    })
}

#[cfg(feature = "strategies")]
fn elu_cases() -> Vec<OpCase> {
    vec![case!(
        "elu" for [elu],
        ["elu"],
        unary_case(1..=3, Domain::AwayFromZero),
        |v| v[0].try_elu(1.3)
    )]
}

/// SELU's constants (Klambauer et al. 2017), as PyTorch.
pub const SELU_ALPHA: f64 = 1.673_263_242_354_377_3;
/// SELU's scale.
pub const SELU_SCALE: f64 = 1.050_700_987_355_480_5;

/// selu = scale·elu(x, α) with α ≈ 1.6733, scale ≈ 1.0507.
#[track_caller]
pub(crate) fn selu<T: Element>(x: &Var<T>) -> Result<Var<T>> {
    Ok(elu(x, T::from_f64(SELU_ALPHA))?.mul_scalar(T::from_f64(SELU_SCALE)))
}

#[cfg(feature = "strategies")]
fn selu_cases() -> Vec<OpCase> {
    vec![case!(
        "selu" for [selu],
        ["elu", "mul_scalar"],
        unary_case(1..=3, Domain::AwayFromZero),
        |v| v[0].try_selu()
    )]
}

/// Φ(x) = ½(1 + erf(x/√2)), the standard normal CDF. d/dx = φ(x) = e^(−x²/2)/√(2π).
pub struct NormalCdf;
impl<T: Element> Op<T> for NormalCdf {
    fn name(&self) -> &str {
        "normal_cdf"
    }
    fn formula(&self, _input: usize) -> Option<String> {
        Some("φ(x) = e^(−x²/2)/√(2π)".into())
    }
    fn backward(&self, cx: &BackwardContext<'_, T>) -> Result<InputGrads<T>> {
        let x = cx.input(0);
        let pdf = x
            .try_square()?
            .mul_scalar(T::from_f64(-0.5))
            .try_exp()?
            .mul_scalar(T::from_f64(1.0 / (2.0 * std::f64::consts::PI).sqrt()));
        Ok(smallvec![Some(cx.grad.try_mul(&pdf)?)])
    }
}

#[track_caller]
pub(crate) fn normal_cdf<T: Element>(x: &Var<T>) -> Result<Var<T>> {
    unary(x, NormalCdf, |v| {
        T::from_f64(0.5 * (1.0 + libm::erf(v.as_f64() / std::f64::consts::SQRT_2)))
    })
}

/// Which GELU: PyTorch's `approximate` argument of `F.gelu` / `nn.GELU`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum GeluApproximation {
    /// x·Φ(x), exact (`approximate='none'`, PyTorch's default).
    #[default]
    None,
    /// ½x(1 + tanh(√(2/π)(x + 0.044715x³))) (`approximate='tanh'`).
    Tanh,
}

#[track_caller]
pub(crate) fn gelu<T: Element>(x: &Var<T>, approximate: GeluApproximation) -> Result<Var<T>> {
    match approximate {
        GeluApproximation::None => x.try_mul(&normal_cdf(x)?),
        GeluApproximation::Tanh => {
            let k = T::from_f64((2.0 / std::f64::consts::PI).sqrt());
            let inner = x
                .try_add(
                    &x.try_powf(T::from_f64(3.0))?
                        .mul_scalar(T::from_f64(0.044715)),
                )?
                .mul_scalar(k);
            x.try_mul(&inner.try_tanh()?.add_scalar(T::one()))
                .map(|v| v.mul_scalar(T::from_f64(0.5)))
        }
    }
}

/// gelu's cases, one per kind (the exact one records [`NormalCdf`]).
#[cfg(feature = "strategies")]
fn gelu_cases() -> Vec<OpCase> {
    vec![
        case!(
            "gelu_exact" for [gelu],
            ["normal_cdf", "mul"],
            unary_case(1..=3, Domain::Range(-3.0, 3.0)),
            |v| v[0].try_gelu(GeluApproximation::None)
        ),
        case!(
            "gelu_tanh" for [gelu],
            ["tanh"],
            unary_case(1..=3, Domain::Range(-3.0, 3.0)),
            |v| v[0].try_gelu(GeluApproximation::Tanh)
        ),
    ]
}

/// softplus = (1/β)·ln(1 + e^(βx)), and x itself where βx > threshold
/// (PyTorch's defaults β = 1, threshold = 20; threshold = ∞ never switches).
/// d/dx = σ(βx), or 1 above the threshold.
pub struct Softplus<T> {
    /// β.
    pub beta: T,
    /// Above βx > threshold the op is linear.
    pub threshold: T,
}
impl<T: Element> Op<T> for Softplus<T> {
    fn name(&self) -> &str {
        "softplus"
    }
    fn formula(&self, _input: usize) -> Option<String> {
        Some("σ(βx) (1 above the threshold)".into())
    }
    fn describe(&self) -> String {
        format!("softplus(beta={}, threshold={})", self.beta, self.threshold)
    }
    fn backward(&self, cx: &BackwardContext<'_, T>) -> Result<InputGrads<T>> {
        let x = cx.input(0);
        let (b, th) = (self.beta, self.threshold);
        let linear = mask_where(x.value(), move |v| v * b > th);
        let one = Var::constant(linear.value().ones_like());
        let local = try_where_(linear.value(), &one, &x.mul_scalar(b).try_sigmoid()?)?;
        Ok(smallvec![Some(cx.grad.try_mul(&local)?)])
    }
}

#[track_caller]
pub(crate) fn softplus<T: Element>(x: &Var<T>, beta: T, threshold: T) -> Result<Var<T>> {
    if beta.is_nan() || beta <= T::zero() {
        return Err(Error::argument(
            "softplus",
            format!("beta must be positive, got {beta}"),
        ));
    }
    unary(x, Softplus { beta, threshold }, move |v| {
        let z = v * beta;
        if z > threshold {
            v
        } else {
            // max(z, 0) + ln(1 + e^−|z|): no overflow for large |z|.
            (z.max(T::zero()) + (-z.abs()).exp().ln_1p()) / beta
        }
    })
}

/// softplus's cases: the smooth region, and inputs all above the threshold.
#[cfg(feature = "strategies")]
fn softplus_cases() -> Vec<OpCase> {
    vec![
        case!(
            "softplus_beta2" for [softplus],
            ["softplus"],
            unary_case(1..=3, ANY),
            |v| v[0].try_softplus(2.0, 20.0)
        ),
        case!(
            "softplus_linear_region" for [softplus],
            ["softplus"],
            unary_fixed(&[4], Domain::Range(2.0, 3.0)),
            |v| v[0].try_softplus(2.0, 3.0)
        ),
    ]
}

/// silu(x) = x·σ(x) (swish).
#[track_caller]
pub(crate) fn silu<T: Element>(x: &Var<T>) -> Result<Var<T>> {
    x.try_mul(&x.try_sigmoid()?)
}

#[cfg(feature = "strategies")]
fn silu_cases() -> Vec<OpCase> {
    vec![case!(
        "silu" for [silu],
        ["sigmoid", "mul"],
        unary_case(1..=3, ANY),
        |v| v[0].try_silu()
    )]
}

/// mish(x) = x·tanh(softplus(x)).
#[track_caller]
pub(crate) fn mish<T: Element>(x: &Var<T>) -> Result<Var<T>> {
    x.try_mul(&softplus(x, T::one(), T::from_f64(20.0))?.try_tanh()?)
}

#[cfg(feature = "strategies")]
fn mish_cases() -> Vec<OpCase> {
    vec![case!(
        "mish" for [mish],
        ["softplus", "tanh"],
        unary_case(1..=3, ANY),
        |v| v[0].try_mish()
    )]
}

/// softsign(x) = x/(1 + |x|).
#[track_caller]
pub(crate) fn softsign<T: Element>(x: &Var<T>) -> Result<Var<T>> {
    x.try_div(&x.try_abs()?.add_scalar(T::one()))
}

#[cfg(feature = "strategies")]
fn softsign_cases() -> Vec<OpCase> {
    vec![case!(
        "softsign" for [softsign],
        ["abs", "div"],
        unary_case(1..=3, Domain::AwayFromZero),
        |v| v[0].try_softsign()
    )]
}

/// log σ(x) = −softplus(−x), stable for large |x|.
#[track_caller]
pub(crate) fn log_sigmoid<T: Element>(x: &Var<T>) -> Result<Var<T>> {
    Ok(softplus(&x.neg(), T::one(), T::infinity())?.neg())
}

#[cfg(feature = "strategies")]
fn log_sigmoid_cases() -> Vec<OpCase> {
    vec![case!(
        "log_sigmoid" for [log_sigmoid],
        ["softplus"],
        unary_case(1..=3, Domain::Range(-6.0, 6.0)),
        |v| v[0].try_log_sigmoid()
    )]
}

/// Clamp to [lo, hi]. d/dx = 1 inside; at the bounds 1 for clamp and 0 for
/// hardtanh (PyTorch's two conventions).
pub struct Clamp<T> {
    /// Lower bound.
    pub lo: T,
    /// Upper bound.
    pub hi: T,
    /// Whether the gradient passes at x = lo or x = hi (clamp) or not (hardtanh).
    pub inclusive: bool,
}
impl<T: Element> Op<T> for Clamp<T> {
    fn name(&self) -> &str {
        if self.inclusive {
            "clamp"
        } else {
            "hardtanh"
        }
    }
    fn formula(&self, _input: usize) -> Option<String> {
        Some(format!("[{} < x < {}]", self.lo, self.hi))
    }
    fn backward(&self, cx: &BackwardContext<'_, T>) -> Result<InputGrads<T>> {
        let (lo, hi, inc) = (self.lo, self.hi, self.inclusive);
        let m = mask_where(cx.input(0).value(), move |v| {
            if inc {
                v >= lo && v <= hi
            } else {
                v > lo && v < hi
            }
        });
        Ok(smallvec![Some(cx.grad.try_mul(&m)?)])
    }
}

#[track_caller]
pub(crate) fn clamp<T: Element>(x: &Var<T>, lo: T, hi: T, inclusive: bool) -> Result<Var<T>> {
    if lo > hi {
        return Err(Error::argument(
            if inclusive { "clamp" } else { "hardtanh" },
            format!("lower bound {lo} exceeds upper bound {hi}"),
        ));
    }
    // NaN stays NaN, as in PyTorch (Float::max alone would return the bound).
    unary(x, Clamp { lo, hi, inclusive }, move |v| {
        if v.is_nan() {
            v
        } else {
            v.max(lo).min(hi)
        }
    })
}

/// hardtanh's and clamp's cases: values on the 0.1 grid offset by 0.05
/// never touch the bounds.
#[cfg(feature = "strategies")]
fn clamp_cases() -> Vec<OpCase> {
    vec![
        case!(
            "hardtanh" for [hardtanh],
            ["hardtanh"],
            grid(vec![(vec![3, 4], 0.05)]),
            |v| v[0].try_hardtanh(-1.0, 1.0)
        ),
        case!(
            "clamp" for [clamp],
            ["clamp"],
            grid(vec![(vec![3, 4], 0.05)]),
            |v| v[0].try_clamp(-0.5, 1.0)
        ),
    ]
}

/// This family's registry cases.
#[cfg(feature = "strategies")]
pub(crate) fn cases() -> Vec<OpCase> {
    [
        leaky_relu_cases(),
        elu_cases(),
        selu_cases(),
        gelu_cases(),
        softplus_cases(),
        silu_cases(),
        mish_cases(),
        clamp_cases(),
        softsign_cases(),
        log_sigmoid_cases(),
    ]
    .concat()
}
