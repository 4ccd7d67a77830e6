//! gradcheck and gradgradcheck catch wrong derivatives and say where.

use chainrule_tape::error::Result;
use chainrule_tape::{
    gradcheck, gradgradcheck, BackwardContext, Element, InputGrads, Op, Tensor, Var,
};
use smallvec::smallvec;

/// x³ whose backward is right everywhere except at flat element `broken`,
/// where it returns 2x² instead of 3x².
struct CubeWithBug {
    broken: usize,
}
impl<T: Element> Op<T> for CubeWithBug {
    fn name(&self) -> &str {
        "cube_with_bug"
    }
    fn backward(&self, cx: &BackwardContext<'_, T>) -> Result<InputGrads<T>> {
        let x = cx.input(0);
        let broken = self.broken;
        let coeff = Var::constant(Tensor::from_fn(x.shape(), |i| {
            T::from_f64(if i == broken { 2.0 } else { 3.0 })
        }));
        Ok(smallvec![Some(
            cx.grad.try_mul(&x.try_mul(x)?.try_mul(&coeff)?)?
        )])
    }
}

fn cube_with_bug(x: &Var<f64>, broken: usize) -> Var<f64> {
    Var::from_op(CubeWithBug { broken }, &[x], x.value().map(|v| v * v * v)).unwrap()
}

#[test]
fn gradcheck_reports_the_element_whose_derivative_is_wrong() {
    let x = Tensor::from_vec([2, 3], vec![0.5, -1.0, 1.5, 2.0, -0.7, 0.9]);
    let report = gradcheck(|v| cube_with_bug(&v[0], 4), &[x]);
    assert!(!report.passed());
    let worst = report.inputs[0].worst.as_ref().unwrap();
    assert_eq!(worst.input_element, 4);
    assert_eq!(worst.output_element, 4);
    // analytical 2·0.49 = 0.98 vs numerical 3·0.49 = 1.47 (finite-difference error ~1e-10).
    assert!((worst.analytical - 0.98).abs() < 1e-12);
    assert!((worst.numerical - 1.47).abs() < 1e-6);
    let text = report.to_string();
    assert!(text.contains("FAILED") && text.contains("[1, 1]"), "{text}");
}

/// tanh whose backward detaches its local derivative 1 − y²: first
/// derivatives are right, second derivatives silently miss a term.
struct TanhDetachedBackward;
impl<T: Element> Op<T> for TanhDetachedBackward {
    fn name(&self) -> &str {
        "tanh_detached_backward"
    }
    fn backward(&self, cx: &BackwardContext<'_, T>) -> Result<InputGrads<T>> {
        let local = Var::constant(cx.output.value().map(|y| T::one() - y * y));
        Ok(smallvec![Some(cx.grad.try_mul(&local)?)])
    }
}

#[test]
fn gradgradcheck_catches_a_backward_that_is_not_differentiable() {
    let f = |v: &[Var<f64>]| {
        Var::from_op(TanhDetachedBackward, &[&v[0]], v[0].value().map(f64::tanh)).unwrap()
    };
    let x = Tensor::from_vec([3], vec![0.3, -0.8, 1.1]);
    assert!(gradcheck(f, std::slice::from_ref(&x)).passed());
    let second = gradgradcheck(f, &[x]);
    assert!(!second.passed(), "{second}");
}

#[test]
fn a_failing_function_is_a_failed_report_not_a_panic() {
    let x = Tensor::from_vec([2], vec![1.0, 2.0]);
    let y = Tensor::from_vec([3], vec![1.0, 2.0, 3.0]);
    let report = gradcheck(|v| &v[0] + &v[1], &[x, y]);
    assert!(!report.passed());
    assert!(
        report
            .error
            .as_deref()
            .unwrap()
            .contains("add: [2] and [3]"),
        "{report}"
    );
}
