//! Custom ops defined outside chainrule's crates, used like built-ins.
//!
//! Implement [`CustomOp`] with a forward on tensors and either
//! - `backward` on plain tensors: first derivatives work everywhere, and
//!   asking for a second derivative (`create_graph`) is a clear error; or
//! - `differentiable_backward` on `Var`s, written with differentiable ops:
//!   then gradients of gradients work too.
//!
//! See `docs/custom-ops.md` and `examples/custom_op.rs`.

use crate::element::Element;
use crate::error::{Error, ErrorKind, Result};
use crate::op::{BackwardContext, InputGrads, Op};
use crate::tensor::Tensor;
use crate::var::Var;

/// A user-defined differentiable operation.
pub trait CustomOp<T: Element>: 'static {
    /// The op's name, used in errors, summaries and traces.
    fn name(&self) -> &str;

    /// The forward computation on plain tensors.
    fn forward(&self, inputs: &[&Tensor<T>]) -> Result<Tensor<T>>;

    /// ∂L/∂input_i from plain tensors, given ∂L/∂output in `grad`; `None`
    /// for inputs that need no gradient. Not differentiable again.
    fn backward(
        &self,
        inputs: &[&Tensor<T>],
        output: &Tensor<T>,
        grad: &Tensor<T>,
    ) -> Result<Vec<Option<Tensor<T>>>> {
        let _ = (inputs, output, grad);
        Err(Error::new(
            self.name().to_string(),
            ErrorKind::NotDifferentiable,
            "this custom op implements neither backward nor differentiable_backward",
        ))
    }

    /// A backward written with differentiable ops on `Var`s (local derivative
    /// × `cx.grad`). Return `Some` to use it instead of [`CustomOp::backward`];
    /// then second and higher derivatives work.
    fn differentiable_backward(
        &self,
        cx: &BackwardContext<'_, T>,
    ) -> Option<Result<InputGrads<T>>> {
        let _ = cx;
        None
    }
}

/// Adapts a [`CustomOp`] to the engine's [`Op`].
struct Custom<O>(O);

impl<T: Element, O: CustomOp<T>> Op<T> for Custom<O> {
    fn name(&self) -> &str {
        self.0.name()
    }

    fn backward(&self, cx: &BackwardContext<'_, T>) -> Result<InputGrads<T>> {
        if let Some(result) = self.0.differentiable_backward(cx) {
            return result;
        }
        if cx.create_graph {
            return Err(Error::new(
                self.0.name().to_string(),
                ErrorKind::NotDifferentiable,
                "this custom op's backward works on plain tensors, so its gradient cannot be differentiated again \
                 (create_graph); implement differentiable_backward with Var ops to allow it",
            ));
        }
        let inputs: Vec<&Tensor<T>> = cx.inputs.iter().map(|v| v.value()).collect();
        let grads = self
            .0
            .backward(&inputs, cx.output.value(), cx.grad.value())?;
        if grads.len() != inputs.len() {
            return Err(Error::argument(
                self.0.name().to_string(),
                format!(
                    "backward returned {} gradients for {} inputs",
                    grads.len(),
                    inputs.len()
                ),
            ));
        }
        Ok(grads.into_iter().map(|g| g.map(Var::constant)).collect())
    }
}

/// Applies a custom op to `inputs`: runs its forward and records it.
#[track_caller]
pub fn apply_custom<T: Element, O: CustomOp<T>>(op: O, inputs: &[&Var<T>]) -> Result<Var<T>> {
    let values: Vec<&Tensor<T>> = inputs.iter().map(|v| v.value()).collect();
    let out = op.forward(&values)?;
    Var::from_op(Custom(op), inputs, out)
}

impl<T: Element> Var<T> {
    /// Applies a unary custom op to this value (see [`CustomOp`]).
    #[track_caller]
    pub fn try_apply<O: CustomOp<T>>(&self, op: O) -> Result<Var<T>> {
        apply_custom(op, &[self])
    }

    /// [`Var::try_apply`], panicking with the op's error.
    #[track_caller]
    pub fn apply<O: CustomOp<T>>(&self, op: O) -> Var<T> {
        crate::error::or_panic(self.try_apply(op))
    }
}
