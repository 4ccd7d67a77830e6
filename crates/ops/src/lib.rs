#![deny(missing_docs)]
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
//!
//! ```
//! use chainrule_ops::VarOps;
//! use chainrule_tape::{Graph, Tensor};
//!
//! let g = Graph::new();
//! let x = g.leaf(Tensor::from_vec([2, 3], vec![1.0f64, 2.0, 3.0, -1.0, 0.0, 1.0]));
//! // softmax along the last axis: each row sums to 1.
//! let p = x.softmax(-1);
//! assert!((p.sum_all().item() - 2.0).abs() < 1e-12);
//! // ∂/∂x_i Σ_j x_j·p_j = p_i·(1 + x_i − Σ_j p_j·x_j), row by row.
//! (&x * &p).sum_all().backward();
//! let (dx, pv, xv) = (x.grad().unwrap(), p.value().clone(), x.value().clone());
//! for row in 0..2 {
//!     let r = 3 * row..3 * row + 3;
//!     let mean: f64 = r.clone().map(|i| pv.data()[i] * xv.data()[i]).sum();
//!     for i in r {
//!         let want = pv.data()[i] * (1.0 + xv.data()[i] - mean);
//!         assert!((dx.data()[i] - want).abs() < 1e-12); // rounding only
//!     }
//! }
//! // The try_ form returns the error (naming the op and the shape) instead of panicking.
//! let err = x.try_softmax(2).unwrap_err();
//! assert!(err.to_string().contains("softmax"), "{err}");
//! ```

