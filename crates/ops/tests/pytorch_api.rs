//! The functional API reads and behaves as PyTorch's: pooling's stride
//! defaults to the kernel, convolutions take option structs with PyTorch's
//! defaults, `max_dim` is `torch.max(x, dim)`, index-taking ops take
//! `Indices`, `batch_norm` updates running statistics as
//! `F.batch_norm`, and every free op pairs `try_x` (Result) with `x` (panics).

use chainrule_ops::*;
use chainrule_tape::{grad, gradcheck, gradgradcheck, Graph, Tensor, Var};
use rand::rngs::StdRng;
use rand::SeedableRng;
use serde::Deserialize;

mod common;
use common::Json;

fn ramp(shape: &[usize]) -> Var<f64> {
    Var::constant(Tensor::from_fn(shape, |i| i as f64))
}

#[test]
fn pooling_stride_defaults_to_the_kernel_as_in_pytorch() {
    let x = ramp(&[1, 1, 4, 4]);
    // F.max_pool2d(x, 2) and F.avg_pool2d(x, 2): 2×2 windows, stride 2.
    let m = max_pool2d(&x, 2);
    assert_eq!(m.shape(), &[1, 1, 2, 2]);
    assert_eq!(m.value().data(), &[5.0, 7.0, 13.0, 15.0]);
    let a = avg_pool2d(&x, 2);
    assert_eq!(a.value().data(), &[2.5, 4.5, 10.5, 12.5]);
    // The stride is set explicitly only when asked.
    assert_eq!(
        max_pool2d(&x, Pool2dOptions::new(2).stride(1)).shape(),
        &[1, 1, 3, 3]
    );
    assert_eq!(
        Pool2dOptions::new((3, 2)).padding(1).window(),
        Window {
            kernel: (3, 2),
            stride: (3, 2),
            padding: (1, 1),
            dilation: (1, 1),
        }
    );
}

#[test]
fn avg_pool2d_count_include_pad_is_an_option_defaulting_to_true() {
    // Ones [1, 1, 2, 2], kernel 2, padding 1, stride 2: each window holds one pixel.
    let x = Var::constant(Tensor::<f64>::ones([1, 1, 2, 2]));
    let with_pad = avg_pool2d(&x, Pool2dOptions::new(2).padding(1));
    assert_eq!(with_pad.value().data(), &[0.25; 4]);
    let without = avg_pool2d(
        &x,
        Pool2dOptions::new(2).padding(1).count_include_pad(false),
    );
    assert_eq!(without.value().data(), &[1.0; 4]);
}

#[test]
fn convolution_options_default_to_pytorch_and_take_a_single_size() {
    assert_eq!(
        Conv2dOptions::default(),
        Conv2dOptions {
            stride: Size2(1, 1),
            padding: Size2(0, 0),
            dilation: Size2(1, 1),
            groups: 1,
        }
    );
    let mut rng = StdRng::seed_from_u64(1);
    let x = Var::constant(Tensor::<f64>::randn([1, 2, 5, 5], &mut rng));
    let w = Var::constant(Tensor::<f64>::randn([3, 2, 3, 3], &mut rng));
    let b = Var::constant(Tensor::<f64>::randn([3], &mut rng));
    let built = conv2d(&x, &w, Some(&b), Conv2dOptions::default().padding(1));
    let literal = conv2d(
        &x,
        &w,
        Some(&b),
        Conv2dOptions {
            padding: (1, 1).into(),
            ..Default::default()
        },
    );
    assert_eq!(built.shape(), &[1, 3, 5, 5]);
    assert_eq!(built.value().data(), literal.value().data());
    assert_eq!(
        conv2d(&x, &w, None, Conv2dOptions::default().stride(2)).shape(),
        &[1, 3, 2, 2]
    );
    // conv1d and conv_transpose2d: stride 1, no padding by default.
    let x1 = Var::constant(Tensor::<f64>::randn([2, 2, 7], &mut rng));
    let w1 = Var::constant(Tensor::<f64>::randn([4, 2, 3], &mut rng));
    assert_eq!(
        conv1d(&x1, &w1, None, Conv1dOptions::default()).shape(),
        &[2, 4, 5]
    );
    let wt = Var::constant(Tensor::<f64>::randn([2, 3, 3, 3], &mut rng));
    let xt = Var::constant(Tensor::<f64>::randn([1, 2, 4, 4], &mut rng));
    // (H − 1)·1 + (3 − 1) + 1 = 6.
    assert_eq!(
        conv_transpose2d(&xt, &wt, None, ConvTranspose2dOptions::default()).shape(),
        &[1, 3, 6, 6]
    );
}

