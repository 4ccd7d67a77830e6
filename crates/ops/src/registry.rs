//! The op registry's shared machinery. The cases themselves live beside
//! their ops: each family file (`unary.rs`, `conv.rs`, ...) puts an op's
//! registry cases next to its forward and backward and collects them in a
//! `cases()` function; [`registry`] concatenates the families.
//!
//! A case is a proptest strategy for the op's inputs and a function applying
//! the op. One test runs gradcheck and gradgradcheck over every case; another
//! fails if a public op in [`api`] has no case; the PyTorch fixtures are
//! looked up here by case name; and `chainrule gradcheck` samples the same
//! strategies at run time.
//!
//! Strategies keep values inside each op's domain (ln, √ on positives) and
//! away from kinks (|x|, relu, max) by more than the finite-difference step,
//! so a failure always means a wrong derivative, never a bad sample. Values
//! on a 0.1 grid offset by 0.05 (`grid_tensor`) never come within 0.05 of
//! a kink placed on the grid (hardtanh's ±1, smooth-L1's |d| = 1, a hinge's
//! margin).

use crate::indexing::Indices;
use chainrule_tape::error::Result;
use chainrule_tape::shape::numel;
use chainrule_tape::{Element, Tensor, Var};
use proptest::prelude::*;

/// Input tensors for one check.
pub type Inputs = Vec<Tensor<f64>>;

/// A registry entry.
#[derive(Clone, Copy)]
pub struct OpCase {
    /// Unique case name (also the key of the PyTorch fixtures).
    pub name: &'static str,
    /// The public ops this case calls, as names from [`api`].
    pub covers: &'static [&'static str],
    /// The recorded ops this case exercises (the `Op::name`s of the nodes `apply` records).
    pub ops: &'static [&'static str],
    /// Input strategy.
    pub strategy: fn() -> BoxedStrategy<Inputs>,
    /// Applies the op(s) to the inputs.
    pub apply: fn(&[Var<f64>]) -> Result<Var<f64>>,
    /// The same in f32 (the fixtures are checked in both precisions).
    pub apply32: fn(&[Var<f32>]) -> Result<Var<f32>>,
}

/// Every registered case, family by family.
pub fn registry() -> Vec<OpCase> {
    [
        crate::binary::cases(),
        crate::unary::cases(),
        crate::reduce::cases(),
        crate::matmul::cases(),
        crate::shape_ops::cases(),
        crate::indexing::cases(),
        crate::activations::cases(),
        crate::softmax::cases(),
        crate::loss::cases(),
        crate::conv::cases(),
        crate::pool::cases(),
        crate::norm::cases(),
    ]
    .concat()
}

/// The case with this name.
pub fn find(name: &str) -> Option<OpCase> {
    registry().into_iter().find(|c| c.name == name)
}

/// Builds an [`OpCase`]: name, the public ops it covers (names in [`api`],
/// so a misspelt or missing one does not compile), the recorded op names it
/// claims, the input strategy, and the body, compiled once for f64 and once
/// for f32.
macro_rules! case_impl {
    (
        $name:literal for [$($api:ident),+],
        [$($op:literal),*],
        $strategy:expr,
        |$v:ident| $apply:expr
    ) => {
        $crate::registry::OpCase {
            name: $name,
            covers: &[$($crate::registry::api::$api),+],
            ops: &[$($op),*],
            strategy: || $strategy,
            apply: |$v: &[::chainrule_tape::Var<f64>]|
                -> ::chainrule_tape::error::Result<::chainrule_tape::Var<f64>> { $apply },
            apply32: |$v: &[::chainrule_tape::Var<f32>]|
                -> ::chainrule_tape::error::Result<::chainrule_tape::Var<f32>> { $apply },
        }
    };
}

pub(crate) use case_impl as case;

/// Declares the [`api`] table: one `&str` constant per public op, named
/// after it, plus `ALL`. A never-called function names each op's method or
/// function, so an entry for something that does not exist fails to compile.
macro_rules! public_ops {
    (
        var_ops: $($m:ident $(($m_real:ident))?),+;
        var: $($a:ident $(($a_real:ident))?),+;
        functions: $($module:ident::$f:ident),+;
    ) => {
        $(#[doc = concat!("`VarOps::", stringify!($m), "`.")]
        pub const $m: &str = stringify!($m);)+
        $(#[doc = concat!("`Var::", stringify!($a), "` (chainrule-tape's arithmetic).")]
        pub const $a: &str = stringify!($a);)+
        $(#[doc = concat!("`", stringify!($module), "::", stringify!($f), "`.")]
        pub const $f: &str = stringify!($f);)+

        /// Every public op, in table order.
        pub const ALL: &[&str] = &[$($m),+, $($a),+, $($f),+];

        #[allow(dead_code, unused_imports)]
        fn exists() {
            use chainrule_tape::Var;
            $(public_ops!(@var_ops $m $($m_real)?);)+
            $(public_ops!(@var $a $($a_real)?);)+
            $(use crate::$module::$f as _;)+
        }
    };
    (@var_ops $name:ident) => { let _ = <Var<f64> as crate::VarOps<f64>>::$name; };
    (@var_ops $name:ident $real:ident) => { let _ = <Var<f64> as crate::VarOps<f64>>::$real; };
    (@var $name:ident) => { let _ = Var::<f64>::$name; };
    (@var $name:ident $real:ident) => { let _ = Var::<f64>::$real; };
}

