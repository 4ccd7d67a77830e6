//! Matrix multiplication, 2-D and batched with broadcast batch dimensions,
//! through `matrixmultiply`'s strided GEMM.
//!
//! The op carries two flags, `C = op(A)·op(B)` with op = identity or
//! transpose. A transposed operand is read through swapped strides, never
//! copied, and the backward formulas are themselves matmuls with flags:
//!   dA = G·op(B)ᵀ (or op(B)·Gᵀ when A is transposed),
//!   dB = op(A)ᵀ·G (or Gᵀ·op(A) when B is transposed),
//! so first and higher derivatives never materialise a transpose.

use chainrule_tape::arith::reduce_to;
use chainrule_tape::error::{Error, ErrorKind, Result};
use chainrule_tape::shape::{
    broadcast_shapes, broadcast_strides, fmt_shape, numel, try_numel, Shape,
};
use chainrule_tape::{BackwardContext, Element, InputGrads, Op, Tensor, Var};
use rayon::prelude::*;
use smallvec::smallvec;

#[cfg(feature = "strategies")]
use crate::registry::{case, tensor, Domain, Inputs, OpCase};
#[cfg(feature = "strategies")]
use crate::VarOps;
#[cfg(feature = "strategies")]
use proptest::prelude::*;

/// Below this many multiply-adds per matrix, a batch runs its matrices in parallel
/// (rayon) instead of relying on GEMM's own threads.
const BATCH_PARALLEL_GEMM: usize = 1 << 25;

/// `op(A)·op(B)` over the last two dimensions; leading dimensions broadcast.
pub struct MatMul {
    /// Read A transposed (its last two dimensions swapped).
    pub trans_a: bool,
    /// Read B transposed.
    pub trans_b: bool,
}

impl<T: Element> Op<T> for MatMul {
    fn name(&self) -> &str {
        "matmul"
    }
    fn formula(&self, input: usize) -> Option<String> {
        Some(if input == 0 { "G·Bᵀ" } else { "Aᵀ·G" }.into())
    }
    fn describe(&self) -> String {
        match (self.trans_a, self.trans_b) {
            (false, false) => "matmul".into(),
            (ta, tb) => format!(
                "matmul({}{})",
                if ta { "Aᵀ" } else { "A" },
                if tb { "Bᵀ" } else { "B" }
            ),
        }
    }
    fn backward(&self, cx: &BackwardContext<'_, T>) -> Result<InputGrads<T>> {
        let (a, b, g) = (cx.input(0), cx.input(1), cx.grad);
        let (ta, tb) = (self.trans_a, self.trans_b);
        let mut out: InputGrads<T> = smallvec![None, None];
        if cx.needs(0) {
            let da = if ta {
                matmul_flags(b, g, tb, true)?
            } else {
                matmul_flags(g, b, false, !tb)?
            };
            out[0] = Some(reduce_to(da, a.shape())?);
        }
        if cx.needs(1) {
            let db = if tb {
                matmul_flags(g, a, true, ta)?
            } else {
                matmul_flags(a, g, !ta, false)?
            };
            out[1] = Some(reduce_to(db, b.shape())?);
        }
        Ok(out)
    }
}

/// `matmul: [3, 4] x [5, 2]: inner dimensions 4 and 5 differ`.
fn inner_mismatch(sa: &[usize], sb: &[usize], ka: usize, kb: usize) -> Error {
    Error::shape(
        "matmul",
        format!(
            "{} x {}: inner dimensions {ka} and {kb} differ",
            fmt_shape(sa),
            fmt_shape(sb)
        ),
    )
}

/// The (rows, cols) of the last two dimensions as read (after the optional transpose).
fn read_dims(shape: &[usize], trans: bool) -> (usize, usize) {
    let (r, c) = (shape[shape.len() - 2], shape[shape.len() - 1]);
    if trans {
        (c, r)
    } else {
        (r, c)
    }
}

