//! Grad mode: whether ops record onto the graph (per thread, like PyTorch).

use std::cell::Cell;

thread_local! {
    static GRAD_ENABLED: Cell<bool> = const { Cell::new(true) };
}

/// True unless inside a [`no_grad`] scope on this thread.
pub fn is_grad_enabled() -> bool {
    GRAD_ENABLED.with(|g| g.get())
}

/// Restores the previous grad mode when dropped.
#[must_use = "grad mode is restored when the guard is dropped"]
pub struct GradModeGuard {
    previous: bool,
}

impl Drop for GradModeGuard {
    fn drop(&mut self) {
        GRAD_ENABLED.with(|g| g.set(self.previous));
    }
}

/// Sets grad mode for this thread until the returned guard is dropped.
pub fn set_grad_enabled(enabled: bool) -> GradModeGuard {
    let previous = GRAD_ENABLED.with(|g| g.replace(enabled));
    GradModeGuard { previous }
}

/// Runs `f` with recording off: ops compute values but add no nodes, like
/// `with torch.no_grad():`.
///
/// ```
/// use chainrule_tape::{no_grad, Graph, Tensor};
/// let g = Graph::new();
/// let x = g.leaf(Tensor::scalar(2.0f64));
/// let y = no_grad(|| &x * &x);
/// assert!(!y.requires_grad());
/// ```
pub fn no_grad<R>(f: impl FnOnce() -> R) -> R {
    let _guard = set_grad_enabled(false);
    f()
}
