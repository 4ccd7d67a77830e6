//! Arithmetic ops: + − × ÷ and negation (with broadcasting), their scalar
//! forms, and the two broadcasting ops `sum_to` / `broadcast_to`.
//!
//! These live in `tape` rather than `ops` for one reason: Rust lets only the
//! crate that defines `Var` implement `std::ops::Add` and friends for it, and
//! the engine itself adds gradients. Every other op is in `chainrule-ops`.
//! Each op's forward kernel and backward formula sit side by side.

use crate::element::Element;
use crate::error::{or_panic, Result};
use crate::op::{BackwardContext, InputGrads, Op};
use crate::tensor::Tensor;
use crate::var::Var;
use smallvec::smallvec;

/// Sums a broadcast gradient back to the shape of the input it came from.
#[track_caller]
pub fn reduce_to<T: Element>(g: Var<T>, shape: &[usize]) -> Result<Var<T>> {
    if g.shape() == shape {
        Ok(g)
    } else {
        g.try_sum_to(shape)
    }
}

/// [`reduce_to`] the shape of `like`.
#[track_caller]
fn reduce_like<T: Element>(g: Var<T>, like: &Var<T>) -> Result<Var<T>> {
    if g.value().same_shape(like.value()) {
        Ok(g)
    } else {
        g.try_sum_to(like.shape())
    }
}

/// Both inputs' gradients of a broadcasting binary op, each summed back to
/// its input's shape; `local(i)` is ∂L/∂input_i at the broadcast shape.
fn binary_grads<T: Element>(
    cx: &BackwardContext<'_, T>,
    local: impl Fn(usize) -> Result<Var<T>>,
) -> Result<InputGrads<T>> {
    let mut out: InputGrads<T> = smallvec![None, None];
    for (i, slot) in out.iter_mut().enumerate() {
        if cx.needs(i) {
            *slot = Some(reduce_like(local(i)?, cx.input(i))?);
        }
    }
    Ok(out)
}

/// `a + b`. ∂/∂a = 1, ∂/∂b = 1 (summed over broadcast axes).
pub struct Add;
impl<T: Element> Op<T> for Add {
    fn name(&self) -> &str {
        "add"
    }
    fn formula(&self, input: usize) -> Option<String> {
        let _ = input;
        Some("1".into())
    }
    fn backward(&self, cx: &BackwardContext<'_, T>) -> Result<InputGrads<T>> {
        binary_grads(cx, |_| Ok(cx.grad.clone()))
    }
}

/// `a − b`. ∂/∂a = 1, ∂/∂b = −1.
pub struct Sub;
impl<T: Element> Op<T> for Sub {
    fn name(&self) -> &str {
        "sub"
    }
    fn formula(&self, input: usize) -> Option<String> {
        let _ = input;
        Some(if input == 0 { "1" } else { "−1" }.into())
    }
    fn backward(&self, cx: &BackwardContext<'_, T>) -> Result<InputGrads<T>> {
        binary_grads(cx, |i| {
            Ok(if i == 0 {
                cx.grad.clone()
            } else {
                cx.grad.neg()
            })
        })
    }
}

/// `a · b`. ∂/∂a = b, ∂/∂b = a.
pub struct Mul;
impl<T: Element> Op<T> for Mul {
    fn name(&self) -> &str {
        "mul"
    }
    fn formula(&self, input: usize) -> Option<String> {
        let _ = input;
        Some(if input == 0 { "b" } else { "a" }.into())
    }
    fn backward(&self, cx: &BackwardContext<'_, T>) -> Result<InputGrads<T>> {
        binary_grads(cx, |i| cx.grad.try_mul(cx.input(1 - i)))
    }
}

/// `a / b`. ∂/∂a = 1/b, ∂/∂b = −a/b² = −out/b.
pub struct Div;
impl<T: Element> Op<T> for Div {
    fn name(&self) -> &str {
        "div"
    }
    fn formula(&self, input: usize) -> Option<String> {
        let _ = input;
        Some(
            if input == 0 {
                "1/b"
            } else {
                "−a/b² = −y/b"
            }
            .into(),
        )
    }
    fn backward(&self, cx: &BackwardContext<'_, T>) -> Result<InputGrads<T>> {
        let b = cx.input(1);
        binary_grads(cx, |i| {
            if i == 0 {
                cx.grad.try_div(b)
            } else {
                cx.grad.try_mul(cx.output)?.try_div(b).map(|v| v.neg())
            }
        })
    }
}

