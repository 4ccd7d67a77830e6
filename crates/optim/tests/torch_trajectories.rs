//! Every optimizer configuration follows PyTorch's trajectory step for step
//! (float64 fixtures from tools/torch_reference/make_optim_fixtures.py), and
//! resuming from a saved state is bit-identical to not stopping.

use chainrule_ops::VarOps;
use chainrule_optim::{
    Adadelta, AdadeltaConfig, Adagrad, AdagradConfig, Adam, AdamConfig, Adamax, AdamaxConfig, Asgd,
    AsgdConfig, Hyper, LineSearchFn, Nadam, NadamConfig, Optimizer, OptimizerConfig, Radam,
    RadamConfig, Rmsprop, RmspropConfig, Rprop, RpropConfig, Sgd, SgdConfig,
};
use chainrule_tape::{Graph, Parameter, Tensor, Var};
use serde::Deserialize;
use serde_json::Value;

#[derive(Deserialize)]
struct Fixture {
    a0: Vec<f64>,
    b0: Vec<Vec<f64>>,
    runs: Vec<Run>,
}

#[derive(Deserialize)]
struct Run {
    optimizer: String,
    config: Value,
    trajectory: Vec<[Vec<f64>; 2]>,
    averaged: Option<Vec<Vec<f64>>>,
}

