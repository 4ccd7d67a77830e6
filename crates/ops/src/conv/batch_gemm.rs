//! The two products of a convolution over per-sample columns, each the
//! other's backward, so conv2d never copies its output into place and its
//! weight gradient never materialises one [O, k] matrix per sample:
//!
//! * [`SharedMatMul`]: `Y[n] = op(A)·op(B[n])`, one A (a filter bank
//!   [g, m, k]) applied to every sample of B [N, g, k, p];
//! * [`BatchSumMatMul`]: `Z = Σ_n op(P[n])·op(Q[n])`, a contraction over the
//!   sample axis and the inner axis at once (the weight gradient
//!   `Σ_n G[n]·cols[n]ᵀ`), accumulated GEMM by GEMM.
//!
//! op is the identity or the transpose of the last two dimensions, read
//! through strides (no copy). Backwards (first and higher order):
//!   Y = op(A)·op(B[n]):  dA = Σ_n G[n]·op(B[n])ᵀ (or its transpose),
//!                        dB[n] = op(A)ᵀ·G[n] (or its transpose);
//!   Z = Σ_n op(P[n])·op(Q[n]): dP[n] = G·op(Q[n])ᵀ, dQ[n] = op(P[n])ᵀ·G
//!                        (transposed when the operand is read transposed).

use crate::matmul::matmul_flags;
use chainrule_tape::error::{Error, Result};
use chainrule_tape::shape::{fmt_shape, try_filled, try_numel};
use chainrule_tape::{BackwardContext, Element, InputGrads, Op, Tensor, Var};
use rayon::prelude::*;
use smallvec::smallvec;

/// `Y[n] = op(A)·op(B[n])`: A [g, r, c] shared by every n of B [N, g, r', c'].
pub struct SharedMatMul {
    /// Read A transposed.
    pub trans_a: bool,
    /// Read each `B[n]` transposed.
    pub trans_b: bool,
}

impl<T: Element> Op<T> for SharedMatMul {
    fn name(&self) -> &str {
        "shared_matmul"
    }
    fn formula(&self, input: usize) -> Option<String> {
        Some(
            if input == 0 {
                "Σ_n G[n]·B[n]ᵀ"
            } else {
                "Aᵀ·G[n]"
            }
            .into(),
        )
    }
    fn backward(&self, cx: &BackwardContext<'_, T>) -> Result<InputGrads<T>> {
        let (a, b, g) = (cx.input(0), cx.input(1), cx.grad);
        let (ta, tb) = (self.trans_a, self.trans_b);
        let mut out: InputGrads<T> = smallvec![None, None];
        if cx.needs(0) {
            // op(A) = Σ_n G[n]·op(B[n])ᵀ; A itself is that or its transpose.
            out[0] = Some(if ta {
                batch_sum_matmul(b, g, tb, true)?
            } else {
                batch_sum_matmul(g, b, false, !tb)?
            });
        }
        if cx.needs(1) {
            // op(B[n]) = op(A)ᵀ·G[n]; B[n] itself is that or G[n]ᵀ·op(A).
            out[1] = Some(if tb {
                matmul_flags(g, a, true, ta)?
            } else {
                shared_matmul(a, g, !ta, false)?
            });
        }
        Ok(out)
    }
}

/// `Z = Σ_n op(P[n])·op(Q[n])` over P [N, g, ·, ·] and Q [N, g, ·, ·] → [g, m, p].
pub struct BatchSumMatMul {
    /// Read each `P[n]` transposed.
    pub trans_a: bool,
    /// Read each `Q[n]` transposed.
    pub trans_b: bool,
}

impl<T: Element> Op<T> for BatchSumMatMul {
    fn name(&self) -> &str {
        "batch_sum_matmul"
    }
    fn formula(&self, input: usize) -> Option<String> {
        Some(
            if input == 0 {
                "G·Q[n]ᵀ"
            } else {
                "P[n]ᵀ·G"
            }
            .into(),
        )
    }
    fn backward(&self, cx: &BackwardContext<'_, T>) -> Result<InputGrads<T>> {
        let (p, q, g) = (cx.input(0), cx.input(1), cx.grad);
        let (ta, tb) = (self.trans_a, self.trans_b);
        let mut out: InputGrads<T> = smallvec![None, None];
        if cx.needs(0) {
            // op(P[n]) = G·op(Q[n])ᵀ; P[n] itself is that or op(Q[n])·Gᵀ.
            out[0] = Some(if ta {
                matmul_flags(q, g, tb, true)?
            } else {
                shared_matmul(g, q, false, !tb)?
            });
        }
        if cx.needs(1) {
            // op(Q[n]) = op(P[n])ᵀ·G; Q[n] itself is that or Gᵀ·op(P[n]).
            out[1] = Some(if tb {
                shared_matmul(g, p, true, ta)?
            } else {
                matmul_flags(p, g, !ta, false)?
            });
        }
        Ok(out)
    }
}