/// Which operands of [`try_matmul_t`] are read transposed (their last two
/// dimensions swapped, through strides: no copy).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Transpose {
    /// A·B (plain matmul of two operands of at least 2 dimensions).
    Neither,
    /// Aᵀ·B.
    First,
    /// A·Bᵀ (as `F.linear(x, w)` = x·wᵀ).
    Second,
    /// Aᵀ·Bᵀ.
    Both,
}

impl Transpose {
    /// The variant for two flags: (transpose A, transpose B).
    pub fn from_flags(a: bool, b: bool) -> Self {
        match (a, b) {
            (false, false) => Transpose::Neither,
            (true, false) => Transpose::First,
            (false, true) => Transpose::Second,
            (true, true) => Transpose::Both,
        }
    }
    /// (transpose A, transpose B).
    pub fn flags(self) -> (bool, bool) {
        match self {
            Transpose::Neither => (false, false),
            Transpose::First => (true, false),
            Transpose::Second => (false, true),
            Transpose::Both => (true, true),
        }
    }
}

/// `op(A)·op(B)` with op chosen by `transpose`, recorded as one [`MatMul`]
/// node. Both operands need at least 2 dimensions.
#[track_caller]
pub fn try_matmul_t<T: Element>(a: &Var<T>, b: &Var<T>, transpose: Transpose) -> Result<Var<T>> {
    let (trans_a, trans_b) = transpose.flags();
    matmul_flags(a, b, trans_a, trans_b)
}

panicking_twin!(
    /// `op(A)·op(B)` as [`try_matmul_t`].
    matmul_t / try_matmul_t[T: Element](a: &Var<T>, b: &Var<T>, transpose: Transpose) -> Var<T>
);

/// [`try_matmul_t`] with the transposes as flags (the backward formulas' form).
#[track_caller]
pub(crate) fn matmul_flags<T: Element>(
    a: &Var<T>,
    b: &Var<T>,
    trans_a: bool,
    trans_b: bool,
) -> Result<Var<T>> {
    let v = matmul_forward(a.value(), b.value(), trans_a, trans_b)?;
    Var::from_op(MatMul { trans_a, trans_b }, &[a, b], v)
}

/// `a @ b` with PyTorch's rules for 1-D operands: a 1-D left operand is a row
/// vector and a 1-D right operand a column vector; the added dimension is removed.
#[track_caller]
pub(crate) fn matmul<T: Element>(a: &Var<T>, b: &Var<T>) -> Result<Var<T>> {
    use crate::VarOps;
    if a.shape().is_empty() || b.shape().is_empty() {
        return Err(Error::shape(
            "matmul",
            format!(
                "{} x {}: both operands need at least 1 dimension",
                fmt_shape(a.shape()),
                fmt_shape(b.shape())
            ),
        ));
    }
    let (sa, sb) = (a.shape(), b.shape());
    let ka = sa[sa.len() - 1];
    let kb = if sb.len() == 1 {
        sb[0]
    } else {
        sb[sb.len() - 2]
    };
    if ka != kb {
        return Err(inner_mismatch(sa, sb, ka, kb));
    }
    let a2 = if sa.len() == 1 {
        a.try_reshape_to(&[1, sa[0]])?
    } else {
        a.clone()
    };
    let b2 = if sb.len() == 1 {
        b.try_reshape_to(&[sb[0], 1])?
    } else {
        b.clone()
    };
    let out = matmul_flags(&a2, &b2, false, false)?;
    let mut shape: Shape = out.shape().into();
    if b.shape().len() == 1 {
        shape.pop();
    }
    if a.shape().len() == 1 {
        let n = shape.len();
        shape.remove(n - 1 - usize::from(b.shape().len() != 1));
    }
    out.try_reshape_to(&shape)
}

