//! Symmetric eigen-analysis of Hessians (`functional::eigh`, `hessian_eigen`)
//! against matrices whose eigenvalues and eigenvectors are known in closed form.

use chainrule_tape::functional::{eigh, hessian_eigen};
use chainrule_tape::{ErrorKind, Tensor, Var};

/// The eigen-solver's rounding on entries of size about 1-3: a few ulps of
/// ‖A‖, far below 1e-12.
const TOL: f64 = 1e-12;

/// f(x, y) = ½·(x₁ + x₂)² + ½·(x₁² + x₂²) − (3/2)·y² = ½·zᵀAz for z = (x₁, x₂, y)
/// with A = [[2, 1, 0], [1, 2, 0], [0, 0, −3]]: eigenvalues −3, 1, 3 with
/// eigenvectors (0, 0, 1), (1, −1, 0)/√2, (1, 1, 0)/√2.
fn quadratic(v: &[Var<f64>]) -> Var<f64> {
    let (x, y) = (&v[0], &v[1]);
    let s = x.sum_to(&[]);
    let half_s2 = &(&s * &s) * 0.5;
    let half_x2 = &(x * x).sum_to(&[]) * 0.5;
    &(&half_s2 + &half_x2) - &(&(y * y) * 1.5)
}

#[test]
fn the_hessian_of_a_quadratic_has_its_matrixs_eigenpairs() {
    // Two inputs of different sizes: the matrix is over all three elements.
    let point = [Tensor::from_vec([2], vec![0.3, -1.7]), Tensor::scalar(2.5)];
    let e = hessian_eigen(quadratic, &point).unwrap();
    assert_eq!(e.eigenvalues.shape(), &[3]);
    assert_eq!(e.eigenvectors.shape(), &[3, 3]);
    let want = [-3.0, 1.0, 3.0];
    for (got, want) in e.eigenvalues.data().iter().zip(want) {
        assert!((got - want).abs() < TOL, "{:?}", e.eigenvalues.data());
    }
    let r = std::f64::consts::FRAC_1_SQRT_2;
    let vectors = [[0.0, 0.0, 1.0], [r, -r, 0.0], [r, r, 0.0]];
    let q = e.eigenvectors.data();
    for (k, v) in vectors.iter().enumerate() {
        // Column k equals ±v (an eigenvector's sign is arbitrary).
        let column: Vec<f64> = (0..3).map(|i| q[i * 3 + k]).collect();
        let sign = if column.iter().zip(v).map(|(a, b)| a * b).sum::<f64>() < 0.0 {
            -1.0
        } else {
            1.0
        };
        for (a, b) in column.iter().zip(v) {
            assert!(
                (sign * a - b).abs() < TOL,
                "column {k}: {column:?}, want ±{v:?}"
            );
        }
    }
    assert!(!e.is_positive_definite() && !e.is_negative_definite());
    assert!((e.condition_number() - 3.0).abs() < TOL);
}

#[test]
fn definiteness_and_condition_number() {
    // diag(4, 1): positive definite, κ = 4; its negation negative definite.
    let d = Tensor::from_vec([2, 2], vec![4.0, 0.0, 0.0, 1.0]);
    let e = eigh(&d).unwrap();
    assert_eq!(e.eigenvalues.data(), &[1.0, 4.0]);
    assert!(e.is_positive_definite() && !e.is_negative_definite());
    assert!((e.condition_number() - 4.0).abs() < TOL);
    let e = eigh(&d.map(|v| -v)).unwrap();
    assert!(e.is_negative_definite() && !e.is_positive_definite());
    // [[1, 1], [1, 1]] is singular (eigenvalues 0 and 2): neither, κ = ∞.
    let e = eigh(&Tensor::from_vec([2, 2], vec![1.0f64, 1.0, 1.0, 1.0])).unwrap();
    assert!(e.eigenvalues.data()[0].abs() < TOL);
    assert!(!e.is_positive_definite() && !e.is_negative_definite());
    assert!(e.condition_number() > 1e12, "{}", e.condition_number());
}

#[test]
fn only_the_lower_triangle_is_read_and_huge_entries_do_not_overflow() {
    // The upper entry is ignored, as torch.linalg.eigh(UPLO='L').
    let a = Tensor::from_vec([2, 2], vec![2.0f64, 99.0, 1.0, 2.0]);
    let l = eigh(&a).unwrap().eigenvalues;
    assert!((l.data()[0] - 1.0).abs() < TOL && (l.data()[1] - 3.0).abs() < TOL);
    // Entries near f64's maximum: 1e307·[[1, 2], [2, 1]], eigenvalues −1e307
    // and 3e307, to rounding.
    let big = Tensor::from_vec([2, 2], vec![1e307f64, 2e307, 2e307, 1e307]);
    let l = eigh(&big).unwrap().eigenvalues;
    assert!((l.data()[0] / -1e307 - 1.0).abs() < TOL, "{:?}", l.data());
    assert!((l.data()[1] / 3e307 - 1.0).abs() < TOL, "{:?}", l.data());
}

#[test]
fn eigenpairs_come_sorted_ascending_with_their_vectors() {
    // diag(1, 4, 2): eigenvalues 1, 2, 4 with eigenvectors e₀, e₂, e₁.
    let d = Tensor::from_vec([3, 3], vec![1.0f64, 0.0, 0.0, 0.0, 4.0, 0.0, 0.0, 0.0, 2.0]);
    let e = eigh(&d).unwrap();
    assert_eq!(e.eigenvalues.data(), &[1.0, 2.0, 4.0]);
    let q: Vec<f64> = e.eigenvectors.data().iter().map(|v| v.abs()).collect();
    assert_eq!(q, vec![1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 1.0, 0.0]);
}

#[test]
fn bad_matrices_are_errors_naming_eigh() {
    let err = eigh(&Tensor::<f64>::zeros([2, 3])).unwrap_err();
    assert_eq!(err.kind, ErrorKind::Shape);
    assert!(
        err.to_string().contains("eigh") && err.to_string().contains("[2, 3]"),
        "{err}"
    );
    let nan = Tensor::from_vec([2, 2], vec![1.0, 0.0, f64::NAN, 1.0]);
    let err = eigh(&nan).unwrap_err();
    assert_eq!(err.kind, ErrorKind::Argument);
    assert!(err.to_string().contains("entry (1, 0) is NaN"), "{err}");
    let e = eigh(&Tensor::<f64>::zeros([0, 0])).unwrap();
    assert_eq!(e.eigenvalues.shape(), &[0]);
}
