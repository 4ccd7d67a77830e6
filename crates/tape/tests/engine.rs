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

/// An op whose backward panics the first time it runs (a user's op with a bug
/// the caller recovers from), then doubles its upstream gradient.
struct PanicsOnce(std::rc::Rc<std::cell::Cell<bool>>);

impl chainrule_tape::CustomOp<f64> for PanicsOnce {
    fn name(&self) -> &str {
        "panics_once"
    }
    fn forward(&self, inputs: &[&Tensor<f64>]) -> chainrule_tape::Result<Tensor<f64>> {
        Ok(inputs[0].clone())
    }
    fn backward(
        &self,
        _inputs: &[&Tensor<f64>],
        _output: &Tensor<f64>,
        grad: &Tensor<f64>,
    ) -> chainrule_tape::Result<Vec<Option<Tensor<f64>>>> {
        if !self.0.replace(true) {
            panic!("first backward fails");
        }
        Ok(vec![Some(grad.map(|v| 2.0 * v))])
    }
}

#[test]
fn a_panicking_backward_leaves_a_retained_graph_usable() {
    // The op is taken out of its node while its backward runs; it must be put
    // back even when that backward panics, or the retained graph is broken.
    let g = Graph::new();
    let x = g.leaf(s(3.0));
    let y = x.apply(PanicsOnce(Default::default()));
    let retain = || BackwardOptions {
        retain_graph: true,
        ..Default::default()
    };
    let first =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| y.backward_with(retain())));
    assert!(first.is_err(), "the first backward panics");
    y.try_backward(retain())
        .expect("the op is still in its node");
    assert_eq!(x.grad().unwrap().item(), 2.0);
}

#[test]
fn an_error_while_adding_gradients_leaves_a_retained_graph_usable() {
    // In anomaly mode with create_graph, adding the two contributions to x
    // (w = 1e308 each: finite, and graph values since w is a leaf) overflows
    // to inf, an error raised after mul's op was taken out of its node. A
    // later backward must still find the op.
    let g = Graph::new();
    let x = g.leaf(s(1e-10));
    let w = g.leaf(s(1e308));
    let y = &(&x * &w) + &(&x * &w);
    let options = chainrule_tape::GradOptions {
        create_graph: true,
        retain_graph: true,
    };
    let err =
        chainrule_tape::detect_anomaly(|| chainrule_tape::try_grad(&[&y], &[], &[&x], options))
            .unwrap_err();
    assert_eq!(err.kind, ErrorKind::NonFinite, "{err}");
    let [dx] = chainrule_tape::try_grad(&[&y], &[], &[&x], options)
        .expect("every op is still in its node")
        .try_into()
        .unwrap();
    assert_eq!(dx.item(), f64::INFINITY);
}

/// A user's op whose backward returns two gradients for its one input.
struct TwoGradientsForOneInput;

impl chainrule_tape::Op<f64> for TwoGradientsForOneInput {
    fn name(&self) -> &str {
        "two_for_one"
    }
    fn backward(
        &self,
        cx: &chainrule_tape::BackwardContext<'_, f64>,
    ) -> chainrule_tape::Result<chainrule_tape::InputGrads<f64>> {
        Ok(vec![Some(cx.grad.clone()), Some(cx.grad.clone())]
            .into_iter()
            .collect())
    }
}

#[test]
fn a_backward_returning_the_wrong_number_of_gradients_is_an_error() {
    // It indexed past the op's inputs (a panic) before.
    let g = Graph::new();
    let x = g.leaf(s(1.0));
    let y = Var::from_op(TwoGradientsForOneInput, &[&x], x.value().clone()).unwrap();
    let err = y.try_backward(BackwardOptions::default()).unwrap_err();
    assert_eq!(err.kind, ErrorKind::Argument, "{err}");
    assert!(
        err.to_string()
            .contains("two_for_one returned 2 gradients for 1 inputs"),
        "{err}"
    );
}

/// A user's op whose backward fails.
struct FailingBackward;

impl chainrule_tape::Op<f64> for FailingBackward {
    fn name(&self) -> &str {
        "failing_backward"
    }
    fn backward(
        &self,
        _cx: &chainrule_tape::BackwardContext<'_, f64>,
    ) -> chainrule_tape::Result<chainrule_tape::InputGrads<f64>> {
        Err(chainrule_tape::Error::argument(
            "failing_backward",
            "refused on purpose",
        ))
    }
}

#[test]
fn an_error_from_an_ops_backward_is_returned_by_backward() {
    let g = Graph::new();
    let x = g.leaf(s(1.0));
    let y = Var::from_op(FailingBackward, &[&x], x.value().clone()).unwrap();
    let z = &y * 2.0;
    let err = z.try_backward(BackwardOptions::default()).unwrap_err();
    assert_eq!(err.kind, ErrorKind::Argument, "{err}");
    assert!(err.to_string().contains("refused on purpose"), "{err}");
    assert!(x.grad().is_none(), "no gradient reaches x");
}

/// A user's op (the identity) whose backward passes through an infinity:
/// 1/(1/(0·g)) = 1/∞ = 0, a finite gradient.
struct InfinityInsideBackward;

impl chainrule_tape::Op<f64> for InfinityInsideBackward {
    fn name(&self) -> &str {
        "infinity_inside"
    }
    fn backward(
        &self,
        cx: &chainrule_tape::BackwardContext<'_, f64>,
    ) -> chainrule_tape::Result<chainrule_tape::InputGrads<f64>> {
        let one = Var::scalar_constant(1.0);
        let g = one.try_div(&one.try_div(&cx.grad.mul_scalar(0.0))?)?;
        Ok(vec![Some(g)].into_iter().collect())
    }
}

#[test]
fn anomaly_mode_blames_an_infinity_made_inside_a_backward_formula() {
    // The formula's helper ops run on constants (no create_graph); anomaly
    // mode must still check them, though the final gradient is finite.
    let g = Graph::new();
    let x = g.leaf(s(2.0));
    let y = Var::from_op(InfinityInsideBackward, &[&x], x.value().clone()).unwrap();
    let retain = BackwardOptions {
        retain_graph: true,
        ..Default::default()
    };
    let err = chainrule_tape::detect_anomaly(|| y.try_backward(retain.clone())).unwrap_err();
    assert_eq!(err.kind, ErrorKind::NonFinite, "{err}");
    let text = err.to_string();
    assert!(text.contains("infinity_inside"), "{text}");
    assert!(text.contains("div step"), "{text}");
    y.backward();
    assert_eq!(x.grad().unwrap().item(), 0.0);
}
