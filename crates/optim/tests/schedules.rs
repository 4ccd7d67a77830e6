//! Learning-rate schedules match torch.optim.lr_scheduler: the lr and the
//! momentum (or β1 of Adam's betas) of two groups at every step.

use chainrule_optim::{
    Adam, AdamConfig, Anneal, ChainedLr, ConstantLr, CosineAnnealingLr,
    CosineAnnealingWarmRestarts, CyclicLr, CyclicMode, ExponentialLr, Hyper, InverseTimeLr,
    LinearLr, MultiStepLr, MultiplicativeLr, OneCycleLr, Optimizer, PerGroup, PolynomialLr,
    Schedule, Scheduler, SequentialLr, Sgd, SgdConfig, StepLr,
};
use chainrule_tape::{Parameter, Tensor};
use serde_json::Value;

fn fixture() -> Vec<Value> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/fixtures/torch/optim.json"
    );
    serde_json::from_str::<Value>(&std::fs::read_to_string(path).unwrap()).unwrap()["schedules"]
        .as_array()
        .unwrap()
        .clone()
}

fn p() -> Vec<Parameter<f64>> {
    vec![Parameter::new(Tensor::<f64>::zeros([1]))]
}

/// Two groups with initial rates 0.1 and 0.03, as in the fixture: SGD with
/// momentum 0.9, or Adam (β1 0.9) where the fixture says so.
fn two_groups() -> Sgd<f64> {
    let cfg = |lr| SgdConfig {
        lr,
        momentum: 0.9,
        ..Default::default()
    };
    Sgd::with_groups(vec![(p(), cfg(0.1)), (p(), cfg(0.03))]).unwrap()
}

/// Group `g`'s learning rate.
fn lr_of(opt: &dyn Optimizer<f64>, g: usize) -> f64 {
    opt.hyperparameter(g, "lr").unwrap().as_f64().unwrap()
}

fn optimizer_for(case: &Value) -> Box<dyn Optimizer<f64>> {
    if case["optimizer"] == "Adam" {
        let cfg = |lr| AdamConfig {
            lr,
            ..Default::default()
        };
        Box::new(Adam::with_groups(vec![(p(), cfg(0.1)), (p(), cfg(0.03))]).unwrap())
    } else {
        Box::new(two_groups())
    }
}

