//! Broadcasting binary ops beyond + − × ÷: tensor power and elementwise max/min.

use crate::unary::mask_where;
use crate::VarOps;
use chainrule_tape::arith::reduce_to;
use chainrule_tape::error::Result;
use chainrule_tape::{BackwardContext, Element, InputGrads, Op, Var};
use smallvec::smallvec;

/// aᵇ elementwise with broadcasting.
/// ∂/∂a = b·a^(b−1); ∂/∂b = aᵇ·ln(a), taken as 0 where a = 0 and b ≥ 0 (PyTorch's convention).
pub struct Pow;
impl<T: Element> Op<T> for Pow {
    fn name(&self) -> &str {
        "pow"
    }
    fn formula(&self, input: usize) -> Option<String> {
        Some(
            if input == 0 {
                "b·a^(b−1)"
            } else {
                "aᵇ·ln a"
            }
            .into(),
        )
    }
    fn backward(&self, cx: &BackwardContext<'_, T>) -> Result<InputGrads<T>> {
        let (a, b) = (cx.input(0), cx.input(1));
        let mut out: InputGrads<T> = smallvec![None, None];
        if cx.needs(0) {
            let local = b.try_mul(&a.try_pow(&b.add_scalar(-T::one()))?)?;
            out[0] = Some(reduce_to(cx.grad.try_mul(&local)?, a.shape())?);
        }
        if cx.needs(1) {
            // ln(a + [a = 0]) is ln(a) except at a = 0, where it is 0; the added
            // mask is a constant, so higher derivatives are unchanged.
            let safe_a = a.try_add(&mask_where(a.value(), |v| v == T::zero()))?;
            let local = cx.output.try_mul(&safe_a.log())?;
            out[1] = Some(reduce_to(cx.grad.try_mul(&local)?, b.shape())?);
        }
        Ok(out)
    }
}

/// Forward of [`Pow`].
#[track_caller]
pub(crate) fn pow<T: Element>(a: &Var<T>, b: &Var<T>) -> Result<Var<T>> {
    let v = a
        .value()
        .broadcast_zip(b.value(), "pow", |x, y| x.powf(y))?;
    Var::from_op(Pow, &[a, b], v)
}

/// Elementwise max(a, b) (or min) with broadcasting. The gradient goes to the
/// larger (smaller) operand; at ties it is split evenly, as in PyTorch.
pub struct Extremum {
    /// true for maximum, false for minimum.
    pub max: bool,
}
impl<T: Element> Op<T> for Extremum {
    fn name(&self) -> &str {
        if self.max {
            "maximum"
        } else {
            "minimum"
        }
    }
    fn formula(&self, input: usize) -> Option<String> {
        Some(
            match (self.max, input) {
                (true, 0) => "[a > b] (½ at ties)",
                (true, _) => "[b > a] (½ at ties)",
                (false, 0) => "[a < b] (½ at ties)",
                (false, _) => "[b < a] (½ at ties)",
            }
            .into(),
        )
    }
    fn backward(&self, cx: &BackwardContext<'_, T>) -> Result<InputGrads<T>> {
        let (a, b) = (cx.input(0), cx.input(1));
        let half = T::from_f64(0.5);
        let max = self.max;
        // weight_a = 1 where a wins, 1/2 at ties, 0 where b wins (a constant).
        let weight_a =
            Var::constant(a.value().broadcast_zip(b.value(), "maximum", move |x, y| {
                if x == y {
                    half
                } else if (x > y) == max {
                    T::one()
                } else {
                    T::zero()
                }
            })?);
        let mut out: InputGrads<T> = smallvec![None, None];
        if cx.needs(0) {
            out[0] = Some(reduce_to(cx.grad.try_mul(&weight_a)?, a.shape())?);
        }
        if cx.needs(1) {
            out[1] = Some(reduce_to(
                cx.grad.try_mul(&weight_a.rsub_scalar(T::one()))?,
                b.shape(),
            )?);
        }
        Ok(out)
    }
}

/// Forward of [`Extremum`].
#[track_caller]
pub(crate) fn extremum<T: Element>(a: &Var<T>, b: &Var<T>, max: bool) -> Result<Var<T>> {
    let name = if max { "maximum" } else { "minimum" };
    let v = a.value().broadcast_zip(b.value(), name, move |x, y| {
        if x.is_nan() || y.is_nan() {
            T::nan()
        } else if (x > y) == max {
            x
        } else {
            y
        }
    })?;
    Var::from_op(Extremum { max }, &[a, b], v)
}