/// Declares the panicking twin `x` of a free function `try_x` (the crate's
/// one rule: `try_x` returns `Result`, `x` is the same call that panics
/// with the error's message at the caller's line). Generics go in brackets.
macro_rules! panicking_twin {
    ($(#[$doc:meta])* $name:ident / $try_name:ident [$($gen:tt)*] ( $($arg:ident : $ty:ty),* $(,)? ) -> $ret:ty) => {
        $(#[$doc])*
        ///
        /// # Panics
        ///
        #[doc = concat!("With the error [`", stringify!($try_name), "`] returns, at the caller's line.")]
        #[track_caller]
        #[allow(clippy::too_many_arguments)]
        pub fn $name<$($gen)*>($($arg: $ty),*) -> $ret {
            chainrule_tape::error::or_panic($try_name($($arg),*))
        }
    };
}

pub mod activations;
pub mod binary;
pub mod conv;
pub mod helpers;
pub mod indexing;
pub mod loss;
pub mod matmul;
pub mod norm;
pub mod pool;
pub mod reduce;
#[cfg(feature = "strategies")]
pub mod registry;
pub mod shape_ops;
pub mod softmax;
pub mod unary;

pub use activations::GeluApproximation;
pub use conv::{
    conv1d, conv2d, conv_transpose2d, try_conv1d, try_conv2d, try_conv_transpose2d, Conv1dOptions,
    Conv2dOptions, ConvTranspose2dOptions, Size2, Window,
};
pub use helpers::{
    argmax, argmin, one_hot, topk_indices, try_argmax, try_argmin, try_one_hot, try_topk_indices,
    Compare,
};
pub use indexing::{try_where_, where_, Indices};
pub use loss::{ClassLossOptions, Reduction};
pub use matmul::Transpose;
pub use norm::{batch_norm, dropout, layer_norm, try_batch_norm, try_dropout, try_layer_norm};
pub use pool::{
    adaptive_avg_pool2d, avg_pool2d, max_pool2d, try_adaptive_avg_pool2d, try_avg_pool2d,
    try_max_pool2d, Pool2dOptions,
};
pub use shape_ops::{concat, stack, try_concat, try_stack};

use chainrule_tape::error::{or_panic, Result};
use chainrule_tape::{Element, Tensor, Var};

macro_rules! fallible {
    ($(#[$doc:meta])* $name:ident / $try_name:ident ( $($arg:ident : $ty:ty),* ) => |$x:ident| $body:expr) => {
        $(#[$doc])*
        #[track_caller]
        fn $try_name(&self, $($arg: $ty),*) -> Result<Var<T>> {
            // Every method has an entry in the registry's public-op table
            // (a compile error otherwise), so the coverage test sees it.
            #[cfg(feature = "strategies")]
            const _: &str = crate::registry::api::$name;
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

    /// `torch.max(x, dim, keepdim)`: the maxima along `dim` and their
    /// indices (values, indices). Named `max_dim` because Rust has no
    /// overloading and [`VarOps::max`] is `torch.amax`. The index is the
    /// first maximum (NaN counts as the maximum), and the gradient goes to
    /// that element only, as PyTorch's `max` with `dim`.
    #[track_caller]
    fn try_max_dim(&self, dim: isize, keepdim: bool) -> Result<(Var<T>, Indices)> {
        reduce::extreme_dim(self.var(), dim, keepdim, true)
    }
    /// `torch.max(x, dim, keepdim)` as [`VarOps::try_max_dim`].
    ///
    /// # Panics
    ///
    /// With the error `try_max_dim` returns, at the caller's line.
    #[track_caller]
    fn max_dim(&self, dim: isize, keepdim: bool) -> (Var<T>, Indices) {
        or_panic(self.try_max_dim(dim, keepdim))
    }
    /// `torch.min(x, dim, keepdim)`: as [`VarOps::try_max_dim`] for the minima.
    #[track_caller]
    fn try_min_dim(&self, dim: isize, keepdim: bool) -> Result<(Var<T>, Indices)> {
        reduce::extreme_dim(self.var(), dim, keepdim, false)
    }
    /// `torch.min(x, dim, keepdim)` as [`VarOps::try_min_dim`].
    ///
    /// # Panics
    ///
    /// With the error `try_min_dim` returns, at the caller's line.
    #[track_caller]
    fn min_dim(&self, dim: isize, keepdim: bool) -> (Var<T>, Indices) {
        or_panic(self.try_min_dim(dim, keepdim))
    }
    fallible!(/// Min over `axes` (NaN propagates; ties share the gradient, like `torch.amin`).
        min / try_min(axes: &[isize], keepdim: bool) => |x| reduce::extreme(x, axes, keepdim, false));
    fallible!(/// Min of all elements.
        min_all / try_min_all() => |x| reduce::extreme(x, &[], false, false));
    fallible!(/// Matrix product over the last two dimensions; batch dimensions broadcast;
        /// 1-D operands follow `torch.matmul`.
        matmul / try_matmul(other: &Var<T>) => |x| matmul::matmul(x, other));
    fallible!(/// `op(self)·op(other)`, the transposes chosen by [`Transpose`] and read
        /// as strides (no copy): `x.matmul_t(&w, Transpose::Second)` is x·wᵀ.
        matmul_t / try_matmul_t(other: &Var<T>, transpose: Transpose)
            => |x| matmul::try_matmul_t(x, other, transpose));
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

    fallible!(/// leaky_relu: x for x > 0, slope·x otherwise (PyTorch's default slope is 0.01).
        leaky_relu / try_leaky_relu(slope: T) => |x| activations::leaky_relu(x, slope));
    fallible!(/// elu: x for x > 0, α(eˣ − 1) otherwise (α = 1 by default in PyTorch).
        elu / try_elu(alpha: T) => |x| activations::elu(x, alpha));
    fallible!(/// selu: scale·elu(x, α) with Klambauer et al.'s constants.
        selu / try_selu() => |x| activations::selu(x));
    fallible!(/// gelu: x·Φ(x) (`GeluApproximation::None`) or its tanh approximation
        /// (`GeluApproximation::Tanh`), PyTorch's `F.gelu(x, approximate=...)`.
        gelu / try_gelu(approximate: GeluApproximation) => |x| activations::gelu(x, approximate));
    fallible!(/// softplus: (1/β)·ln(1 + e^(βx)), linear where βx > threshold (PyTorch: β = 1, threshold = 20).
        softplus / try_softplus(beta: T, threshold: T) => |x| activations::softplus(x, beta, threshold));
    fallible!(/// silu (swish): x·σ(x).
        silu / try_silu() => |x| activations::silu(x));
    fallible!(/// mish: x·tanh(softplus(x)).
        mish / try_mish() => |x| activations::mish(x));
    fallible!(/// hardtanh: clamp to [lo, hi] with zero gradient at the bounds (PyTorch: −1, 1).
        hardtanh / try_hardtanh(lo: T, hi: T) => |x| activations::clamp(x, lo, hi, false));
    fallible!(/// clamp to [lo, hi] (gradient 1 at the bounds, as `torch.clamp`).
        clamp / try_clamp(lo: T, hi: T) => |x| activations::clamp(x, lo, hi, true));
    fallible!(/// softsign: x/(1 + |x|).
        softsign / try_softsign() => |x| activations::softsign(x));
    fallible!(/// log σ(x), computed stably.
        log_sigmoid / try_log_sigmoid() => |x| activations::log_sigmoid(x));

    fallible!(/// softmax along `axis`: exp(x − logsumexp(x)), stable for any magnitude.
        softmax / try_softmax(axis: isize) => |x| softmax::softmax(x, axis));
    fallible!(/// log_softmax along `axis`: x − logsumexp(x).
        log_softmax / try_log_softmax(axis: isize) => |x| softmax::log_softmax(x, axis));
    fallible!(/// ln Σ exp(x) along `axis`, computed as m + ln Σ exp(x − m).
        logsumexp / try_logsumexp(axis: isize, keepdim: bool) => |x| softmax::logsumexp(x, axis, keepdim));

    fallible!(/// `x[..., start:end:step, ...]` along `axis`.
        slice / try_slice(axis: isize, start: usize, end: usize, step: usize) => |x| indexing::slice(x, axis, start, end, step));
    fallible!(/// `len` elements from `start` along `axis` (`torch.narrow`).
        narrow / try_narrow(axis: isize, start: usize, len: usize) => |x| indexing::narrow(x, axis, start, len));
    fallible!(/// The entries `index` (1-D) along `axis` (`torch.index_select`).
        index_select / try_index_select(axis: isize, index: &Indices) => |x| indexing::index_select(x, axis, index));
    fallible!(/// `out[p] = x[p with p[axis] = index[p]]` (`torch.gather`).
        gather / try_gather(axis: isize, index: &Indices) => |x| indexing::gather(x, axis, index));
    fallible!(/// x plus `src` scattered along `axis` at `index`, collisions summed (`torch.scatter_add`).
        scatter_add / try_scatter_add(axis: isize, index: &Indices, src: &Var<T>) => |x| indexing::scatter_add(x, axis, index, src));
    fallible!(/// A size-1 dimension inserted at `axis`.
        unsqueeze / try_unsqueeze(axis: isize) => |x| shape_ops::unsqueeze(x, axis));
    fallible!(/// Size-1 dimensions removed (`axis` only, or all).
        squeeze / try_squeeze(axis: Option<isize>) => |x| shape_ops::squeeze(x, axis));
    fallible!(/// Dimensions `start..=end` merged (`torch.flatten`).
        flatten / try_flatten(start: isize, end: isize) => |x| shape_ops::flatten(x, start, end));
    fallible!(/// Broadcast to `shape`, −1 keeping a dimension (`torch.expand`).
        expand / try_expand(shape: &[isize]) => |x| shape_ops::expand(x, shape));
    fallible!(/// Tiled `reps[i]` times along dimension i (`torch.Tensor.repeat`).
        repeat / try_repeat(reps: &[usize]) => |x| shape_ops::repeat(x, reps));
    fallible!(/// Constant padding, (before, after) pairs from the last dimension back (`F.pad`).
        pad / try_pad(pads: &[usize], value: T) => |x| indexing::pad(x, pads, value));
    fallible!(/// `value` where `mask` is nonzero (`torch.masked_fill`).
        masked_fill / try_masked_fill(mask: &Tensor<T>, value: T) => |x| indexing::masked_fill(x, mask, value));

    /// Pieces of `size` along `axis` (the last may be smaller), as `torch.split`.
    fn try_split(&self, size: usize, axis: isize) -> Result<Vec<Var<T>>> {
        shape_ops::split(self.var(), size, axis)
    }
    /// `chunks` near-equal pieces along `axis`, as `torch.chunk`.
    fn try_chunk(&self, chunks: usize, axis: isize) -> Result<Vec<Var<T>>> {
        shape_ops::chunk(self.var(), chunks, axis)
    }
}

impl<T: Element> VarOps<T> for Var<T> {
    fn var(&self) -> &Var<T> {
        self
    }
}
