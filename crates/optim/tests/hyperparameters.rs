//! Hyperparameters are declared once per optimizer: typed config fields,
//! the same fields by name as a `Hyper` (bools are bools, pairs are
//! pairs), errors that name the optimizer and the key, validation on every
//! write, PyTorch's names, and AdamW as Adam's `decoupled_weight_decay`.

use chainrule_optim::{
    optimizer_by_name, Adadelta, AdadeltaConfig, Adagrad, AdagradConfig, Adam, AdamConfig,
    AdamaxConfig, AsgdConfig, Hyper, LionConfig, NadamConfig, Optimizer, OptimizerConfig,
    QuickpropConfig, RadamConfig, RmspropConfig, Rprop, RpropConfig, SgdConfig, OPTIMIZER_NAMES,
};
use chainrule_tape::{Parameter, Tensor};

fn params() -> Vec<Parameter<f64>> {
    vec![
        Parameter::new(Tensor::from_vec([2], vec![0.5, -1.0])),
        Parameter::new(Tensor::from_vec([3], vec![2.0, 0.0, -0.3])),
    ]
}

/// Sets fixed gradients g = 0.3·θ + 0.1 and steps `n` times.
fn run(opt: &mut dyn Optimizer<f64>, n: usize) {
    for _ in 0..n {
        for g in 0..opt.num_groups() {
            for p in opt.params(g) {
                let v = p.value();
                let grad = v.data().iter().map(|x| 0.3 * x + 0.1).collect();
                p.set_grad(Some(Tensor::from_vec(v.shape(), grad)));
            }
        }
        opt.step().unwrap();
        opt.zero_grad();
    }
}

fn values(ps: &[Parameter<f64>]) -> Vec<Vec<f64>> {
    ps.iter().map(|p| p.value().data().to_vec()).collect()
}

#[test]
fn an_unknown_key_is_an_error_naming_the_key_and_the_optimizer() {
    for name in OPTIMIZER_NAMES {
        let mut opt = optimizer_by_name(name, params(), None).unwrap();
        let opt_name = opt.name().to_string();
        for e in [
            opt.hyperparameter(0, "learning_rate").unwrap_err(),
            opt.set_hyperparameter(0, "learning_rate", Hyper::F64(0.1))
                .unwrap_err(),
        ] {
            let e = e.to_string();
            assert!(
                e.starts_with(&format!(
                    "{opt_name}: unknown hyperparameter 'learning_rate' ({opt_name} has: lr, "
                )),
                "{name}: {e}"
            );
        }
        // The key list is the optimizer's own, in declaration order.
        let names: Vec<&str> = opt
            .hyperparameters(0)
            .unwrap()
            .iter()
            .map(|(k, _)| *k)
            .collect();
        assert_eq!(names[0], "lr", "{name}");
    }
}

#[test]
fn bools_are_bools_and_pairs_are_pairs() {
    let mut opt = Adam::new(params(), AdamConfig::default()).unwrap();
    assert_eq!(
        opt.hyperparameter(0, "amsgrad").unwrap(),
        Hyper::Bool(false)
    );
    assert_eq!(
        opt.hyperparameter(0, "betas").unwrap(),
        Hyper::Pair(0.9, 0.999)
    );
    // A number where a bool belongs is an error, and nothing changes.
    let e = opt
        .set_hyperparameter(0, "amsgrad", Hyper::F64(1.0))
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "Adam: hyperparameter amsgrad is a bool, got 1 (a number)"
    );
    let e = opt
        .set_hyperparameter(0, "betas", Hyper::F64(0.9))
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "Adam: hyperparameter betas is a pair, got 0.9 (a number)"
    );
    assert!(!opt.groups()[0].config.amsgrad);
    opt.set_hyperparameter(0, "amsgrad", Hyper::Bool(true))
        .unwrap();
    assert!(opt.groups()[0].config.amsgrad);
}

#[test]
fn every_write_is_validated_as_declared_with_the_field() {
    let mut opt = optimizer_by_name("sgd", params(), Some(0.1)).unwrap();
    let e = opt
        .set_hyperparameter(0, "lr", Hyper::F64(-1.0))
        .unwrap_err();
    assert_eq!(e.to_string(), "SGD: invalid lr -1.0: must be ≥ 0");
    assert_eq!(opt.lr(), 0.1, "a rejected write changes nothing");
    // Conditions between fields hold for writes too.
    let e = opt
        .set_hyperparameter(0, "nesterov", Hyper::Bool(true))
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "SGD: Nesterov momentum requires a momentum and zero dampening"
    );
    let mut adam = Adam::new(params(), AdamConfig::default()).unwrap();
    let e = adam
        .set_config(
            0,
            AdamConfig {
                betas: (0.9, 1.0),
                ..Default::default()
            },
        )
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "Adam: invalid betas (0.9, 1.0): both must lie in [0, 1)"
    );
    let e = Rprop::new(
        params(),
        RpropConfig {
            etas: (1.2, 0.5),
            ..Default::default()
        },
    )
    .err()
    .unwrap();
    assert_eq!(
        e.to_string(),
        "Rprop: invalid etas (1.2, 0.5): need 0 < etas.0 < 1 < etas.1"
    );
}