/// A [g, ·, ·] (or [N, g, ·, ·] when `a_rank` is 4) and B [N, g, ·, ·],
/// or a clear error naming `op`.
fn check_ranks(op: &'static str, a: &[usize], b: &[usize], a_rank: usize) -> Result<()> {
    if a.len() != a_rank || b.len() != 4 || a[a_rank - 3] != b[1] {
        return Err(Error::shape(
            op,
            format!(
                "{} and {}: expected [g, ·, ·] (or [N, g, ·, ·]) and [N, g, ·, ·] with equal g",
                fmt_shape(a),
                fmt_shape(b)
            ),
        ));
    }
    Ok(())
}

/// [`SharedMatMul`]: `Y[n] = op(A)·op(B[n])`, A [g, ·, ·], B [N, g, ·, ·] →
/// [N, g, m, p] (one GEMM per (n, group), the filters broadcast).
pub(crate) fn shared_matmul<T: Element>(
    a: &Var<T>,
    b: &Var<T>,
    trans_a: bool,
    trans_b: bool,
) -> Result<Var<T>> {
    check_ranks("shared_matmul", a.shape(), b.shape(), 3)?;
    let v = shared_forward(a.value(), b.value(), trans_a, trans_b)?;
    Var::from_op(SharedMatMul { trans_a, trans_b }, &[a, b], v)
}

/// [`BatchSumMatMul`]: `Z = Σ_n op(P[n])·op(Q[n])`, P and Q [N, g, ·, ·] → [g, m, p].
pub(crate) fn batch_sum_matmul<T: Element>(
    p: &Var<T>,
    q: &Var<T>,
    trans_a: bool,
    trans_b: bool,
) -> Result<Var<T>> {
    check_ranks("batch_sum_matmul", p.shape(), q.shape(), 4)?;
    if p.shape()[0] != q.shape()[0] {
        return Err(Error::shape(
            "batch_sum_matmul",
            format!(
                "{} and {}: sample counts differ",
                fmt_shape(p.shape()),
                fmt_shape(q.shape())
            ),
        ));
    }
    let v = batch_sum_forward(p.value(), q.value(), trans_a, trans_b)?;
    Var::from_op(BatchSumMatMul { trans_a, trans_b }, &[p, q], v)
}

/// One stored matrix of a [N, g, r, c] operand: its slice and (row, column)
/// strides as read (swapped when transposed).
struct Operand<'a, T> {
    data: &'a [T],
    rows: usize,
    cols: usize,
    strides: (usize, usize),
}

impl<'a, T> Operand<'a, T> {
    /// Matrix `index` (of r×c stored) of `data`, read transposed or not.
    fn new(data: &'a [T], (r, c): (usize, usize), index: usize, trans: bool) -> Self {
        let data = &data[index * r * c..(index + 1) * r * c];
        if trans {
            Operand {
                data,
                rows: c,
                cols: r,
                strides: (1, c),
            }
        } else {
            Operand {
                data,
                rows: r,
                cols: c,
                strides: (c, 1),
            }
        }
    }
}

/// `acc = β·acc + op(A)·op(B)`, acc row-major [a.rows, b.cols]; β = 0
/// overwrites acc without reading it.
fn gemm_acc<T: Element>(a: &Operand<'_, T>, b: &Operand<'_, T>, acc: &mut [T], beta: T) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    // The bounds the GEMM relies on: each operand is exactly its stored
    // r×c slice (built by `Operand::new`), read with row-major strides.
    assert!(
        b.rows == k && acc.len() == m * n,
        "batch_sum_matmul: operand extents"
    );
    assert!(
        a.data.len() == m * k && b.data.len() == k * n,
        "batch_sum_matmul: operand extents"
    );
    // SAFETY: A is m×k and B k×n inside their slices for the strides given
    // (both slices hold exactly m·k and k·n elements, asserted above, and the
    // strides are the row-major ones of the stored or transposed matrix);
    // acc is an exclusively borrowed, initialised m·n buffer, read (β ≠ 0) and written.
    unsafe {
        T::gemm(
            m,
            k,
            n,
            T::one(),
            a.data.as_ptr(),
            a.strides.0 as isize,
            a.strides.1 as isize,
            b.data.as_ptr(),
            b.strides.0 as isize,
            b.strides.1 as isize,
            beta,
            acc.as_mut_ptr(),
            n as isize,
            1,
        )
    }
}

