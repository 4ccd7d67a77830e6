//! Registry entries for the neural-network op set: indexing, activations,
//! the softmax family, losses, convolution, pooling and normalization.
//! `tools/torch_reference/nn_cases.py` mirrors every entry (same names, same
//! index and mask patterns) for the PyTorch fixtures.
//!
//! Domains avoid kinks by more than the finite-difference step: values on a
//! 0.1 grid offset by 0.05 never come within 0.05 of a kink placed on the
//! grid (hardtanh's ±1, smooth-L1's |d| = 1, a hinge's margin).

use crate::activations::Gelu;
use crate::conv::Window;
use crate::indexing::Indices;
use crate::loss::{self, ClassLossOptions, Reduction};
use crate::registry::{
    case, grid_tensor, tensor, unary_case, Domain, Inputs, OpCase, ANY, POSITIVE,
};
use crate::{VarOps, *};
use chainrule_tape::shape::numel;
use chainrule_tape::{Element, Tensor};
use proptest::prelude::*;

/// Index k of a pattern array: (7k + 3) mod n (repeats, so gradients collide).
pub fn pattern_indices(shape: &[usize], n: usize) -> Indices {
    let data = (0..numel(shape)).map(|k| (7 * k + 3) % n).collect();
    Indices::new(shape.to_vec(), data).expect("sizes agree")
}

/// A 1/0 mask with ones at flat positions k ≡ 0 (mod 3).
pub fn pattern_mask<T: Element>(shape: &[usize]) -> Tensor<T> {
    Tensor::from_fn(shape, |k| if k % 3 == 0 { T::one() } else { T::zero() })
}

/// Inputs of fixed shapes, values from the given domains.
fn fixed(specs: Vec<(Vec<usize>, Domain)>) -> BoxedStrategy<Inputs> {
    specs
        .into_iter()
        .map(|(s, d)| tensor(s, d))
        .collect::<Vec<_>>()
        .prop_map(|v| v)
        .boxed()
}

/// Inputs of fixed shapes on the 0.1 grid with the given offsets.
fn grid(specs: Vec<(Vec<usize>, f64)>) -> BoxedStrategy<Inputs> {
    specs
        .into_iter()
        .map(|(s, o)| grid_tensor(s, o))
        .collect::<Vec<_>>()
        .prop_map(|v| v)
        .boxed()
}

fn unary(shape: &[usize], d: Domain) -> BoxedStrategy<Inputs> {
    fixed(vec![(shape.to_vec(), d)])
}

/// Weights and images for the convolution cases.
const SMALL: Domain = Domain::Range(-1.0, 1.0);
const PROB: Domain = Domain::Range(0.05, 0.95);

fn options<T: Element>(
    weight: Option<Vec<f64>>,
    ignore: Option<usize>,
    smoothing: f64,
    r: Reduction,
) -> ClassLossOptions<T> {
    ClassLossOptions {
        weight: weight
            .map(|w| Tensor::from_vec([w.len()], w.into_iter().map(T::from_f64).collect())),
        ignore_index: ignore,
        label_smoothing: smoothing,
        reduction: r,
    }
}

fn win(k: usize, s: usize, p: usize, d: usize) -> Window {
    Window {
        kernel: (k, k),
        stride: (s, s),
        padding: (p, p),
        dilation: (d, d),
    }
}

/// The entries.
pub(crate) fn cases() -> Vec<OpCase> {
    let mut v = shape_cases();
    v.extend(activation_cases());
    v.extend(loss_cases());
    v.extend(conv_cases());
    v
}

