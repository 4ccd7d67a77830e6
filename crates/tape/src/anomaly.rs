//! Anomaly mode: find the first op that produced a NaN or an infinity.
//!
//! When on, every node remembers where it was created (the caller's source
//! line, via `#[track_caller]`), and the first non-finite value produced in
//! forward or in backward stops with an error naming the op, that line, and
//! the statistics of the op's inputs. When off, the only cost is one
//! thread-local flag read per op.

use crate::element::Element;
use crate::error::{Error, ErrorKind};
use crate::shape::fmt_shape;
use crate::tensor::Tensor;
use std::cell::{Cell, RefCell};
use std::panic::Location;

thread_local! {
    static ANOMALY: Cell<bool> = const { Cell::new(false) };
    /// The op whose backward is running (anomaly mode only), so a non-finite
    /// value made inside a backward formula is blamed on that op.
    static IN_BACKWARD: RefCell<Option<BackwardScope>> = const { RefCell::new(None) };
}

/// The op whose backward is running, with its creation site and input statistics.
pub(crate) struct BackwardScope {
    pub op: String,
    pub site: Option<&'static Location<'static>>,
    pub inputs: String,
}

/// Restores the enclosing backward scope when dropped.
pub(crate) struct BackwardScopeGuard {
    previous: Option<BackwardScope>,
}

impl Drop for BackwardScopeGuard {
    fn drop(&mut self) {
        let previous = self.previous.take();
        IN_BACKWARD.with(|s| *s.borrow_mut() = previous);
    }
}

/// Marks the start of `op`'s backward (anomaly mode) until the guard drops.
pub(crate) fn enter_backward<'a, T: Element>(
    op: &str,
    site: Option<&'static Location<'static>>,
    inputs: impl Iterator<Item = &'a Tensor<T>>,
) -> BackwardScopeGuard {
    let inputs = inputs
        .enumerate()
        .map(|(i, t)| format!("; input {i}: {}", describe_values(t)))
        .collect();
    let scope = BackwardScope {
        op: op.to_string(),
        site,
        inputs,
    };
    BackwardScopeGuard {
        previous: IN_BACKWARD.with(|s| s.borrow_mut().replace(scope)),
    }
}

fn site_text(site: Option<&'static Location<'static>>) -> String {
    site.map_or(String::new(), |s| {
        format!("; op created at {}:{}:{}", s.file(), s.line(), s.column())
    })
}

/// True inside [`detect_anomaly`] (or after `set_detect_anomaly(true)`) on this thread.
pub fn is_anomaly_enabled() -> bool {
    ANOMALY.with(|a| a.get())
}

/// Restores the previous anomaly mode when dropped.
#[must_use = "anomaly mode is restored when the guard is dropped"]
pub struct AnomalyGuard {
    previous: bool,
}

impl Drop for AnomalyGuard {
    fn drop(&mut self) {
        ANOMALY.with(|a| a.set(self.previous));
    }
}

/// Turns anomaly mode on or off for this thread until the guard is dropped.
pub fn set_detect_anomaly(on: bool) -> AnomalyGuard {
    AnomalyGuard {
        previous: ANOMALY.with(|a| a.replace(on)),
    }
}

/// Runs `f` with anomaly mode on, like `with torch.autograd.detect_anomaly():`.
pub fn detect_anomaly<R>(f: impl FnOnce() -> R) -> R {
    let _guard = set_detect_anomaly(true);
    f()
}

/// min, max and NaN/inf presence of a tensor, for messages.
pub fn describe_values<T: Element>(t: &Tensor<T>) -> String {
    let (mut lo, mut hi, mut nan, mut inf) = (f64::INFINITY, f64::NEG_INFINITY, false, false);
    for &v in t.data() {
        let v = v.as_f64();
        if v.is_nan() {
            nan = true;
        } else {
            inf |= v.is_infinite();
            lo = lo.min(v);
            hi = hi.max(v);
        }
    }
    let range = if lo <= hi {
        format!("min {lo:.6e}, max {hi:.6e}")
    } else {
        "no finite values".to_string()
    };
    format!(
        "{} {range}, NaN: {}, inf: {}",
        fmt_shape(t.shape()),
        if nan { "yes" } else { "no" },
        if inf { "yes" } else { "no" }
    )
}

/// An error if `value` has a NaN or an infinity: names the op, the pass
/// (forward or backward), where the op was created, and its inputs' statistics.
pub(crate) fn check_finite<'a, T: Element>(
    op: &str,
    pass: &str,
    produced: &str,
    value: &Tensor<T>,
    site: Option<&'static Location<'static>>,
    inputs: impl Iterator<Item = &'a Tensor<T>>,
) -> Result<(), Error> {
    if value.data().iter().all(|v| v.is_finite()) {
        return Ok(());
    }
    // Inside an op's backward formula: blame that op, not the helper op.
    let outer = if pass == "forward" {
        IN_BACKWARD.with(|s| {
            s.borrow()
                .as_ref()
                .map(|b| (b.op.clone(), b.site, b.inputs.clone()))
        })
    } else {
        None
    };
    if let Some((outer_op, outer_site, outer_inputs)) = outer {
        let message = format!(
            "backward produced a non-finite gradient in its {op} step ({}){}{}",
            describe_values(value),
            site_text(outer_site),
            outer_inputs
        );
        return Err(Error::new(outer_op, ErrorKind::NonFinite, message));
    }
    let mut message = format!(
        "{pass} produced a non-finite {produced} ({})",
        describe_values(value)
    );
    message.push_str(&site_text(site));
    for (i, t) in inputs.enumerate() {
        message.push_str(&format!("; input {i}: {}", describe_values(t)));
    }
    Err(Error::new(op.to_string(), ErrorKind::NonFinite, message))
}
