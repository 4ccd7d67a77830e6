//! Elementwise unary ops. Each op in one place: its forward value, its
//! derivative (the backward, written in differentiable ops: local derivative
//! × upstream gradient) and its registry cases. The simple ones are one
//! table entry each (`unary_ops!`); xᵖ, which carries its exponent, follows.
//!
//! Conventions at non-differentiable points follow PyTorch: relu'(0) = 0,
//! abs'(0) = 0 (sign(0) = 0).

use chainrule_tape::error::Result;
use chainrule_tape::{BackwardContext, Element, InputGrads, Op, Tensor, Var};
use smallvec::smallvec;

#[cfg(feature = "strategies")]
use crate::registry::{case, unary_case, Domain, OpCase, ANY, POSITIVE};
#[cfg(feature = "strategies")]
use crate::VarOps;

/// Records a unary op whose forward is the elementwise `f`.
#[track_caller]
pub(crate) fn unary<T: Element>(
    x: &Var<T>,
    op: impl Op<T>,
    f: impl Fn(T) -> T + Sync + Send,
) -> Result<Var<T>> {
    Var::from_op(op, &[x], x.value().map(f))
}

/// sign(x) with sign(0) = 0, as a constant (its derivative is 0 almost everywhere).
#[track_caller]
pub(crate) fn sign_of<T: Element>(x: &Var<T>) -> Var<T> {
    Var::constant(x.value().map(|v| {
        if v > T::zero() {
            T::one()
        } else if v < T::zero() {
            -T::one()
        } else {
            T::zero()
        }
    }))
}

/// 1 where `pred(x)`, else 0, as a constant mask.
pub(crate) fn mask_where<T: Element>(
    x: &Tensor<T>,
    pred: impl Fn(T) -> bool + Sync + Send,
) -> Var<T> {
    Var::constant(x.map(|v| if pred(v) { T::one() } else { T::zero() }))
}