/// Operands [m, k]·[k, n], or batched [b1, 1, m, k]·[b2, k, n] (the batch
/// dimensions broadcast), values in [−1, 1).
#[cfg(feature = "strategies")]
fn matmul_case(batched: bool) -> BoxedStrategy<Inputs> {
    (1usize..5, 1usize..5, 1usize..5, 1usize..3, 1usize..3)
        .prop_flat_map(move |(m, k, n, b1, b2)| {
            let (sa, sb) = if batched {
                (vec![b1, 1, m, k], vec![b2, k, n])
            } else {
                (vec![m, k], vec![k, n])
            };
            let d = Domain::Range(-1.0, 1.0);
            (tensor(sa, d), tensor(sb, d))
        })
        .prop_map(|(a, b)| vec![a, b])
        .boxed()
}

/// Operands [m, k]·[k].
#[cfg(feature = "strategies")]
fn matvec_case() -> BoxedStrategy<Inputs> {
    (1usize..5, 1usize..5)
        .prop_flat_map(|(m, k)| {
            let d = Domain::Range(-1.0, 1.0);
            (tensor(vec![m, k], d), tensor(vec![k], d))
        })
        .prop_map(|(a, b)| vec![a, b])
        .boxed()
}

/// matmul's cases: 2-D, batched with broadcasting, matrix·vector, and both
/// operands transposed through strides.
#[cfg(feature = "strategies")]
fn matmul_cases() -> Vec<OpCase> {
    vec![
        case!("matmul" for [matmul], ["matmul"], matmul_case(false), |v| v[0].try_matmul(&v[1])),
        case!(
            "matmul_batched_broadcast" for [matmul],
            ["matmul"],
            matmul_case(true),
            |v| v[0].try_matmul(&v[1])
        ),
        case!(
            "matmul_matrix_vector" for [matmul],
            ["matmul", "reshape"],
            matvec_case(),
            |v| v[0].try_matmul(&v[1])
        ),
        case!(
            "matmul_transposed" for [matmul_t, t],
            ["matmul", "permute"],
            matmul_case(false),
            // (Bᵀ·Aᵀ)ᵀ = A·B exercises both transpose flags in forward and backward.
            |v| v[1].try_matmul_t(&v[0], Transpose::Both)?.try_t()
        ),
    ]
}

/// This family's registry cases.
#[cfg(feature = "strategies")]
pub(crate) fn cases() -> Vec<OpCase> {
    matmul_cases()
}

