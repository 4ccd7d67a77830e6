//! Restoring a saved optimizer or scheduler state validates it first: a
//! state that does not fit (a renamed hyperparameter, a missing or
//! misshapen buffer, an impossible step count) is an error naming what is
//! wrong, the optimizer is left as it was, and no later step panics.

use chainrule_optim::{
    optimizer_by_name, CosineAnnealingLr, CosineAnnealingWarmRestarts, Lookahead, Optimizer,
    OptimizerState, Schedule, Scheduler, Sgd, SgdConfig, MAX_STEPS, OPTIMIZER_NAMES,
};
use chainrule_tape::{Parameter, Tensor};

fn params() -> Vec<Parameter<f32>> {
    vec![
        Parameter::new(Tensor::from_vec(
            [2, 3],
            vec![0.1, -0.2, 0.3, 0.4, -0.5, 0.6],
        )),
        Parameter::new(Tensor::from_vec([3], vec![0.0, 1.0, -1.0])),
    ]
}

/// Gives every parameter a gradient and steps.
fn step(opt: &mut dyn Optimizer<f32>) {
    for g in 0..opt.num_groups() {
        for p in opt.params(g) {
            let grad: Vec<f32> = (0..p.numel()).map(|i| 0.1 * (i as f32 + 1.0)).collect();
            p.set_grad(Some(Tensor::from_vec(p.shape(), grad)));
        }
    }
    opt.step().unwrap();
    opt.zero_grad();
}

/// An optimizer called `name` that has stepped twice, and its state.
fn stepped(name: &str) -> (Box<dyn Optimizer<f32>>, OptimizerState<f32>) {
    let mut opt = optimizer_by_name(name, params(), None).unwrap();
    step(opt.as_mut());
    step(opt.as_mut());
    let state = opt.state();
    (opt, state)
}

/// Loading `bad` into a fresh `name` optimizer fails with a message
/// containing `want`; the optimizer is untouched and still steps.
fn rejects(name: &str, bad: OptimizerState<f32>, want: &str) {
    let mut fresh = optimizer_by_name(name, params(), None).unwrap();
    let before = fresh.state();
    let err = fresh.load_state(bad).unwrap_err().to_string();
    assert!(err.contains(want), "{name}: {err:?} lacks {want:?}");
    assert_eq!(
        fresh.state(),
        before,
        "{name}: a failed load changed the state"
    );
    step(fresh.as_mut());
}

#[test]
fn a_renamed_hyperparameter_is_an_error_not_a_panic_on_the_next_step() {
    // The fuzzer's case: β2 renamed to β1 in the metadata, so the group
    // has betas.0 (the later value) and no betas.1.
    let (_, mut state) = stepped("adam");
    let beta2 = state.groups[0].remove("betas.1").unwrap();
    state.groups[0].insert("betas.0".into(), beta2);
    rejects("adam", state, "group 0 lacks hyperparameter betas.1");
    let (_, mut state) = stepped("sgd");
    state.groups[0].insert("betta".into(), 0.5);
    rejects("sgd", state, "group 0 has unknown hyperparameter betta");
    let (_, mut state) = stepped("rmsprop");
    state.groups[0].insert("alpha".into(), f64::NAN);
    rejects("rmsprop", state, "hyperparameter alpha is NaN");
}

#[test]
fn buffers_must_be_the_optimizers_own_with_the_parameters_shapes() {
    for name in OPTIMIZER_NAMES {
        let (_, state) = stepped(name);
        // Every optimizer's own state loads back.
        let mut fresh = optimizer_by_name(name, params(), None).unwrap();
        fresh.load_state(state.clone()).unwrap();
        if let Some(buffer) = state.params[0].buffers.keys().next().cloned() {
            let mut bad = state.clone();
            let t = bad.params[0].buffers.remove(&buffer).unwrap();
            // SGD's momentum buffer is optional: `momentum` may have been
            // 0 when the parameter last stepped.
            if !buffer.starts_with("momentum") {
                rejects(
                    name,
                    bad.clone(),
                    &format!("parameter 0: lacks buffer {buffer}"),
                );
            }
            bad.params[0]
                .buffers
                .insert(buffer.clone(), Tensor::zeros([3, 2]));
            rejects(
                name,
                bad.clone(),
                "has shape [3, 2], expected the parameter's [2, 3]",
            );
            bad.params[0].buffers.insert(buffer, t);
            bad.params[1]
                .buffers
                .insert("exp_avgg".into(), Tensor::zeros([3]));
            rejects(name, bad, "parameter 1: unknown buffer exp_avgg");
        }
        let mut bad = state.clone();
        bad.params.pop();
        rejects(
            name,
            bad,
            "state has 1 groups and 1 parameters, optimizer has 1 and 2",
        );
    }
}

