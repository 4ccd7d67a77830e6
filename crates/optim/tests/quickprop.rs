//! Quickprop against its update rule on hand-computed steps.

use chainrule_optim::{Optimizer, Quickprop, QuickpropConfig};
use chainrule_tape::{Parameter, Tensor};

/// One step on E = (w − 3)², whose gradient is 2(w − 3).
fn step(opt: &mut Quickprop<f64>, p: &Parameter<f64>) -> f64 {
    let w = p.value().item();
    p.set_grad(Some(Tensor::scalar(2.0 * (w - 3.0))));
    opt.step().unwrap();
    p.value().item()
}

#[test]
fn quickprop_follows_its_three_regimes_on_a_parabola() {
    let p = Parameter::new(Tensor::scalar(0.0f64));
    let cfg = QuickpropConfig {
        lr: 0.1,
        decay: 0.0,
        ..Default::default()
    };
    let mut opt = Quickprop::new(vec![p.clone()], cfg).unwrap();
    // 1. No previous step: gradient step ε·S = 0.1·6.
    assert!((step(&mut opt, &p) - 0.6).abs() < 1e-12);
    // 2. S = 4.8 is still above μ/(1+μ)·6 = 3.818: ε·S + μ·Δw = 0.48 + 1.75·0.6.
    assert!((step(&mut opt, &p) - 2.13).abs() < 1e-12);
    // 3. S = 1.74 < μ/(1+μ)·4.8: the parabola step 1.53·1.74/(4.8 − 1.74) = 0.87
    //    lands exactly on the minimum 3, plus the gradient term ε·S = 0.174.
    assert!((step(&mut opt, &p) - (3.0 + 0.174)).abs() < 1e-12);
    // Tolerances: a handful of decimal operations in f64, rounding only.
}

#[test]
fn weight_decay_is_folded_into_the_slope_and_the_state_resumes() {
    let p = Parameter::new(Tensor::scalar(1.0f64));
    let cfg = QuickpropConfig {
        lr: 0.1,
        decay: 0.01,
        ..Default::default()
    };
    let mut opt = Quickprop::new(vec![p.clone()], cfg).unwrap();
    // S = −(2(1 − 3) + 0.01·1) = 3.99; first step ε·S.
    assert!((step(&mut opt, &p) - (1.0 + 0.399)).abs() < 1e-12);
    let saved = (opt.state(), p.value());
    let after = step(&mut opt, &p);
    let q = Parameter::new(saved.1);
    let mut resumed = Quickprop::new(vec![q.clone()], cfg).unwrap();
    resumed.load_state(saved.0).unwrap();
    assert_eq!(step(&mut resumed, &q), after);
}
