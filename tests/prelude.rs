//! `use chainrule::prelude::*` alone reaches every optimizer of `torch.optim`
//! that chainrule has, the schedulers, and clipping (issue 16: the prelude
//! lacked NAdam, RAdam, Rprop, ASGD, L-BFGS and every scheduler).

use chainrule::prelude::*;

/// One parameter at x = 3 with the gradient of f(x) = x², 2x.
fn parameter_with_gradient() -> Parameter<f64> {
    let p = Parameter::new(Tensor::scalar(3.0f64));
    p.set_grad(Some(Tensor::scalar(6.0)));
    p
}

/// Steps `opt` once and returns the parameter's new value.
fn one_step(opt: &mut dyn Optimizer<f64>, p: &Parameter<f64>) -> f64 {
    opt.step().expect("a finite gradient steps");
    p.value().item()
}

#[test]
fn every_elementwise_optimizer_is_in_the_prelude_and_descends() {
    let p = parameter_with_gradient();
    let ps = || vec![p.clone()];
    let mut optimizers: Vec<Box<dyn Optimizer<f64>>> = vec![
        Box::new(Sgd::new(ps(), SgdConfig::default()).unwrap()),
        Box::new(Adam::new(ps(), AdamConfig::default()).unwrap()),
        Box::new(Adagrad::new(ps(), AdagradConfig::default()).unwrap()),
        Box::new(Adadelta::new(ps(), AdadeltaConfig::default()).unwrap()),
        Box::new(Adamax::new(ps(), AdamaxConfig::default()).unwrap()),
        Box::new(Rmsprop::new(ps(), RmspropConfig::default()).unwrap()),
        Box::new(Nadam::new(ps(), NadamConfig::default()).unwrap()),
        Box::new(Radam::new(ps(), RadamConfig::default()).unwrap()),
        Box::new(Rprop::new(ps(), RpropConfig::default()).unwrap()),
        Box::new(Asgd::new(ps(), AsgdConfig::default()).unwrap()),
    ];
    for opt in &mut optimizers {
        p.set_value(Tensor::scalar(3.0));
        p.set_grad(Some(Tensor::scalar(6.0)));
        let after = one_step(opt.as_mut(), &p);
        // Every rule moves against a positive gradient; RAdam's first steps
        // are plain momentum SGD, so all of them move x below 3.
        assert!(after < 3.0, "{} did not descend: {after}", opt.name());
    }
}

#[test]
fn lbfgs_and_its_line_search_are_in_the_prelude() {
    let config = LbfgsConfig {
        line_search_fn: Some(LineSearchFn::StrongWolfe),
        ..Default::default()
    };
    let p = parameter_with_gradient();
    let mut opt = Lbfgs::new(vec![p.clone()], config).unwrap();
    // f(x) = x², its gradient set by the closure as PyTorch's closure does.
    opt.step(|| {
        let x = p.value().item();
        p.set_grad(Some(Tensor::scalar(2.0 * x)));
        Ok(x * x)
    })
    .unwrap();
    // On a quadratic the line search finds the minimum at 0 to rounding.
    assert!(p.value().item().abs() < 1e-6, "{}", p.value().item());
}

#[test]
fn schedulers_and_plateau_are_in_the_prelude() {
    let p = parameter_with_gradient();
    let mut opt = Sgd::new(vec![p], SgdConfig::default()).unwrap();
    let lr0 = opt.groups()[0].config.lr;
    let mut sched = Scheduler::new(
        &mut opt,
        StepLr {
            step_size: 1,
            gamma: 0.5,
        },
    );
    sched.step(&mut opt);
    // StepLR with step 1 halves the rate at every step: η0 · 0.5¹.
    assert_eq!(sched.last_lr(), [lr0 * 0.5]);
    let mut plateau = ReduceLrOnPlateau::new(&opt, PlateauConfig::default());
    plateau.step(&mut opt, 1.0);
    assert_eq!(plateau.last_lr(), [lr0 * 0.5], "one epoch is no plateau");
}

#[test]
fn clipping_is_in_the_prelude_with_pytorchs_defaults() {
    let p = parameter_with_gradient();
    // ‖g‖₂ = 6 > 3: the gradient is scaled to norm 3 (up to PyTorch's
    // 1e-6 in the denominator, hence the tolerance).
    let norm = clip_grad_norm(
        std::slice::from_ref(&p),
        3.0,
        ClipGradNormOptions::default(),
    )
    .unwrap();
    assert_eq!(norm, 6.0);
    assert!((p.grad().unwrap().item() - 3.0).abs() < 1e-5);
}