fn load() -> Fixture {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/fixtures/torch/optim.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The fixture's loss: Σ(1−a)² + 2Σ(b−a)² + ½Σsin(3b) + 0.1Σa⁴.
fn loss(a: &Var<f64>, b: &Var<f64>) -> Var<f64> {
    let t1 = a.rsub_scalar(1.0).square().sum_all();
    let t2 = (b - a).square().sum_all() * 2.0;
    let t3 = (b * 3.0).sin().sum_all() * 0.5;
    let t4 = a.powf(4.0).sum_all() * 0.1;
    &(&(&t1 + &t2) + &t3) + &t4
}

fn num(c: &Value, key: &str, default: f64) -> f64 {
    c.get(key).and_then(Value::as_f64).unwrap_or(default)
}

fn flag(c: &Value, key: &str) -> bool {
    c.get(key).and_then(Value::as_bool).unwrap_or(false)
}

/// `base` with the fixture's PyTorch keyword arguments set by name: every
/// keyword is a chainrule hyperparameter of the same name and kind (a
/// JSON list is a pair), so no field is listed here.
fn config<C: OptimizerConfig>(base: C, c: &Value) -> C {
    let mut cfg = base;
    for (k, v) in c.as_object().unwrap() {
        if k == "split_lr_b" {
            continue;
        }
        let h = match v {
            Value::Bool(b) => Hyper::Bool(*b),
            Value::Array(p) => Hyper::Pair(p[0].as_f64().unwrap(), p[1].as_f64().unwrap()),
            v => Hyper::F64(v.as_f64().unwrap()),
        };
        cfg.assign(k, h).unwrap_or_else(|e| panic!("{e}"));
    }
    cfg.validate().unwrap();
    cfg
}

fn optimizer(run: &Run, a: &Parameter<f64>, b: &Parameter<f64>) -> Box<dyn Optimizer<f64>> {
    let c = &run.config;
    let ps = vec![a.clone(), b.clone()];
    match run.optimizer.as_str() {
        "SGD" => {
            let cfg = config(SgdConfig::default(), c);
            let groups = match c.get("split_lr_b").and_then(Value::as_f64) {
                Some(lr_b) => vec![
                    (vec![a.clone()], cfg),
                    (vec![b.clone()], SgdConfig { lr: lr_b, ..cfg }),
                ],
                None => vec![(ps, cfg)],
            };
            Box::new(Sgd::with_groups(groups).unwrap())
        }
        "Adam" => Box::new(Adam::new(ps, config(AdamConfig::default(), c)).unwrap()),
        "AdamW" => Box::new(Adam::new(ps, config(AdamConfig::adamw(), c)).unwrap()),
        "Adagrad" => Box::new(Adagrad::new(ps, config(AdagradConfig::default(), c)).unwrap()),
        "RMSprop" => Box::new(Rmsprop::new(ps, config(RmspropConfig::default(), c)).unwrap()),
        "Adadelta" => Box::new(Adadelta::new(ps, config(AdadeltaConfig::default(), c)).unwrap()),
        "Adamax" => Box::new(Adamax::new(ps, config(AdamaxConfig::default(), c)).unwrap()),
        "NAdam" => Box::new(Nadam::new(ps, config(NadamConfig::default(), c)).unwrap()),
        "RAdam" => Box::new(Radam::new(ps, config(RadamConfig::default(), c)).unwrap()),
        "Rprop" => Box::new(Rprop::new(ps, config(RpropConfig::default(), c)).unwrap()),
        "ASGD" => Box::new(Asgd::new(ps, config(AsgdConfig::default(), c)).unwrap()),
        other => panic!("no optimizer {other} in this test"),
    }
}

fn params(fx: &Fixture) -> (Parameter<f64>, Parameter<f64>) {
    (
        Parameter::new(Tensor::from_vec([3], fx.a0.clone())),
        Parameter::new(Tensor::from_vec([2, 3], fx.b0.concat())),
    )
}

fn step(opt: &mut dyn Optimizer<f64>, a: &Parameter<f64>, b: &Parameter<f64>, maximize: bool) {
    let g = Graph::new();
    let l = loss(&g.param(a), &g.param(b));
    // Maximizing −L follows the same path as minimizing L; the fixture does the same.
    let l = if maximize { l.neg() } else { l };
    l.backward();
    opt.step().unwrap();
    opt.zero_grad();
}

#[test]
fn every_optimizer_matches_pytorch_step_for_step() {
    let fx = load();
    for run in &fx.runs {
        let (a, b) = params(&fx);
        let mut opt = optimizer(run, &a, &b);
        for (t, want) in run.trajectory.iter().enumerate() {
            step(opt.as_mut(), &a, &b, flag(&run.config, "maximize"));
            for (got, want) in [a.value(), b.value()].iter().zip(want) {
                for (g, w) in got.data().iter().zip(want) {
                    // 1e-10 relative (the bound) with a 1e-14 floor near zero;
                    // the same f64 formulas in the same order differ only by rounding.
                    assert!(
                        (g - w).abs() <= 1e-10 * w.abs() + 1e-14,
                        "{} {}: step {}: {g} vs torch {w}",
                        run.optimizer,
                        run.config,
                        t + 1
                    );
                }
            }
        }
    }
}

#[test]
fn asgd_averages_match_pytorch() {
    let fx = load();
    for run in fx.runs.iter().filter(|r| r.optimizer == "ASGD") {
        let (a, b) = params(&fx);
        let c = &run.config;
        let cfg = config(AsgdConfig::default(), c);
        let mut opt = Asgd::new(vec![a.clone(), b.clone()], cfg).unwrap();
        for _ in 0..run.trajectory.len() {
            step(&mut opt, &a, &b, false);
        }
        let want = run
            .averaged
            .as_ref()
            .expect("ASGD fixtures record the averages");
        for (i, want) in want.iter().enumerate() {
            for (g, w) in opt.averaged(i).unwrap().data().iter().zip(want) {
                // Same tolerance as the trajectories: 1e-10 relative, 1e-14 floor.
                assert!(
                    (g - w).abs() <= 1e-10 * w.abs() + 1e-14,
                    "{c}: averaged {i}: {g} vs torch {w}"
                );
            }
        }
    }
}

#[test]
fn resuming_from_a_saved_state_is_bit_identical() {
    let fx = load();
    for run in &fx.runs {
        let maximize = flag(&run.config, "maximize");
        let (a, b) = params(&fx);
        let mut opt = optimizer(run, &a, &b);
        for _ in 0..30 {
            step(opt.as_mut(), &a, &b, maximize);
        }
        // Stop after 12 steps, "restart" with fresh parameters and optimizer, resume.
        let (a2, b2) = params(&fx);
        let mut first = optimizer(run, &a2, &b2);
        for _ in 0..12 {
            step(first.as_mut(), &a2, &b2, maximize);
        }
        let saved = (first.state(), a2.value(), b2.value());
        drop(first);
        let (a3, b3) = (Parameter::new(saved.1), Parameter::new(saved.2));
        let mut resumed = optimizer(run, &a3, &b3);
        resumed.load_state(saved.0).unwrap();
        for _ in 12..30 {
            step(resumed.as_mut(), &a3, &b3, maximize);
        }
        assert!(
            a3.value() == a.value() && b3.value() == b.value(),
            "{} {}",
            run.optimizer,
            run.config
        );
    }
}

#[test]
fn hyperparameters_are_readable_and_settable_by_name() {
    let p = Parameter::new(Tensor::<f64>::zeros([2]));
    let mut opt = Adam::new(vec![p.clone()], AdamConfig::default()).unwrap();
    assert_eq!(
        opt.hyperparameter(0, "betas").unwrap(),
        Hyper::Pair(0.9, 0.999)
    );
    opt.set_hyperparameter(0, "betas", Hyper::Pair(0.85, 0.999))
        .unwrap();
    assert_eq!(opt.groups()[0].config.betas, (0.85, 0.999));
    opt.set_lr(0.5).unwrap();
    assert_eq!(opt.lr(), 0.5);
    let e = opt
        .set_hyperparameter(0, "momentum", Hyper::F64(0.9))
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "Adam: unknown hyperparameter 'momentum' (Adam has: lr, betas, eps, weight_decay, \
         amsgrad, maximize, decoupled_weight_decay)"
    );
    assert_eq!(
        opt.hyperparameter(3, "lr").unwrap_err().to_string(),
        "Adam: there is no parameter group 3"
    );
}