/// The forward kernel: batched strided GEMM.
pub fn matmul_forward<T: Element>(
    a: &Tensor<T>,
    b: &Tensor<T>,
    trans_a: bool,
    trans_b: bool,
) -> Result<Tensor<T>> {
    let (sa, sb) = (a.shape(), b.shape());
    if sa.len() < 2 || sb.len() < 2 {
        return Err(Error::shape(
            "matmul",
            format!(
                "{} x {}: both operands need at least 2 dimensions",
                fmt_shape(sa),
                fmt_shape(sb)
            ),
        ));
    }
    let (m, k) = read_dims(sa, trans_a);
    let (k2, n) = read_dims(sb, trans_b);
    if k != k2 {
        return Err(inner_mismatch(sa, sb, k, k2));
    }
    let batch_a = &sa[..sa.len() - 2];
    let batch_b = &sb[..sb.len() - 2];
    let batch = broadcast_shapes("matmul", batch_a, batch_b).map_err(|_| {
        Error::shape(
            "matmul",
            format!(
                "{} x {}: batch dimensions {:?} and {:?} do not broadcast",
                fmt_shape(sa),
                fmt_shape(sb),
                batch_a,
                batch_b
            ),
        )
    })?;
    let count = numel(&batch);
    let mut out_shape = batch.clone();
    out_shape.push(m);
    out_shape.push(n);
    // Checked: two valid operands can still ask for an output too large to
    // address ([2³¹, 1] · [1, 2³³]); every product below is then bounded by it.
    let total = try_numel("matmul", &out_shape)?;
    if total == 0 {
        return Tensor::try_from_vec(out_shape, Vec::new());
    }
    // GEMM with β = 0 writes all of C without reading it (matrixmultiply's
    // documented contract, which also covers k = 0), so C starts uninitialised.
    let mut out: Vec<T> = Vec::new();
    out.try_reserve_exact(total).map_err(|_| {
        Error::new(
            "matmul",
            ErrorKind::Overflow,
            format!(
                "{} x {}: cannot allocate the {} output",
                fmt_shape(sa),
                fmt_shape(sb),
                fmt_shape(&out_shape)
            ),
        )
    })?;
    // Batch offsets in elements: broadcast strides over the batch dims, scaled by matrix size.
    let mat_a = sa[sa.len() - 2] * sa[sa.len() - 1];
    let mat_b = sb[sb.len() - 2] * sb[sb.len() - 1];
    let stride_a = broadcast_strides(batch_a, &batch);
    let stride_b = broadcast_strides(batch_b, &batch);
    let offset = |mut i: usize, strides: &[usize], mat: usize| {
        let mut off = 0;
        for d in (0..batch.len()).rev() {
            off += (i % batch[d]) * strides[d];
            i /= batch[d];
        }
        off * mat
    };
    // Row-major strides of each stored matrix, swapped when read transposed.
    let (ra, ca) = if trans_a {
        (1, sa[sa.len() - 1])
    } else {
        (sa[sa.len() - 1], 1)
    };
    let (rb, cb) = if trans_b {
        (1, sb[sb.len() - 1])
    } else {
        (sb[sb.len() - 1], 1)
    };
    let (da, db) = (a.data(), b.data());
    let gemm_one = |i: usize, c: &mut [std::mem::MaybeUninit<T>], split: bool| {
        let (oa, ob) = (offset(i, &stride_a, mat_a), offset(i, &stride_b, mat_b));
        let (a, b) = (&da[oa..oa + mat_a], &db[ob..ob + mat_b]);
        debug_assert_eq!(c.len(), m * n);
        let c = Block {
            ptr: c.as_mut_ptr().cast::<T>(),
            row_stride: n,
        };
        let a = Strided {
            data: a,
            rows: ra,
            cols: ca,
        };
        let b = Strided {
            data: b,
            rows: rb,
            cols: cb,
        };
        // The bounds the unsafe GEMM relies on, checked once per matrix
        // (not per element): every strided read of A and B is in its slice.
        assert!(a.covers(m, k) && b.covers(k, n), "matmul: operand extents");
        if split {
            gemm_split((m, k, n), a, b, c);
        } else {
            // SAFETY: `a` and `b` cover the m×k and k×n matrices read with
            // their strides (asserted just above); `c` is this batch entry's
            // exclusively borrowed m×n buffer (a chunk of exactly m·n slots),
            // which GEMM (β = 0) only writes.
            unsafe { gemm_block((m, k, n), a, b, c, (0, 0), (m, n)) }
        }
    };
    let spare = &mut out.spare_capacity_mut()[..total];
    if count > 1 && (m * n).saturating_mul(k) < BATCH_PARALLEL_GEMM {
        spare
            .par_chunks_mut(m * n)
            .enumerate()
            .for_each(|(i, c)| gemm_one(i, c, false));
    } else {
        spare
            .chunks_mut(m * n)
            .enumerate()
            .for_each(|(i, c)| gemm_one(i, c, true));
    }
    // SAFETY: the `count` chunks of m×n cover all `total` slots and each GEMM
    // call (β = 0) wrote every element of its chunk.
    unsafe { out.set_len(total) };
    Tensor::try_from_vec(out_shape, out)
}

/// A stored matrix read with (row, column) strides in elements.
#[derive(Clone, Copy)]
struct Strided<'a, T> {
    data: &'a [T],
    rows: usize,
    cols: usize,
}

impl<T> Strided<'_, T> {
    /// True when every element (i, j) of an r×c matrix, at offset
    /// i·rows + j·cols, lies inside `data` (always true for an empty matrix).
    fn covers(&self, r: usize, c: usize) -> bool {
        if r == 0 || c == 0 {
            return true;
        }
        let last = (r - 1).checked_mul(self.rows).and_then(|i| {
            (c - 1)
                .checked_mul(self.cols)
                .and_then(|j| i.checked_add(j))
        });
        matches!(last, Some(l) if l < self.data.len())
    }
}

