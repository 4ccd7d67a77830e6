//! The nn op set beyond the registry: numerical stability at extreme
//! inputs, PyTorch's gradient conventions at kinks, dropout's statistics,
//! batch statistics for running averages, and clear errors (never a panic).

use chainrule_ops::loss::{self, ClassLossOptions, Reduction};
use chainrule_ops::*;
use chainrule_tape::{grad, ErrorKind, Graph, Tensor, Var};
use rand::rngs::StdRng;
use rand::SeedableRng;

fn finite(t: &Tensor<f64>) -> bool {
    t.data().iter().all(|v| v.is_finite())
}

#[test]
fn softmax_family_and_losses_stay_finite_at_plus_minus_1000() {
    let g = Graph::<f64>::new();
    let x = g.leaf(Tensor::from_vec(
        [2, 3],
        vec![1000.0, -1000.0, 0.0, -1000.0, -999.0, 1000.0],
    ));
    let sm = x.softmax(-1);
    // exp(−1000 − 1000) underflows to exactly 0; the rows still sum to 1.
    assert_eq!(sm.value().data()[0], 1.0);
    let lsm = x.log_softmax(-1);
    assert_eq!(lsm.value().data()[1], -2000.0);
    let lse = x.logsumexp(-1, false);
    assert!((lse.value().data()[1] - 1000.0).abs() < 1e-12);
    let ce = loss::cross_entropy(
        &x,
        &Indices::vector(vec![1, 0]),
        &ClassLossOptions::default(),
    );
    assert!((ce.item() - 2000.0).abs() < 1e-9, "{}", ce.item());
    let total = &(&(&sm.sum_all() + &lsm.sum_all()) + &lse.sum_all()) + &ce;
    let [dx] = grad(&total, [&x], false);
    assert!(finite(dx.value()), "{:?}", dx.value().data());

    let y = g.leaf(Tensor::from_vec([3], vec![1.0, 0.0, 1.0]));
    let logits = g.leaf(Tensor::from_vec([3], vec![-1000.0, -1000.0, 1000.0]));
    let bce = loss::try_binary_cross_entropy_with_logits(&logits, &y, None, None, Reduction::Sum)
        .unwrap();
    assert!((bce.item() - 1000.0).abs() < 1e-9, "{}", bce.item());
    let [dl] = grad(&bce, [&logits], false);
    assert_eq!(dl.value().data(), &[-1.0, 0.0, 0.0]);

    // Probabilities of exactly 0 and 1: the logs are clamped at −100, as PyTorch.
    let p = g.leaf(Tensor::from_vec([2], vec![0.0, 1.0]));
    let t = Var::constant(Tensor::from_vec([2], vec![1.0, 0.0]));
    let b = loss::try_binary_cross_entropy(&p, &t, None, Reduction::Sum).unwrap();
    assert_eq!(b.item(), 200.0);
}

#[test]
fn gradients_at_kinks_follow_pytorch() {
    let g = Graph::<f64>::new();
    let x = g.leaf(Tensor::from_vec([3], vec![-1.0, 0.0, 1.0]));
    let d = |y: Var<f64>| grad(&y.sum_all(), [&x], false)[0].value().to_vec();
    assert_eq!(d(x.relu()), [0.0, 0.0, 1.0]);
    assert_eq!(d(x.leaky_relu(0.1)), [0.1, 0.1, 1.0]);
    assert_eq!(d(x.elu(2.0))[1], 2.0);
    assert_eq!(d(x.hardtanh(-1.0, 1.0)), [0.0, 1.0, 0.0]);
    assert_eq!(d(x.clamp(-1.0, 1.0)), [1.0, 1.0, 1.0]);
    assert_eq!(d(x.abs()), [-1.0, 0.0, 1.0]);
}

#[test]
fn max_pool_routes_a_tie_to_the_first_maximum() {
    let g = Graph::new();
    let x = g.leaf(Tensor::from_vec([1, 1, 2, 2], vec![3.0, 3.0, 1.0, 3.0]));
    let y = max_pool2d(
        &x,
        Window {
            kernel: (2, 2),
            stride: (2, 2),
            padding: (0, 0),
            dilation: (1, 1),
        },
    );
    let [dx] = grad(&y.sum_all(), [&x], false);
    assert_eq!(dx.value().data(), &[1.0, 0.0, 0.0, 0.0]);
}

