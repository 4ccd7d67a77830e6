//! A custom op written outside chainrule, checked in one line.
//!
//! softplus(x) = ln(1 + eˣ), computed stably as max(x, 0) + ln(1 + e^−|x|),
//! with derivative σ(x). Run with `cargo run --release --example custom_op`.

use chainrule::prelude::*;
use chainrule::tape::custom::CustomOp;
use chainrule::tape::error::Result;
use smallvec::smallvec;

fn stable_softplus(x: f64) -> f64 {
    x.max(0.0) + (-x.abs()).exp().ln_1p()
}

/// softplus with a differentiable backward: grad · σ(x), written with Var ops.
struct Softplus;
impl CustomOp<f64> for Softplus {
    fn name(&self) -> &str {
        "softplus"
    }
    fn forward(&self, inputs: &[&Tensor<f64>]) -> Result<Tensor<f64>> {
        Ok(inputs[0].map(stable_softplus))
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

/// The same op with a typo in its backward: σ(x) written as 1/(1 + eˣ) = σ(−x).
struct BuggySoftplus;
impl CustomOp<f64> for BuggySoftplus {
    fn name(&self) -> &str {
        "buggy_softplus"
    }
    fn forward(&self, inputs: &[&Tensor<f64>]) -> Result<Tensor<f64>> {
        Ok(inputs[0].map(stable_softplus))
    }
    fn backward(
        &self,
        inputs: &[&Tensor<f64>],
        _out: &Tensor<f64>,
        grad: &Tensor<f64>,
    ) -> Result<Vec<Option<Tensor<f64>>>> {
        let local = inputs[0].map(|x| 1.0 / (1.0 + x.exp()));
        Ok(vec![Some(grad.broadcast_zip(
            &local,
            "buggy_softplus",
            |g, l| g * l,
        )?)])
    }
}

/// Right first derivative on plain tensors, but not differentiable again.
struct TensorSoftplus;
impl CustomOp<f64> for TensorSoftplus {
    fn name(&self) -> &str {
        "tensor_softplus"
    }
    fn forward(&self, inputs: &[&Tensor<f64>]) -> Result<Tensor<f64>> {
        Ok(inputs[0].map(stable_softplus))
    }
    fn backward(
        &self,
        inputs: &[&Tensor<f64>],
        _out: &Tensor<f64>,
        grad: &Tensor<f64>,
    ) -> Result<Vec<Option<Tensor<f64>>>> {
        let local = inputs[0].map(|x| 1.0 / (1.0 + (-x).exp()));
        Ok(vec![Some(grad.broadcast_zip(
            &local,
            "tensor_softplus",
            |g, l| g * l,
        )?)])
    }
}

fn main() {
    let x = Tensor::from_vec([2, 3], vec![-3.0, -0.5, 0.0, 0.25, 2.0, 800.0]);
    println!(
        "softplus({:?}) = {:?}",
        x.data(),
        x.map(stable_softplus).data()
    );

    let report = gradgradcheck(|v| v[0].apply(Softplus), std::slice::from_ref(&x));
    println!("\nSoftplus, differentiable backward:\n{report}");

    let report = gradcheck(|v| v[0].apply(BuggySoftplus), std::slice::from_ref(&x));
    println!("BuggySoftplus (σ(−x) instead of σ(x)):\n{report}");

    let first = gradcheck(|v| v[0].apply(TensorSoftplus), std::slice::from_ref(&x));
    let second = gradgradcheck(|v| v[0].apply(TensorSoftplus), std::slice::from_ref(&x));
    println!("TensorSoftplus, backward on plain tensors:\n{first}{second}");
}
