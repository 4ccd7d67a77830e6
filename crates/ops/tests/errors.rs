//! Every op's errors: typed kind, a message naming the op and the shapes, and
//! a panicking form that reports the same message at the caller's line.

use chainrule_ops::{Transpose, VarOps};
use chainrule_tape::{ErrorKind, Graph, Tensor, Var};

fn z(shape: &[usize]) -> Var<f64> {
    Graph::new().leaf(Tensor::zeros(shape))
}

fn err(r: chainrule_tape::Result<Var<f64>>) -> chainrule_tape::Error {
    match r {
        Ok(v) => panic!("expected an error, got a value of shape {:?}", v.shape()),
        Err(e) => e,
    }
}

#[test]
fn matmul_names_both_shapes_and_the_inner_dimensions() {
    let e = err(z(&[3, 4]).try_matmul(&z(&[5, 2])));
    assert_eq!(e.kind, ErrorKind::Shape);
    assert_eq!(
        e.to_string(),
        "matmul: [3, 4] x [5, 2]: inner dimensions 4 and 5 differ"
    );
    let e = err(z(&[3, 4]).try_matmul(&z(&[3])));
    assert_eq!(
        e.to_string(),
        "matmul: [3, 4] x [3]: inner dimensions 4 and 3 differ"
    );
    let e = err(z(&[2, 3, 4]).try_matmul(&z(&[5, 4, 2])));
    assert_eq!(
        e.to_string(),
        "matmul: [2, 3, 4] x [5, 4, 2]: batch dimensions [2] and [5] do not broadcast"
    );
    let e = err(z(&[]).try_matmul(&z(&[2])));
    assert_eq!(
        e.to_string(),
        "matmul: [] x [2]: both operands need at least 1 dimension"
    );
    let e = err(z(&[3]).try_matmul_t(&z(&[3, 2]), Transpose::Neither));
    assert_eq!(
        e.to_string(),
        "matmul: [3] x [3, 2]: both operands need at least 2 dimensions"
    );
}

#[test]
fn broadcasting_binary_ops_name_the_op_and_shapes() {
    let (a, b) = (z(&[2, 3]), z(&[4]));
    let cases: [(&str, chainrule_tape::Result<Var<f64>>); 7] = [
        ("add", a.try_add(&b)),
        ("sub", a.try_sub(&b)),
        ("mul", a.try_mul(&b)),
        ("div", a.try_div(&b)),
        ("pow", a.try_pow(&b)),
        ("maximum", a.try_maximum(&b)),
        ("minimum", a.try_minimum(&b)),
    ];
    for (op, r) in cases {
        let e = err(r);
        assert_eq!(e.kind, ErrorKind::Shape);
        assert_eq!(
            e.to_string(),
            format!("{op}: [2, 3] and [4]: cannot broadcast (dimension 1 is 3 and 4)")
        );
    }
}

#[test]
fn reductions_reject_bad_axes_and_empty_dimensions() {
    let x = z(&[2, 3]);
    let e = err(x.try_sum(&[2], false));
    assert_eq!(
        (e.kind, e.to_string()),
        (
            ErrorKind::Axis,
            "sum: axis 2 is out of range for a tensor of rank 2".into()
        )
    );
    assert_eq!(
        err(x.try_mean(&[-3], false)).to_string(),
        "mean: axis -3 is out of range for a tensor of rank 2"
    );
    assert_eq!(
        err(x.try_max(&[0, -2], false)).to_string(),
        "max: axis -2 is repeated in [0, -2]"
    );
    assert_eq!(err(x.try_min(&[5], true)).kind, ErrorKind::Axis);
    let e = err(z(&[0, 3]).try_max(&[0], false));
    assert_eq!(
        (e.kind, e.to_string()),
        (
            ErrorKind::Argument,
            "max: cannot reduce an empty dimension of [0, 3]".into()
        )
    );
    assert_eq!(
        err(z(&[2, 0]).try_mean(&[1], false)).to_string(),
        "mean: mean over an empty dimension of [2, 0]"
    );
}

#[test]
fn shape_ops_reject_impossible_shapes() {
    let x = z(&[2, 3]);
    assert_eq!(
        err(x.try_reshape(&[4, -1])).to_string(),
        "reshape: [2, 3] -> [4, -1]: 6 elements do not divide into that shape"
    );
    assert_eq!(err(x.try_reshape(&[-1, -1])).kind, ErrorKind::Argument);
    assert_eq!(
        err(x.try_reshape_to(&[5])).to_string(),
        "reshape: [2, 3] -> [5]: element counts 6 and 5 differ"
    );
    assert_eq!(
        err(x.try_permute(&[0, 0])).to_string(),
        "permute: [0, 0] is not a permutation of the 2 dimensions of [2, 3]"
    );
    assert_eq!(
        err(x.try_transpose(0, 2)).to_string(),
        "transpose: axis 2 is out of range for a tensor of rank 2"
    );
    assert_eq!(
        err(x.try_broadcast_to(&[3, 3])).to_string(),
        "broadcast_to: [2, 3] cannot be broadcast to [3, 3]"
    );
    assert_eq!(
        err(x.try_sum_to(&[4])).to_string(),
        "sum_to: [4] cannot be broadcast to [2, 3]"
    );
}

#[test]
#[should_panic(expected = "matmul: [3, 4] x [5, 2]: inner dimensions 4 and 5 differ")]
fn the_plain_form_panics_with_the_same_message() {
    let _ = z(&[3, 4]).matmul(&z(&[5, 2]));
}

#[test]
fn a_panic_points_at_the_callers_line() {
    let location = std::sync::Arc::new(std::sync::Mutex::new(None));
    let seen = location.clone();
    let previous = std::panic::take_hook();
    // The hook is process-wide and tests run in parallel: record only our panic.
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<String>()
            .cloned()
            .unwrap_or_default();
        if message.starts_with("add: [2] and [3]") {
            *seen.lock().unwrap() = info.location().map(|l| (l.file().to_string(), l.line()));
        }
    }));
    let line = line!() + 1;
    let result = std::panic::catch_unwind(|| &z(&[2]) + &z(&[3]));
    std::panic::set_hook(previous);
    assert!(result.is_err());
    let (file, at) = location.lock().unwrap().clone().unwrap();
    assert!(
        file.ends_with("tests/errors.rs"),
        "panic reported at {file}"
    );
    assert_eq!(at, line);
}
