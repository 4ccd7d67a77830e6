//! `Tensor<T>`: an n-dimensional, row-major array with shared, copy-on-write storage.

use crate::element::Element;
use crate::error::{Error, Result};
use crate::kernels;
use crate::shape::{fmt_shape, numel, try_numel, Shape};
use rand::Rng;
use rand_distr::{Distribution, StandardNormal};
use std::fmt;
use std::sync::Arc;

/// An n-dimensional array of `f32` or `f64`, row-major and contiguous.
///
/// Cloning is cheap: clones share storage, and mutation copies only when the
/// storage is shared (copy-on-write through [`Tensor::data_mut`]).
///
/// ```
/// use chainrule_tape::Tensor;
/// let t = Tensor::from_vec([2, 3], vec![1.0f64, 2.0, 3.0, 4.0, 5.0, 6.0]);
/// assert_eq!(t.shape(), &[2, 3]);
/// assert_eq!(t.reshape([3, 2]).data()[4], 5.0);
/// ```
#[derive(Clone)]
pub struct Tensor<T: Element> {
    data: Storage<T>,
    shape: Shape,
}

/// Element storage. One-element tensors (scalars, `[1]`, `[1, 1]`...) are
/// stored inline: per-op overhead on scalar graphs is dominated by
/// allocation otherwise. Everything else is shared, copy-on-write.
#[derive(Clone)]
enum Storage<T> {
    Single(T),
    Shared(Arc<Vec<T>>),
}

impl<T: Element> Storage<T> {
    fn from_vec(data: Vec<T>) -> Self {
        if data.len() == 1 {
            Storage::Single(data[0])
        } else {
            Storage::Shared(Arc::new(data))
        }
    }

    fn as_slice(&self) -> &[T] {
        match self {
            Storage::Single(v) => std::slice::from_ref(v),
            Storage::Shared(a) => a,
        }
    }
}

impl<T: Element> Tensor<T> {
    /// Builds a tensor from a shape and row-major data; errors if the lengths
    /// differ or the shape's element count overflows ([`crate::ErrorKind::Overflow`]).
    ///
    /// Invariant of every tensor: its shape is valid ([`crate::shape::extent`])
    /// and its storage holds exactly `∏ shape` elements. Kernels (and the
    /// `unsafe` GEMM) rely on it; every constructor checks it.
    pub fn try_from_vec(shape: impl AsRef<[usize]>, data: Vec<T>) -> Result<Self> {
        let shape: Shape = shape.as_ref().into();
        let n = try_numel("tensor", &shape)?;
        if n != data.len() {
            return Err(Error::shape(
                "tensor",
                format!(
                    "shape {} needs {} elements, got {}",
                    fmt_shape(&shape),
                    n,
                    data.len()
                ),
            ));
        }
        Ok(Tensor {
            data: Storage::from_vec(data),
            shape,
        })
    }

    /// Builds a tensor from a shape and row-major data.
    ///
    /// # Panics
    /// Where [`Tensor::try_from_vec`] returns an error, with its message.
    #[track_caller]
    pub fn from_vec(shape: impl AsRef<[usize]>, data: Vec<T>) -> Self {
        crate::error::or_panic(Self::try_from_vec(shape, data))
    }

    /// Internal constructor for kernels that computed `data` for `shape`.
    /// The tensor invariant is asserted (a cheap product, not a pass over
    /// the data): a kernel bug panics here rather than build a tensor that
    /// `unsafe` code would trust.
    pub(crate) fn from_parts(shape: Shape, data: Vec<T>) -> Self {
        assert_eq!(
            numel(&shape),
            data.len(),
            "tensor invariant: shape and storage length"
        );
        Tensor {
            data: Storage::from_vec(data),
            shape,
        }
    }

    /// A 0-dimensional tensor holding `v`.
    pub fn scalar(v: T) -> Self {
        Tensor {
            data: Storage::Single(v),
            shape: Shape::new(),
        }
    }

    /// A tensor of the given shape filled with `v`; an
    /// [`crate::ErrorKind::Overflow`] error if the shape has too many elements.
    pub fn try_full(shape: impl AsRef<[usize]>, v: T) -> Result<Self> {
        let shape: Shape = shape.as_ref().into();
        let n = try_numel("full", &shape)?;
        let data = if n == 1 {
            Storage::Single(v)
        } else {
            Storage::Shared(Arc::new(crate::shape::try_filled("full", n, v)?))
        };
        Ok(Tensor { data, shape })
    }