/// The output matrix of one GEMM: row-major with `row_stride`, column stride 1.
#[derive(Clone, Copy)]
struct Block<T> {
    ptr: *mut T,
    row_stride: usize,
}
// SAFETY: a `Block` is only a base pointer; `gemm_split` hands each rayon task
// a disjoint set of its rows or columns, so no element is written by two
// tasks, and the buffer outlives the parallel section that borrows it.
unsafe impl<T: Send> Send for Block<T> {}
// SAFETY: as for `Send`: tasks sharing a `Block` write disjoint elements.
unsafe impl<T: Send> Sync for Block<T> {}

/// Below this many multiply-adds a GEMM runs on one thread.
const SPLIT_GEMM: usize = 1 << 18;
/// Split points are multiples of this (the f32 and f64 micro-kernels' widths divide it).
const SPLIT_ALIGN: usize = 16;

/// C = A·B on rayon's threads: the larger of C's two dimensions is cut into
/// one block per thread and each block is an independent single-threaded
/// GEMM (each re-packs the shared operand's panels, the smaller one). One
/// thread pool serves GEMM and every other kernel, so no second pool's
/// workers spin against rayon's on the two cores.
fn gemm_split<T: Element>(
    (m, k, n): (usize, usize, usize),
    a: Strided<'_, T>,
    b: Strided<'_, T>,
    c: Block<T>,
) {
    let threads = rayon::current_num_threads();
    let along_n = n >= m;
    let len = if along_n { n } else { m };
    let step = len.div_ceil(threads).next_multiple_of(SPLIT_ALIGN);
    if threads < 2 || (m * n).saturating_mul(k) < SPLIT_GEMM || step >= len {
        // SAFETY: the caller's (m, k, n) describe `a`, `b` and `c` exactly:
        // `gemm_one` asserts `a.covers(m, k)` and `b.covers(k, n)` before
        // calling, and `c` is its m×n chunk.
        unsafe { gemm_block((m, k, n), a, b, c, (0, 0), (m, n)) };
        return;
    }
    (0..len.div_ceil(step)).into_par_iter().for_each(|part| {
        let (lo, hi) = (part * step, ((part + 1) * step).min(len));
        let (origin, size) = if along_n {
            ((0, lo), (m, hi - lo))
        } else {
            ((lo, 0), (hi - lo, n))
        };
        // SAFETY: the parts cover disjoint column (or row) ranges of C inside
        // its m×n extent, and A and B are only read.
        unsafe { gemm_block((m, k, n), a, b, c, origin, size) };
    });
}

/// The block of C at `origin` (row, column) of `size` (rows, columns):
/// C[block] = A[rows, :]·B[:, columns], one thread.
///
/// # Safety
/// `a` and `b` must hold m×k and k×n matrices read with their strides, `c`
/// must point to an m×n buffer with its row stride, the block must lie inside
/// it, and no other thread may touch that block meanwhile.
unsafe fn gemm_block<T: Element>(
    (m, k, n): (usize, usize, usize),
    a: Strided<'_, T>,
    b: Strided<'_, T>,
    c: Block<T>,
    (row0, col0): (usize, usize),
    (rows, cols): (usize, usize),
) {
    debug_assert!(row0 + rows <= m && col0 + cols <= n);
    debug_assert!(a.covers(m, k) && b.covers(k, n));
    // SAFETY: the offsets stay inside the stored matrices (row0 < m rows of A,
    // col0 < n columns of B and C); the caller guarantees the rest of the GEMM
    // contract, and β = 0 means C is written, never read.
    unsafe {
        T::gemm(
            rows,
            k,
            cols,
            T::one(),
            a.data.as_ptr().add(row0 * a.rows),
            a.rows as isize,
            a.cols as isize,
            b.data.as_ptr().add(col0 * b.cols),
            b.rows as isize,
            b.cols as isize,
            T::zero(),
            c.ptr.add(row0 * c.row_stride + col0),
            c.row_stride as isize,
            1,
        )
    }
}
