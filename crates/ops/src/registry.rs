//! The op registry: one entry (or more) per op, each with a proptest strategy
//! for its inputs and a function applying the op. One test runs gradcheck and
//! gradgradcheck over every entry; another fails if an op exists without an
//! entry; the PyTorch fixtures are looked up here by case name; and
//! `chainrule gradcheck` samples the same strategies at run time.
//!
//! Strategies keep values inside each op's domain (ln, √ on positives) and
//! away from kinks (|x|, relu, max) by more than the finite-difference step,
//! so a failure always means a wrong derivative, never a bad sample.

use crate::VarOps;
use chainrule_tape::error::Result;
use chainrule_tape::{Tensor, Var};
use proptest::prelude::*;

/// Input tensors for one check.
pub type Inputs = Vec<Tensor<f64>>;

/// A registry entry.
#[derive(Clone, Copy)]
pub struct OpCase {
    /// Unique case name (also the key of the PyTorch fixtures).
    pub name: &'static str,
    /// The ops this case exercises (recorded as nodes by `apply`).
    pub ops: &'static [&'static str],
    /// Input strategy.
    pub strategy: fn() -> BoxedStrategy<Inputs>,
    /// Applies the op(s) to the inputs.
    pub apply: fn(&[Var<f64>]) -> Result<Var<f64>>,
    /// The same in f32 (the fixtures are checked in both precisions).
    pub apply32: fn(&[Var<f32>]) -> Result<Var<f32>>,
}

/// Where sampled values lie.
#[derive(Clone, Copy, Debug)]
pub enum Domain {
    /// Uniform in [lo, hi).
    Range(f64, f64),
    /// |x| uniform in [0.2, 2), either sign: away from kinks at 0.
    AwayFromZero,
}

fn values(n: usize, domain: Domain) -> BoxedStrategy<Vec<f64>> {
    match domain {
        Domain::Range(lo, hi) => proptest::collection::vec(lo..hi, n).boxed(),
        Domain::AwayFromZero => proptest::collection::vec((0.2f64..2.0, any::<bool>()), n)
            .prop_map(|v| {
                v.into_iter()
                    .map(|(m, neg)| if neg { -m } else { m })
                    .collect()
            })
            .boxed(),
    }
}

/// A tensor of the given shape with values from `domain`.
pub fn tensor(shape: Vec<usize>, domain: Domain) -> BoxedStrategy<Tensor<f64>> {
    let n = shape.iter().product();
    values(n, domain)
        .prop_map(move |v| Tensor::from_vec(&shape, v))
        .boxed()
}

/// A shape of rank in `ranks` with dimensions 1..=max_dim.
pub fn shape(ranks: std::ops::RangeInclusive<usize>, max_dim: usize) -> BoxedStrategy<Vec<usize>> {
    ranks
        .prop_flat_map(move |r| proptest::collection::vec(1..=max_dim, r))
        .boxed()
}

pub(crate) fn unary_case(
    ranks: std::ops::RangeInclusive<usize>,
    domain: Domain,
) -> BoxedStrategy<Inputs> {
    shape(ranks, 4)
        .prop_flat_map(move |s| tensor(s, domain))
        .prop_map(|t| vec![t])
        .boxed()
}

/// Two shapes that broadcast together: a full shape, a suffix of it for the
/// second operand, and some dimensions of each set to 1.
pub fn broadcast_shapes() -> BoxedStrategy<(Vec<usize>, Vec<usize>)> {
    (
        shape(1..=3, 4),
        0usize..=3,
        proptest::collection::vec(0u8..4, 3),
        proptest::collection::vec(0u8..4, 3),
    )
        .prop_map(|(full, drop, ones_a, ones_b)| {
            let drop = drop.min(full.len() - 1);
            let mut a = full.clone();
            let mut b = full[drop..].to_vec();
            for (i, d) in a.iter_mut().enumerate() {
                if ones_a[i % 3] == 0 {
                    *d = 1;
                }
            }
            for (i, d) in b.iter_mut().enumerate() {
                if ones_b[i % 3] == 0 && ones_a[(i + drop) % 3] != 0 {
                    *d = 1;
                }
            }
            (a, b)
        })
        .boxed()
}

fn binary_case(da: Domain, db: Domain) -> BoxedStrategy<Inputs> {
    broadcast_shapes()
        .prop_flat_map(move |(sa, sb)| (tensor(sa, da), tensor(sb, db)))
        .prop_map(|(a, b)| vec![a, b])
        .boxed()
}

/// Values on a grid of step 0.1, offset by `offset`: two grids with offsets
/// 0 and 0.05 never come closer than 0.05, so max/min have no near-ties.
pub(crate) fn grid_tensor(shape: Vec<usize>, offset: f64) -> BoxedStrategy<Tensor<f64>> {
    let n: usize = shape.iter().product();
    proptest::collection::vec(-20i32..20, n)
        .prop_map(move |v| {
            Tensor::from_vec(
                &shape,
                v.into_iter().map(|k| k as f64 * 0.1 + offset).collect(),
            )
        })
        .boxed()
}