fn shape_cases() -> Vec<OpCase> {
    vec![
        case!("slice_step", ["take"], unary(&[3, 5], ANY), |v| v[0]
            .try_slice(-1, 1, 5, 2)),
        case!("narrow", ["take"], unary(&[4, 3], ANY), |v| v[0]
            .try_narrow(0, 1, 2)),
        case!("index_select", ["take"], unary(&[2, 4, 3], ANY), |v| v[0]
            .try_index_select(1, &[3, 0, 3])),
        case!("gather", ["take"], unary(&[3, 4], ANY), |v| v[0]
            .try_gather(1, &pattern_indices(&[3, 5], 4))),
        case!(
            "scatter_add",
            ["put_add", "add"],
            fixed(vec![(vec![3, 4], ANY), (vec![3, 5], ANY)]),
            |v| v[0].try_scatter_add(1, &pattern_indices(&[3, 5], 4), &v[1])
        ),
        case!(
            "concat",
            ["concat"],
            fixed(vec![
                (vec![2, 3], ANY),
                (vec![2, 1], ANY),
                (vec![2, 2], ANY)
            ]),
            |v| concat(&[&v[0], &v[1], &v[2]], 1)
        ),
        case!(
            "stack",
            ["concat", "reshape"],
            fixed(vec![(vec![2, 3], ANY), (vec![2, 3], ANY)]),
            |v| stack(&[&v[0], &v[1]], 1)
        ),
        case!(
            "split_chunk",
            ["take", "concat"],
            unary(&[5, 2], ANY),
            |v| {
                // Pieces of 2, 2, 1 rows and chunks of 3, 2 rows, reassembled in another order.
                let p = v[0].try_split(2, 0)?;
                let c = v[0].try_chunk(2, 0)?;
                concat(&[&p[2], &c[1], &p[0].mul_scalar(2.0), &c[0]], 0)
            }
        ),
        case!(
            "squeeze_unsqueeze_flatten",
            ["reshape"],
            unary(&[2, 1, 3], ANY),
            |v| v[0]
                .try_squeeze(Some(1))?
                .try_unsqueeze(0)?
                .try_flatten(1, 2)
        ),
        case!("pad", ["put_add", "add"], unary(&[2, 2, 3], ANY), |v| v[0]
            .try_pad(&[1, 2, 0, 1], 0.5)),
        case!(
            "repeat",
            ["broadcast_to", "reshape"],
            unary(&[2, 3], ANY),
            |v| v[0].try_repeat(&[2, 1, 3])
        ),
        case!("expand", ["broadcast_to"], unary(&[3, 1], ANY), |v| v[0]
            .try_expand(&[2, -1, 4])),
        case!(
            "where",
            ["where"],
            fixed(vec![(vec![2, 3], ANY), (vec![3], ANY)]),
            |v| where_(&pattern_mask(&[2, 3]), &v[0], &v[1])
        ),
        case!("masked_fill", ["where"], unary(&[3, 4], ANY), |v| v[0]
            .try_masked_fill(&pattern_mask(&[3, 4]), -1.5)),
    ]
}

