//! Levenberg–Marquardt: one damped step checked by hand, and the lecture
//! notes' claim that it fits a small network far faster than first-order methods.

use chainrule_ops::VarOps;
use chainrule_optim::{Adam, AdamConfig, LevenbergMarquardt, LmConfig, Optimizer};
use chainrule_tape::{Graph, Parameter, Tensor, Var};
use rand::{rngs::StdRng, SeedableRng};

#[test]
fn one_step_solves_the_damped_normal_equations() {
    // e(w) = A·w − b with A = [[1, 2], [3, 4], [5, 6]], b = [1, 2, 2], w₀ = 0:
    // Δw = −(AᵀA + μI)⁻¹Aᵀe₀ with e₀ = −b.
    let a = Tensor::from_vec([3, 2], vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    let b = Tensor::from_vec([3], vec![1.0, 2.0, 2.0]);
    let w = Parameter::new(Tensor::<f64>::zeros([2]));
    let mu = 0.5;
    let mut lm = LevenbergMarquardt::new(
        vec![w.clone()],
        LmConfig {
            mu,
            ..Default::default()
        },
    )
    .unwrap();
    let step = lm
        .step(|p| &Var::constant(a.clone()).matmul(&p[0]) - &Var::constant(b.clone()))
        .unwrap();
    // AᵀA = [[35, 44], [44, 56]], Aᵀb = [17, 22]; solve [[35.5, 44], [44, 56.5]]·Δ = [17, 22].
    let det = 35.5 * 56.5 - 44.0 * 44.0;
    let want = [
        (56.5 * 17.0 - 44.0 * 22.0) / det,
        (35.5 * 22.0 - 44.0 * 17.0) / det,
    ];
    for (g, w) in w.value().data().iter().zip(want) {
        assert!((g - w).abs() < 1e-12, "{g} vs {w}"); // a 2×2 solve in f64: rounding only
    }
    assert_eq!(step.rejected, 0);
    assert!(step.loss_after < step.loss_before && step.loss_before == 4.5);
    assert!((lm.config.mu - mu * 0.1).abs() < 1e-18);
}

/// A 1-16-1 tanh network's outputs on x, as a column.
fn net(p: &[Var<f64>], x: &Tensor<f64>) -> Var<f64> {
    let h = (&Var::constant(x.clone()).matmul(&p[0]) + &p[1]).tanh();
    &h.matmul(&p[2]) + &p[3]
}

fn init(seed: u64) -> Vec<Parameter<f64>> {
    let mut rng = StdRng::seed_from_u64(seed);
    // PyTorch's Linear default U(±1/√fan_in): fan_in 1 for layer 1, 16 for layer 2.
    let u = |shape: &[usize], fan_in: f64, rng: &mut StdRng| {
        Parameter::new(Tensor::rand_uniform(
            shape,
            -1.0 / fan_in.sqrt(),
            1.0 / fan_in.sqrt(),
            rng,
        ))
    };
    vec![
        u(&[1, 16], 1.0, &mut rng),
        u(&[16], 1.0, &mut rng),
        u(&[16, 1], 16.0, &mut rng),
        u(&[1], 16.0, &mut rng),
    ]
}

#[test]
fn lm_fits_a_sine_in_50_steps_better_than_adam_in_2000() {
    let n = 64;
    let xs: Vec<f64> = (0..n)
        .map(|i| -std::f64::consts::PI + 2.0 * std::f64::consts::PI * i as f64 / (n - 1) as f64)
        .collect();
    let x = Tensor::from_vec([n, 1], xs.clone());
    let y = Tensor::from_vec([n, 1], xs.iter().map(|v| v.sin()).collect());
    let mse = |ps: &[Parameter<f64>]| {
        let vals: Vec<Var<f64>> = ps.iter().map(|p| Var::constant(p.value())).collect();
        (&net(&vals, &x) - &Var::constant(y.clone()))
            .square()
            .mean_all()
            .item()
    };

    let lm_params = init(5);
    let start = mse(&lm_params);
    let mut lm = LevenbergMarquardt::new(lm_params.clone(), LmConfig::default()).unwrap();
    for _ in 0..50 {
        if lm
            .step(|p| (&net(p, &x) - &Var::constant(y.clone())).reshape(&[-1]))
            .is_err()
        {
            break; // converged: no decreasing step left
        }
    }
    let lm_mse = mse(&lm_params);

    let adam_params = init(5);
    let mut adam = Adam::new(
        adam_params.clone(),
        AdamConfig {
            lr: 1e-2,
            ..Default::default()
        },
    )
    .unwrap();
    for _ in 0..2000 {
        let g = Graph::new();
        let vars: Vec<Var<f64>> = adam_params.iter().map(|p| g.param(p)).collect();
        (&net(&vars, &x) - &g.input(y.clone()))
            .square()
            .mean_all()
            .backward();
        adam.step().unwrap();
        adam.zero_grad();
    }
    let adam_mse = mse(&adam_params);
    assert!(
        lm_mse < adam_mse,
        "LM 50 steps: {lm_mse:e}; Adam 2000 steps: {adam_mse:e} (from {start:e})"
    );
    assert!(lm_mse < 1e-4, "LM should fit the sine closely: {lm_mse:e}");
    eprintln!(
        "sine fit: start {start:.3e}, LM 50 steps {lm_mse:.3e}, Adam 2000 steps {adam_mse:.3e}"
    );
}