#[test]
fn adamw_is_adams_decoupled_weight_decay_flag_per_group() {
    let adam = |decoupled_weight_decay| AdamConfig {
        lr: 0.05,
        weight_decay: 0.2,
        decoupled_weight_decay,
        ..Default::default()
    };
    // One optimizer, an L2 group and a decoupled group (an error before:
    // Adam chose AdamW for all groups from its name).
    let (l2, decoupled) = (params(), params());
    let mut mixed = Adam::with_groups(vec![
        (l2.clone(), adam(false)),
        (decoupled.clone(), adam(true)),
    ])
    .unwrap();
    assert_eq!(mixed.name(), "Adam");
    run(&mut mixed, 5);
    for (ps, flag) in [(&l2, false), (&decoupled, true)] {
        let alone = params();
        run(&mut Adam::new(alone.clone(), adam(flag)).unwrap(), 5);
        // The same f64 operations in the same order: bit-identical.
        assert_eq!(values(ps), values(&alone), "decoupled {flag}");
    }
    assert_ne!(
        values(&l2),
        values(&decoupled),
        "the flag changes the update"
    );
    // Switching the flag by name switches the update.
    let switched = params();
    let mut opt = Adam::new(switched.clone(), adam(false)).unwrap();
    opt.set_hyperparameter(0, "decoupled_weight_decay", Hyper::Bool(true))
        .unwrap();
    run(&mut opt, 5);
    assert_eq!(values(&switched), values(&decoupled));
    // AdamW's defaults are Adam's with the flag and λ = 1e-2.
    assert_eq!(
        AdamConfig::adamw(),
        AdamConfig {
            weight_decay: 1e-2,
            decoupled_weight_decay: true,
            ..Default::default()
        }
    );
}

#[test]
fn names_are_pytorchs_and_decoupled_weight_decay_is_spelled_one_way() {
    // torch.optim's constructor arguments, in its order, without the
    // implementation switches (foreach, capturable, differentiable, fused).
    let pytorch: [(&str, &[&str]); 10] = [
        (
            SgdConfig::OPTIMIZER,
            &[
                "lr",
                "momentum",
                "dampening",
                "weight_decay",
                "nesterov",
                "maximize",
            ],
        ),
        (
            AdamConfig::OPTIMIZER,
            &[
                "lr",
                "betas",
                "eps",
                "weight_decay",
                "amsgrad",
                "maximize",
                "decoupled_weight_decay",
            ],
        ),
        (
            AdagradConfig::OPTIMIZER,
            &[
                "lr",
                "lr_decay",
                "weight_decay",
                "initial_accumulator_value",
                "eps",
                "maximize",
            ],
        ),
        (
            RmspropConfig::OPTIMIZER,
            &[
                "lr",
                "alpha",
                "eps",
                "weight_decay",
                "momentum",
                "centered",
                "maximize",
            ],
        ),
        (
            AdadeltaConfig::OPTIMIZER,
            &["lr", "rho", "eps", "weight_decay", "maximize"],
        ),
        (
            AdamaxConfig::OPTIMIZER,
            &["lr", "betas", "eps", "weight_decay", "maximize"],
        ),
        (
            NadamConfig::OPTIMIZER,
            &[
                "lr",
                "betas",
                "eps",
                "weight_decay",
                "momentum_decay",
                "decoupled_weight_decay",
                "maximize",
            ],
        ),
        (
            RadamConfig::OPTIMIZER,
            &[
                "lr",
                "betas",
                "eps",
                "weight_decay",
                "decoupled_weight_decay",
                "maximize",
            ],
        ),
        (
            RpropConfig::OPTIMIZER,
            &["lr", "etas", "step_sizes", "maximize"],
        ),
        (
            AsgdConfig::OPTIMIZER,
            &["lr", "lambd", "alpha", "t0", "weight_decay", "maximize"],
        ),
    ];
    let ours: [&[&str]; 10] = [
        SgdConfig::NAMES,
        AdamConfig::NAMES,
        AdagradConfig::NAMES,
        RmspropConfig::NAMES,
        AdadeltaConfig::NAMES,
        AdamaxConfig::NAMES,
        NadamConfig::NAMES,
        RadamConfig::NAMES,
        RpropConfig::NAMES,
        AsgdConfig::NAMES,
    ];
    for ((name, want), got) in pytorch.iter().zip(ours) {
        assert_eq!(&got, want, "{name}");
    }
    for names in ours
        .iter()
        .chain([LionConfig::NAMES, QuickpropConfig::NAMES].iter())
    {
        for n in names.iter().filter(|n| n.contains("decoupled")) {
            assert_eq!(*n, "decoupled_weight_decay");
        }
    }
    // Lion's pair is `betas` too (as lion-pytorch's).
    assert_eq!(LionConfig::default().betas, (0.9, 0.99));
}