#[test]
fn invalid_settings_and_mismatched_states_are_errors() {
    let p = Parameter::new(Tensor::<f64>::zeros([2]));
    let e = Sgd::new(
        vec![p.clone()],
        SgdConfig {
            nesterov: true,
            ..Default::default()
        },
    )
    .err()
    .unwrap();
    assert_eq!(
        e.to_string(),
        "SGD: Nesterov momentum requires a momentum and zero dampening"
    );
    let e = Adam::new(
        vec![p.clone()],
        AdamConfig {
            betas: (0.9, 1.0),
            ..Default::default()
        },
    )
    .err()
    .unwrap();
    assert_eq!(
        e.to_string(),
        "Adam: invalid betas (0.9, 1.0): both must lie in [0, 1)"
    );
    let adam = Adam::new(vec![p.clone()], AdamConfig::default()).unwrap();
    let mut sgd = Sgd::new(vec![p.clone()], SgdConfig::default()).unwrap();
    assert_eq!(
        sgd.load_state(adam.state()).unwrap_err().to_string(),
        "SGD: cannot load a Adam state"
    );
    let mut two = Sgd::new(vec![p.clone(), p], SgdConfig::default()).unwrap();
    assert!(two
        .load_state(sgd.state())
        .unwrap_err()
        .to_string()
        .contains("state has 1 groups and 1 parameters"));
}

