//! Gradient hooks (reading, replacing, removing) and anomaly mode.

use chainrule_ops::VarOps;
use chainrule_tape::{detect_anomaly, BackwardOptions, ErrorKind, Graph, Tensor, Var};
use rand::{rngs::StdRng, SeedableRng};
use std::cell::RefCell;
use std::rc::Rc;

#[test]
fn a_hook_can_replace_the_gradient_and_be_removed() {
    let g = Graph::new();
    let x = g.leaf(Tensor::from_vec([2], vec![1.0f64, 2.0]));
    let h = &x * 3.0;
    let handle = h.register_hook(|grad| Some(grad * 2.0));
    let seen = Rc::new(RefCell::new(Vec::new()));
    let log = seen.clone();
    let _reader = h.register_hook(move |grad| {
        log.borrow_mut().push(grad.value().to_vec());
        None
    });
    h.sum_all().backward_with(BackwardOptions {
        retain_graph: true,
        ..Default::default()
    });
    assert_eq!(x.grad().unwrap().data(), &[6.0, 6.0]); // 3 · (2 · 1)
    assert_eq!(
        seen.borrow()[0],
        vec![2.0, 2.0],
        "later hooks see the replaced gradient"
    );
    handle.remove();
    x.zero_grad();
    h.sum_all().backward();
    assert_eq!(x.grad().unwrap().data(), &[3.0, 3.0]);
    assert_eq!(seen.borrow().len(), 2);
}

#[test]
fn a_hook_returning_the_wrong_shape_is_an_error() {
    let g = Graph::new();
    let x = g.leaf(Tensor::from_vec([2], vec![1.0f64, 2.0]));
    let h = &x * 3.0;
    h.register_hook(|_| Some(Var::constant(Tensor::zeros([3]))));
    let e = h
        .sum_all()
        .try_backward(BackwardOptions::default())
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "hook: a hook returned a gradient of shape [3] for a value of shape [2]"
    );
}

/// ‖∂L/∂h_l‖ for each layer of a 10-layer tanh network whose weights are
/// drawn from U(−bound, bound), recorded with hooks on the activations.
fn layer_gradient_norms(bound: f64) -> Vec<f64> {
    const WIDTH: usize = 64;
    let mut rng = StdRng::seed_from_u64(11);
    let g = Graph::new();
    let mut h = g.input(Tensor::<f64>::randn([32, WIDTH], &mut rng));
    let norms = Rc::new(RefCell::new(vec![0.0; 10]));
    for layer in 0..10 {
        let w = g.leaf(Tensor::rand_uniform(
            [WIDTH, WIDTH],
            -bound,
            bound,
            &mut rng,
        ));
        h = h.matmul(&w).tanh();
        let norms = norms.clone();
        h.register_hook(move |grad| {
            norms.borrow_mut()[layer] = grad
                .value()
                .data()
                .iter()
                .map(|v| v * v)
                .sum::<f64>()
                .sqrt();
            None
        });
    }
    h.square().mean_all().backward();
    let out = norms.borrow().clone();
    out
}

#[test]
fn hooks_show_vanishing_gradients_with_small_weights_and_not_with_xavier() {
    // Small init U(±0.01): each layer scales the gradient by about
    // 0.01·√(64/3)·tanh' ≈ 0.05, so it shrinks by over 10× per layer.
    let small = layer_gradient_norms(0.01);
    for l in 0..9 {
        assert!(small[l] < 0.1 * small[l + 1], "layer {l}: {small:?}");
    }
    // Xavier/Glorot uniform, bound √(6/(64+64)): the gain per layer is near 1.
    let xavier = layer_gradient_norms((6.0f64 / 128.0).sqrt());
    let (lo, hi) = xavier
        .iter()
        .fold((f64::MAX, 0.0f64), |(a, b), &v| (a.min(v), b.max(v)));
    assert!(
        hi / lo < 10.0,
        "xavier norms vary by {}: {xavier:?}",
        hi / lo
    );
    assert!(xavier[0] > 0.1 * xavier[9], "{xavier:?}");
}

#[test]
fn anomaly_mode_names_the_op_and_line_that_made_a_nan_in_forward() {
    let g = Graph::new();
    let x = g.leaf(Tensor::from_vec([3], vec![1.0f64, -1.0, 2.0]));
    let line = line!() + 1;
    let e = detect_anomaly(|| x.try_log()).unwrap_err();
    assert_eq!(e.kind, ErrorKind::NonFinite);
    let msg = e.to_string();
    assert!(
        msg.starts_with("log: forward produced a non-finite value"),
        "{msg}"
    );
    assert!(msg.contains(&format!("hooks_anomaly.rs:{line}")), "{msg}");
    assert!(
        msg.contains("input 0: [3] min -1.000000e0, max 2.000000e0, NaN: no"),
        "{msg}"
    );
    // Off, the NaN just flows.
    assert!(x.log().value().data()[1].is_nan());
}

#[test]
fn anomaly_mode_names_the_op_whose_backward_made_an_infinity() {
    let g = Graph::new();
    let x = g.leaf(Tensor::from_vec([2], vec![0.0f64, 4.0]));
    let err = detect_anomaly(|| {
        let line = line!() + 1;
        let y = x.sqrt().sum_all(); // sqrt(0) = 0 is finite; its derivative 1/(2·0) is not
        (line, y.try_backward(BackwardOptions::default()))
    });
    let (line, result) = err;
    let msg = result.unwrap_err().to_string();
    assert!(
        msg.starts_with("sqrt: backward produced a non-finite gradient"),
        "{msg}"
    );
    assert!(msg.contains(&format!("hooks_anomaly.rs:{line}")), "{msg}");
    assert!(
        msg.contains("input 0: [2] min 0.000000e0, max 4.000000e0"),
        "{msg}"
    );
}