#[test]
fn matmul_t_names_the_transposed_operand() {
    let mut rng = StdRng::seed_from_u64(2);
    let a = Var::constant(Tensor::<f64>::randn([2, 3], &mut rng));
    let b = Var::constant(Tensor::<f64>::randn([4, 3], &mut rng));
    let c = Var::constant(Tensor::<f64>::randn([2, 4], &mut rng));
    // Tolerance 1e-12: a strided read and a copied transpose may sum in another order.
    let close = |x: &Var<f64>, y: &Var<f64>| {
        assert_eq!(x.shape(), y.shape());
        for (p, q) in x.value().data().iter().zip(y.value().data()) {
            assert!((p - q).abs() <= 1e-12, "{p} vs {q}");
        }
    };
    close(&a.matmul_t(&b, Transpose::Second), &a.matmul(&b.t()));
    close(&a.matmul_t(&c, Transpose::First), &a.t().matmul(&c));
    close(&a.matmul_t(&c.t(), Transpose::Both), &a.t().matmul(&c));
    close(&a.matmul_t(&b.t(), Transpose::Neither), &a.matmul(&b.t()));
    assert_eq!(Transpose::from_flags(false, true), Transpose::Second);
}

#[test]
fn max_dim_returns_values_and_indices_and_routes_the_gradient_to_the_first_maximum() {
    let g = Graph::new();
    let x = g.leaf(Tensor::from_vec(
        [2, 3],
        vec![1.0f64, 3.0, 3.0, 2.0, 0.0, 2.0],
    ));
    let (values, indices) = x.max_dim(1, false);
    assert_eq!(values.value().data(), &[3.0, 2.0]);
    assert_eq!(indices, Indices::vector(vec![1, 0]));
    let [dx] = grad(&values.sum_all(), [&x], false);
    // torch.max(x, 1) sends the gradient to the index it returns only.
    assert_eq!(dx.value().data(), &[0.0, 1.0, 0.0, 1.0, 0.0, 0.0]);
    // amax (VarOps::max) splits it among the ties instead.
    let [da] = grad(&x.max(&[1], false).sum_all(), [&x], false);
    assert_eq!(da.value().data(), &[0.0, 0.5, 0.5, 0.5, 0.0, 0.5]);

    let (kept, kept_idx) = x.max_dim(-1, true);
    assert_eq!(kept.shape(), &[2, 1]);
    assert_eq!(kept_idx.shape, vec![2, 1]);
    let (mins, min_idx) = x.min_dim(0, false);
    assert_eq!(mins.value().data(), &[1.0, 0.0, 2.0]);
    assert_eq!(min_idx.data, vec![0, 1, 1]);
    // NaN is the maximum and propagates, as in PyTorch.
    let n = Var::constant(Tensor::from_vec([3], vec![1.0f64, f64::NAN, 5.0]));
    let (v, i) = n.max_dim(0, false);
    assert!(v.item().is_nan());
    assert_eq!(i.data, vec![1]);
    assert!(x.try_max_dim(2, false).is_err());
}

#[test]
fn max_dim_and_min_dim_pass_gradcheck_and_gradgradcheck() {
    let mut rng = StdRng::seed_from_u64(3);
    // Distinct values (no ties), where the max is differentiable.
    let t = Tensor::<f64>::randn([3, 4, 2], &mut rng);
    let cases: [(isize, bool, bool); 4] = [
        (1, false, true),
        (-1, true, true),
        (0, false, false),
        (2, true, false),
    ];
    for (dim, keepdim, max) in cases {
        let f = |v: &[Var<f64>]| {
            let (y, _) = if max {
                v[0].max_dim(dim, keepdim)
            } else {
                v[0].min_dim(dim, keepdim)
            };
            // Squared, so the second derivative is not trivially zero.
            y.square()
        };
        let r = gradcheck(f, std::slice::from_ref(&t));
        assert!(r.passed(), "gradcheck dim {dim} max {max}: {r:?}");
        let r = gradgradcheck(f, std::slice::from_ref(&t));
        assert!(r.passed(), "gradgradcheck dim {dim} max {max}: {r:?}");
    }
}

#[test]
fn index_select_takes_indices_like_gather() {
    let x = ramp(&[3, 2]);
    let y = x.index_select(0, &Indices::from([2, 0]));
    assert_eq!(y.value().data(), &[4.0, 5.0, 0.0, 1.0]);
    let from_vec: Indices = vec![1].into();
    assert_eq!(
        x.index_select(1, &from_vec).value().data(),
        &[1.0, 3.0, 5.0]
    );
    let two_d = Indices::new(vec![1, 1], vec![0]).unwrap();
    let e = x.try_index_select(0, &two_d).unwrap_err();
    assert_eq!(e.to_string(), "index_select: index must be 1-D, got [1, 1]");
}