#[test]
fn lbfgs_matches_pytorch_step_for_step() {
    use chainrule_optim::{Lbfgs, LbfgsConfig};
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/fixtures/torch/optim.json"
    );
    let fx: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let base = load();
    for case in fx["lbfgs"].as_array().unwrap() {
        let c = &case["config"];
        let (a, b) = params(&base);
        let config = LbfgsConfig {
            lr: num(c, "lr", 1.0),
            max_iter: c["max_iter"].as_u64().unwrap() as usize,
            history_size: c["history_size"].as_u64().unwrap() as usize,
            line_search_fn: (c.get("line_search_fn").and_then(Value::as_str)
                == Some("strong_wolfe"))
            .then_some(LineSearchFn::StrongWolfe),
            ..Default::default()
        };
        let mut opt = Lbfgs::new(vec![a.clone(), b.clone()], config).unwrap();
        let closure = || {
            a.zero_grad();
            b.zero_grad();
            let g = Graph::new();
            let l = loss(&g.param(&a), &g.param(&b));
            l.backward();
            Ok(l.item())
        };
        for (call, (want, want_loss)) in case["trajectory"]
            .as_array()
            .unwrap()
            .iter()
            .zip(case["losses"].as_array().unwrap())
            .enumerate()
        {
            let got_loss = opt.step(closure).unwrap();
            let wl = want_loss.as_f64().unwrap();
            assert!(
                (got_loss - wl).abs() <= 1e-10 * wl.abs(),
                "{c}: call {call}: loss {got_loss} vs {wl}"
            );
            for (got, want) in [a.value(), b.value()].iter().zip(want.as_array().unwrap()) {
                for (g, w) in got.data().iter().zip(want.as_array().unwrap()) {
                    let w = w.as_f64().unwrap();
                    // Up to 20 iterations of dot products summed in another
                    // order than torch's: 1e-10 relative with a 1e-13 floor.
                    assert!(
                        (g - w).abs() <= 1e-10 * w.abs() + 1e-13,
                        "{c}: call {call}: {g} vs torch {w}"
                    );
                }
            }
        }
    }
}

#[test]
fn lbfgs_resumes_bit_identically_from_its_state() {
    use chainrule_optim::{Lbfgs, LbfgsConfig};
    let base = load();
    for line_search_fn in [None, Some(LineSearchFn::StrongWolfe)] {
        let config = LbfgsConfig {
            lr: 0.8,
            max_iter: 3,
            history_size: 4,
            line_search_fn,
            ..Default::default()
        };
        let run = |a: &Parameter<f64>, b: &Parameter<f64>, opt: &mut Lbfgs<f64>, calls: usize| {
            for _ in 0..calls {
                opt.step(|| {
                    a.zero_grad();
                    b.zero_grad();
                    let g = Graph::new();
                    let l = loss(&g.param(a), &g.param(b));
                    l.backward();
                    Ok(l.item())
                })
                .unwrap();
            }
        };
        let (a, b) = params(&base);
        let mut opt = Lbfgs::new(vec![a.clone(), b.clone()], config).unwrap();
        run(&a, &b, &mut opt, 2);
        let (saved, saved_a, saved_b) = (opt.state(), a.value(), b.value());
        run(&a, &b, &mut opt, 3);

        let (a2, b2) = params(&base);
        let (saved_a2, saved_b2) = (saved_a.clone(), saved_b.clone());
        a2.set_value(saved_a);
        b2.set_value(saved_b);
        let mut resumed = Lbfgs::new(vec![a2.clone(), b2.clone()], config).unwrap();
        resumed.load_state(saved).unwrap();
        run(&a2, &b2, &mut resumed, 3);
        assert_eq!(
            a.value().data(),
            a2.value().data(),
            "line search {line_search_fn:?}"
        );
        assert_eq!(
            b.value().data(),
            b2.value().data(),
            "line search {line_search_fn:?}"
        );
        // Restarting from the saved point without the state (no curvature
        // history) goes elsewhere: the equality above is not vacuous.
        let (a3, b3) = params(&base);
        a3.set_value(saved_a2);
        b3.set_value(saved_b2);
        let mut fresh = Lbfgs::new(vec![a3.clone(), b3.clone()], config).unwrap();
        run(&a3, &b3, &mut fresh, 3);
        assert_ne!(
            a.value().data(),
            a3.value().data(),
            "line search {line_search_fn:?}"
        );
    }
}