    /// A tensor of the given shape filled with `v`.
    ///
    /// # Panics
    /// Where [`Tensor::try_full`] returns an error (the shape overflows).
    #[track_caller]
    pub fn full(shape: impl AsRef<[usize]>, v: T) -> Self {
        crate::error::or_panic(Self::try_full(shape, v))
    }

    /// Zeros of the given shape.
    ///
    /// # Panics
    /// Where [`Tensor::try_full`] returns an error (the shape overflows).
    #[track_caller]
    pub fn zeros(shape: impl AsRef<[usize]>) -> Self {
        Self::full(shape, T::zero())
    }

    /// Ones of the given shape.
    ///
    /// # Panics
    /// Where [`Tensor::try_full`] returns an error (the shape overflows).
    #[track_caller]
    pub fn ones(shape: impl AsRef<[usize]>) -> Self {
        Self::full(shape, T::one())
    }

    /// Zeros with this tensor's shape.
    pub fn zeros_like(&self) -> Self {
        Self::full(&self.shape, T::zero())
    }

    /// Ones with this tensor's shape.
    pub fn ones_like(&self) -> Self {
        Self::full(&self.shape, T::one())
    }

    /// Builds a tensor by calling `f` with each flat (row-major) index.
    ///
    /// # Panics
    /// If the shape overflows (see [`Tensor::try_full`]).
    #[track_caller]
    pub fn from_fn(shape: impl AsRef<[usize]>, f: impl FnMut(usize) -> T) -> Self {
        let shape: Shape = shape.as_ref().into();
        let data = (0..numel(&shape)).map(f).collect();
        Tensor {
            data: Storage::from_vec(data),
            shape,
        }
    }

    /// Samples U(lo, hi) elementwise from `rng`.
    pub fn rand_uniform(shape: impl AsRef<[usize]>, lo: f64, hi: f64, rng: &mut impl Rng) -> Self {
        Self::from_fn(shape, |_| T::from_f64(rng.gen_range(lo..hi)))
    }

    /// Samples N(0, 1) elementwise from `rng`.
    pub fn randn(shape: impl AsRef<[usize]>, rng: &mut impl Rng) -> Self {
        Self::from_fn(shape, |_| {
            let z: f64 = StandardNormal.sample(rng);
            T::from_f64(z)
        })
    }

    /// The dimension sizes.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// True when both tensors have the same shape.
    #[inline]
    pub fn same_shape(&self, other: &Tensor<T>) -> bool {
        self.shape == other.shape
    }

    /// The number of dimensions.
    pub fn rank(&self) -> usize {
        self.shape.len()
    }

    /// The number of elements.
    pub fn numel(&self) -> usize {
        self.data().len()
    }

    /// The elements in row-major order.
    pub fn data(&self) -> &[T] {
        self.data.as_slice()
    }

    /// Mutable access to the elements; copies the storage first if it is shared.
    pub fn data_mut(&mut self) -> &mut [T] {
        match &mut self.data {
            Storage::Single(v) => std::slice::from_mut(v),
            Storage::Shared(a) => Arc::make_mut(a).as_mut_slice(),
        }
    }

    /// True when no other tensor shares this storage (so `data_mut` will not copy).
    pub fn is_unique(&self) -> bool {
        match &self.data {
            Storage::Single(_) => true,
            Storage::Shared(a) => Arc::strong_count(a) == 1,
        }
    }

