//! Modules: names, train/eval reaching every submodule, summary, PyTorch's
//! default initialisation bounds, regularizers, and gradients through a
//! whole model checked by finite differences.

use chainrule_nn::regularize::{l1_penalty, l2_penalty, max_norm, Scope};
use chainrule_nn::*;
use chainrule_ops::VarOps;
use chainrule_tape::{gradcheck, Graph, Parameter, Tensor, Var};
use rand::rngs::StdRng;
use rand::SeedableRng;

fn rng() -> StdRng {
    StdRng::seed_from_u64(5)
}

#[test]
fn default_initialisation_is_pytorchs_bound() {
    let mut r = rng();
    let lin = Linear::<f64>::new(300, 200, &mut r);
    let conv = Conv2d::<f64>::new(
        8,
        16,
        3,
        ConvOptions {
            groups: 2,
            ..Default::default()
        },
        &mut r,
    );
    // U(±1/√fan_in): fan_in 300 for the linear layer, 4·3·3 = 36 for the grouped conv.
    for (p, fan_in) in [
        (&lin.weight, 300.0),
        (lin.bias.as_ref().unwrap(), 300.0),
        (&conv.weight, 36.0),
        (conv.bias.as_ref().unwrap(), 36.0),
    ] {
        let bound = 1.0 / f64::sqrt(fan_in);
        let v = p.value();
        let max = v.data().iter().fold(0.0f64, |m, x| m.max(x.abs()));
        assert!(max <= bound, "{max} > {bound}");
        // U(±b) has variance b²/3; 60,000 weights put the sample within 5%.
        if v.numel() > 1000 {
            let var = v.data().iter().map(|x| x * x).sum::<f64>() / v.numel() as f64;
            assert!((var / (bound * bound / 3.0) - 1.0).abs() < 0.05, "{var}");
        }
    }
}

#[test]
fn names_modes_and_summary() {
    let mut r = rng();
    let inner = Sequential::<f32>::new()
        .push(Linear::new(4, 4, &mut r))
        .push(Dropout::new(0.5, 1));
    let mut model = Sequential::new()
        .push(Conv2d::new(
            1,
            2,
            3,
            ConvOptions {
                padding: 1,
                ..Default::default()
            },
            &mut r,
        ))
        .push(BatchNorm::new_2d(2, BatchNormOptions::default()))
        .push(Flatten)
        .push(Linear::new(2 * 2 * 2, 4, &mut r))
        .push(inner);
    let names: Vec<String> = model
        .named_parameters()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(
        names,
        [
            "0.weight",
            "0.bias",
            "1.weight",
            "1.bias",
            "3.weight",
            "3.bias",
            "4.0.weight",
            "4.0.bias"
        ]
    );
    let buffers: Vec<String> = model.named_buffers().into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        buffers,
        ["1.running_mean", "1.running_var", "1.num_batches_tracked"]
    );
    assert_eq!(
        model.num_parameters(),
        2 * 9 + 2 + 2 + 2 + 8 * 4 + 4 + 16 + 4
    );

    // eval() reaches the dropout inside the inner Sequential: outputs repeat exactly.
    let x = Tensor::<f32>::randn([3, 1, 2, 2], &mut r);
    let run = |m: &Sequential<f32>| {
        let g = Graph::new();
        m.forward(&g, &g.input(x.clone())).value().to_vec()
    };
    model.eval();
    assert_eq!(run(&model), run(&model));
    model.train();
    assert_ne!(
        run(&model),
        run(&model),
        "dropout is active again in training mode"
    );

    let s = model.summary(&[3, 1, 2, 2]).unwrap();
    let lines: Vec<&str> = s.lines().collect();
    assert!(
        lines[1].starts_with("0: Conv2d(1, 2, kernel_size=(3, 3)")
            && lines[1].contains("[3, 2, 2, 2]")
            && lines[1].trim_end().ends_with("20"),
        "{s}"
    );
    assert!(
        lines[5].starts_with("4.0: Linear(4, 4)") && lines[5].contains("[3, 4]"),
        "{s}"
    );
    assert!(
        s.ends_with(&format!("total parameters: {}\n", model.num_parameters())),
        "{s}"
    );
}