fn extremum_case() -> BoxedStrategy<Inputs> {
    broadcast_shapes()
        .prop_flat_map(|(sa, sb)| (grid_tensor(sa, 0.0), grid_tensor(sb, 0.05)))
        .prop_map(|(a, b)| vec![a, b])
        .boxed()
}

/// Distinct values (a shuffled grid), so reductions have a unique extremum.
fn distinct_case(ranks: std::ops::RangeInclusive<usize>) -> BoxedStrategy<Inputs> {
    shape(ranks, 4)
        .prop_flat_map(|s| {
            let n: usize = s.iter().product();
            (Just(s), Just((0..n).collect::<Vec<usize>>()).prop_shuffle())
        })
        .prop_map(|(s, perm)| {
            let n = perm.len() as f64;
            vec![Tensor::from_vec(
                &s,
                perm.into_iter()
                    .map(|i| 0.1 * i as f64 - 0.05 * n)
                    .collect(),
            )]
        })
        .boxed()
}

/// A pair (big, small) where `small`'s shape broadcasts to `big`'s.
fn reduce_to_case() -> BoxedStrategy<Inputs> {
    broadcast_shapes()
        .prop_map(|(a, b)| {
            let full = chainrule_tape::shape::broadcast_shapes("registry", &a, &b)
                .expect("broadcastable")
                .to_vec();
            (full, b)
        })
        .prop_flat_map(|(full, small)| {
            (
                tensor(full, Domain::Range(-2.0, 2.0)),
                tensor(small, Domain::Range(-2.0, 2.0)),
            )
        })
        .prop_map(|(a, b)| vec![a, b])
        .boxed()
}

fn matmul_case(batched: bool) -> BoxedStrategy<Inputs> {
    (1usize..5, 1usize..5, 1usize..5, 1usize..3, 1usize..3)
        .prop_flat_map(move |(m, k, n, b1, b2)| {
            let (sa, sb) = if batched {
                (vec![b1, 1, m, k], vec![b2, k, n])
            } else {
                (vec![m, k], vec![k, n])
            };
            (
                tensor(sa, Domain::Range(-1.0, 1.0)),
                tensor(sb, Domain::Range(-1.0, 1.0)),
            )
        })
        .prop_map(|(a, b)| vec![a, b])
        .boxed()
}

fn matvec_case() -> BoxedStrategy<Inputs> {
    (1usize..5, 1usize..5)
        .prop_flat_map(|(m, k)| {
            (
                tensor(vec![m, k], Domain::Range(-1.0, 1.0)),
                tensor(vec![k], Domain::Range(-1.0, 1.0)),
            )
        })
        .prop_map(|(a, b)| vec![a, b])
        .boxed()
}

pub(crate) const ANY: Domain = Domain::Range(-2.0, 2.0);
pub(crate) const POSITIVE: Domain = Domain::Range(0.2, 3.0);

macro_rules! case_impl {
    ($name:literal, [$($op:literal),*], $strategy:expr, |$v:ident| $apply:expr) => {
        OpCase {
            name: $name,
            ops: &[$($op),*],
            strategy: || $strategy,
            apply: |$v: &[Var<f64>]| -> Result<Var<f64>> { $apply },
            apply32: |$v: &[Var<f32>]| -> Result<Var<f32>> { $apply },
        }
    };
}

pub(crate) use case_impl as case;

/// Every registered case.
pub fn registry() -> Vec<OpCase> {
    let mut cases = core_cases();
    cases.extend(crate::registry_nn::cases());
    cases
}

