//! The `Op` trait: what every differentiable operation provides to the engine.

use crate::element::Element;
use crate::error::Result;
use crate::var::Var;
use smallvec::SmallVec;

/// Gradients an op's backward returns: one entry per input, `None` where the
/// input needs none (or the gradient is structurally zero).
pub type InputGrads<T> = SmallVec<[Option<Var<T>>; 2]>;

/// What an op's backward sees: its inputs and output as [`Var`]s and the
/// upstream gradient ∂L/∂output.
///
/// Under `create_graph` these are live graph nodes, so a backward written
/// with differentiable ops is itself recorded and can be differentiated
/// again. Otherwise they are constants and the same code just computes.
pub struct BackwardContext<'a, T: Element> {
    /// The op's inputs, in the order they were passed at forward time.
    pub inputs: &'a [Var<T>],
    /// The op's output.
    pub output: &'a Var<T>,
    /// The upstream gradient, shaped like the output.
    pub grad: &'a Var<T>,
    /// `needs_grad[i]`: whether input `i` wants a gradient (skip the rest).
    pub needs_grad: &'a [bool],
    /// Whether the backward pass is itself being recorded.
    pub create_graph: bool,
}

impl<'a, T: Element> BackwardContext<'a, T> {
    /// Input `i`.
    pub fn input(&self, i: usize) -> &'a Var<T> {
        &self.inputs[i]
    }

    /// Whether input `i` wants a gradient.
    pub fn needs(&self, i: usize) -> bool {
        self.needs_grad[i]
    }
}

/// A differentiable operation recorded on the graph.
///
/// An op computes its forward value eagerly (outside this trait) and records
/// itself with [`Var::from_op`]. Its `backward` maps the upstream gradient to
/// one gradient per input, written with differentiable ops on `Var`s (the
/// chain rule: local derivative × upstream), so that double backward works.
pub trait Op<T: Element>: 'static {
    /// Short name used in errors, summaries and the registry (`"matmul"`).
    fn name(&self) -> &str;

    /// A description with the op's parameters, for graph summaries
    /// (`"sum(axes=[1], keepdim=true)"`). Defaults to the name.
    fn describe(&self) -> String {
        self.name().to_string()
    }

    /// The local derivative ∂output/∂input_i as a formula, for backward
    /// traces (`"1 − y²"`); `x`/`a`/`b` name the inputs and `y` the output.
    fn formula(&self, input: usize) -> Option<String> {
        let _ = input;
        None
    }

    /// ∂L/∂input for each input, given ∂L/∂output in `cx.grad`.
    fn backward(&self, cx: &BackwardContext<'_, T>) -> Result<InputGrads<T>>;
}