/// A custom module: a loop applying one shared layer three times, with a
/// branch on the input's sign (define-by-run).
struct Recurrent {
    cell: Linear<f64>,
    out: Linear<f64>,
}

impl Module<f64> for Recurrent {
    fn try_forward(&self, g: &Graph<f64>, x: &Var<f64>) -> chainrule_tape::error::Result<Var<f64>> {
        let mut h = x.clone();
        for _ in 0..3 {
            h = self.cell.try_forward(g, &h)?.try_tanh()?;
        }
        let y = self.out.try_forward(g, &h)?;
        if x.value().data()[0] > 0.0 {
            Ok(y)
        } else {
            Ok(y.neg())
        }
    }
    fn visit_parameters(&self, prefix: &str, f: &mut dyn FnMut(String, &Parameter<f64>)) {
        self.cell.visit_parameters(&join(prefix, "cell"), f);
        self.out.visit_parameters(&join(prefix, "out"), f);
    }
    fn describe(&self) -> String {
        "Recurrent".into()
    }
}

#[test]
fn gradients_through_a_custom_module_with_shared_weights_pass_gradcheck() {
    let mut r = rng();
    let m = Recurrent {
        cell: Linear::new(3, 3, &mut r),
        out: Linear::new(3, 2, &mut r),
    };
    assert_eq!(m.named_parameters().len(), 4);
    let x = Tensor::from_vec([2, 3], vec![0.3, -0.2, 0.5, 0.1, 0.4, -0.6]);
    // With respect to the input: gradcheck (f64, PyTorch's tolerances).
    let report = gradcheck(
        |v| {
            let g = v[0].graph().expect("gradcheck's inputs are leaves");
            m.forward(&g, &v[0]).sum_all()
        },
        std::slice::from_ref(&x),
    );
    assert!(report.passed(), "{report}");
    let w0 = m.cell.weight.value();
    // Analytic gradient of the cell weight through all three uses vs central differences.
    let loss = |w: &Tensor<f64>| {
        m.cell.weight.set_value(w.clone());
        let g = Graph::new();
        m.forward(&g, &g.input(x.clone())).sum_all().item()
    };
    m.cell.weight.set_value(w0.clone());
    m.cell.weight.zero_grad();
    let g = Graph::new();
    m.forward(&g, &g.input(x.clone())).sum_all().backward();
    let analytic = m.cell.weight.grad().unwrap();
    for k in 0..w0.numel() {
        let h = 1e-6;
        let mut plus = w0.to_vec();
        plus[k] += h;
        let mut minus = w0.to_vec();
        minus[k] -= h;
        let numeric = (loss(&Tensor::from_vec([3, 3], plus))
            - loss(&Tensor::from_vec([3, 3], minus)))
            / (2.0 * h);
        // Central differences in f64 with h = 1e-6: error ~1e-10.
        assert!(
            (numeric - analytic.data()[k]).abs() < 1e-8,
            "weight {k}: {numeric} vs {}",
            analytic.data()[k]
        );
    }
}

#[test]
fn penalties_and_max_norm() {
    let mut r = rng();
    let model = Sequential::<f64>::new()
        .push(Linear::new(2, 2, &mut r))
        .push(BatchNorm::new_1d(2, BatchNormOptions::default()));
    let w = &model.named_parameters()[0].1;
    w.set_value(Tensor::from_vec([2, 2], vec![1.0, -2.0, 3.0, -4.0]));
    let g = Graph::new();
    assert_eq!(
        l1_penalty(&g, &model, Scope::WeightsOnly).unwrap().item(),
        10.0
    );
    assert_eq!(
        l2_penalty(&g, &model, Scope::WeightsOnly).unwrap().item(),
        30.0
    );
    // All: adds the bias (2 values) and BatchNorm's γ = 1, β = 0.
    let b: f64 = model.named_parameters()[1]
        .1
        .value()
        .data()
        .iter()
        .map(|v| v * v)
        .sum();
    assert!((l2_penalty(&g, &model, Scope::All).unwrap().item() - (30.0 + b + 2.0)).abs() < 1e-12);
    let l1 = l1_penalty(&g, &model, Scope::WeightsOnly).unwrap();
    l1.backward();
    assert_eq!(w.grad().unwrap().data(), &[1.0, -1.0, 1.0, -1.0]);
    // Rows of norm √5 and 5: capped at 2.5, only the second is rescaled.
    assert_eq!(max_norm(w, 2.5), 1);
    let v = w.value();
    assert_eq!(&v.data()[..2], &[1.0, -2.0]);
    assert!(((v.data()[2].powi(2) + v.data()[3].powi(2)).sqrt() - 2.5).abs() < 1e-6);
}