fn core_cases() -> Vec<OpCase> {
    vec![
        case!("add", ["add"], binary_case(ANY, ANY), |v| v[0]
            .try_add(&v[1])),
        case!("sub", ["sub"], binary_case(ANY, ANY), |v| v[0]
            .try_sub(&v[1])),
        case!("mul", ["mul"], binary_case(ANY, ANY), |v| v[0]
            .try_mul(&v[1])),
        case!(
            "div",
            ["div"],
            binary_case(ANY, Domain::AwayFromZero),
            |v| v[0].try_div(&v[1])
        ),
        case!("neg", ["neg"], unary_case(0..=3, ANY), |v| Ok(v[0].neg())),
        case!(
            "add_scalar",
            ["add_scalar"],
            unary_case(0..=3, ANY),
            |v| Ok(v[0].add_scalar(0.7))
        ),
        case!(
            "mul_scalar",
            ["mul_scalar"],
            unary_case(0..=3, ANY),
            |v| Ok(v[0].mul_scalar(-1.3))
        ),
        case!(
            "rsub_scalar",
            ["rsub_scalar"],
            unary_case(0..=3, ANY),
            |v| Ok(v[0].rsub_scalar(0.4))
        ),
        case!(
            "scalar_div",
            ["scalar_div"],
            unary_case(0..=3, Domain::AwayFromZero),
            |v| Ok(v[0].rdiv_scalar(2.0))
        ),
        case!("sum_to", ["sum_to", "mul"], reduce_to_case(), |v| v[0]
            .try_sum_to(v[1].shape())?
            .try_mul(&v[1])),
        case!(
            "broadcast_to",
            ["broadcast_to", "mul"],
            reduce_to_case(),
            |v| v[1].try_broadcast_to(v[0].shape())?.try_mul(&v[0])
        ),
        case!("exp", ["exp"], unary_case(0..=3, ANY), |v| v[0].try_exp()),
        case!("log", ["log"], unary_case(0..=3, POSITIVE), |v| v[0]
            .try_log()),
        case!("sqrt", ["sqrt"], unary_case(0..=3, POSITIVE), |v| v[0]
            .try_sqrt()),
        case!(
            "abs",
            ["abs"],
            unary_case(0..=3, Domain::AwayFromZero),
            |v| v[0].try_abs()
        ),
        case!(
            "sin",
            ["sin"],
            unary_case(0..=3, Domain::Range(-4.0, 4.0)),
            |v| v[0].try_sin()
        ),
        case!(
            "cos",
            ["cos"],
            unary_case(0..=3, Domain::Range(-4.0, 4.0)),
            |v| v[0].try_cos()
        ),
        case!(
            "tanh",
            ["tanh"],
            unary_case(0..=3, Domain::Range(-3.0, 3.0)),
            |v| v[0].try_tanh()
        ),
        case!(
            "sigmoid",
            ["sigmoid"],
            unary_case(0..=3, Domain::Range(-4.0, 4.0)),
            |v| v[0].try_sigmoid()
        ),
        case!(
            "relu",
            ["relu"],
            unary_case(0..=3, Domain::AwayFromZero),
            |v| v[0].try_relu()
        ),
        case!(
            "pow_scalar_2",
            ["pow_scalar"],
            unary_case(0..=3, ANY),
            |v| v[0].try_powf(2.0)
        ),
        case!(
            "pow_scalar_3",
            ["pow_scalar"],
            unary_case(0..=3, ANY),
            |v| v[0].try_powf(3.0)
        ),
        case!(
            "pow_scalar_neg1_5",
            ["pow_scalar"],
            unary_case(0..=3, POSITIVE),
            |v| v[0].try_powf(-1.5)
        ),
        case!(
            "pow_scalar_0_5",
            ["pow_scalar"],
            unary_case(0..=3, POSITIVE),
            |v| v[0].try_powf(0.5)
        ),
        case!(
            "pow",
            ["pow"],
            binary_case(Domain::Range(0.5, 2.0), ANY),
            |v| v[0].try_pow(&v[1])
        ),
        case!("maximum", ["maximum"], extremum_case(), |v| v[0]
            .try_maximum(&v[1])),
        case!("minimum", ["minimum"], extremum_case(), |v| v[0]
            .try_minimum(&v[1])),
        case!("sum_axis1", ["sum"], unary_case(2..=4, ANY), |v| v[0]
            .try_sum(&[1], false)),
        case!("sum_last_keepdim", ["sum"], unary_case(1..=3, ANY), |v| v
            [0]
        .try_sum(&[-1], true)),
        case!("sum_all", ["sum"], unary_case(0..=3, ANY), |v| v[0]
            .try_sum_all()),
        case!(
            "mean_axis0",
            ["sum", "mul_scalar"],
            unary_case(1..=3, ANY),
            |v| v[0].try_mean(&[0], false)
        ),
        case!(
            "mean_all",
            ["sum", "mul_scalar"],
            unary_case(0..=3, ANY),
            |v| v[0].try_mean_all()
        ),
        case!("max_axis1", ["max"], distinct_case(2..=3), |v| v[0]
            .try_max(&[1], false)),
        case!("max_all", ["max"], distinct_case(0..=3), |v| v[0]
            .try_max_all()),
        case!("min_axis0_keepdim", ["min"], distinct_case(1..=3), |v| v[0]
            .try_min(&[0], true)),
        case!("min_all", ["min"], distinct_case(0..=3), |v| v[0]
            .try_min_all()),
        case!("matmul", ["matmul"], matmul_case(false), |v| v[0]
            .try_matmul(&v[1])),
        case!(
            "matmul_batched_broadcast",
            ["matmul"],
            matmul_case(true),
            |v| v[0].try_matmul(&v[1])
        ),
        case!(
            "matmul_matrix_vector",
            ["matmul", "reshape"],
            matvec_case(),
            |v| v[0].try_matmul(&v[1])
        ),
        case!(
            "matmul_transposed",
            ["matmul", "permute"],
            matmul_case(false),
            |v| {
                // (Bᵀ·Aᵀ)ᵀ = A·B exercises both transpose flags in forward and backward.
                v[1].try_matmul_t(&v[0], true, true)?.try_t()
            }
        ),
        case!("reshape", ["reshape"], unary_case(1..=3, ANY), |v| v[0]
            .try_reshape(&[-1])),
        case!("transpose", ["permute"], unary_case(2..=3, ANY), |v| v[0]
            .try_transpose(0, -1)),
        case!("permute", ["permute"], unary_case(3..=3, ANY), |v| v[0]
            .try_permute(&[2, 0, 1])),
    ]
}

/// The case with this name.
pub fn find(name: &str) -> Option<OpCase> {
    registry().into_iter().find(|c| c.name == name)
}