fn activation_cases() -> Vec<OpCase> {
    vec![
        case!(
            "leaky_relu",
            ["leaky_relu"],
            unary_case(1..=3, Domain::AwayFromZero),
            |v| v[0].try_leaky_relu(0.2)
        ),
        case!(
            "elu",
            ["elu"],
            unary_case(1..=3, Domain::AwayFromZero),
            |v| v[0].try_elu(1.3)
        ),
        case!(
            "selu",
            ["elu", "mul_scalar"],
            unary_case(1..=3, Domain::AwayFromZero),
            |v| v[0].try_selu()
        ),
        case!(
            "gelu_exact",
            ["normal_cdf", "mul"],
            unary_case(1..=3, Domain::Range(-3.0, 3.0)),
            |v| v[0].try_gelu(Gelu::Exact)
        ),
        case!(
            "gelu_tanh",
            ["tanh"],
            unary_case(1..=3, Domain::Range(-3.0, 3.0)),
            |v| v[0].try_gelu(Gelu::Tanh)
        ),
        case!(
            "softplus_beta2",
            ["softplus"],
            unary_case(1..=3, ANY),
            |v| v[0].try_softplus(2.0, 20.0)
        ),
        case!(
            "softplus_linear_region",
            ["softplus"],
            unary(&[4], Domain::Range(2.0, 3.0)),
            |v| v[0].try_softplus(2.0, 3.0)
        ),
        case!("silu", ["sigmoid", "mul"], unary_case(1..=3, ANY), |v| v[0]
            .try_silu()),
        case!("mish", ["softplus", "tanh"], unary_case(1..=3, ANY), |v| v
            [0]
        .try_mish()),
        case!(
            "hardtanh",
            ["hardtanh"],
            grid(vec![(vec![3, 4], 0.05)]),
            |v| v[0].try_hardtanh(-1.0, 1.0)
        ),
        case!("clamp", ["clamp"], grid(vec![(vec![3, 4], 0.05)]), |v| v[0]
            .try_clamp(-0.5, 1.0)),
        case!(
            "softsign",
            ["abs", "div"],
            unary_case(1..=3, Domain::AwayFromZero),
            |v| v[0].try_softsign()
        ),
        case!(
            "log_sigmoid",
            ["softplus"],
            unary_case(1..=3, Domain::Range(-6.0, 6.0)),
            |v| v[0].try_log_sigmoid()
        ),
        case!("softmax", ["softmax"], unary_case(1..=3, ANY), |v| v[0]
            .try_softmax(-1)),
        case!(
            "log_softmax",
            ["log_softmax"],
            unary_case(1..=3, ANY),
            |v| v[0].try_log_softmax(0)
        ),
        case!("logsumexp", ["logsumexp"], unary_case(2..=4, ANY), |v| v[0]
            .try_logsumexp(1, false)),
        case!(
            "logsumexp_keepdim",
            ["logsumexp"],
            unary(&[3, 4], ANY),
            |v| v[0].try_logsumexp(-1, true)
        ),
    ]
}

/// Class targets for n rows of c classes.
fn targets(n: usize, c: usize) -> Indices {
    pattern_indices(&[n], c)
}

