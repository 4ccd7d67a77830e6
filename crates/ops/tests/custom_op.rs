//! A custom op defined outside the crates works like a built-in: in graphs,
//! in gradcheck/gradgradcheck, and with a clear error where it cannot go.

use chainrule_ops::VarOps;
use chainrule_tape::error::Result;
use chainrule_tape::{
    grad, gradcheck, gradgradcheck, BackwardContext, CustomOp, ErrorKind, GradOptions, Graph,
    InputGrads, Tensor, Var,
};
use smallvec::smallvec;

fn softplus(x: f64) -> f64 {
    x.max(0.0) + (-x.abs()).exp().ln_1p()
}

/// softplus with a differentiable backward (grad · σ(x)).
struct Softplus;
impl CustomOp<f64> for Softplus {
    fn name(&self) -> &str {
        "softplus"
    }
    fn forward(&self, inputs: &[&Tensor<f64>]) -> Result<Tensor<f64>> {
        Ok(inputs[0].map(softplus))
    }
    fn differentiable_backward(
        &self,
        cx: &BackwardContext<'_, f64>,
    ) -> Option<Result<InputGrads<f64>>> {
        Some(
            cx.grad
                .try_mul(&cx.input(0).sigmoid())
                .map(|g| smallvec![Some(g)]),
        )
    }
}

/// softplus with a tensor-only backward; `bug` breaks element 3.
struct TensorSoftplus {
    bug: bool,
}
impl CustomOp<f64> for TensorSoftplus {
    fn name(&self) -> &str {
        "tensor_softplus"
    }
    fn forward(&self, inputs: &[&Tensor<f64>]) -> Result<Tensor<f64>> {
        Ok(inputs[0].map(softplus))
    }
    fn backward(
        &self,
        inputs: &[&Tensor<f64>],
        _: &Tensor<f64>,
        grad: &Tensor<f64>,
    ) -> Result<Vec<Option<Tensor<f64>>>> {
        let bug = self.bug;
        let x = inputs[0];
        let local = Tensor::from_fn(x.shape(), |i| {
            let s = 1.0 / (1.0 + (-x.data()[i]).exp());
            if bug && i == 3 {
                1.0 - s
            } else {
                s
            }
        });
        Ok(vec![Some(grad.broadcast_zip(
            &local,
            "tensor_softplus",
            |g, l| g * l,
        )?)])
    }
}

fn x() -> Tensor<f64> {
    Tensor::from_vec([5], vec![-3.0, -0.5, 0.1, 1.5, 40.0])
}

#[test]
fn a_differentiable_custom_op_passes_first_and_second_order_checks() {
    assert!(gradcheck(|v| v[0].apply(Softplus), &[x()]).passed());
    let r = gradgradcheck(|v| v[0].apply(Softplus), &[x()]);
    assert!(r.passed(), "{r}");
    // And composes with built-ins inside one graph, to second order.
    let g = Graph::new();
    let v = g.leaf(Tensor::scalar(0.3f64));
    let y = v.apply(Softplus).tanh();
    let [d1] = grad(&y, [&v], true);
    let [d2] = grad(&d1, [&v], false);
    let (s, sig) = (softplus(0.3), 1.0 / (1.0 + (-0.3f64).exp()));
    let t = s.tanh();
    assert!((d1.item() - (1.0 - t * t) * sig).abs() < 1e-15);
    let want = -2.0 * t * (1.0 - t * t) * sig * sig + (1.0 - t * t) * sig * (1.0 - sig);
    assert!((d2.item() - want).abs() < 1e-14);
}

#[test]
fn gradcheck_points_at_the_element_a_wrong_backward_gets_wrong() {
    let r = gradcheck(|v| v[0].apply(TensorSoftplus { bug: true }), &[x()]);
    assert!(!r.passed());
    let worst = r.inputs[0].worst.as_ref().unwrap();
    assert_eq!((worst.input_element, worst.output_element), (3, 3), "{r}");
    assert!(gradcheck(|v| v[0].apply(TensorSoftplus { bug: false }), &[x()]).passed());
}

#[test]
fn a_tensor_only_backward_refuses_create_graph_with_a_clear_error() {
    let g = Graph::new();
    let v = g.leaf(x());
    let y = v.apply(TensorSoftplus { bug: false }).sum_all();
    let e = chainrule_tape::try_grad(
        &[&y],
        &[],
        &[&v],
        GradOptions {
            create_graph: true,
            retain_graph: true,
        },
    )
    .unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotDifferentiable);
    assert!(
        e.to_string()
            .starts_with("tensor_softplus: this custom op's backward works on plain tensors"),
        "{e}"
    );
    let r = gradgradcheck(|v| v[0].apply(TensorSoftplus { bug: false }), &[x()]);
    assert!(
        !r.passed()
            && r.error
                .as_deref()
                .unwrap()
                .contains("cannot be differentiated again")
    );
    // First order is fine.
    let [d] = grad(&y, [&v], false);
    assert!((d.value().data()[0] - 1.0 / (1.0 + 3f64.exp())).abs() < 1e-15);
    let _: Var<f64> = d;
}