/// Declares the simple unary ops, one entry each giving, side by side: the
/// op's doc, its forward value `f(x)` (applied by [`unary`] through
/// `kernels::map`: a plain loop over each chunk of the slice, so it
/// vectorises), its derivative `df` (the formula shown by `explain`, then
/// the backward written in differentiable ops, so it differentiates again),
/// and its registry cases. For each entry it makes the op struct, its `Op`
/// impl and its forward function; the cases go to `table_cases()`.
macro_rules! unary_ops {
    ($(
        $(#[$doc:meta])*
        $name:ident / $forward:ident:
            f($x:ident) = $f:expr,
            df = $formula:literal, |$cx:ident| $backward:expr,
            cases = [$($case:expr),+ $(,)?];
    )+) => {
        $(
            $(#[$doc])*
            pub struct $name;
            impl<T: Element> Op<T> for $name {
                fn name(&self) -> &str {
                    stringify!($forward)
                }
                fn formula(&self, _input: usize) -> Option<String> {
                    Some($formula.into())
                }
                fn backward(&self, $cx: &BackwardContext<'_, T>) -> Result<InputGrads<T>> {
                    let g: Result<Var<T>> = $backward;
                    Ok(smallvec![Some(g?)])
                }
            }
            #[doc = concat!("Forward of [`", stringify!($name), "`].")]
            #[track_caller]
            pub(crate) fn $forward<T: Element>(x: &Var<T>) -> Result<Var<T>> {
                unary(x, $name, |$x: T| $f)
            }
        )+

        /// The registry cases of the table's ops.
        #[cfg(feature = "strategies")]
        fn table_cases() -> Vec<OpCase> {
            vec![$($($case),+),+]
        }
    };
}

unary_ops! {
    /// exp(x). d/dx = exp(x) = y.
    Exp / exp:
        f(x) = x.exp(),
        df = "exp(x) = y", |cx| cx.grad.try_mul(cx.output),
        cases = [case!(
            "exp" for [exp], ["exp"], unary_case(0..=3, ANY), |v| v[0].try_exp()
        )];

    /// ln(x). d/dx = 1/x.
    Log / log:
        f(x) = x.ln(),
        df = "1/x", |cx| cx.grad.try_div(cx.input(0)),
        cases = [case!(
            "log" for [log], ["log"], unary_case(0..=3, POSITIVE), |v| v[0].try_log()
        )];

    /// √x. d/dx = 1/(2√x) = 1/(2·y).
    Sqrt / sqrt:
        f(x) = x.sqrt(),
        df = "1/(2√x)", |cx| cx.grad.try_div(&cx.output.mul_scalar(T::from_f64(2.0))),
        cases = [case!(
            "sqrt" for [sqrt], ["sqrt"], unary_case(0..=3, POSITIVE), |v| v[0].try_sqrt()
        )];

    /// |x|. d/dx = sign(x), with sign(0) = 0 as in PyTorch.
    Abs / abs:
        f(x) = x.abs(),
        df = "sign(x)", |cx| cx.grad.try_mul(&sign_of(cx.input(0))),
        cases = [case!(
            "abs" for [abs], ["abs"], unary_case(0..=3, Domain::AwayFromZero), |v| v[0].try_abs()
        )];

    /// sin(x). d/dx = cos(x).
    Sin / sin:
        f(x) = x.sin(),
        df = "cos(x)", |cx| cx.grad.try_mul(&crate::VarOps::cos(cx.input(0))),
        cases = [case!(
            "sin" for [sin], ["sin"], unary_case(0..=3, Domain::Range(-4.0, 4.0)),
            |v| v[0].try_sin()
        )];

    /// cos(x). d/dx = −sin(x).
    Cos / cos:
        f(x) = x.cos(),
        df = "−sin(x)",
            |cx| cx.grad.try_mul(&crate::VarOps::sin(cx.input(0))).map(|v| v.neg()),
        cases = [case!(
            "cos" for [cos], ["cos"], unary_case(0..=3, Domain::Range(-4.0, 4.0)),
            |v| v[0].try_cos()
        )];

    /// tanh(x). d/dx = 1 − tanh²(x) = 1 − y².
    Tanh / tanh:
        f(x) = x.tanh(),
        df = "1 − tanh²(x) = 1 − y²",
            |cx| cx.grad.try_mul(&cx.output.try_mul(cx.output)?.rsub_scalar(T::one())),
        cases = [case!(
            "tanh" for [tanh], ["tanh"], unary_case(0..=3, Domain::Range(-3.0, 3.0)),
            |v| v[0].try_tanh()
        )];

    /// σ(x) = 1/(1 + e^−x), computed stably (e^x/(1 + e^x) for x < 0).
    /// d/dx = σ(x)(1 − σ(x)) = y(1 − y).
    Sigmoid / sigmoid:
        f(x) = if x >= T::zero() {
            T::one() / (T::one() + (-x).exp())
        } else {
            let e = x.exp();
            e / (T::one() + e)
        },
        df = "σ(x)(1 − σ(x)) = y(1 − y)",
            |cx| cx.grad.try_mul(&cx.output.try_mul(&cx.output.rsub_scalar(T::one()))?),
        cases = [case!(
            "sigmoid" for [sigmoid],
            ["sigmoid"],
            unary_case(0..=3, Domain::Range(-4.0, 4.0)),
            |v| v[0].try_sigmoid()
        )];

    /// max(x, 0). d/dx = 1 for x > 0, else 0 (0 at x = 0, as in PyTorch).
    /// Without create_graph, `G·[x > 0]` is one pass over G and x (no mask
    /// tensor); with it, the product with a constant mask is recorded.
    Relu / relu:
        f(x) = if x > T::zero() { x } else { T::zero() },
        df = "[x > 0]", |cx| {
            let x = cx.input(0).value();
            if cx.create_graph {
                cx.grad.try_mul(&mask_where(x, |v| v > T::zero()))
            } else {
                Ok(Var::constant(cx.grad.value().zip_with(x, |g, v| {
                    if v > T::zero() {
                        g
                    } else {
                        T::zero()
                    }
                })))
            }
        },
        cases = [case!(
            "relu" for [relu], ["relu"], unary_case(0..=3, Domain::AwayFromZero),
            |v| v[0].try_relu()
        )];
}

/// xᵖ for a scalar exponent p. d/dx = p·x^(p−1) (0 when p = 0).
pub struct PowScalar<T>(pub T);
impl<T: Element> Op<T> for PowScalar<T> {
    fn name(&self) -> &str {
        "pow_scalar"
    }
    fn describe(&self) -> String {
        format!("pow_scalar({})", self.0)
    }
    fn formula(&self, _input: usize) -> Option<String> {
        Some(format!("{}·x^{}", self.0, self.0 - T::one()))
    }
    fn backward(&self, cx: &BackwardContext<'_, T>) -> Result<InputGrads<T>> {
        let p = self.0;
        if p == T::zero() {
            return Ok(smallvec![Some(Var::constant(
                cx.input(0).value().zeros_like()
            ))]);
        }
        let local = pow_scalar(cx.input(0), p - T::one())?.mul_scalar(p);
        Ok(smallvec![Some(cx.grad.try_mul(&local)?)])
    }
}

/// Forward of [`PowScalar`], with exact fast paths for small integer powers.
#[track_caller]
pub(crate) fn pow_scalar<T: Element>(x: &Var<T>, p: T) -> Result<Var<T>> {
    let two = T::from_f64(2.0);
    if p == T::one() {
        unary(x, PowScalar(p), |v| v)
    } else if p == two {
        unary(x, PowScalar(p), |v| v * v)
    } else {
        unary(x, PowScalar(p), move |v| v.powf(p))
    }
}

/// xᵖ's cases: integer powers on any sign, fractional and negative ones on
/// positives (`square` is `pow_scalar` with p = 2).
#[cfg(feature = "strategies")]
fn pow_scalar_cases() -> Vec<OpCase> {
    vec![
        case!(
            "pow_scalar_2" for [square],
            ["pow_scalar"],
            unary_case(0..=3, ANY),
            |v| v[0].try_square()
        ),
        case!(
            "pow_scalar_3" for [powf],
            ["pow_scalar"],
            unary_case(0..=3, ANY),
            |v| v[0].try_powf(3.0)
        ),
        case!(
            "pow_scalar_neg1_5" for [powf],
            ["pow_scalar"],
            unary_case(0..=3, POSITIVE),
            |v| v[0].try_powf(-1.5)
        ),
        case!(
            "pow_scalar_0_5" for [powf],
            ["pow_scalar"],
            unary_case(0..=3, POSITIVE),
            |v| v[0].try_powf(0.5)
        ),
    ]
}

/// This family's registry cases.
#[cfg(feature = "strategies")]
pub(crate) fn cases() -> Vec<OpCase> {
    [table_cases(), pow_scalar_cases()].concat()
}