/// Naive max-pool: every window scanned in row-major order, padding skipped,
/// NaN wins over numbers, ties keep the first maximum. Returns (value, flat index).
fn reference_max_pool(x: &[f64], (h, w): (usize, usize), win: Window) -> Vec<(f64, usize)> {
    let (oh, ow) = win.output_size("test", h, w).unwrap();
    let mut out = Vec::new();
    for plane in 0..x.len() / (h * w) {
        for oy in 0..oh {
            for ox in 0..ow {
                let mut best: Option<(f64, usize)> = None;
                for i in 0..win.kernel.0 {
                    for j in 0..win.kernel.1 {
                        let y = (oy * win.stride.0 + i * win.dilation.0) as isize
                            - win.padding.0 as isize;
                        let xx = (ox * win.stride.1 + j * win.dilation.1) as isize
                            - win.padding.1 as isize;
                        if y < 0 || xx < 0 || y >= h as isize || xx >= w as isize {
                            continue;
                        }
                        let at = plane * h * w + y as usize * w + xx as usize;
                        let v = x[at];
                        let wins = match best {
                            None => true,
                            Some((b, _)) => v > b || (v.is_nan() && !b.is_nan()),
                        };
                        if wins {
                            best = Some((v, at));
                        }
                    }
                }
                out.push(best.unwrap());
            }
        }
    }
    out
}

#[test]
fn max_pool_fast_paths_agree_with_a_naive_scan_including_ties_and_nan() {
    use rand::Rng;
    let mut rng = StdRng::seed_from_u64(11);
    let (n, c, h, w) = (2, 3, 8, 6);
    // Values from a small set, so ties are common; one NaN per sample.
    let mut data: Vec<f64> = (0..n * c * h * w)
        .map(|_| rng.gen_range(0..4) as f64)
        .collect();
    data[5] = f64::NAN;
    data[c * h * w + 29] = f64::NAN;
    let windows = [
        // 2×2/2: the unrolled path.
        ((2, 2), (2, 2), (0, 0), (1, 1)),
        // 3×3/1: the general unpadded path.
        ((3, 3), (1, 1), (0, 0), (1, 1)),
        // padded and dilated: the general path.
        ((3, 3), (2, 1), (1, 1), (1, 1)),
        ((2, 3), (1, 2), (0, 1), (2, 1)),
    ];
    for (kernel, stride, padding, dilation) in windows {
        let win = Window {
            kernel,
            stride,
            padding,
            dilation,
        };
        let g = Graph::new();
        let x = g.leaf(Tensor::from_vec([n, c, h, w], data.clone()));
        let y = try_max_pool2d(&x, win).unwrap();
        let expected = reference_max_pool(&data, (h, w), win);
        let got = y.value().data();
        assert_eq!(got.len(), expected.len(), "{win:?}");
        for (k, (&v, &(e, _))) in got.iter().zip(&expected).enumerate() {
            assert!(
                v == e || (v.is_nan() && e.is_nan()),
                "{win:?} output {k}: {v} vs {e}"
            );
        }
        // The gradient lands on exactly the reference's argmax positions.
        let [dx] = grad(&y.sum_all(), [&x], false);
        let mut routed = vec![0.0; data.len()];
        for &(_, at) in &expected {
            routed[at] += 1.0;
        }
        assert_eq!(dx.value().data(), &routed[..], "{win:?}");
    }
}

#[test]
fn dropout_zeroes_a_fraction_p_scales_survivors_and_repeats_with_the_seed() {
    let n = 100_000;
    let g = Graph::new();
    let x = g.leaf(Tensor::<f64>::ones([n]));
    let p = 0.3;
    let y = try_dropout(&x, p, true, &mut StdRng::seed_from_u64(5)).unwrap();
    let zeros = y.value().data().iter().filter(|&&v| v == 0.0).count() as f64 / n as f64;
    // Binomial: σ = √(p(1−p)/n) ≈ 1.45e-3; 5σ ≈ 7.2e-3.
    assert!((zeros - p).abs() < 7.2e-3, "{zeros}");
    let scale = 1.0 / (1.0 - p);
    assert!(y.value().data().iter().all(|&v| v == 0.0 || v == scale));
    let again = try_dropout(&x, p, true, &mut StdRng::seed_from_u64(5)).unwrap();
    assert_eq!(y.value().data(), again.value().data());
    let [dx] = grad(&y.sum_all(), [&x], false);
    assert_eq!(
        dx.value().data(),
        y.value().data(),
        "the gradient is the scaled mask"
    );
    let eval = try_dropout(&x, p, false, &mut StdRng::seed_from_u64(5)).unwrap();
    assert_eq!(eval.value().data(), x.value().data());
    assert!(try_dropout(&x, 1.5, true, &mut StdRng::seed_from_u64(5)).is_err());
}

