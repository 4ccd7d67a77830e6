//! Elementwise unary ops. Each op: forward kernel, then its backward written
//! in differentiable ops (local derivative × upstream gradient).
//!
//! Conventions at non-differentiable points follow PyTorch: relu'(0) = 0,
//! abs'(0) = 0 (sign(0) = 0).

use chainrule_tape::error::Result;
use chainrule_tape::{BackwardContext, Element, InputGrads, Op, Tensor, Var};
use smallvec::smallvec;

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

macro_rules! unary_op {
    ($(#[$doc:meta])* $name:ident, $label:literal, $formula:literal, |$cx:ident| $backward:expr) => {
        $(#[$doc])*
        pub struct $name;
        impl<T: Element> Op<T> for $name {
            fn name(&self) -> &str {
                $label
            }
            fn formula(&self, _input: usize) -> Option<String> {
                Some($formula.into())
            }
            fn backward(&self, $cx: &BackwardContext<'_, T>) -> Result<InputGrads<T>> {
                let g: Result<Var<T>> = $backward;
                Ok(smallvec![Some(g?)])
            }
        }
    };
}

unary_op!(
    /// exp(x). d/dx = exp(x) = out.
    Exp, "exp", "exp(x) = y", |cx| cx.grad.try_mul(cx.output)
);
unary_op!(
    /// ln(x). d/dx = 1/x.
    Log, "log", "1/x", |cx| cx.grad.try_div(cx.input(0))
);
unary_op!(
    /// √x. d/dx = 1/(2√x) = 1/(2·out).
    Sqrt, "sqrt", "1/(2√x)", |cx| cx.grad.try_div(&cx.output.mul_scalar(T::from_f64(2.0)))
);
unary_op!(
    /// |x|. d/dx = sign(x), with sign(0) = 0 as in PyTorch.
    Abs, "abs", "sign(x)", |cx| cx.grad.try_mul(&sign_of(cx.input(0)))
);
unary_op!(
    /// sin(x). d/dx = cos(x).
    Sin, "sin", "cos(x)", |cx| cx.grad.try_mul(&crate::VarOps::cos(cx.input(0)))
);
unary_op!(
    /// cos(x). d/dx = −sin(x).
    Cos, "cos", "−sin(x)", |cx| cx.grad.try_mul(&crate::VarOps::sin(cx.input(0))).map(|v| v.neg())
);
unary_op!(
    /// tanh(x). d/dx = 1 − tanh²(x) = 1 − out².
    Tanh, "tanh", "1 − tanh²(x) = 1 − y²", |cx| cx.grad.try_mul(&cx.output.try_mul(cx.output)?.rsub_scalar(T::one()))
);
unary_op!(
    /// σ(x) = 1/(1 + e^−x). d/dx = σ(x)(1 − σ(x)) = out·(1 − out).
    Sigmoid, "sigmoid", "σ(x)(1 − σ(x)) = y(1 − y)", |cx| cx.grad.try_mul(&cx.output.try_mul(&cx.output.rsub_scalar(T::one()))?)
);
unary_op!(
    /// max(x, 0). d/dx = 1 for x > 0, else 0 (0 at x = 0, as in PyTorch).
    /// Without create_graph, G·[x > 0] is one pass over G and x (no mask
    /// tensor); with it, the product with a constant mask is recorded.
    Relu, "relu", "[x > 0]", |cx| {
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
    }
);

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

/// Forwards of the simple unary ops, by name.
#[track_caller]
pub(crate) fn exp<T: Element>(x: &Var<T>) -> Result<Var<T>> {
    unary(x, Exp, |v| v.exp())
}
#[track_caller]
pub(crate) fn log<T: Element>(x: &Var<T>) -> Result<Var<T>> {
    unary(x, Log, |v| v.ln())
}
#[track_caller]
pub(crate) fn sqrt<T: Element>(x: &Var<T>) -> Result<Var<T>> {
    unary(x, Sqrt, |v| v.sqrt())
}
#[track_caller]
pub(crate) fn abs<T: Element>(x: &Var<T>) -> Result<Var<T>> {
    unary(x, Abs, |v| v.abs())
}
#[track_caller]
pub(crate) fn sin<T: Element>(x: &Var<T>) -> Result<Var<T>> {
    unary(x, Sin, |v| v.sin())
}
#[track_caller]
pub(crate) fn cos<T: Element>(x: &Var<T>) -> Result<Var<T>> {
    unary(x, Cos, |v| v.cos())
}
#[track_caller]
pub(crate) fn tanh<T: Element>(x: &Var<T>) -> Result<Var<T>> {
    unary(x, Tanh, |v| v.tanh())
}
/// σ(x), computed stably: 1/(1+e^−x) for x ≥ 0, e^x/(1+e^x) otherwise.
#[track_caller]
pub(crate) fn sigmoid<T: Element>(x: &Var<T>) -> Result<Var<T>> {
    unary(x, Sigmoid, |v| {
        if v >= T::zero() {
            T::one() / (T::one() + (-v).exp())
        } else {
            let e = v.exp();
            e / (T::one() + e)
        }
    })
}
#[track_caller]
pub(crate) fn relu<T: Element>(x: &Var<T>) -> Result<Var<T>> {
    unary(x, Relu, |v| if v > T::zero() { v } else { T::zero() })
}