fn loss_cases() -> Vec<OpCase> {
    vec![
        case!(
            "mse_loss",
            ["sub", "pow_scalar"],
            fixed(vec![(vec![3, 4], ANY), (vec![3, 4], ANY)]),
            |v| loss::mse_loss(&v[0], &v[1], Reduction::Mean)
        ),
        case!(
            "l1_loss_sum",
            ["abs"],
            fixed(vec![
                (vec![3, 4], Domain::Range(0.2, 2.0)),
                (vec![3, 4], Domain::Range(-2.0, -0.1))
            ]),
            |v| loss::l1_loss(&v[0], &v[1], Reduction::Sum)
        ),
        case!(
            "smooth_l1_loss",
            ["where"],
            grid(vec![(vec![3, 4], 0.0), (vec![3, 4], 0.05)]),
            |v| loss::smooth_l1_loss(&v[0], &v[1], 1.0, Reduction::Mean)
        ),
        case!(
            "huber_loss_none",
            ["where"],
            grid(vec![(vec![3, 4], 0.0), (vec![3, 4], 0.05)]),
            |v| loss::huber_loss(&v[0], &v[1], 0.8, Reduction::None)
        ),
        case!(
            "binary_cross_entropy",
            ["log", "clamp"],
            fixed(vec![
                (vec![3, 4], PROB),
                (vec![3, 4], Domain::Range(0.0, 1.0))
            ]),
            |v| loss::binary_cross_entropy(&v[0], &v[1], None, Reduction::Mean)
        ),
        case!(
            "binary_cross_entropy_weighted",
            ["log", "clamp"],
            fixed(vec![
                (vec![3, 4], PROB),
                (vec![3, 4], Domain::Range(0.0, 1.0))
            ]),
            |v| {
                let w = Tensor::from_fn([4], |k| 0.5 + 0.25 * k as f64);
                loss::binary_cross_entropy(&v[0], &v[1], Some(&w.cast()), Reduction::Sum)
            }
        ),
        case!(
            "bce_with_logits_pos_weight",
            ["softplus"],
            fixed(vec![
                (vec![3, 4], Domain::Range(-4.0, 4.0)),
                (vec![3, 4], Domain::Range(0.0, 1.0))
            ]),
            |v| {
                let pw = Tensor::from_fn([4], |k| 0.5 + 0.5 * k as f64);
                loss::binary_cross_entropy_with_logits(
                    &v[0],
                    &v[1],
                    None,
                    Some(&pw.cast()),
                    Reduction::Mean,
                )
            }
        ),
        case!(
            "cross_entropy",
            ["cross_entropy"],
            unary(&[5, 4], ANY),
            |v| loss::cross_entropy(
                &v[0],
                &targets(5, 4),
                &options(None, None, 0.0, Reduction::Mean)
            )
        ),
        case!(
            "cross_entropy_weighted_ignore_smoothing",
            ["cross_entropy"],
            unary(&[6, 4], ANY),
            |v| {
                loss::cross_entropy(
                    &v[0],
                    &targets(6, 4),
                    &options(
                        Some(vec![0.5, 1.0, 2.0, 1.5]),
                        Some(2),
                        0.1,
                        Reduction::Mean,
                    ),
                )
            }
        ),
        case!(
            "cross_entropy_spatial_none",
            ["cross_entropy", "permute"],
            unary(&[2, 3, 2, 2], ANY),
            |v| {
                loss::cross_entropy(
                    &v[0],
                    &pattern_indices(&[2, 2, 2], 3),
                    &options(None, None, 0.0, Reduction::None),
                )
            }
        ),
        case!(
            "cross_entropy_probs",
            ["log_softmax"],
            fixed(vec![
                (vec![3, 4], ANY),
                (vec![3, 4], Domain::Range(0.0, 1.0))
            ]),
            |v| {
                loss::cross_entropy_probs(
                    &v[0],
                    &v[1],
                    &options(Some(vec![1.0, 0.5, 2.0, 1.0]), None, 0.2, Reduction::Mean),
                )
            }
        ),
        case!("nll_loss", ["take"], unary(&[5, 3], ANY), |v| {
            loss::nll_loss(
                &v[0],
                &targets(5, 3),
                &options(Some(vec![0.3, 1.0, 2.0]), Some(1), 0.0, Reduction::Mean),
            )
        }),
        case!(
            "kl_div_batchmean",
            ["log"],
            fixed(vec![(vec![3, 4], ANY), (vec![3, 4], POSITIVE)]),
            |v| loss::kl_div(&v[0], &v[1], false, Reduction::BatchMean)
        ),
        case!(
            "kl_div_log_target",
            ["exp"],
            fixed(vec![(vec![3, 4], ANY), (vec![3, 4], ANY)]),
            |v| loss::kl_div(&v[0], &v[1], true, Reduction::Sum)
        ),
        case!(
            "multi_margin_loss",
            ["relu", "take"],
            grid(vec![(vec![4, 3], 0.0)]),
            |v| loss::multi_margin_loss(&v[0], &targets(4, 3), 1, 1.05, None, Reduction::Mean)
        ),
        case!(
            "multi_margin_loss_p2_weighted",
            ["relu", "take"],
            grid(vec![(vec![4, 3], 0.0)]),
            |v| {
                let w = Tensor::from_fn([3], |k| 1.0 + 0.5 * k as f64);
                loss::multi_margin_loss(
                    &v[0],
                    &targets(4, 3),
                    2,
                    1.05,
                    Some(&w.cast()),
                    Reduction::Sum,
                )
            }
        ),
        case!(
            "hinge_embedding_loss",
            ["where", "relu"],
            grid(vec![(vec![3, 4], 0.05)]),
            |v| {
                let y = Tensor::from_fn([3, 4], |k| if k % 2 == 0 { 1.0 } else { -1.0 });
                loss::hinge_embedding_loss(&v[0], &y.cast(), 1.0, Reduction::Mean)
            }
        ),
    ]
}