#[test]
fn batch_norm_updates_running_stats_with_the_batch_mean_and_unbiased_variance() {
    let g = Graph::<f64>::new();
    // Channel 0 holds 1, 2, 3, 6 over (N = 2, L = 2); channel 1 holds 0, 0, 4, 4.
    let x = g.leaf(Tensor::from_vec(
        [2, 2, 2],
        vec![1.0, 2.0, 0.0, 0.0, 3.0, 6.0, 4.0, 4.0],
    ));
    // momentum 1: the running statistics become the batch's.
    let (mut rm, mut rv) = (Tensor::zeros([2]), Tensor::ones([2]));
    try_batch_norm(
        &x,
        Some(&mut rm),
        Some(&mut rv),
        None,
        None,
        true,
        1.0,
        1e-5,
    )
    .unwrap();
    assert_eq!(rm.data(), &[3.0, 2.0]);
    // Unbiased: Σ(x − μ)²/(n − 1) = (4 + 1 + 0 + 9)/3 and 16/3.
    let var = rv;
    assert!(
        (var.data()[0] - 14.0 / 3.0).abs() < 1e-12 && (var.data()[1] - 16.0 / 3.0).abs() < 1e-12
    );
    // Eval mode uses the given statistics: (x − m)/√(v + ε).
    let (mut m, mut v) = (
        Tensor::from_vec([2], vec![1.0, 0.0]),
        Tensor::from_vec([2], vec![3.0, 1.0]),
    );
    let eval = batch_norm(&x, Some(&mut m), Some(&mut v), None, None, false, 0.1, 0.0);
    assert!((eval.value().data()[4] - 2.0 / 3f64.sqrt()).abs() < 1e-12);
    // Eval mode leaves the statistics alone.
    assert_eq!((m.data(), v.data()), (&[1.0, 0.0][..], &[3.0, 1.0][..]));
}

fn err_of<T>(r: chainrule_tape::error::Result<T>) -> chainrule_tape::Error {
    match r {
        Err(e) => e,
        Ok(_) => panic!("expected an error"),
    }
}