#[derive(Deserialize)]
struct Stats {
    running_mean: Json,
    running_var: Json,
}

#[derive(Deserialize)]
struct TrainStep {
    x: Json,
    output: Json,
    running_mean: Json,
    running_var: Json,
}

#[derive(Deserialize)]
struct EvalStep {
    x: Json,
    output: Json,
}

#[derive(Deserialize)]
struct BatchNormFixture {
    momentum: f64,
    eps: f64,
    weight: Json,
    bias: Json,
    start: Stats,
    train_steps: Vec<TrainStep>,
    eval: EvalStep,
}

/// |got − want| ≤ 1e-12·(1 + |want|): float64 on both sides; the batch
/// sums run in another order than PyTorch's, which moves the last bits.
fn assert_close(what: &str, got: &Tensor<f64>, want: &Json) {
    assert_eq!(got.shape(), want.shape.as_slice(), "{what}: shape");
    for (i, (g, w)) in got.data().iter().zip(&want.data).enumerate() {
        assert!(
            (g - w).abs() <= 1e-12 * (1.0 + w.abs()),
            "{what}[{i}]: {g} vs {w}"
        );
    }
}

#[test]
fn batch_norm_updates_running_statistics_as_pytorch() {
    let path = format!(
        "{}/../../tests/fixtures/torch/batch_norm.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let fx: BatchNormFixture =
        serde_json::from_str(&std::fs::read_to_string(path).expect("fixture file"))
            .expect("fixture JSON");
    let (w, b) = (
        Var::constant(fx.weight.tensor()),
        Var::constant(fx.bias.tensor()),
    );
    let mut rm = fx.start.running_mean.tensor();
    let mut rv = fx.start.running_var.tensor();
    for (k, step) in fx.train_steps.iter().enumerate() {
        let x = Var::constant(step.x.tensor());
        let y = batch_norm(
            &x,
            Some(&mut rm),
            Some(&mut rv),
            Some(&w),
            Some(&b),
            true,
            fx.momentum,
            fx.eps,
        );
        assert_close(&format!("step {k} output"), y.value(), &step.output);
        assert_close(&format!("step {k} running_mean"), &rm, &step.running_mean);
        assert_close(&format!("step {k} running_var"), &rv, &step.running_var);
    }
    let x = Var::constant(fx.eval.x.tensor());
    let before = (rm.clone(), rv.clone());
    let y = batch_norm(
        &x,
        Some(&mut rm),
        Some(&mut rv),
        Some(&w),
        Some(&b),
        false,
        fx.momentum,
        fx.eps,
    );
    assert_close("eval output", y.value(), &fx.eval.output);
    assert_eq!((rm.data(), rv.data()), (before.0.data(), before.1.data()));
}

#[test]
fn batch_norm_refuses_eval_without_statistics_and_leaves_them_on_error() {
    let x = ramp(&[2, 2, 3]);
    let e = try_batch_norm(&x, None, None, None, None, false, 0.1, 1e-5).unwrap_err();
    assert!(
        e.to_string().contains("required when training is false"),
        "{e}"
    );
    // A bad weight fails the call before the statistics move.
    let (mut rm, mut rv) = (Tensor::zeros([2]), Tensor::ones([2]));
    let bad = Var::constant(Tensor::ones([3]));
    let e = try_batch_norm(
        &x,
        Some(&mut rm),
        Some(&mut rv),
        Some(&bad),
        None,
        true,
        0.1,
        1e-5,
    )
    .unwrap_err();
    assert_eq!(e.to_string(), "batch_norm: weight [3] for 2 channels");
    assert_eq!((rm.data(), rv.data()), (&[0.0; 2][..], &[1.0; 2][..]));
    // Training without statistics normalizes with the batch's.
    let y = batch_norm(&x, None, None, None, None, true, 0.1, 0.0);
    assert!(y.value().data().iter().all(|v| v.is_finite()));
}

#[test]
fn free_ops_pair_a_fallible_try_form_with_a_panicking_plain_form() {
    let x = Var::constant(Tensor::<f64>::zeros([1, 1, 2, 2]));
    let w = Var::constant(Tensor::<f64>::zeros([1, 1, 3, 3]));
    let e = try_conv2d(&x, &w, None, Conv2dOptions::default()).unwrap_err();
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        conv2d(&x, &w, None, Conv2dOptions::default())
    }));
    let payload = caught.expect_err("conv2d panics on bad geometry");
    let message = payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default();
    assert!(message.contains(&e.to_string()), "{message} vs {e}");
    assert!(try_max_pool2d(&x, 3).is_err());
    assert!(try_concat::<f64>(&[], 0).is_err());
    assert!(loss::try_mse_loss(&x, &w, loss::Reduction::Mean).is_err());
}