fn schedule(case: &Value) -> Box<dyn Schedule> {
    let k = &case["kwargs"];
    // Per-group lists (max_lr=[0.5, 0.2]): one schedule per group, built
    // from the kwargs with each list replaced by its group's element.
    let is_list = |key: &String| key != "milestones" && k[key.as_str()].is_array();
    if k.as_object().unwrap().keys().any(is_list) {
        let group_case = |g: usize| {
            let mut c = case.clone();
            for (key, v) in c["kwargs"].as_object_mut().unwrap() {
                if key != "milestones" && v.is_array() {
                    *v = v[g].clone();
                }
            }
            schedule(&c)
        };
        return Box::new(PerGroup(vec![group_case(0), group_case(1)]));
    }
    let f = |key: &str| k[key].as_f64().unwrap();
    let u = |key: &str| k[key].as_u64().unwrap();
    match case["scheduler"].as_str().unwrap() {
        "StepLR" => Box::new(StepLr {
            step_size: u("step_size"),
            gamma: f("gamma"),
        }),
        "MultiStepLR" => Box::new(MultiStepLr {
            milestones: k["milestones"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m.as_u64().unwrap())
                .collect(),
            gamma: f("gamma"),
        }),
        "ExponentialLR" => Box::new(ExponentialLr { gamma: f("gamma") }),
        "InverseTime" => Box::new(InverseTimeLr { decay: f("decay") }),
        "LinearLR" => Box::new(LinearLr {
            start_factor: f("start_factor"),
            end_factor: f("end_factor"),
            total_iters: u("total_iters"),
        }),
        "PolynomialLR" => Box::new(PolynomialLr {
            total_iters: u("total_iters"),
            power: f("power"),
        }),
        "CosineAnnealingLR" => Box::new(CosineAnnealingLr {
            t_max: u("T_max"),
            eta_min: f("eta_min"),
        }),
        "ConstantLR" => Box::new(ConstantLr {
            factor: f("factor"),
            total_iters: u("total_iters"),
        }),
        "CosineAnnealingWarmRestarts" => Box::new(CosineAnnealingWarmRestarts {
            t_0: u("T_0"),
            t_mult: k.get("T_mult").and_then(Value::as_u64).unwrap_or(1),
            eta_min: k.get("eta_min").and_then(Value::as_f64).unwrap_or(0.0),
        }),
        "MultiplicativeLR" => {
            let factor = f("factor");
            Box::new(MultiplicativeLr(move |_| factor))
        }
        "ChainedScheduler" => Box::new(ChainedLr(match k["chain"].as_str().unwrap() {
            "ConstantLR+ExponentialLR" => vec![
                Box::new(ConstantLr {
                    factor: 0.5,
                    total_iters: 8,
                }) as Box<dyn Schedule>,
                Box::new(ExponentialLr { gamma: 0.95 }),
            ],
            _ => vec![
                Box::new(LinearLr {
                    start_factor: 0.1,
                    end_factor: 1.0,
                    total_iters: 5,
                }) as Box<dyn Schedule>,
                Box::new(StepLr {
                    step_size: 10,
                    gamma: 0.5,
                }),
            ],
        })),
        "SequentialLR" => Box::new(SequentialLr {
            schedules: vec![
                Box::new(LinearLr {
                    start_factor: 0.1,
                    end_factor: 1.0,
                    total_iters: u("warmup"),
                }) as Box<dyn Schedule>,
                Box::new(CosineAnnealingLr {
                    t_max: u("T_max"),
                    eta_min: 0.0,
                }),
            ],
            milestones: vec![u("warmup")],
        }),
        "OneCycleLR" => {
            let mut s = OneCycleLr::new(f("max_lr"), u("total_steps"));
            if k.get("anneal_strategy").and_then(Value::as_str) == Some("linear") {
                s.anneal = Anneal::Linear;
            }
            if let Some(pct) = k.get("pct_start").and_then(Value::as_f64) {
                s.pct_start = pct;
            }
            s.three_phase = k
                .get("three_phase")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            Box::new(s)
        }
        "CyclicLR" => {
            let mut s = CyclicLr::new(f("base_lr"), f("max_lr"), u("step_size_up"));
            s.step_size_down = k.get("step_size_down").and_then(Value::as_u64);
            if let Some(m) = k.get("base_momentum").and_then(Value::as_f64) {
                s.base_momentum = m;
            }
            if let Some(m) = k.get("max_momentum").and_then(Value::as_f64) {
                s.max_momentum = m;
            }
            s.mode = match k.get("mode").and_then(Value::as_str) {
                Some("triangular2") => CyclicMode::Triangular2,
                Some("exp_range") => CyclicMode::ExpRange(f("gamma")),
                _ => CyclicMode::Triangular,
            };
            Box::new(s)
        }
        other => panic!("no schedule {other} in this test"),
    }
}

#[test]
fn every_schedule_matches_pytorch_lr_and_momentum_sequences() {
    for case in fixture() {
        let mut opt = optimizer_for(&case);
        // Adam's momentum is β1, the first of its `betas`.
        let adam = case["optimizer"] == "Adam";
        let momentum_key = if adam { "betas" } else { "momentum" };
        let mut sched = Scheduler::new(opt.as_mut(), schedule(&case));
        let lrs = case["lrs"].as_array().unwrap();
        let momenta = case["momenta"].as_array().unwrap();
        assert_eq!(lrs.len(), momenta.len());
        for (t, (want_lr, want_m)) in lrs.iter().zip(momenta).enumerate() {
            if t > 0 {
                sched.step(opt.as_mut());
            }
            for g in 0..2 {
                for (key, want) in [("lr", &want_lr[g]), (momentum_key, &want_m[g])] {
                    let got = match opt.hyperparameter(g, key).unwrap() {
                        Hyper::F64(v) | Hyper::Pair(v, _) => v,
                        Hyper::Bool(_) => unreachable!("lr and momenta are numbers"),
                    };
                    let w = want.as_f64().unwrap();
                    // 1e-12 relative as the issue asks (closed forms here, PyTorch's
                    // recursive forms there: they differ by rounding only).
                    assert!(
                        (got - w).abs() <= 1e-12 * w.abs() + 1e-18,
                        "{} {}: t {t} group {g} {key}: {got} vs torch {w}",
                        case["scheduler"],
                        case["kwargs"]
                    );
                }
            }
        }
    }
}