#[test]
fn step_counts_and_scalars_are_checked() {
    // u64::MAX would overflow on the next step; anything past MAX_STEPS
    // breaks the bias corrections.
    let (_, mut state) = stepped("adam");
    state.params[1].step = u64::MAX;
    rejects(
        "adam",
        state,
        &format!("parameter 1: step {} exceeds {MAX_STEPS}", u64::MAX),
    );
    // A parameter that never stepped has no state.
    let (_, mut state) = stepped("adam");
    state.params[0].step = 0;
    rejects(
        "adam",
        state,
        "parameter 0: has not stepped but has state exp_avg",
    );
    let (_, mut state) = stepped("nadam");
    state.params[0].scalars.clear();
    rejects("nadam", state, "has scalars [], expected [mu_product]");
    let (_, mut state) = stepped("asgd");
    state.params[0].scalars.insert("eta".into(), f64::INFINITY);
    rejects("asgd", state, "scalar eta is inf, expected a finite value");
}

#[test]
fn lookahead_checks_its_slow_weights() {
    let make =
        || Lookahead::new(Sgd::new(params(), SgdConfig::default()).unwrap(), 2, 0.5).unwrap();
    let mut opt = make();
    step(&mut opt);
    let state = opt.state();
    make().load_state(state.clone()).unwrap();
    let mut bad = state.clone();
    bad.params[1]
        .buffers
        .insert("lookahead_slow".into(), Tensor::zeros([4]));
    let mut fresh = make();
    let err = fresh.load_state(bad).unwrap_err().to_string();
    assert!(
        err.contains("parameter 1: slow weights have shape [4], expected [3]"),
        "{err}"
    );
    step(&mut fresh);
    let mut bad = state.clone();
    bad.params[0]
        .scalars
        .insert("lookahead_steps".into(), 1e300);
    let err = make().load_state(bad).unwrap_err().to_string();
    assert!(err.contains("lookahead_steps is Some(1e300)"), "{err}");
}

#[test]
fn a_scheduler_state_needs_one_rate_per_group() {
    let mut opt = optimizer_by_name("adam", params(), Some(0.01)).unwrap();
    let schedule: Box<dyn Schedule> = Box::new(CosineAnnealingLr {
        t_max: 10,
        eta_min: 0.0,
    });
    let mut sched = Scheduler::new(opt.as_mut(), schedule);
    sched.step(opt.as_mut());
    let err = sched
        .load_state(opt.as_mut(), (5, vec![0.01, 0.02]))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("2 initial learning rates, the optimizer has 1 groups"),
        "{err}"
    );
    let err = sched
        .load_state(opt.as_mut(), (5, vec![f64::NAN]))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("initial learning rate of group 0 is NaN"),
        "{err}"
    );
    assert_eq!(sched.last_epoch(), 1, "a failed load changed nothing");
    sched.load_state(opt.as_mut(), (5, vec![0.01])).unwrap();
    assert_eq!(sched.last_epoch(), 5);
}

#[test]
fn warm_restarts_at_a_huge_step_neither_overflow_nor_loop() {
    for t_mult in [1, 2, 3] {
        let s = CosineAnnealingWarmRestarts {
            t_0: 1,
            t_mult,
            eta_min: 0.0,
        };
        assert!(s.lr(0.1, u64::MAX).is_finite());
    }
}