/// `−x`. ∂/∂x = −1.
pub struct Neg;
impl<T: Element> Op<T> for Neg {
    fn name(&self) -> &str {
        "neg"
    }
    fn formula(&self, input: usize) -> Option<String> {
        let _ = input;
        Some("−1".into())
    }
    fn backward(&self, cx: &BackwardContext<'_, T>) -> Result<InputGrads<T>> {
        Ok(smallvec![Some(cx.grad.neg())])
    }
}

/// `x + c` for a scalar `c`. ∂/∂x = 1.
pub struct AddScalar<T>(pub T);
impl<T: Element> Op<T> for AddScalar<T> {
    fn name(&self) -> &str {
        "add_scalar"
    }
    fn formula(&self, input: usize) -> Option<String> {
        let _ = input;
        Some("1".into())
    }
    fn describe(&self) -> String {
        format!("add_scalar({})", self.0)
    }
    fn backward(&self, cx: &BackwardContext<'_, T>) -> Result<InputGrads<T>> {
        Ok(smallvec![Some(cx.grad.clone())])
    }
}

/// `x · c` for a scalar `c`. ∂/∂x = c.
pub struct MulScalar<T>(pub T);
impl<T: Element> Op<T> for MulScalar<T> {
    fn name(&self) -> &str {
        "mul_scalar"
    }
    fn formula(&self, input: usize) -> Option<String> {
        let _ = input;
        Some(format!("{}", self.0))
    }
    fn describe(&self) -> String {
        format!("mul_scalar({})", self.0)
    }
    fn backward(&self, cx: &BackwardContext<'_, T>) -> Result<InputGrads<T>> {
        Ok(smallvec![Some(cx.grad.mul_scalar(self.0))])
    }
}

/// `c − x` for a scalar `c`. ∂/∂x = −1.
pub struct RSubScalar<T>(pub T);
impl<T: Element> Op<T> for RSubScalar<T> {
    fn name(&self) -> &str {
        "rsub_scalar"
    }
    fn formula(&self, input: usize) -> Option<String> {
        let _ = input;
        Some("−1".into())
    }
    fn describe(&self) -> String {
        format!("rsub_scalar({})", self.0)
    }
    fn backward(&self, cx: &BackwardContext<'_, T>) -> Result<InputGrads<T>> {
        Ok(smallvec![Some(cx.grad.neg())])
    }
}

/// `c / x` for a scalar `c`. ∂/∂x = −c/x² = −out/x.
pub struct ScalarDiv<T>(pub T);
impl<T: Element> Op<T> for ScalarDiv<T> {
    fn name(&self) -> &str {
        "scalar_div"
    }
    fn formula(&self, input: usize) -> Option<String> {
        let _ = input;
        Some(format!("−{}/x²", self.0))
    }
    fn describe(&self) -> String {
        format!("scalar_div({})", self.0)
    }
    fn backward(&self, cx: &BackwardContext<'_, T>) -> Result<InputGrads<T>> {
        Ok(smallvec![Some(
            cx.grad.try_mul(cx.output)?.try_div(cx.input(0))?.neg()
        )])
    }
}

/// Sum down to a target shape (the adjoint of broadcasting). ∂/∂x = broadcast of the gradient.
pub struct SumTo;
impl<T: Element> Op<T> for SumTo {
    fn name(&self) -> &str {
        "sum_to"
    }
    fn formula(&self, input: usize) -> Option<String> {
        let _ = input;
        Some("1 (broadcast back)".into())
    }
    fn backward(&self, cx: &BackwardContext<'_, T>) -> Result<InputGrads<T>> {
        Ok(smallvec![Some(
            cx.grad.try_broadcast_to(cx.input(0).shape())?
        )])
    }
}

/// Broadcast to a target shape (NumPy rules). ∂/∂x = gradient summed over the broadcast axes.
pub struct BroadcastTo;
impl<T: Element> Op<T> for BroadcastTo {
    fn name(&self) -> &str {
        "broadcast_to"
    }
    fn formula(&self, input: usize) -> Option<String> {
        let _ = input;
        Some("1 (summed over broadcast axes)".into())
    }
    fn backward(&self, cx: &BackwardContext<'_, T>) -> Result<InputGrads<T>> {
        Ok(smallvec![Some(cx.grad.try_sum_to(cx.input(0).shape())?)])
    }
}

