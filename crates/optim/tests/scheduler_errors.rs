//! A rate or momentum a schedule writes that the optimizer's checks refuse
//! is an error from `try_step` (and a panic naming it from `step`), never
//! dropped while the old value silently stays (issue 16's review: after
//! writes by name were validated, the scheduler ignored the refusal).

use chainrule_optim::{Optimizer, Schedule, Scheduler, Sgd, SgdConfig};
use chainrule_tape::{Parameter, Tensor};

/// A user's schedule that goes negative after its first step.
struct Falls;
impl Schedule for Falls {
    fn lr(&self, base: f64, t: u64) -> f64 {
        base - 0.15 * t as f64
    }
}

fn sgd() -> Sgd<f64> {
    let config = SgdConfig {
        lr: 0.2,
        ..Default::default()
    };
    Sgd::new(vec![Parameter::new(Tensor::scalar(1.0f64))], config).unwrap()
}

#[test]
fn a_refused_rate_is_an_error_from_try_step() {
    let mut opt = sgd();
    let mut sched = Scheduler::new(&mut opt, Falls);
    sched
        .try_step(&mut opt)
        .expect("0.2 − 0.15 = 0.05 is a valid rate");
    let err = sched.try_step(&mut opt).unwrap_err().to_string();
    assert!(err.contains("lr"), "the error names the key: {err}");
    // The refused value was not written: the group keeps the last valid rate.
    assert_eq!(opt.groups()[0].config.lr, 0.2 - 0.15);
}

#[test]
#[should_panic(expected = "lr")]
fn step_panics_naming_the_refused_rate() {
    let mut opt = sgd();
    let mut sched = Scheduler::new(&mut opt, Falls);
    sched.step(&mut opt);
    sched.step(&mut opt);
}

#[test]
fn set_lr_refuses_a_negative_rate_and_changes_nothing() {
    let mut opt = sgd();
    assert!(opt.set_lr(-1.0).is_err());
    assert_eq!(opt.groups()[0].config.lr, 0.2);
}