#[test]
fn bad_shapes_indices_and_geometry_are_errors_that_name_the_op() {
    let g = Graph::new();
    let x = g.leaf(Tensor::<f64>::zeros([2, 3]));
    let e = err_of(x.try_gather(1, &Indices::new(vec![2, 1], vec![0, 3]).unwrap()));
    assert_eq!(e.kind, ErrorKind::Argument);
    assert_eq!(
        e.to_string(),
        "gather: index 3 is out of range for dimension 1 (size 3) of [2, 3]"
    );
    let e = err_of(x.try_index_select(0, &Indices::from([2])));
    assert!(
        e.to_string()
            .starts_with("index_select: index 2 is out of range"),
        "{e}"
    );
    let e = err_of(loss::try_cross_entropy(
        &x,
        &Indices::vector(vec![0, 5]),
        &ClassLossOptions::default(),
    ));
    assert_eq!(
        e.to_string(),
        "cross_entropy: target class 5 is out of range for 3 classes"
    );
    let e = err_of(loss::try_cross_entropy(
        &x,
        &Indices::vector(vec![0]),
        &ClassLossOptions::default(),
    ));
    assert_eq!(
        e.to_string(),
        "cross_entropy: 1 targets for 2 rows of logits"
    );
    let e = err_of(try_concat(&[&x, &g.leaf(Tensor::zeros([3, 3]))], 1));
    assert_eq!(
        e.to_string(),
        "concat: [2, 3] and [3, 3] differ outside dimension 1"
    );
    let e = err_of(x.try_slice(1, 2, 5, 1));
    assert!(e.to_string().starts_with("slice: [2, 3]: [2:5:1]"), "{e}");

    let img = g.leaf(Tensor::<f64>::zeros([1, 2, 4, 4]));
    let w = g.leaf(Tensor::zeros([3, 2, 5, 5]));
    let e = err_of(try_conv2d(&img, &w, None, Conv2dOptions::default()));
    assert_eq!(
        e.to_string(),
        "conv2d: kernel (5, 5) (dilation (1, 1)) is larger than the padded input 4x4"
    );
    let w3 = g.leaf(Tensor::zeros([3, 2, 3, 3]));
    let e = err_of(try_conv2d(
        &img,
        &w3,
        None,
        Conv2dOptions::default().stride((0, 1)),
    ));
    assert!(
        e.to_string()
            .starts_with("conv2d: kernel (3, 3), stride (0, 1)"),
        "{e}"
    );
    let w_bad = g.leaf(Tensor::zeros([3, 3, 3, 3]));
    let e = err_of(try_conv2d(&img, &w_bad, None, Conv2dOptions::default()));
    assert_eq!(e.kind, ErrorKind::Shape);
    assert!(
        e.to_string().contains("[1, 2, 4, 4]") && e.to_string().contains("[3, 3, 3, 3]"),
        "{e}"
    );
    let e = err_of(try_max_pool2d(
        &img,
        Window {
            kernel: (2, 2),
            stride: (2, 2),
            padding: (2, 2),
            dilation: (1, 1),
        },
    ));
    assert!(
        e.to_string()
            .starts_with("max_pool2d: padding (2, 2) must be at most half"),
        "{e}"
    );
    let e = err_of(try_avg_pool2d(&x, 2));
    assert_eq!(
        e.to_string(),
        "avg_pool2d: expected [N, C, H, W], got [2, 3]"
    );
    let e = err_of(x.try_pad(&[1, 1, 1], 0.0));
    assert!(e.to_string().starts_with("pad: 3 pad values"), "{e}");
}

#[test]
fn fused_batch_norm_matches_the_composed_formula_on_long_channels() {
    // 9·7 = 63 values per (sample, channel): the eight-lane sums run their
    // main loop and a remainder (the registry's 2×2 planes run only the latter).
    let mut rng = StdRng::seed_from_u64(3);
    let g = Graph::<f64>::new();
    let x = g.leaf(Tensor::randn([4, 3, 9, 7], &mut rng).map(|v| 2.0 * v + 0.5));
    let w = g.leaf(Tensor::randn([3], &mut rng));
    let b = g.leaf(Tensor::randn([3], &mut rng));
    let weights = Var::constant(Tensor::randn([4, 3, 9, 7], &mut rng));
    let eps = 1e-5;
    let fused = batch_norm(&x, None, None, Some(&w), Some(&b), true, 0.1, eps);
    let axes = [0isize, 2, 3];
    let mean = x.try_mean(&axes, true).unwrap();
    let centered = x.try_sub(&mean).unwrap();
    let var = centered
        .try_square()
        .unwrap()
        .try_mean(&axes, true)
        .unwrap();
    let composed = centered
        .try_div(&var.add_scalar(eps).try_sqrt().unwrap())
        .unwrap()
        .try_mul(&w.try_reshape_to(&[1, 3, 1, 1]).unwrap())
        .unwrap()
        .try_add(&b.try_reshape_to(&[1, 3, 1, 1]).unwrap())
        .unwrap();
    // f64, values of order 1 summed over 252 per channel: 1e-12 leaves room
    // for the different summation orders only.
    let diff = fused.value().max_abs_diff(composed.value()).unwrap();
    assert!(diff < 1e-12, "values differ by {diff}");
    let loss = |y: &Var<f64>| y.try_mul(&weights).unwrap().sum_all();
    let fused_grads = grad(&loss(&fused), [&x, &w, &b], false);
    let composed_grads = grad(&loss(&composed), [&x, &w, &b], false);
    for (name, (f, c)) in ["x", "γ", "β"]
        .iter()
        .zip(fused_grads.iter().zip(&composed_grads))
    {
        let diff = f.value().max_abs_diff(c.value()).unwrap();
        assert!(diff < 1e-10, "∂/∂{name} differs by {diff}");
    }
}