#[test]
fn typed_configs_round_trip_through_their_names() {
    fn round_trip<C: OptimizerConfig + PartialEq>(c: C) {
        let mut rebuilt = C::default();
        for (k, v) in c.hyperparameters() {
            rebuilt.assign(k, v).unwrap();
        }
        assert_eq!(rebuilt, c, "{}", C::OPTIMIZER);
    }
    round_trip(AdamConfig::adamw());
    round_trip(SgdConfig {
        momentum: 0.8,
        nesterov: true,
        ..Default::default()
    });
    round_trip(RpropConfig {
        etas: (0.4, 1.3),
        step_sizes: (1e-5, 10.0),
        maximize: true,
        ..Default::default()
    });
    round_trip(AdagradConfig {
        lr_decay: 0.1,
        ..Default::default()
    });
    let ok = Adagrad::new(params(), AdagradConfig::default());
    assert!(ok.is_ok());
    assert!(Adadelta::new(params(), AdadeltaConfig::default()).is_ok());
}

#[test]
fn saved_states_store_bools_as_0_or_1_and_pairs_as_two_entries() {
    let mut opt = Adam::new(params(), AdamConfig::adamw()).unwrap();
    run(&mut opt, 2);
    let keys: Vec<String> = opt.state().groups[0].keys().cloned().collect();
    assert_eq!(
        keys,
        [
            "amsgrad",
            "betas.0",
            "betas.1",
            "decoupled_weight_decay",
            "eps",
            "lr",
            "maximize",
            "weight_decay"
        ]
    );
    assert_eq!(opt.state().groups[0]["decoupled_weight_decay"], 1.0);
    // A bool that is neither 0 nor 1 is an error, not a silent `true`.
    let mut bad = opt.state();
    bad.groups[0].insert("amsgrad".into(), 0.5);
    let e = Adam::new(params(), AdamConfig::adamw())
        .unwrap()
        .load_state(bad)
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("group 0: hyperparameter amsgrad is 0.5, expected 0 or 1"),
        "{e}"
    );
}

#[test]
fn states_saved_with_the_old_names_still_load() {
    // Before: AdamW was the optimizer's name, betas were beta1 and beta2,
    // Rprop's pairs eta_minus/eta_plus and step_size_min/step_size_max.
    let (ps, cont) = (params(), params());
    let mut opt = Adam::new(ps.clone(), AdamConfig::adamw()).unwrap();
    run(&mut opt, 3);
    let mut old = opt.state();
    old.optimizer = "AdamW".into();
    let g = &mut old.groups[0];
    let (b1, b2) = (g.remove("betas.0").unwrap(), g.remove("betas.1").unwrap());
    g.remove("decoupled_weight_decay");
    g.insert("beta1".into(), b1);
    g.insert("beta2".into(), b2);
    for (p, q) in cont.iter().zip(&ps) {
        p.set_value(q.value());
    }
    let mut resumed = Adam::new(cont.clone(), AdamConfig::default()).unwrap();
    resumed.load_state(old).unwrap();
    assert_eq!(resumed.groups()[0].config, AdamConfig::adamw());
    run(&mut opt, 3);
    run(&mut resumed, 3);
    assert_eq!(values(&ps), values(&cont), "resumed bit-identically");

    let mut rprop = Rprop::new(params(), RpropConfig::default()).unwrap();
    run(&mut rprop, 2);
    let mut old = rprop.state();
    let g = &mut old.groups[0];
    for (new, [a, b]) in [
        ("etas", ["eta_minus", "eta_plus"]),
        ("step_sizes", ["step_size_min", "step_size_max"]),
    ] {
        let v0 = g.remove(&format!("{new}.0")).unwrap();
        let v1 = g.remove(&format!("{new}.1")).unwrap();
        g.insert(a.into(), v0);
        g.insert(b.into(), v1);
    }
    let mut fresh = Rprop::new(params(), RpropConfig::default()).unwrap();
    fresh.load_state(old).unwrap();
    assert_eq!(fresh.groups()[0].config, RpropConfig::default());
}