/// (m, k) as read, or an error naming `op` when the inner dimensions differ.
fn inner<T: Element>(
    op: &'static str,
    a: &Tensor<T>,
    b: &Tensor<T>,
    trans: (bool, bool),
) -> Result<(usize, usize, usize)> {
    let (sa, sb) = (a.shape(), b.shape());
    let (r, c) = (sa[sa.len() - 2], sa[sa.len() - 1]);
    let (m, k) = if trans.0 { (c, r) } else { (r, c) };
    let (r2, c2) = (sb[2], sb[3]);
    let (k2, p) = if trans.1 { (c2, r2) } else { (r2, c2) };
    if k != k2 {
        return Err(Error::shape(
            op,
            format!(
                "{} x {}: inner dimensions {k} and {k2} differ",
                fmt_shape(sa),
                fmt_shape(sb)
            ),
        ));
    }
    Ok((m, k, p))
}

/// A [g, r, c] as the stored [g, k, m] whose transposes are the matrices
/// op(A[j]) [m, k]: A itself when read transposed, else a transposed copy.
/// GEMM packs A's panels along its columns, so a column-major A is packed
/// by contiguous runs, not element by element, in each of the N products.
fn column_major<T: Element>(a: &Tensor<T>, trans_a: bool) -> Vec<T> {
    if trans_a {
        return a.data().to_vec();
    }
    let s = a.shape();
    let (r, c) = (s[1], s[2]);
    let mut at = Vec::with_capacity(a.data().len());
    for mat in a.data().chunks(r * c) {
        at.extend((0..c).flat_map(|j| (0..r).map(move |i| mat[i * c + j])));
    }
    at
}

/// The kernel of [`SharedMatMul`]: `Y[n, j] = op(A[j])·op(B[n, j])`, one
/// GEMM per (n, j) in parallel, each writing its block of Y [N, g, m, p]
/// in place.
fn shared_forward<T: Element>(
    a: &Tensor<T>,
    b: &Tensor<T>,
    trans_a: bool,
    trans_b: bool,
) -> Result<Tensor<T>> {
    let (m, k, p) = inner("shared_matmul", a, b, (trans_a, trans_b))?;
    let (n, g, br, bc) = (b.shape()[0], b.shape()[1], b.shape()[2], b.shape()[3]);
    let shape = [n, g, m, p];
    let total = try_numel("shared_matmul", &shape)?;
    let mut out = try_filled("shared_matmul", total, T::zero())?;
    if total == 0 {
        return Tensor::try_from_vec(shape, out);
    }
    let at = column_major(a, trans_a);
    out.par_chunks_mut(m * p).enumerate().for_each(|(i, c)| {
        let a = Operand::new(&at, (k, m), i % g, true);
        let b = Operand::new(b.data(), (br, bc), i, trans_b);
        gemm_acc(&a, &b, c, T::zero());
    });
    Tensor::try_from_vec(shape, out)
}

/// The kernel of [`BatchSumMatMul`]: `Z[j] = Σ_n op(P[n, j])·op(Q[n, j])`.
/// The samples are split into one run per thread, each accumulating its own
/// [g, m, p] partial sum (GEMM with β = 1), and the partials are added.
fn batch_sum_forward<T: Element>(
    p: &Tensor<T>,
    q: &Tensor<T>,
    trans_a: bool,
    trans_b: bool,
) -> Result<Tensor<T>> {
    let (ps, qs) = (p.shape(), q.shape());
    let (n, g) = (ps[0], ps[1]);
    let (pr, pc) = (ps[2], ps[3]);
    let (qr, qc) = (qs[2], qs[3]);
    let (m, _, cols) = inner("batch_sum_matmul", p, q, (trans_a, trans_b))?;
    let size = try_numel("batch_sum_matmul", &[g, m, cols])?;
    let run = n.div_ceil(rayon::current_num_threads().max(1)).max(1);
    let partial = |lo: usize| -> Vec<T> {
        let mut acc = vec![T::zero(); size];
        for s in lo..(lo + run).min(n) {
            for j in 0..g {
                let a = Operand::new(p.data(), (pr, pc), s * g + j, trans_a);
                let b = Operand::new(q.data(), (qr, qc), s * g + j, trans_b);
                gemm_acc(&a, &b, &mut acc[j * m * cols..(j + 1) * m * cols], T::one());
            }
        }
        acc
    };
    let mut out = try_filled("batch_sum_matmul", size, T::zero())?;
    let partials: Vec<Vec<T>> = (0..n)
        .step_by(run)
        .collect::<Vec<_>>()
        .into_par_iter()
        .map(partial)
        .collect();
    for part in partials {
        for (o, v) in out.iter_mut().zip(part) {
            *o = *o + v;
        }
    }
    Tensor::try_from_vec([g, m, cols], out)
}