/// The message of a panic raised by `f`.
fn panic_message(f: impl FnOnce() + std::panic::UnwindSafe) -> String {
    let payload = std::panic::catch_unwind(f).expect_err("should panic");
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

#[test]
fn dropout_accepts_pytorchs_range_and_names_p_otherwise() {
    for p in [0.0, 0.5, 1.0] {
        assert_eq!(Dropout::try_new(p, 0).unwrap().p, p);
    }
    for p in [-0.5, 2.0, f64::NAN, f64::INFINITY] {
        let e = Dropout::try_new(p, 0).err().expect("rejected");
        assert_eq!(e.kind, chainrule_tape::ErrorKind::Argument);
        assert_eq!(
            e.to_string(),
            format!("Dropout: p must be in [0, 1], got {p}")
        );
    }
    let m = panic_message(|| {
        Dropout::new(2.0, 0);
    });
    assert_eq!(m, "Dropout: p must be in [0, 1], got 2");
}

#[test]
fn batch_norm_rejects_zero_channels_bad_eps_and_momentum() {
    let o = BatchNormOptions::default();
    assert!(BatchNorm::<f32>::try_new_2d(3, o).is_ok());
    let cases = [
        (0, o, "num_features must be at least 1, got 0"),
        (
            3,
            BatchNormOptions { eps: 0.0, ..o },
            "eps must be finite and > 0, got 0",
        ),
        (
            3,
            BatchNormOptions { eps: f64::NAN, ..o },
            "eps must be finite and > 0, got NaN",
        ),
        (
            3,
            BatchNormOptions {
                momentum: Some(-0.1),
                ..o
            },
            "momentum must be in [0, 1], got -0.1",
        ),
        (
            3,
            BatchNormOptions {
                momentum: Some(f64::NAN),
                ..o
            },
            "momentum must be in [0, 1], got NaN",
        ),
    ];
    for (channels, options, want) in cases {
        let e = BatchNorm::<f32>::try_new_1d(channels, options)
            .err()
            .expect(want);
        assert_eq!(e.to_string(), format!("BatchNorm1d: {want}"));
        let e = BatchNorm::<f32>::try_new_2d(channels, options)
            .err()
            .expect(want);
        assert_eq!(e.to_string(), format!("BatchNorm2d: {want}"));
    }
    // A cumulative average (no momentum) is valid.
    let cumulative = BatchNormOptions {
        momentum: None,
        ..o
    };
    assert!(BatchNorm::<f32>::try_new_1d(3, cumulative).is_ok());
    let m = panic_message(|| {
        BatchNorm::<f32>::new_2d(0, o);
    });
    assert_eq!(m, "BatchNorm2d: num_features must be at least 1, got 0");
}

#[test]
fn convolutions_reject_bad_groups_and_zero_sizes_with_an_error() {
    let mut r = rng();
    let o = ConvOptions::default();
    let groups3 = ConvOptions { groups: 3, ..o };
    let e = Conv2d::<f32>::try_new(4, 6, 3, groups3, &mut r)
        .err()
        .unwrap();
    assert_eq!(
        e.to_string(),
        "Conv2d: channels (4 in, 6 out) must divide into 3 groups"
    );
    for (options, kernel, name) in [
        (ConvOptions { groups: 0, ..o }, 3, "groups"),
        (ConvOptions { stride: 0, ..o }, 3, "stride"),
        (ConvOptions { dilation: 0, ..o }, 3, "dilation"),
        (o, 0, "kernel_size"),
    ] {
        let want = format!("{name} must be at least 1, got 0");
        let e = Conv2d::<f32>::try_new(2, 2, kernel, options, &mut r)
            .err()
            .unwrap();
        assert_eq!(e.to_string(), format!("Conv2d: {want}"));
        let e = Conv1d::<f32>::try_new(2, 2, kernel, options, &mut r)
            .err()
            .unwrap();
        assert_eq!(e.to_string(), format!("Conv1d: {want}"));
        let e = ConvTranspose2d::<f32>::try_new(2, 2, kernel, options, &mut r)
            .err()
            .unwrap();
        assert_eq!(e.to_string(), format!("ConvTranspose2d: {want}"));
    }
    let m = panic_message(|| {
        Conv1d::<f32>::new(4, 6, 3, groups3, &mut rng());
    });
    assert_eq!(
        m,
        "Conv1d: channels (4 in, 6 out) must divide into 3 groups"
    );
}

#[test]
fn a_linear_layer_without_inputs_gets_a_zero_bias_as_in_pytorch() {
    // PyTorch: bound = 1/√fan_in if fan_in > 0 else 0. U(±∞) panicked here.
    let lin = Linear::<f64>::new(0, 3, &mut rng());
    assert_eq!(lin.weight.shape(), vec![3, 0]);
    assert_eq!(lin.bias.unwrap().value().data(), &[0.0, 0.0, 0.0]);
}

#[test]
fn initializers_reject_bounds_pytorch_rejects() {
    use chainrule_nn::init::{try_normal, try_uniform, xavier_uniform};
    let p = Parameter::new(Tensor::<f64>::zeros([2, 3]));
    let mut r = rng();
    let e = try_uniform(&p, 1.0, -1.0, &mut r).unwrap_err();
    assert_eq!(
        e.to_string(),
        "uniform: needs finite bounds a ≤ b with b − a finite, got a = 1, b = -1"
    );
    assert!(try_uniform(&p, 0.0, f64::INFINITY, &mut r).is_err());
    let e = try_normal(&p, 0.0, -1.0, &mut r).unwrap_err();
    assert!(e.to_string().contains("std = -1"), "{e}");
    assert!(try_normal(&p, f64::NAN, 1.0, &mut r).is_err());
    assert_eq!(p.value().data(), &[0.0; 6], "nothing written on error");
    // a = b fills with a, as torch.nn.init.uniform_(w, 2, 2).
    try_uniform(&p, 2.0, 2.0, &mut r).unwrap();
    assert_eq!(p.value().data(), &[2.0; 6]);
    // A NaN gain is an error, not a panic inside the RNG.
    assert!(xavier_uniform(&p, f64::NAN, &mut r).is_err());
    let m = panic_message(|| init::uniform(&p, 1.0, 0.0, &mut rng()));
    assert!(m.starts_with("uniform: needs finite bounds"), "{m}");
}

#[test]
fn max_norm_rejects_a_negative_or_nan_limit() {
    use chainrule_nn::regularize::try_max_norm;
    let w = Parameter::new(Tensor::from_vec([1, 2], vec![3.0f64, 4.0]));
    for bad in [-1.0, f64::NAN] {
        let e = try_max_norm(&w, bad).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("max_norm: max_norm must be ≥ 0, got {bad}")
        );
    }
    assert_eq!(w.value().data(), &[3.0, 4.0]);
    assert_eq!(try_max_norm(&w, 10.0).unwrap(), 0);
    let m = panic_message(|| {
        max_norm(&w, -1.0);
    });
    assert_eq!(m, "max_norm: max_norm must be ≥ 0, got -1");
}

/// Found in review: finite bounds whose difference overflows (the sampler
/// panicked on an infinite range) and kernels whose weight cannot exist.
#[test]
fn an_unsampleable_range_and_an_unallocatable_kernel_are_errors() {
    let p = Parameter::new(Tensor::<f64>::zeros([3]));
    let mut rng = StdRng::seed_from_u64(0);
    let e = chainrule_nn::init::try_uniform(&p, -1e308, 1e308, &mut rng).unwrap_err();
    assert!(e.to_string().contains("b − a finite"), "{e}");
    let o = ConvOptions::default();
    for k in [1 << 32, 1 << 26] {
        match Conv2d::<f32>::try_new(1, 1, k, o, &mut rng) {
            Ok(_) => panic!("a {k}x{k} kernel was allocated"),
            Err(e) => assert_eq!(e.kind, chainrule_tape::ErrorKind::Overflow, "{e}"),
        }
    }
}
