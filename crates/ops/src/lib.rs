#![warn(missing_docs)]
//! # chainrule-ops
//!
//! Every differentiable op beyond the arithmetic operators: forward kernel and
//! backward formula side by side, one family per file, plus the op
//! [`registry`] that drives gradcheck over all of them.
//!
//! User code calls ops as methods through the [`VarOps`] trait
//! (`use chainrule::prelude::*`). Each has a fallible `try_` form returning a
//! typed [`Error`](chainrule_tape::Error) and a plain form that panics with
//! the same message at the caller's line.

pub mod binary;
pub mod matmul;
pub mod reduce;
pub mod registry;
pub mod shape_ops;
pub mod unary;

use chainrule_tape::error::{or_panic, Result};
use chainrule_tape::{Element, Var};

macro_rules! fallible {
    ($(#[$doc:meta])* $name:ident / $try_name:ident ( $($arg:ident : $ty:ty),* ) => |$x:ident| $body:expr) => {
        $(#[$doc])*
        #[track_caller]
        fn $try_name(&self, $($arg: $ty),*) -> Result<Var<T>> {
            let $x = self.var();
            $body
        }
        $(#[$doc])*
        ///
        /// Panics with the op's error message; see the `try_` form.
        #[track_caller]
        fn $name(&self, $($arg: $ty),*) -> Var<T> {
            or_panic(self.$try_name($($arg),*))
        }
    };
}

/// The differentiable ops, as methods on [`Var`].
///
/// ```
/// use chainrule_ops::VarOps;
/// use chainrule_tape::{grad, Graph, Tensor};
/// let g = Graph::new();
/// let w = g.leaf(Tensor::scalar(-1.5f64));
/// let y = (&w * 0.5 + 0.2).tanh();                 // tanh(w·x + b)
/// let [dy] = grad(&y, [&w], true);
/// let [d2y] = grad(&dy, [&w], false);
/// let t = y.item();
/// assert!((dy.item() - 0.5 * (1.0 - t * t)).abs() < 1e-15);
/// assert!((d2y.item() - (-2.0 * t * (1.0 - t * t) * 0.25)).abs() < 1e-15);
/// ```
pub trait VarOps<T: Element> {
    /// The value the ops apply to.
    fn var(&self) -> &Var<T>;

    fallible!(/// eˣ elementwise.
        exp / try_exp() => |x| unary::exp(x));
    fallible!(/// ln x elementwise.
        log / try_log() => |x| unary::log(x));
    fallible!(/// √x elementwise.
        sqrt / try_sqrt() => |x| unary::sqrt(x));
    fallible!(/// |x| elementwise (gradient sign(x), 0 at 0).
        abs / try_abs() => |x| unary::abs(x));
    fallible!(/// sin x elementwise.
        sin / try_sin() => |x| unary::sin(x));
    fallible!(/// cos x elementwise.
        cos / try_cos() => |x| unary::cos(x));
    fallible!(/// tanh x elementwise.
        tanh / try_tanh() => |x| unary::tanh(x));
    fallible!(/// σ(x) = 1/(1 + e^−x) elementwise, computed stably.
        sigmoid / try_sigmoid() => |x| unary::sigmoid(x));
    fallible!(/// max(x, 0) elementwise (gradient 0 at 0).
        relu / try_relu() => |x| unary::relu(x));
    fallible!(/// xᵖ elementwise for a scalar exponent p.
        powf / try_powf(p: T) => |x| unary::pow_scalar(x, p));
    fallible!(/// x² elementwise.
        square / try_square() => |x| unary::pow_scalar(x, T::from_f64(2.0)));
    fallible!(/// xʸ elementwise with broadcasting.
        pow / try_pow(exponent: &Var<T>) => |x| binary::pow(x, exponent));
    fallible!(/// Elementwise max(x, y) with broadcasting; ties split the gradient.
        maximum / try_maximum(other: &Var<T>) => |x| binary::extremum(x, other, true));
    fallible!(/// Elementwise min(x, y) with broadcasting; ties split the gradient.
        minimum / try_minimum(other: &Var<T>) => |x| binary::extremum(x, other, false));
    fallible!(/// Σ over `axes` (negative axes count from the end; empty means all).
        sum / try_sum(axes: &[isize], keepdim: bool) => |x| reduce::sum(x, axes, keepdim));
    fallible!(/// Σ of all elements, as a 0-dimensional value.
        sum_all / try_sum_all() => |x| reduce::sum(x, &[], false));
    fallible!(/// Mean over `axes` (empty means all).
        mean / try_mean(axes: &[isize], keepdim: bool) => |x| reduce::mean(x, axes, keepdim));
    fallible!(/// Mean of all elements.
        mean_all / try_mean_all() => |x| reduce::mean(x, &[], false));
    fallible!(/// Max over `axes` (NaN propagates; ties share the gradient, like `torch.amax`).
        max / try_max(axes: &[isize], keepdim: bool) => |x| reduce::extreme(x, axes, keepdim, true));
    fallible!(/// Max of all elements.
        max_all / try_max_all() => |x| reduce::extreme(x, &[], false, true));
    fallible!(/// Min over `axes` (NaN propagates; ties share the gradient, like `torch.amin`).
        min / try_min(axes: &[isize], keepdim: bool) => |x| reduce::extreme(x, axes, keepdim, false));
    fallible!(/// Min of all elements.
        min_all / try_min_all() => |x| reduce::extreme(x, &[], false, false));
    fallible!(/// Matrix product over the last two dimensions; batch dimensions broadcast;
        /// 1-D operands follow `torch.matmul`.
        matmul / try_matmul(other: &Var<T>) => |x| matmul::matmul(x, other));
    fallible!(/// `op(self)·op(other)` with optional transposes read as strides (no copy).
        matmul_t / try_matmul_t(other: &Var<T>, trans_self: bool, trans_other: bool)
            => |x| matmul::matmul_t(x, other, trans_self, trans_other));
    fallible!(/// The same elements in a new shape; one dimension may be −1.
        reshape / try_reshape(shape: &[isize]) => |x| shape_ops::reshape(x, shape));
    fallible!(/// The same elements in an explicit new shape.
        reshape_to / try_reshape_to(shape: &[usize]) => |x| shape_ops::reshape_to(x, shape));
    fallible!(/// Dimensions reordered: output dimension i is input dimension `perm[i]`.
        permute / try_permute(perm: &[usize]) => |x| shape_ops::permute(x, perm));
    fallible!(/// Two dimensions swapped.
        transpose / try_transpose(d0: isize, d1: isize) => |x| shape_ops::transpose(x, d0, d1));
    fallible!(/// The last two dimensions swapped (matrix transpose).
        t / try_t() => |x| shape_ops::transpose(x, -2, -1));
}

impl<T: Element> VarOps<T> for Var<T> {
    fn var(&self) -> &Var<T> {
        self
    }
}
