//! GEMMs large enough to be cut into per-thread blocks (matmul.rs,
//! `gemm_split`) equal a naive triple loop for every transpose pair, for cuts
//! along rows and along columns, with sizes that are not multiples of the
//! block alignment, and in a broadcast batch whose matrices are each split.

use chainrule_ops::matmul::matmul_forward;
use chainrule_tape::{Element, Tensor};
use rand::{Rng, SeedableRng};

/// A stored [r, c] matrix of values in (-1, 1).
fn random<T: Element>(shape: &[usize], rng: &mut impl Rng) -> Tensor<T> {
    let n = shape.iter().product();
    Tensor::from_vec(
        shape,
        (0..n)
            .map(|_| T::from_f64(rng.gen_range(-1.0..1.0)))
            .collect(),
    )
}

/// Element (i, j) of op(X) where X is stored row-major with `cols` columns.
fn at<T: Element>(x: &[T], cols: usize, trans: bool, i: usize, j: usize) -> f64 {
    if trans {
        x[j * cols + i].as_f64()
    } else {
        x[i * cols + j].as_f64()
    }
}

/// Checks one batch entry of C = op(A)·op(B) against the naive sum; the
/// bound is `tol` times Σ|a·b| for that element (the worst rounding a
/// k-term dot product can reach, scaled by the type's unit roundoff).
#[allow(clippy::too_many_arguments)]
fn check<T: Element>(
    a: &[T],
    b: &[T],
    c: &[T],
    (m, k, n): (usize, usize, usize),
    (ta, tb): (bool, bool),
    tol: f64,
    what: &str,
) {
    let a_cols = if ta { m } else { k };
    let b_cols = if tb { k } else { n };
    for i in 0..m {
        for j in 0..n {
            let (mut want, mut scale) = (0.0, 0.0);
            for p in 0..k {
                let term = at(a, a_cols, ta, i, p) * at(b, b_cols, tb, p, j);
                want += term;
                scale += term.abs();
            }
            let got = c[i * n + j].as_f64();
            assert!(
                (got - want).abs() <= tol * scale,
                "{what}: C[{i}, {j}] = {got}, naive {want} (scale {scale})"
            );
        }
    }
}

fn stored(rows: usize, cols: usize, trans: bool) -> [usize; 2] {
    if trans {
        [cols, rows]
    } else {
        [rows, cols]
    }
}

/// f64 to 1e-13·Σ|a·b| (k ≤ 300 terms at unit roundoff 1.1e-16 stay far
/// below it); f32 to 1e-5·Σ|a·b| (300 terms at 6e-8 each is 1.8e-5 in the
/// worst case, but rounding errors of random signs grow like √k: ~1e-6).
#[test]
fn split_gemm_equals_naive_product_for_every_transpose_and_cut() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    // (m, k, n): cut along n (n ≥ m), along m, and a skinny k; each has
    // m·n·k above the 2^18 multiply-adds where the cut starts.
    for dims in [(67, 300, 85), (301, 70, 37), (2000, 3, 70)] {
        let (m, k, n) = dims;
        for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
            let a = random::<f64>(&stored(m, k, ta), &mut rng);
            let b = random::<f64>(&stored(k, n, tb), &mut rng);
            let c = matmul_forward(&a, &b, ta, tb).unwrap();
            assert_eq!(c.shape(), [m, n]);
            let what = format!("f64 {dims:?} trans {:?}", (ta, tb));
            check(a.data(), b.data(), c.data(), dims, (ta, tb), 1e-13, &what);

            let a = random::<f32>(&stored(m, k, ta), &mut rng);
            let b = random::<f32>(&stored(k, n, tb), &mut rng);
            let c = matmul_forward(&a, &b, ta, tb).unwrap();
            let what = format!("f32 {dims:?} trans {:?}", (ta, tb));
            check(a.data(), b.data(), c.data(), dims, (ta, tb), 1e-5, &what);
        }
    }
}

/// A batch of two [260, 520]·[520, 250] products (each above the 2^25
/// multiply-adds where a batch stops running its matrices side by side, so
/// each product is cut instead), B broadcast over the batch.
#[test]
fn large_batched_gemm_splits_each_matrix() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(8);
    let (m, k, n) = (260, 520, 250);
    let a = random::<f32>(&[2, m, k], &mut rng);
    let b = random::<f32>(&[k, n], &mut rng);
    let c = matmul_forward(&a, &b, false, false).unwrap();
    assert_eq!(c.shape(), [2, m, n]);
    for i in 0..2 {
        let ai = &a.data()[i * m * k..(i + 1) * m * k];
        let ci = &c.data()[i * m * n..(i + 1) * m * n];
        let what = format!("batch entry {i}");
        check(ai, b.data(), ci, (m, k, n), (false, false), 1e-5, &what);
    }
}