impl<T: Element> Var<T> {
    /// `self + other` with broadcasting. The panicking form is the operator `&a + &b`.
    #[track_caller]
    pub fn try_add(&self, other: &Var<T>) -> Result<Var<T>> {
        let v = self
            .value()
            .broadcast_zip(other.value(), "add", |a, b| a + b)?;
        Var::from_op(Add, &[self, other], v)
    }

    /// `self − other` with broadcasting. The panicking form is the operator `&a - &b`.
    #[track_caller]
    pub fn try_sub(&self, other: &Var<T>) -> Result<Var<T>> {
        let v = self
            .value()
            .broadcast_zip(other.value(), "sub", |a, b| a - b)?;
        Var::from_op(Sub, &[self, other], v)
    }

    /// `self · other` elementwise with broadcasting. The panicking form is the
    /// operator `&a * &b`.
    #[track_caller]
    pub fn try_mul(&self, other: &Var<T>) -> Result<Var<T>> {
        let v = self
            .value()
            .broadcast_zip(other.value(), "mul", |a, b| a * b)?;
        Var::from_op(Mul, &[self, other], v)
    }

    /// `self / other` elementwise with broadcasting. The panicking form is the
    /// operator `&a / &b`.
    #[track_caller]
    pub fn try_div(&self, other: &Var<T>) -> Result<Var<T>> {
        let v = self
            .value()
            .broadcast_zip(other.value(), "div", |a, b| a / b)?;
        Var::from_op(Div, &[self, other], v)
    }

    /// Elementwise negation.
    #[track_caller]
    pub fn neg(&self) -> Var<T> {
        or_panic(Var::from_op(Neg, &[self], self.value().map(|a| -a)))
    }

    /// `self + c`.
    #[track_caller]
    pub fn add_scalar(&self, c: T) -> Var<T> {
        or_panic(Var::from_op(
            AddScalar(c),
            &[self],
            self.value().map(move |a| a + c),
        ))
    }

    /// `self · c`.
    #[track_caller]
    pub fn mul_scalar(&self, c: T) -> Var<T> {
        or_panic(Var::from_op(
            MulScalar(c),
            &[self],
            self.value().map(move |a| a * c),
        ))
    }

    /// `c − self`.
    #[track_caller]
    pub fn rsub_scalar(&self, c: T) -> Var<T> {
        or_panic(Var::from_op(
            RSubScalar(c),
            &[self],
            self.value().map(move |a| c - a),
        ))
    }

    /// `c / self`.
    #[track_caller]
    pub fn rdiv_scalar(&self, c: T) -> Var<T> {
        or_panic(Var::from_op(
            ScalarDiv(c),
            &[self],
            self.value().map(move |a| c / a),
        ))
    }

    /// Sums down to `shape`, which must broadcast to this value's shape.
    #[track_caller]
    pub fn try_sum_to(&self, shape: &[usize]) -> Result<Var<T>> {
        if shape == self.shape() {
            return Ok(self.clone());
        }
        let v = self.value().sum_to(shape)?;
        Var::from_op(SumTo, &[self], v)
    }

    /// [`Var::try_sum_to`], panicking on error.
    #[track_caller]
    pub fn sum_to(&self, shape: &[usize]) -> Var<T> {
        or_panic(self.try_sum_to(shape))
    }

    /// Broadcasts to `shape` (NumPy rules).
    #[track_caller]
    pub fn try_broadcast_to(&self, shape: &[usize]) -> Result<Var<T>> {
        if shape == self.shape() {
            return Ok(self.clone());
        }
        let v = self.value().broadcast_to(shape)?;
        Var::from_op(BroadcastTo, &[self], v)
    }

    /// [`Var::try_broadcast_to`], panicking on error.
    #[track_caller]
    pub fn broadcast_to(&self, shape: &[usize]) -> Var<T> {
        or_panic(self.try_broadcast_to(shape))
    }

    /// A constant scalar broadcastable against anything.
    #[track_caller]
    pub fn scalar_constant(v: T) -> Var<T> {
        Var::constant(Tensor::scalar(v))
    }
}