    /// True when both tensors view the same shared storage (one-element
    /// tensors are stored inline and never share).
    pub fn shares_storage(&self, other: &Tensor<T>) -> bool {
        match (&self.data, &other.data) {
            (Storage::Shared(a), Storage::Shared(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }

    /// The elements as a new `Vec`.
    pub fn to_vec(&self) -> Vec<T> {
        self.data().to_vec()
    }

    /// The single element of a one-element tensor.
    #[track_caller]
    pub fn item(&self) -> T {
        assert!(
            self.numel() == 1,
            "item: tensor of shape {} has {} elements, not 1",
            fmt_shape(&self.shape),
            self.numel()
        );
        self.data()[0]
    }

    /// The same storage viewed with another shape of equal element count.
    pub fn try_reshape(&self, shape: impl AsRef<[usize]>) -> Result<Self> {
        let shape: Shape = shape.as_ref().into();
        let n = try_numel("reshape", &shape)?;
        if n != self.numel() {
            return Err(Error::shape(
                "reshape",
                format!(
                    "{} -> {}: element counts {} and {} differ",
                    fmt_shape(&self.shape),
                    fmt_shape(&shape),
                    self.numel(),
                    n
                ),
            ));
        }
        Ok(Tensor {
            data: self.data.clone(),
            shape,
        })
    }

    /// The same storage viewed with another shape; panics if the counts differ.
    #[track_caller]
    pub fn reshape(&self, shape: impl AsRef<[usize]>) -> Self {
        crate::error::or_panic(self.try_reshape(shape))
    }

    /// Applies `f` to every element (in parallel for large tensors).
    pub fn map(&self, f: impl Fn(T) -> T + Sync + Send) -> Self {
        if let Storage::Single(v) = self.data {
            return Tensor {
                data: Storage::Single(f(v)),
                shape: self.shape.clone(),
            };
        }
        Tensor::from_parts(self.shape.clone(), kernels::map(self.data(), f))
    }

    /// `f(a, b)` elementwise over two tensors of the same shape (in parallel
    /// for large ones); panics if the shapes differ.
    #[track_caller]
    pub fn zip_with(&self, other: &Tensor<T>, f: impl Fn(T, T) -> T + Sync + Send) -> Self {
        assert!(
            self.same_shape(other),
            "zip_with: shapes {:?} and {:?} differ",
            self.shape(),
            other.shape()
        );
        if let Some(t) = self.zip_single(other, &f) {
            return t;
        }
        Tensor::from_parts(
            self.shape.clone(),
            kernels::zip_map(self.data(), other.data(), f),
        )
    }

    /// `f(a, b)` for two one-element tensors of the same shape, without allocating.
    #[inline]
    pub(crate) fn zip_single(&self, other: &Tensor<T>, f: impl Fn(T, T) -> T) -> Option<Self> {
        match (&self.data, &other.data) {
            (Storage::Single(a), Storage::Single(b)) if self.shape == other.shape => Some(Tensor {
                data: Storage::Single(f(*a, *b)),
                shape: self.shape.clone(),
            }),
            _ => None,
        }
    }

    /// Converts every element to another element type.
    pub fn cast<U: Element>(&self) -> Tensor<U> {
        Tensor::from_parts(
            self.shape.clone(),
            self.data()
                .iter()
                .map(|&v| U::from_f64(v.as_f64()))
                .collect(),
        )
    }

    /// Largest absolute elementwise difference; `None` if the shapes differ.
    pub fn max_abs_diff(&self, other: &Tensor<T>) -> Option<T> {
        if self.shape != other.shape {
            return None;
        }
        Some(
            self.data()
                .iter()
                .zip(other.data())
                .map(|(&a, &b)| (a - b).abs())
                .fold(T::zero(), |m, d| if d > m || d.is_nan() { d } else { m }),
        )
    }

    /// `|a - b| <= atol + rtol·|b|` elementwise, with equal shapes (NaN never matches).
    pub fn allclose(&self, other: &Tensor<T>, rtol: f64, atol: f64) -> bool {
        self.shape == other.shape
            && self.data().iter().zip(other.data()).all(|(&a, &b)| {
                let (a, b) = (a.as_f64(), b.as_f64());
                (a - b).abs() <= atol + rtol * b.abs()
            })
    }
}

impl<T: Element> PartialEq for Tensor<T> {
    fn eq(&self, other: &Self) -> bool {
        self.shape == other.shape && self.data() == other.data()
    }
}

impl<T: Element> fmt::Debug for Tensor<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Tensor<{}>{} ", T::DTYPE, fmt_shape(&self.shape))?;
        const SHOWN: usize = 8;
        let shown: Vec<String> = self
            .data()
            .iter()
            .take(SHOWN)
            .map(|v| format!("{v}"))
            .collect();
        if self.numel() > SHOWN {
            write!(f, "[{}, ...]", shown.join(", "))
        } else {
            write!(f, "[{}]", shown.join(", "))
        }
    }
}

impl<T: Element> fmt::Display for Tensor<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.numel() == 1 {
            write!(f, "{}", self.data()[0])
        } else {
            fmt::Debug::fmt(self, f)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_share_storage_and_mutation_copies_on_write() {
        let a = Tensor::from_vec([2], vec![1.0f32, 2.0]);
        let mut b = a.clone();
        assert!(a.shares_storage(&b));
        b.data_mut()[0] = 5.0;
        assert_eq!(a.data(), &[1.0, 2.0]);
        assert_eq!(b.data(), &[5.0, 2.0]);
    }

    #[test]
    fn length_mismatch_is_an_error_naming_the_shape() {
        let e = Tensor::<f64>::try_from_vec([2, 3], vec![0.0; 5]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "tensor: shape [2, 3] needs 6 elements, got 5"
        );
        let e = Tensor::<f64>::zeros([2, 3]).try_reshape([4]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "reshape: [2, 3] -> [4]: element counts 6 and 4 differ"
        );
    }
}