/// The public differentiable ops, one name each: every [`crate::VarOps`]
/// method, the arithmetic on `Var` that chainrule-tape defines, and the free
/// functions. The compiler checks each entry exists; `VarOps` methods made
/// with `fallible!` (in lib.rs) name their entry here, so a new method
/// without an entry does not compile (with the `strategies` feature). A test
/// (`tests/registry.rs`) fails if an entry has no case covering it.
/// A new public op function goes under `functions`.
#[allow(non_upper_case_globals)]
pub mod api {
    public_ops! {
        var_ops: exp, log, sqrt, abs, sin, cos, tanh, sigmoid, relu, powf, square, pow,
            maximum, minimum, sum, sum_all, mean, mean_all, max, max_all, min, min_all,
            max_dim, min_dim,
            matmul, matmul_t, reshape, reshape_to, permute, transpose, t,
            leaky_relu, elu, selu, gelu, softplus, silu, mish, hardtanh, clamp, softsign,
            log_sigmoid, softmax, log_softmax, logsumexp,
            slice, narrow, index_select, gather, scatter_add, unsqueeze, squeeze, flatten,
            expand, repeat, pad, masked_fill, split(try_split), chunk(try_chunk);
        var: add(try_add), sub(try_sub), mul(try_mul), div(try_div), neg, add_scalar,
            mul_scalar, rsub_scalar, rdiv_scalar, sum_to, broadcast_to;
        functions: shape_ops::concat, shape_ops::stack, indexing::where_,
            conv::conv1d, conv::conv2d, conv::conv_transpose2d,
            pool::max_pool2d, pool::avg_pool2d, pool::adaptive_avg_pool2d,
            norm::batch_norm, norm::layer_norm, norm::dropout,
            loss::mse_loss, loss::l1_loss, loss::smooth_l1_loss, loss::huber_loss,
            loss::binary_cross_entropy, loss::binary_cross_entropy_with_logits,
            loss::cross_entropy, loss::cross_entropy_probs, loss::nll_loss, loss::kl_div,
            loss::multi_margin_loss, loss::hinge_embedding_loss;
    }
}

/// Where sampled values lie.
#[derive(Clone, Copy, Debug)]
pub enum Domain {
    /// Uniform in [lo, hi).
    Range(f64, f64),
    /// |x| uniform in [0.2, 2), either sign: away from kinks at 0.
    AwayFromZero,
}

/// Uniform in [−2, 2).
pub(crate) const ANY: Domain = Domain::Range(-2.0, 2.0);
/// Uniform in [0.2, 3): the domain of ln, √ and negative powers.
pub(crate) const POSITIVE: Domain = Domain::Range(0.2, 3.0);

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

/// One input of random rank in `ranks` (dimensions up to 4).
pub(crate) fn unary_case(
    ranks: std::ops::RangeInclusive<usize>,
    domain: Domain,
) -> BoxedStrategy<Inputs> {
    shape(ranks, 4)
        .prop_flat_map(move |s| tensor(s, domain))
        .prop_map(|t| vec![t])
        .boxed()
}

/// One input of a fixed shape.
pub(crate) fn unary_fixed(shape: &[usize], d: Domain) -> BoxedStrategy<Inputs> {
    fixed(vec![(shape.to_vec(), d)])
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

/// Inputs of fixed shapes, values from the given domains.
pub(crate) fn fixed(specs: Vec<(Vec<usize>, Domain)>) -> BoxedStrategy<Inputs> {
    specs
        .into_iter()
        .map(|(s, d)| tensor(s, d))
        .collect::<Vec<_>>()
        .prop_map(|v| v)
        .boxed()
}

/// Inputs of fixed shapes on the 0.1 grid with the given offsets.
pub(crate) fn grid(specs: Vec<(Vec<usize>, f64)>) -> BoxedStrategy<Inputs> {
    specs
        .into_iter()
        .map(|(s, o)| grid_tensor(s, o))
        .collect::<Vec<_>>()
        .prop_map(|v| v)
        .boxed()
}

/// One input of this shape holding distinct values (a shuffled grid of step
/// 0.1), so a max has a unique winner.
pub(crate) fn distinct(shape: Vec<usize>) -> BoxedStrategy<Inputs> {
    let n: usize = shape.iter().product();
    Just((0..n).collect::<Vec<usize>>())
        .prop_shuffle()
        .prop_map(move |perm| {
            vec![Tensor::from_vec(
                &shape,
                perm.into_iter()
                    .map(|i| 0.1 * i as f64 - 0.05 * n as f64)
                    .collect(),
            )]
        })
        .boxed()
}

/// Index k of a pattern array: (7k + 3) mod n (repeats, so gradients
/// collide). tools/torch_reference/make_nn_fixtures.py builds the same.
pub(crate) fn pattern_indices(shape: &[usize], n: usize) -> Indices {
    let data = (0..numel(shape)).map(|k| (7 * k + 3) % n).collect();
    Indices::new(shape.to_vec(), data).expect("sizes agree")
}

/// A 1/0 mask with ones at flat positions k ≡ 0 (mod 3).
pub(crate) fn pattern_mask<T: Element>(shape: &[usize]) -> Tensor<T> {
    Tensor::from_fn(shape, |k| if k % 3 == 0 { T::one() } else { T::zero() })
}
