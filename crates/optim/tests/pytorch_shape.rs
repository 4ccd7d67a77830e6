//! PyTorch's shape where PyTorch has one: `ReduceLrOnPlateau::last_lr`
//! (`get_last_lr()`), L-BFGS's state under PyTorch's keys, and
//! `clip_grad_norm`'s optional arguments as an options struct with
//! PyTorch's defaults.

use chainrule_optim::{
    clip_grad_norm, ClipGradNormOptions, Lbfgs, LbfgsConfig, LbfgsState, PlateauConfig,
    ReduceLrOnPlateau, Sgd, SgdConfig,
};
use chainrule_tape::{Parameter, Tensor};

#[test]
fn reduce_on_plateau_reports_its_last_rates() {
    let p = || vec![Parameter::new(Tensor::<f64>::zeros([1]))];
    let cfg = |lr| SgdConfig {
        lr,
        ..Default::default()
    };
    let mut opt = Sgd::with_groups(vec![(p(), cfg(0.1)), (p(), cfg(0.03))]).unwrap();
    let config = PlateauConfig {
        patience: 1,
        factor: 0.5,
        ..Default::default()
    };
    let mut sched = ReduceLrOnPlateau::new(&opt, config);
    assert_eq!(sched.last_lr(), [0.1, 0.03], "the rates at creation");
    let mut reduced = false;
    for _ in 0..4 {
        sched.step(&mut opt, 1.0);
        let now = [opt.groups()[0].config.lr, opt.groups()[1].config.lr];
        assert_eq!(sched.last_lr(), now);
        reduced |= now[0] < 0.1;
    }
    assert!(reduced, "a constant metric plateaus");
}

/// ∇f of f(x, y) = (x − 1)² + 4(y + 0.5)² + xy.
fn gradient([x, y]: [f64; 2]) -> [f64; 2] {
    [2.0 * (x - 1.0) + y, 8.0 * (y + 0.5) + x]
}

/// f at the parameters' values, with its gradient set on them.
fn quadratic(a: &Parameter<f64>, b: &Parameter<f64>) -> f64 {
    let (x, y) = (a.value().item(), b.value().item());
    let [gx, gy] = gradient([x, y]);
    a.set_grad(Some(Tensor::scalar(gx)));
    b.set_grad(Some(Tensor::scalar(gy)));
    (x - 1.0).powi(2) + 4.0 * (y + 0.5).powi(2) + x * y
}

#[test]
fn lbfgs_state_uses_pytorchs_keys_and_meanings() {
    let (a, b) = (
        Parameter::new(Tensor::scalar(0.0f64)),
        Parameter::new(Tensor::scalar(0.0f64)),
    );
    let config = LbfgsConfig {
        lr: 0.1,
        max_iter: 2,
        // The default, max_iter·5/4 = 2, would stop after one iteration.
        max_eval: Some(10),
        ..Default::default()
    };
    let mut opt = Lbfgs::new(vec![a.clone(), b.clone()], config).unwrap();
    opt.step(|| Ok(quadratic(&a, &b))).unwrap();
    // Iteration 1 from θ0 = 0: d = −g0, t = min(1, 1/‖g0‖₁)·lr, θ1 = t·d;
    // iteration 2 stores the pair (s, y) = (θ1 − θ0, g1 − g0).
    let g0 = gradient([0.0, 0.0]);
    let t1 = (1.0f64).min(1.0 / (g0[0].abs() + g0[1].abs())) * 0.1;
    let s = [-t1 * g0[0], -t1 * g0[1]];
    let g1 = gradient(s);
    let y = [g1[0] - g0[0], g1[1] - g0[1]];
    let LbfgsState {
        d,
        t,
        old_dirs,
        old_stps,
        ro,
        h_diag,
        prev_flat_grad,
        n_iter,
        func_evals,
        ..
    } = opt.state();
    assert_eq!((n_iter, func_evals), (2, 2));
    assert_eq!((old_dirs.len(), old_stps.len(), ro.len()), (1, 1, 1));
    // old_stps holds s = Δθ, old_dirs y = Δg, ro 1/(yᵀs); H_diag = yᵀs/yᵀy.
    let ys = y[0] * s[0] + y[1] * s[1];
    // Differences of values computed in another order: rounding only.
    let close = |u: &[f64], v: &[f64]| u.iter().zip(v).all(|(p, q)| (p - q).abs() < 1e-12);
    assert!(close(&old_stps[0], &s), "{old_stps:?} vs {s:?}");
    assert!(close(&old_dirs[0], &y), "{old_dirs:?} vs {y:?}");
    assert!(close(
        &[ro[0], h_diag],
        &[1.0 / ys, ys / (y[0] * y[0] + y[1] * y[1])]
    ));
    assert!(close(&prev_flat_grad, &g1));
    assert_eq!(d.len(), 2);
    assert_eq!(t, 0.1, "after the first iteration the step is lr");
    // The three history lists must agree in length.
    let mut bad = opt.state();
    bad.ro.push(1.0);
    let e = opt.load_state(bad).unwrap_err();
    assert!(
        e.to_string()
            .contains("1 old_dirs, 1 old_stps and 2 ro; they must be equal"),
        "{e}"
    );
}

#[test]
fn clip_grad_norm_takes_an_options_struct_with_pytorchs_defaults() {
    assert_eq!(
        ClipGradNormOptions::default(),
        ClipGradNormOptions {
            norm_type: 2.0,
            error_if_nonfinite: false,
        }
    );
    let p = Parameter::new(Tensor::<f64>::zeros([2]));
    p.set_grad(Some(Tensor::from_vec([2], vec![3.0, -4.0])));
    let ps = std::slice::from_ref(&p);
    let max = ClipGradNormOptions {
        norm_type: f64::INFINITY,
        ..Default::default()
    };
    assert_eq!(clip_grad_norm(ps, 10.0, max).unwrap(), 4.0);
    assert_eq!(clip_grad_norm(ps, 10.0, Default::default()).unwrap(), 5.0);
}
