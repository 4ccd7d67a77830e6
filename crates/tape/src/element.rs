//! The element types a tensor can hold: `f32` for training speed, `f64` for checking.

use num_traits::{Float, FloatConst};
use std::fmt::{Debug, Display};
use std::iter::Sum;

/// A floating-point element type: `f32` or `f64`.
///
/// Kernels are written once, generically, and dispatch to the matching
/// `matrixmultiply` routine through [`Element::gemm`].
pub trait Element:
    Float + FloatConst + Sum + Debug + Display + Default + Send + Sync + 'static
{
    /// The dtype's name as PyTorch spells it (`"float32"`, `"float64"`).
    const DTYPE: &'static str;

    /// Converts from `f64` (rounding for `f32`).
    fn from_f64(v: f64) -> Self;

    /// Widens to `f64`.
    fn as_f64(self) -> f64;

    /// General matrix multiply `C ← α·A·B + β·C` on strided row/column layouts.
    ///
    /// # Safety
    /// The pointers and strides must describe valid `m×k`, `k×n` and `m×n`
    /// matrices inside live allocations, and `c` must not alias `a` or `b`.
    #[allow(clippy::too_many_arguments)]
    unsafe fn gemm(
        m: usize,
        k: usize,
        n: usize,
        alpha: Self,
        a: *const Self,
        rsa: isize,
        csa: isize,
        b: *const Self,
        rsb: isize,
        csb: isize,
        beta: Self,
        c: *mut Self,
        rsc: isize,
        csc: isize,
    );
}

macro_rules! element_impl {
    ($t:ty, $dtype:literal, $gemm:path) => {
        impl Element for $t {
            const DTYPE: &'static str = $dtype;
            fn from_f64(v: f64) -> Self {
                v as $t
            }
            fn as_f64(self) -> f64 {
                self as f64
            }
            unsafe fn gemm(
                m: usize,
                k: usize,
                n: usize,
                alpha: Self,
                a: *const Self,
                rsa: isize,
                csa: isize,
                b: *const Self,
                rsb: isize,
                csb: isize,
                beta: Self,
                c: *mut Self,
                rsc: isize,
                csc: isize,
            ) {
                // SAFETY: forwarded verbatim; the caller upholds the GEMM
                // contract stated on the trait method.
                unsafe { $gemm(m, k, n, alpha, a, rsa, csa, b, rsb, csb, beta, c, rsc, csc) }
            }
        }
    };
}

element_impl!(f32, "float32", matrixmultiply::sgemm);
element_impl!(f64, "float64", matrixmultiply::dgemm);
