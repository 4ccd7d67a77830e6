//! Broadcasting binary ops beyond + − × ÷: tensor power and elementwise
//! max/min, each followed by its registry cases. Also the registry cases of
//! chainrule-tape's arithmetic (+ − × ÷, negation, scalar forms, sum_to,
//! broadcast_to), whose forwards and backwards are in
//! crates/tape/src/arith.rs (the tape crate has no proptest).

use crate::unary::mask_where;
use crate::VarOps;
use chainrule_tape::arith::reduce_to;
use chainrule_tape::error::Result;
use chainrule_tape::{BackwardContext, Element, InputGrads, Op, Var};
use smallvec::smallvec;

#[cfg(feature = "strategies")]
use crate::registry::{
    broadcast_shapes, case, grid_tensor, tensor, unary_case, Domain, Inputs, OpCase, ANY,
};
#[cfg(feature = "strategies")]
use proptest::prelude::*;

/// Two operands that broadcast together, values from `da` and `db`.
#[cfg(feature = "strategies")]
fn binary_case(da: Domain, db: Domain) -> BoxedStrategy<Inputs> {
    broadcast_shapes()
        .prop_flat_map(move |(sa, sb)| (tensor(sa, da), tensor(sb, db)))
        .prop_map(|(a, b)| vec![a, b])
        .boxed()
}

/// A pair (big, small) where `small`'s shape broadcasts to `big`'s.
#[cfg(feature = "strategies")]
fn reduce_to_case() -> BoxedStrategy<Inputs> {
    broadcast_shapes()
        .prop_map(|(a, b)| {
            let full = chainrule_tape::shape::broadcast_shapes("registry", &a, &b)
                .expect("broadcastable")
                .to_vec();
            (full, b)
        })
        .prop_flat_map(|(full, small)| (tensor(full, ANY), tensor(small, ANY)))
        .prop_map(|(a, b)| vec![a, b])
        .boxed()
}

/// Cases for chainrule-tape's arithmetic on `Var` (see the module doc).
#[cfg(feature = "strategies")]
fn arith_cases() -> Vec<OpCase> {
    vec![
        case!("add" for [add], ["add"], binary_case(ANY, ANY), |v| v[0].try_add(&v[1])),
        case!("sub" for [sub], ["sub"], binary_case(ANY, ANY), |v| v[0].try_sub(&v[1])),
        case!("mul" for [mul], ["mul"], binary_case(ANY, ANY), |v| v[0].try_mul(&v[1])),
        case!(
            "div" for [div],
            ["div"],
            binary_case(ANY, Domain::AwayFromZero),
            |v| v[0].try_div(&v[1])
        ),
        case!("neg" for [neg], ["neg"], unary_case(0..=3, ANY), |v| Ok(v[0].neg())),
        case!(
            "add_scalar" for [add_scalar],
            ["add_scalar"],
            unary_case(0..=3, ANY),
            |v| Ok(v[0].add_scalar(0.7))
        ),
        case!(
            "mul_scalar" for [mul_scalar],
            ["mul_scalar"],
            unary_case(0..=3, ANY),
            |v| Ok(v[0].mul_scalar(-1.3))
        ),
        case!(
            "rsub_scalar" for [rsub_scalar],
            ["rsub_scalar"],
            unary_case(0..=3, ANY),
            |v| Ok(v[0].rsub_scalar(0.4))
        ),
        case!(
            "scalar_div" for [rdiv_scalar],
            ["scalar_div"],
            unary_case(0..=3, Domain::AwayFromZero),
            |v| Ok(v[0].rdiv_scalar(2.0))
        ),
        case!(
            "sum_to" for [sum_to, mul],
            ["sum_to", "mul"],
            reduce_to_case(),
            |v| v[0].try_sum_to(v[1].shape())?.try_mul(&v[1])
        ),
        case!(
            "broadcast_to" for [broadcast_to, mul],
            ["broadcast_to", "mul"],
            reduce_to_case(),
            |v| v[1].try_broadcast_to(v[0].shape())?.try_mul(&v[0])
        ),
    ]
}

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

/// aᵇ's case: a positive base, so ln a exists.
#[cfg(feature = "strategies")]
fn pow_cases() -> Vec<OpCase> {
    vec![case!(
        "pow" for [pow],
        ["pow"],
        binary_case(Domain::Range(0.5, 2.0), ANY),
        |v| v[0].try_pow(&v[1])
    )]
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

/// Two operands on 0.1 grids offset by 0.05 from each other, so they never tie.
#[cfg(feature = "strategies")]
fn extremum_case() -> BoxedStrategy<Inputs> {
    broadcast_shapes()
        .prop_flat_map(|(sa, sb)| (grid_tensor(sa, 0.0), grid_tensor(sb, 0.05)))
        .prop_map(|(a, b)| vec![a, b])
        .boxed()
}

/// maximum's and minimum's cases.
#[cfg(feature = "strategies")]
fn extremum_cases() -> Vec<OpCase> {
    vec![
        case!("maximum" for [maximum], ["maximum"], extremum_case(), |v| v[0].try_maximum(&v[1])),
        case!("minimum" for [minimum], ["minimum"], extremum_case(), |v| v[0].try_minimum(&v[1])),
    ]
}

/// This family's registry cases, with chainrule-tape's arithmetic first.
#[cfg(feature = "strategies")]
pub(crate) fn cases() -> Vec<OpCase> {
    [arith_cases(), pow_cases(), extremum_cases()].concat()
}