fn conv_cases() -> Vec<OpCase> {
    vec![
        case!(
            "conv2d",
            ["unfold", "matmul"],
            fixed(vec![
                (vec![2, 2, 4, 4], SMALL),
                (vec![3, 2, 3, 3], SMALL),
                (vec![3], SMALL)
            ]),
            |v| conv2d(&v[0], &v[1], Some(&v[2]), (1, 1), (1, 1), (1, 1), 1)
        ),
        case!(
            "conv2d_stride_dilation_groups",
            ["unfold", "matmul"],
            fixed(vec![(vec![1, 4, 6, 5], SMALL), (vec![2, 2, 2, 2], SMALL)]),
            |v| conv2d(&v[0], &v[1], None, (2, 1), (1, 2), (2, 1), 2)
        ),
        case!(
            "conv1d",
            ["unfold", "matmul"],
            fixed(vec![
                (vec![2, 2, 7], SMALL),
                (vec![4, 1, 3], SMALL),
                (vec![4], SMALL)
            ]),
            |v| conv1d(&v[0], &v[1], Some(&v[2]), 2, 1, 1, 2)
        ),
        case!(
            "conv_transpose2d",
            ["fold", "matmul"],
            fixed(vec![
                (vec![1, 2, 3, 3], SMALL),
                (vec![2, 3, 3, 3], SMALL),
                (vec![3], SMALL)
            ]),
            |v| conv_transpose2d(&v[0], &v[1], Some(&v[2]), (2, 2), (1, 1), (1, 1), (1, 1), 1)
        ),
        case!(
            "conv_transpose2d_groups_dilation",
            ["fold", "matmul"],
            fixed(vec![(vec![1, 4, 3, 2], SMALL), (vec![4, 1, 2, 2], SMALL)]),
            |v| conv_transpose2d(&v[0], &v[1], None, (1, 2), (0, 1), (0, 0), (2, 1), 2)
        ),
        case!(
            "max_pool2d",
            ["take"],
            distinct_shape(vec![2, 2, 4, 4]),
            |v| max_pool2d(&v[0], win(2, 2, 0, 1))
        ),
        case!(
            "max_pool2d_padded_overlapping",
            ["take"],
            distinct_shape(vec![1, 2, 5, 5]),
            |v| max_pool2d(&v[0], win(3, 2, 1, 1))
        ),
        case!(
            "avg_pool2d",
            ["unfold", "sum"],
            unary(&[2, 2, 4, 5], ANY),
            |v| avg_pool2d(&v[0], win(2, 2, 1, 1), true)
        ),
        case!(
            "avg_pool2d_exclude_pad",
            ["unfold", "sum"],
            unary(&[1, 2, 5, 5], ANY),
            |v| avg_pool2d(&v[0], win(3, 2, 1, 1), false)
        ),
        case!(
            "adaptive_avg_pool2d",
            ["matmul"],
            unary(&[2, 2, 5, 7], ANY),
            |v| adaptive_avg_pool2d(&v[0], (3, 2))
        ),
        case!(
            "batch_norm_train",
            ["batch_normalize"],
            fixed(vec![
                (vec![4, 3, 2, 2], ANY),
                (vec![3], ANY),
                (vec![3], ANY)
            ]),
            |v| Ok(batch_norm(&v[0], None, Some(&v[1]), Some(&v[2]), 1e-5)?.output)
        ),
        case!(
            "batch_norm_eval",
            ["sub", "mul"],
            fixed(vec![(vec![4, 3, 2], ANY), (vec![3], ANY), (vec![3], ANY)]),
            |v| {
                let mean = Tensor::from_vec([3], vec![0.1, -0.2, 0.3]).cast();
                let var = Tensor::from_vec([3], vec![1.5, 0.7, 2.0]).cast();
                Ok(batch_norm(&v[0], Some((&mean, &var)), Some(&v[1]), Some(&v[2]), 1e-5)?.output)
            }
        ),
        case!(
            "layer_norm",
            ["sum", "sqrt"],
            fixed(vec![
                (vec![3, 2, 4], ANY),
                (vec![2, 4], ANY),
                (vec![2, 4], ANY)
            ]),
            |v| layer_norm(&v[0], 2, Some(&v[1]), Some(&v[2]), 1e-5)
        ),
    ]
}

fn distinct_shape(shape: Vec<usize>) -> BoxedStrategy<Inputs> {
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
