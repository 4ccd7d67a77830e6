//! Lion and Lookahead have no PyTorch twin: they are checked against their
//! update rules on hand-computed steps.

use chainrule_optim::{Lion, LionConfig, Lookahead, Optimizer, Sgd, SgdConfig};
use chainrule_tape::{Graph, Parameter, Tensor};

fn close(got: &[f64], want: &[f64]) {
    for (g, w) in got.iter().zip(want) {
        // A few decimal products and sums in f64: rounding only (~1e-16).
        assert!((g - w).abs() < 1e-14, "{got:?} vs {want:?}");
    }
}

#[test]
fn lion_takes_the_sign_of_the_interpolated_momentum() {
    let p = Parameter::new(Tensor::from_vec([3], vec![1.0, -2.0, 0.5]));
    let mut opt = Lion::new(
        vec![p.clone()],
        LionConfig {
            lr: 0.1,
            betas: (0.9, 0.99),
            weight_decay: 0.1,
            maximize: false,
        },
    )
    .unwrap();
    // Step 1: m = 0, c = 0.1·g, θ ← 0.99·θ − 0.1·sign(c), m ← 0.01·g.
    p.set_grad(Some(Tensor::from_vec([3], vec![0.5, -0.3, 0.0])));
    opt.step().unwrap();
    close(p.value().data(), &[0.89, -1.88, 0.495]);
    // Step 2: c = 0.9·m + 0.1·g = [0.0035, −0.0327, 0.02]: the first sign comes
    // from the momentum even though g₁ < 0.
    p.set_grad(Some(Tensor::from_vec([3], vec![-0.01, -0.3, 0.2])));
    opt.step().unwrap();
    close(p.value().data(), &[0.7811, -1.7612, 0.39005]);
    let m = opt.state().params[0].buffers["exp_avg"].to_vec();
    close(&m, &[0.00485, -0.00597, 0.002]);
}

/// Gradient of Σ(θ − target)² at the parameter's current value.
fn set_quadratic_grad(p: &Parameter<f64>, target: &[f64]) {
    let g = Graph::new();
    let d = &g.param(p) - &g.input(Tensor::from_vec([target.len()], target.to_vec()));
    chainrule_ops::VarOps::sum_all(&(&d * &d)).backward();
}

#[test]
fn lookahead_moves_slow_weights_every_k_steps() {
    let target = [3.0, -1.0];
    let theta0 = vec![0.0, 0.0];
    let sgd = SgdConfig {
        lr: 0.1,
        ..Default::default()
    };
    let p = Parameter::new(Tensor::from_vec([2], theta0.clone()));
    let mut opt = Lookahead::new(Sgd::new(vec![p.clone()], sgd).unwrap(), 3, 0.5).unwrap();
    // The same computation by hand: 3 SGD steps, then φ ← φ + ½(θ − φ), θ ← φ.
    let q = Parameter::new(Tensor::from_vec([2], theta0.clone()));
    let mut plain = Sgd::new(vec![q.clone()], sgd).unwrap();
    let mut slow = theta0;
    for step in 1..=7 {
        set_quadratic_grad(&p, &target);
        opt.step().unwrap();
        opt.zero_grad();
        set_quadratic_grad(&q, &target);
        plain.step().unwrap();
        plain.zero_grad();
        if step % 3 == 0 {
            for (s, f) in slow.iter_mut().zip(q.value().data()) {
                *s += 0.5 * (f - *s);
            }
            q.set_value(Tensor::from_vec([2], slow.clone()));
        }
        assert_eq!(p.value().data(), q.value().data(), "step {step}");
    }
    assert_eq!(opt.name(), "Lookahead(SGD)");
}

#[test]
fn lookahead_resumes_bit_identically() {
    let target = [3.0, -1.0];
    let make = |p: &Parameter<f64>| {
        Lookahead::new(
            Sgd::new(
                vec![p.clone()],
                SgdConfig {
                    lr: 0.1,
                    momentum: 0.9,
                    ..Default::default()
                },
            )
            .unwrap(),
            4,
            0.5,
        )
        .unwrap()
    };
    let run = |opt: &mut Lookahead<f64, Sgd<f64>>, p: &Parameter<f64>, n: usize| {
        for _ in 0..n {
            set_quadratic_grad(p, &target);
            opt.step().unwrap();
            opt.zero_grad();
        }
    };
    let a = Parameter::new(Tensor::from_vec([2], vec![0.0, 0.0]));
    let mut full = make(&a);
    run(&mut full, &a, 11);
    let b = Parameter::new(Tensor::from_vec([2], vec![0.0, 0.0]));
    let mut first = make(&b);
    run(&mut first, &b, 6);
    let (state, value) = (first.state(), b.value());
    let c = Parameter::new(value);
    let mut resumed = make(&c);
    resumed.load_state(state).unwrap();
    run(&mut resumed, &c, 5);
    assert_eq!(a.value().data(), c.value().data());
}