#[test]
fn a_scheduler_resumes_from_its_state() {
    let mut opt = two_groups();
    let mut sched = Scheduler::new(
        &mut opt,
        CosineAnnealingLr {
            t_max: 10,
            eta_min: 0.0,
        },
    );
    for _ in 0..4 {
        sched.step(&mut opt);
    }
    let saved = sched.state();
    let mut opt2 = two_groups();
    let mut resumed = Scheduler::new(
        &mut opt2,
        CosineAnnealingLr {
            t_max: 10,
            eta_min: 0.0,
        },
    );
    resumed.load_state(&mut opt2, saved).unwrap();
    for _ in 0..3 {
        sched.step(&mut opt);
        resumed.step(&mut opt2);
    }
    assert_eq!(opt.lr(), opt2.lr());
    assert_eq!(sched.last_lr(), resumed.last_lr());
}

#[test]
fn reduce_on_plateau_matches_pytorch() {
    use chainrule_optim::{PlateauConfig, PlateauMode, ReduceLrOnPlateau, ThresholdMode};
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/fixtures/torch/optim.json"
    );
    let fx: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    for case in fx["plateau"].as_array().unwrap() {
        let k = &case["kwargs"];
        let d = PlateauConfig::default();
        let max = k.get("mode").and_then(Value::as_str) == Some("max");
        let config = PlateauConfig {
            mode: if max {
                PlateauMode::Max
            } else {
                PlateauMode::Min
            },
            factor: k.get("factor").and_then(Value::as_f64).unwrap_or(d.factor),
            patience: k
                .get("patience")
                .and_then(Value::as_u64)
                .unwrap_or(d.patience),
            threshold: k
                .get("threshold")
                .and_then(Value::as_f64)
                .unwrap_or(d.threshold),
            threshold_mode: if k.get("threshold_mode").and_then(Value::as_str) == Some("abs") {
                ThresholdMode::Abs
            } else {
                ThresholdMode::Rel
            },
            cooldown: k
                .get("cooldown")
                .and_then(Value::as_u64)
                .unwrap_or(d.cooldown),
            min_lr: k.get("min_lr").and_then(Value::as_f64).unwrap_or(d.min_lr),
            eps: d.eps,
        };
        let mut opt = two_groups();
        let mut sched = ReduceLrOnPlateau::new(&opt, config);
        let mut reductions = 0;
        for (t, (m, want)) in case["metric"]
            .as_array()
            .unwrap()
            .iter()
            .zip(case["lrs"].as_array().unwrap())
            .enumerate()
        {
            let before = opt.lr();
            let m = m.as_f64().unwrap();
            sched.step(&mut opt, if max { -m } else { m });
            reductions += usize::from(opt.lr() < before);
            for g in 0..2 {
                let (got, w) = (lr_of(&opt, g), want[g].as_f64().unwrap());
                // Products of the same factors in the same order: 1e-12 relative.
                assert!(
                    (got - w).abs() <= 1e-12 * w,
                    "{k}: epoch {} group {g}: {got} vs torch {w}",
                    t + 1
                );
            }
        }
        assert!(
            reductions >= 1,
            "{k}: the metric plateaus, so the rate must drop at least once"
        );
    }
}

#[test]
fn reduce_on_plateau_resumes_from_its_state() {
    use chainrule_optim::{PlateauConfig, ReduceLrOnPlateau};
    let config = PlateauConfig {
        patience: 2,
        factor: 0.5,
        cooldown: 2,
        ..Default::default()
    };
    let metric = |t: usize| if t < 5 { 1.0 / (t + 1) as f64 } else { 0.2 };
    let mut opt = two_groups();
    let mut sched = ReduceLrOnPlateau::new(&opt, config);
    for t in 0..20 {
        sched.step(&mut opt, metric(t));
    }
    let mut opt2 = two_groups();
    let mut first = ReduceLrOnPlateau::new(&opt2, config);
    for t in 0..9 {
        first.step(&mut opt2, metric(t));
    }
    let (state, lr) = (first.state(), [lr_of(&opt2, 0), lr_of(&opt2, 1)]);
    let mut opt3 = two_groups();
    let mut resumed = ReduceLrOnPlateau::new(&opt3, config);
    opt3.set_hyperparameter(0, "lr", Hyper::F64(lr[0])).unwrap();
    opt3.set_hyperparameter(1, "lr", Hyper::F64(lr[1])).unwrap();
    resumed.load_state(state);
    for t in 9..20 {
        resumed.step(&mut opt3, metric(t));
    }
    assert!(opt.lr() < 0.1, "the rate dropped");
    assert_eq!(
        (lr_of(&opt, 0), lr_of(&opt, 1)),
        (lr_of(&opt3, 0), lr_of(&opt3, 1))
    );
}
