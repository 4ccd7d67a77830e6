//! Non-differentiable tensor arithmetic: the forward kernels behind ops,
//! usable directly on plain tensors.

use crate::element::Element;
use crate::error::{Error, Result};
use crate::kernels;
use crate::shape::{
    broadcast_axes, broadcast_shapes, broadcast_strides, check_broadcastable, contiguous_strides,
    fmt_shape, numel, reduced_shape, try_with_capacity, Shape,
};
use crate::tensor::Tensor;

/// `acc += g` elementwise (shapes must match); in place when `acc` is unshared.
pub fn add_assign<T: Element>(acc: &mut Tensor<T>, g: &Tensor<T>) {
    assert!(
        acc.same_shape(g),
        "add_assign: shapes {:?} and {:?} differ",
        acc.shape(),
        g.shape()
    );
    if acc.numel() == 1 {
        acc.data_mut()[0] = acc.data()[0] + g.data()[0];
    } else {
        kernels::zip_assign(acc.data_mut(), g.data(), |a, b| a + b);
    }
}

impl<T: Element> Tensor<T> {
    /// `f(a, b)` elementwise with NumPy broadcasting; `op` names the caller in errors.
    ///
    /// One element ⊕ one element of the same shape is computed inline; the
    /// general path is a separate function, so this common case (scalar
    /// graphs, and every scalar backward formula) pays no large call frame.
    #[inline]
    pub fn broadcast_zip(
        &self,
        other: &Tensor<T>,
        op: &'static str,
        f: impl Fn(T, T) -> T + Sync + Send,
    ) -> Result<Tensor<T>> {
        match self.zip_single(other, &f) {
            Some(t) => Ok(t),
            None => self.broadcast_zip_general(other, op, f),
        }
    }

    /// [`Tensor::broadcast_zip`] for everything but one element ⊕ one element.
    #[inline(never)]
    fn broadcast_zip_general(
        &self,
        other: &Tensor<T>,
        op: &'static str,
        f: impl Fn(T, T) -> T + Sync + Send,
    ) -> Result<Tensor<T>> {
        if self.shape() == other.shape() {
            return Ok(Tensor::from_parts(
                self.shape().into(),
                kernels::zip_map(self.data(), other.data(), f),
            ));
        }
        let out = broadcast_shapes(op, self.shape(), other.shape())?;
        if other.numel() == 1 && out.as_slice() == self.shape() {
            let b = other.data()[0];
            return Ok(Tensor::from_parts(
                out,
                kernels::map(self.data(), |a| f(a, b)),
            ));
        }
        if self.numel() == 1 && out.as_slice() == other.shape() {
            let a = self.data()[0];
            return Ok(Tensor::from_parts(
                out,
                kernels::map(other.data(), |b| f(a, b)),
            ));
        }
        let sa = broadcast_strides(self.shape(), &out);
        let sb = broadcast_strides(other.shape(), &out);
        // The output can outgrow both operands ([N, 1] + [1, M]): reserved
        // fallibly, so a refused allocation is an error, not an abort.
        let buffer = try_with_capacity(op, numel(&out))?;
        let data =
            kernels::binary_broadcast((self.data(), &sa), (other.data(), &sb), &out, f, buffer);
        Ok(Tensor::from_parts(out, data))
    }

    /// Reduces over the given (normalised, sorted) axes with `combine` from `init`.
    pub fn reduce_axes(
        &self,
        axes: &[usize],
        keepdim: bool,
        init: T,
        combine: impl Fn(T, T) -> T + Sync + Send,
    ) -> Tensor<T> {
        let data = kernels::reduce(self.data(), self.shape(), axes, init, combine);
        Tensor::from_parts(reduced_shape(self.shape(), axes, keepdim), data)
    }

    /// Sum over the given (normalised, sorted) axes.
    pub fn sum_axes(&self, axes: &[usize], keepdim: bool) -> Tensor<T> {
        self.reduce_axes(axes, keepdim, T::zero(), |a, b| a + b)
    }

    /// Sum of all elements, as a 0-dimensional tensor.
    pub fn sum_all(&self) -> Tensor<T> {
        let axes: Shape = (0..self.rank()).collect();
        self.sum_axes(&axes, false)
    }

    /// Sums a tensor down to `shape`, the inverse of broadcasting to this tensor's shape.
    pub fn sum_to(&self, shape: &[usize]) -> Result<Tensor<T>> {
        check_broadcastable("sum_to", shape, self.shape())?;
        if shape == self.shape() {
            return Ok(self.clone());
        }
        let axes = broadcast_axes(shape, self.shape());
        let kept = self.sum_axes(&axes, true);
        kept.try_reshape(shape)
    }

    /// A contiguous copy broadcast to `shape` (NumPy rules).
    pub fn broadcast_to(&self, shape: &[usize]) -> Result<Tensor<T>> {
        check_broadcastable("broadcast_to", self.shape(), shape)?;
        if shape == self.shape() {
            return Ok(self.clone());
        }
        if self.numel() == 1 {
            return Tensor::try_full(shape, self.data()[0]);
        }
        let n = crate::shape::try_numel("broadcast_to", shape)?;
        let buffer = try_with_capacity("broadcast_to", n)?;
        let strides = broadcast_strides(self.shape(), shape);
        Ok(Tensor::from_parts(
            shape.into(),
            kernels::gather_strided(self.data(), shape, &strides, buffer),
        ))
    }

    /// A contiguous copy with dimensions reordered: output dimension `i` is input dimension `perm[i]`.
    pub fn permute(&self, perm: &[usize]) -> Result<Tensor<T>> {
        let rank = self.rank();
        let mut seen = vec![false; rank];
        let valid = perm.len() == rank
            && perm
                .iter()
                .all(|&p| p < rank && !std::mem::replace(&mut seen[p], true));
        if !valid {
            return Err(Error::argument(
                "permute",
                format!(
                    "{:?} is not a permutation of the {} dimensions of {}",
                    perm,
                    rank,
                    fmt_shape(self.shape())
                ),
            ));
        }
        let src = contiguous_strides(self.shape());
        let out_shape: Shape = perm.iter().map(|&p| self.shape()[p]).collect();
        let strides: Shape = perm.iter().map(|&p| src[p]).collect();
        Ok(Tensor::from_parts(
            out_shape.clone(),
            kernels::gather_strided(
                self.data(),
                &out_shape,
                &strides,
                Vec::with_capacity(self.numel()),
            ),
        ))
    }
}
