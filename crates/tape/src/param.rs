//! `Parameter<T>`: a trainable tensor that outlives graphs, with its accumulated gradient.

use crate::element::Element;
use crate::tensor::Tensor;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// A trainable tensor shared between a model and its optimizer.
///
/// A parameter owns its value and the gradient accumulated into it by
/// `backward` (like `torch.nn.Parameter.grad`). Graphs only borrow the value
/// for one step: `graph.param(&p)` records a leaf whose gradient flows back
/// into `p`. Clones are handles to the same parameter.
#[derive(Clone)]
pub struct Parameter<T: Element = f32> {
    inner: Arc<RwLock<ParamState<T>>>,
}

struct ParamState<T: Element> {
    value: Tensor<T>,
    grad: Option<Tensor<T>>,
    requires_grad: bool,
}

impl<T: Element> Parameter<T> {
    /// A new parameter holding `value`, requiring grad.
    pub fn new(value: Tensor<T>) -> Self {
        Parameter {
            inner: Arc::new(RwLock::new(ParamState {
                value,
                grad: None,
                requires_grad: true,
            })),
        }
    }

    fn read(&self) -> RwLockReadGuard<'_, ParamState<T>> {
        // A poisoned lock only means another thread panicked mid-update; the
        // tensor inside is still a valid tensor, so keep going.
        self.inner.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, ParamState<T>> {
        self.inner.write().unwrap_or_else(|p| p.into_inner())
    }

    /// The current value (a cheap, storage-sharing clone).
    pub fn value(&self) -> Tensor<T> {
        self.read().value.clone()
    }

    /// The value's shape.
    pub fn shape(&self) -> Vec<usize> {
        self.read().value.shape().to_vec()
    }

    /// The number of elements.
    pub fn numel(&self) -> usize {
        self.read().value.numel()
    }

    /// Replaces the value.
    pub fn set_value(&self, value: Tensor<T>) {
        self.write().value = value;
    }

    /// The accumulated gradient, if any backward reached this parameter.
    pub fn grad(&self) -> Option<Tensor<T>> {
        self.read().grad.clone()
    }

    /// Replaces (or clears) the accumulated gradient.
    pub fn set_grad(&self, grad: Option<Tensor<T>>) {
        self.write().grad = grad;
    }

    /// Clears the gradient (PyTorch's `zero_grad(set_to_none=True)`).
    pub fn zero_grad(&self) {
        self.write().grad = None;
    }

    /// Whether backward accumulates into this parameter.
    pub fn requires_grad(&self) -> bool {
        self.read().requires_grad
    }

    /// Freezes (`false`) or unfreezes the parameter.
    pub fn set_requires_grad(&self, on: bool) {
        self.write().requires_grad = on;
    }

    /// Adds `g` into the accumulated gradient (in place when unshared).
    pub fn accumulate_grad(&self, g: &Tensor<T>) {
        let mut state = self.write();
        match &mut state.grad {
            Some(acc) => crate::tensor_ops::add_assign(acc, g),
            slot @ None => *slot = Some(g.clone()),
        }
    }

    /// Updates value in place: `f(value, grad)`; the value's storage is copied
    /// first only if a live graph still shares it.
    pub fn update(&self, f: impl FnOnce(&mut Tensor<T>, Option<&Tensor<T>>)) {
        let mut state = self.write();
        let ParamState { value, grad, .. } = &mut *state;
        f(value, grad.as_ref());
    }

    /// True when both handles point at the same parameter.
    pub fn same_as(&self, other: &Parameter<T>) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }
}

impl<T: Element> std::fmt::Debug for Parameter<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = self.read();
        write!(
            f,
            "Parameter({:?}, grad: {})",
            s.value,
            if s.grad.is_some() { "set" } else { "none" }
        )
    }
}
