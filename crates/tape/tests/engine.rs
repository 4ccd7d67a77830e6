//! The chain-rule engine: accumulation, freeing, retain_graph, higher order, errors.

use chainrule_tape::{grad, no_grad, BackwardOptions, ErrorKind, Graph, Parameter, Tensor, Var};

fn s(v: f64) -> Tensor<f64> {
    Tensor::scalar(v)
}

#[test]
fn gradient_accumulates_where_a_value_is_used_twice() {
    // b = a + a; c = b + b  =>  dc/da = 4 (exact in floating point).
    let g = Graph::new();
    let a = g.leaf(s(1.5));
    let b = &a + &a;
    let c = &b + &b;
    c.backward();
    assert_eq!(a.grad().unwrap().item(), 4.0);
}

#[test]
fn backward_twice_without_retain_graph_is_a_clear_error() {
    let g = Graph::new();
    let a = g.leaf(s(2.0));
    let y = &a * &a;
    y.backward();
    let err = y.try_backward(BackwardOptions::default()).unwrap_err();
    assert_eq!(err.kind, ErrorKind::GraphFreed);
    assert!(err.to_string().contains("retain_graph"), "{err}");
}

#[test]
fn retain_graph_allows_a_second_backward_that_accumulates() {
    let g = Graph::new();
    let a = g.leaf(s(3.0));
    let y = &a * &a;
    y.backward_with(BackwardOptions {
        retain_graph: true,
        ..Default::default()
    });
    y.backward();
    assert_eq!(a.grad().unwrap().item(), 12.0); // 2 · (2a) at a = 3
}

#[test]
fn second_derivative_of_a_cube_is_six_x() {
    let g = Graph::new();
    let x = g.leaf(s(0.7));
    let y = &(&x * &x) * &x;
    let [dy] = grad(&y, [&x], true);
    let [d2y] = grad(&dy, [&x], true);
    let [d3y] = grad(&d2y, [&x], false);
    // Tolerance: exact products of a few doubles; allow 4 ulps of rounding.
    assert!((dy.item() - 3.0 * 0.49).abs() < 1e-15);
    assert!((d2y.item() - 6.0 * 0.7).abs() < 1e-15);
    assert_eq!(d3y.item(), 6.0);
}

#[test]
fn backward_without_create_graph_records_nothing() {
    let g = Graph::new();
    let x = g.leaf(s(0.5));
    let y = &(&x * &x) * 3.0;
    let before = g.len();
    let [dy] = grad(&y, [&x], false);
    assert!(!dy.requires_grad());
    assert!(
        g.len() <= before,
        "backward added nodes: {} -> {}",
        before,
        g.len()
    );
}

#[test]
fn backward_frees_walked_nodes_but_keeps_leaves() {
    let g = Graph::new();
    let x = g.leaf(s(0.5));
    let mut y = x.clone();
    for _ in 0..100 {
        y = &(&y * 0.5) + &x;
    }
    assert_eq!(g.len(), 201);
    y.backward();
    assert_eq!(g.len(), 1, "only the leaf remains");
}

#[test]
fn a_chain_of_a_million_ops_backpropagates_without_recursion() {
    let g = Graph::<f32>::new();
    let x = g.leaf(Tensor::scalar(1.0f32));
    let mut y = x.clone();
    for _ in 0..1_000_000 {
        y = &y + 1e-6f32;
    }
    y.backward();
    assert_eq!(x.grad().unwrap().item(), 1.0);
}

#[test]
fn no_grad_and_detach_cut_the_graph() {
    let g = Graph::new();
    let x = g.leaf(s(2.0));
    let y = no_grad(|| &x * &x);
    assert!(!y.requires_grad());
    let z = &x.detach() * &x; // d/dx of (const 2)·x = 2
    z.backward();
    assert_eq!(x.grad().unwrap().item(), 2.0);
}

#[test]
fn parameters_receive_gradients_and_outlive_the_graph() {
    let p = Parameter::new(Tensor::from_vec([2], vec![1.0f64, -2.0]));
    for step in 1..=3 {
        let g = Graph::new();
        let w = g.param(&p);
        let y = (&w * &w).try_sum_to(&[]).unwrap();
        y.backward();
        assert_eq!(
            p.grad().unwrap().data(),
            &[2.0 * step as f64, -4.0 * step as f64]
        );
    }
}

#[test]
fn non_scalar_backward_needs_an_upstream_gradient() {
    let g = Graph::new();
    let x = g.leaf(Tensor::from_vec([2], vec![1.0f64, 2.0]));
    let y = &x * 3.0;
    assert_eq!(
        y.try_backward(BackwardOptions::default()).unwrap_err().kind,
        ErrorKind::NotScalar
    );
    y.backward_with(BackwardOptions {
        upstream: Some(Tensor::from_vec([2], vec![1.0, 10.0])),
        retain_graph: false,
    });
    assert_eq!(x.grad().unwrap().data(), &[3.0, 30.0]);
}

#[test]
fn broadcasting_gradients_sum_over_broadcast_axes() {
    let g = Graph::new();
    let a = g.leaf(Tensor::from_vec(
        [2, 3],
        vec![1.0f64, 2.0, 3.0, 4.0, 5.0, 6.0],
    ));
    let b = g.leaf(Tensor::from_vec([3], vec![10.0, 20.0, 30.0]));
    let y = (&a * &b).try_sum_to(&[]).unwrap();
    y.backward();
    assert_eq!(b.grad().unwrap().data(), &[5.0, 7.0, 9.0]);
    assert_eq!(
        a.grad().unwrap().data(),
        &[10.0, 20.0, 30.0, 10.0, 20.0, 30.0]
    );
}

#[test]
fn operands_from_two_graphs_are_rejected() {
    let (g1, g2) = (Graph::new(), Graph::new());
    let a = g1.leaf(s(1.0));
    let b = g2.leaf(s(1.0));
    assert_eq!(a.try_add(&b).unwrap_err().kind, ErrorKind::ForeignGraph);
}

#[test]
fn constants_do_not_require_grad() {
    let c = Var::constant(s(1.0));
    assert!(!(&c * 2.0).requires_grad());
    assert_eq!(
        c.try_backward(BackwardOptions::default()).unwrap_err().kind,
        ErrorKind::Argument
    );
}
