//! Size arithmetic on hostile shapes: every element count, output size and
//! broadcast shape is checked, so a shape whose product overflows `usize`
//! is an `Overflow` error, never a wrapped count that unsafe code trusts.
//! Empty batches (N = 0) are valid input and give empty results, as in PyTorch.

use chainrule_ops::{
    conv_transpose2d, try_avg_pool2d, try_conv1d, try_conv2d, try_conv_transpose2d, try_max_pool2d,
    Conv1dOptions, Conv2dOptions, ConvTranspose2dOptions, Pool2dOptions, VarOps, Window,
};
use chainrule_tape::{ErrorKind, Graph, Result, Tensor, Var};

const HALF: usize = 1 << 63;

fn err<V: std::fmt::Debug>(r: Result<V>) -> chainrule_tape::Error {
    match r {
        Ok(v) => panic!("expected an error, got {v:?}"),
        Err(e) => e,
    }
}

fn leaf(shape: &[usize]) -> (Graph<f64>, Var<f64>) {
    let g = Graph::new();
    let n = shape.iter().product();
    let v = g.leaf(Tensor::from_vec(
        shape,
        (0..n).map(|i| i as f64 * 0.1).collect(),
    ));
    (g, v)
}

#[test]
fn a_shape_whose_product_wraps_is_refused_at_construction() {
    // 2 · 2⁶³ wraps to 0 in release arithmetic: the segfault began here.
    let e = err(Tensor::<f32>::try_from_vec([2, HALF], vec![]));
    assert_eq!(e.kind, ErrorKind::Overflow);
    assert!(
        e.to_string()
            .starts_with("tensor: shape [2, 9223372036854775808]"),
        "{e}"
    );
    // 2 · (2⁶³ + 3) wraps to exactly 6: a length check alone would accept it.
    let e = err(Tensor::<f64>::try_from_vec([2, HALF + 3], vec![0.0; 6]));
    assert_eq!(e.kind, ErrorKind::Overflow);
    // A zero dimension does not excuse the rest: the extent still overflows.
    let e = err(Tensor::<f64>::try_from_vec([HALF, 4, 0], vec![]));
    assert_eq!(e.kind, ErrorKind::Overflow);
    assert_eq!(
        err(Tensor::<f32>::try_full([HALF, 2], 0.0)).kind,
        ErrorKind::Overflow
    );
}

#[test]
#[should_panic(expected = "full: shape [9223372036854775808, 2] has more than")]
fn the_panicking_constructor_names_the_overflow() {
    let _ = Tensor::<f32>::zeros([HALF, 2]);
}

#[test]
fn a_reshape_to_a_wrapping_shape_is_refused() {
    // Six elements viewed as [2, 2⁶³ + 3] (product ≡ 6 mod 2⁶⁴) would let
    // a matmul read 2⁶³ elements past the buffer.
    let t = Tensor::from_vec([6], vec![1.0f64; 6]);
    assert_eq!(err(t.try_reshape([2, HALF + 3])).kind, ErrorKind::Overflow);
    let (_g, x) = leaf(&[6]);
    assert_eq!(
        err(x.try_reshape_to(&[2, HALF + 3])).kind,
        ErrorKind::Overflow
    );
    // The −1 form multiplies the known sizes: checked too.
    let e = err(x.try_reshape(&[-1, 1 << 62, 8]));
    assert_eq!(e.kind, ErrorKind::Overflow, "{e}");
}

#[test]
fn matmul_of_valid_operands_with_an_unaddressable_product_is_an_error() {
    // [2³³, 0] · [0, 2³³]: both empty, but the output would hold 2⁶⁶ elements.
    let a = Tensor::<f32>::try_from_vec([1 << 33, 0], vec![]).unwrap();
    let b = Tensor::<f32>::try_from_vec([0, 1 << 33], vec![]).unwrap();
    let ga = Graph::new();
    let (a, b) = (ga.input(a), ga.input(b));
    assert_eq!(err(a.try_matmul(&b)).kind, ErrorKind::Overflow);
    // [2³¹, 0] · [0, 2³¹]: 2⁶² elements fit usize but no allocation.
    let a = ga.input(Tensor::<f32>::try_from_vec([1 << 31, 0], vec![]).unwrap());
    let b = ga.input(Tensor::<f32>::try_from_vec([0, 1 << 31], vec![]).unwrap());
    assert_eq!(err(a.try_matmul(&b)).kind, ErrorKind::Overflow);
}

#[test]
fn broadcasting_to_an_unaddressable_shape_is_an_error() {
    let g = Graph::new();
    let a = g.input(Tensor::<f64>::try_from_vec([0, 1 << 40, 1], vec![]).unwrap());
    let b = g.input(Tensor::<f64>::try_from_vec([0, 1, 1 << 40], vec![]).unwrap());
    assert_eq!(err(a.try_add(&b)).kind, ErrorKind::Overflow);
    let (_g, x) = leaf(&[1]);
    assert_eq!(
        err(x.try_broadcast_to(&[HALF, 4])).kind,
        ErrorKind::Overflow
    );
    assert_eq!(err(x.try_repeat(&[HALF, 4])).kind, ErrorKind::Overflow);
}

#[test]
fn padding_concat_and_one_hot_sizes_are_checked() {
    let (_g, x) = leaf(&[2, 3]);
    let e = err(x.try_pad(&[usize::MAX, 1], 0.0));
    assert_eq!(e.kind, ErrorKind::Overflow, "{e}");
    // Two parts of 2⁵⁹ exceed the largest tensor; seventeen of 2⁶⁰ − 1
    // overflow the sum itself.
    let g = Graph::new();
    let y = g.input(Tensor::<f64>::try_from_vec([0, 1 << 59], vec![]).unwrap());
    let e = err(chainrule_ops::try_concat(&[&y, &y], 1));
    assert_eq!(e.kind, ErrorKind::Overflow, "{e}");
    let y = g.input(Tensor::<f64>::try_from_vec([0, (1 << 60) - 1], vec![]).unwrap());
    let e = err(chainrule_ops::try_concat(&[&y; 17], 1));
    assert_eq!(e.kind, ErrorKind::Overflow, "{e}");
    let idx = chainrule_ops::Indices::vector(vec![0, 1]);
    let e = err(chainrule_ops::try_one_hot::<f32>(&idx, HALF));
    assert_eq!(e.kind, ErrorKind::Overflow, "{e}");
}

#[test]
fn convolution_and_pooling_geometry_is_checked_not_wrapped() {
    let (_g, x) = leaf(&[1, 1, 4, 4]);
    let (_h, w) = leaf(&[1, 1, 3, 3]);
    // 2p overflows.
    let e = err(try_conv2d(
        &x,
        &w,
        None,
        Conv2dOptions::default().padding((HALF, 0)),
    ));
    assert!(
        matches!(e.kind, ErrorKind::Overflow | ErrorKind::Argument),
        "{e}"
    );
    // d(k − 1) overflows.
    let e = err(try_conv2d(
        &x,
        &w,
        None,
        Conv2dOptions::default().dilation((HALF, 1)),
    ));
    assert!(
        matches!(e.kind, ErrorKind::Overflow | ErrorKind::Argument),
        "{e}"
    );
    // groups · C_in/groups overflows back to C.
    let (_k, w1) = leaf(&[2, 2, 1, 1]);
    let (_l, x2) = leaf(&[1, 2, 2, 2]);
    let e = err(try_conv2d(
        &x2,
        &w1,
        None,
        Conv2dOptions::default().groups(HALF + 1),
    ));
    assert_eq!(e.kind, ErrorKind::Shape, "{e}");
    // A huge stride in the transposed convolution.
    let e = err(try_conv_transpose2d(
        &x,
        &w,
        None,
        ConvTranspose2dOptions::default().stride((HALF, 1)),
    ));
    assert!(
        matches!(e.kind, ErrorKind::Overflow | ErrorKind::Argument),
        "{e}"
    );
    let huge = Window {
        kernel: (2, 2),
        stride: (1, 1),
        padding: (usize::MAX, 0),
        dilation: (1, 1),
    };
    assert_eq!(err(try_max_pool2d(&x, huge)).kind, ErrorKind::Argument);
    assert_eq!(err(try_avg_pool2d(&x, huge)).kind, ErrorKind::Argument);
}

#[test]
fn pooling_an_empty_image_is_an_error_not_a_panic() {
    // H = 0 with padding would leave windows with no pixel in them.
    let g = Graph::new();
    let x = g.input(Tensor::<f64>::try_from_vec([1, 1, 0, 4], vec![]).unwrap());
    let win = Window {
        kernel: (2, 2),
        stride: (2, 2),
        padding: (1, 1),
        dilation: (1, 1),
    };
    assert_eq!(err(try_max_pool2d(&x, win)).kind, ErrorKind::Shape);
    assert_eq!(err(try_avg_pool2d(&x, win)).kind, ErrorKind::Shape);
}

/// An empty batch goes through every convolution and pooling op, forward
/// and backward, as in PyTorch: the result has N = 0 and the weights'
/// gradients are zero.
#[test]
fn an_empty_batch_gives_an_empty_result() {
    let (_g, w) = leaf(&[4, 3, 3, 3]);
    let x = w.graph().unwrap().leaf(Tensor::<f64>::zeros([0, 3, 8, 8]));
    let y = try_conv2d(&x, &w, None, Conv2dOptions::default().padding(1)).unwrap();
    assert_eq!(y.shape(), &[0, 4, 8, 8]);
    y.sum_all().backward();
    let gw = w.grad().unwrap();
    assert_eq!(gw.shape(), &[4, 3, 3, 3]);
    assert!(gw.data().iter().all(|&v| v == 0.0));

    let (_h, w1) = leaf(&[2, 3, 3]);
    let x1 = Graph::new().input(Tensor::<f64>::zeros([0, 3, 10]));
    assert_eq!(
        try_conv1d(&x1, &w1, None, Conv1dOptions::default())
            .unwrap()
            .shape(),
        &[0, 2, 8]
    );

    let (_k, wt) = leaf(&[3, 2, 3, 3]);
    let xt = Graph::new().input(Tensor::<f64>::zeros([0, 3, 4, 4]));
    let yt = try_conv_transpose2d(
        &xt,
        &wt,
        None,
        ConvTranspose2dOptions::default()
            .stride(2)
            .padding(1)
            .output_padding(1),
    )
    .unwrap();
    assert_eq!(yt.shape(), &[0, 2, 8, 8]);

    let xp = Graph::new().leaf(Tensor::<f64>::zeros([0, 2, 6, 6]));
    assert_eq!(
        try_avg_pool2d(&xp, Pool2dOptions::new(2).stride(1))
            .unwrap()
            .shape(),
        &[0, 2, 5, 5]
    );
    let m = try_max_pool2d(&xp, Pool2dOptions::new(2).stride(1)).unwrap();
    assert_eq!(m.shape(), &[0, 2, 5, 5]);
    m.sum_all().backward();
    assert_eq!(xp.grad().unwrap().shape(), &[0, 2, 6, 6]);

    let xa = Graph::new().leaf(Tensor::<f64>::zeros([0, 2, 6, 6]));
    try_avg_pool2d(
        &xa,
        Pool2dOptions::new(3).stride(1).count_include_pad(false),
    )
    .unwrap()
    .sum_all()
    .backward();
    assert_eq!(xa.grad().unwrap().shape(), &[0, 2, 6, 6]);
    let gt = wt.graph().unwrap();
    let xt = gt.leaf(Tensor::<f64>::zeros([0, 3, 4, 4]));
    conv_transpose2d(
        &xt,
        &wt,
        None,
        ConvTranspose2dOptions::default()
            .stride(2)
            .padding(1)
            .output_padding(1),
    )
    .sum_all()
    .backward();
    assert_eq!(xt.grad().unwrap().shape(), &[0, 3, 4, 4]);
    assert!(wt.grad().unwrap().data().iter().all(|&v| v == 0.0));
}

/// Sizes that fit `usize` and the element limit but no allocator: an
/// error naming the op, where `vec!` would abort the process.
#[test]
fn an_unobtainable_buffer_is_an_error_not_an_abort() {
    let e = err(Tensor::<f64>::try_full([1 << 59], 0.0));
    assert_eq!(e.kind, ErrorKind::Overflow, "{e}");
    let idx = chainrule_ops::Indices::vector(vec![0]);
    let e = err(chainrule_ops::try_one_hot::<f64>(&idx, 1 << 52));
    assert_eq!(e.kind, ErrorKind::Overflow, "{e}");
    let (_g, x) = leaf(&[1, 1, 1, 1]);
    // 2²⁸ × 2²⁸ taps over a one-pixel image: the columns cannot be allocated.
    let win = Window {
        kernel: (1 << 28, 1 << 28),
        stride: (1, 1),
        padding: (1 << 27, 1 << 27),
        dilation: (1, 1),
    };
    let e = err(try_avg_pool2d(&x, win));
    assert_eq!(e.kind, ErrorKind::Overflow, "{e}");
    // Kernel taps that overflow usize before the columns are sized.
    let win = Window {
        kernel: (HALF, HALF),
        stride: (1, 1),
        padding: (1 << 62, 1 << 62),
        dilation: (1, 1),
    };
    let e = err(try_avg_pool2d(&x, win));
    assert_eq!(e.kind, ErrorKind::Overflow, "{e}");
    let (_h, y) = leaf(&[1, 1, 4, 4]);
    let e = err(chainrule_ops::try_adaptive_avg_pool2d(&y, (1 << 62, 1)));
    assert_eq!(e.kind, ErrorKind::Overflow, "{e}");
}

/// Found by the shapes fuzz target: a 0-d tensor summed over axis 0 (which
/// PyTorch allows: `torch.tensor(3.).sum(0)` is 3) indexed an empty stride list.
#[test]
fn reducing_a_0d_tensor_over_its_axis_gives_its_value() {
    let g = Graph::new();
    let x = g.leaf(Tensor::scalar(3.0f64));
    let s = x.try_sum(&[0], true).unwrap();
    assert_eq!((s.shape(), s.item()), (&[][..], 3.0));
    assert_eq!(x.try_max(&[-1], false).unwrap().item(), 3.0);
    s.backward();
    assert_eq!(x.grad().unwrap().item(), 1.0);
}

/// Axis 0 of a 0-d tensor used to pass axis checks and then index an empty
/// shape: ops that index along an axis refuse a 0-d input.
#[test]
fn axis_ops_on_a_0d_tensor_are_errors_not_panics() {
    let g = Graph::new();
    let x = g.leaf(Tensor::scalar(3.0f64));
    assert_eq!(err(x.try_squeeze(Some(0))).kind, ErrorKind::Axis);
    assert_eq!(err(x.try_slice(0, 0, 1, 1)).kind, ErrorKind::Axis);
    assert_eq!(
        err(x.try_index_select(0, &chainrule_ops::Indices::from([0]))).kind,
        ErrorKind::Axis
    );
    assert_eq!(
        err(chainrule_ops::try_concat(&[&x, &x], 0)).kind,
        ErrorKind::Axis
    );
    assert!(x.try_split(1, 0).is_err());
}

/// Found by the shapes fuzz target: 2⁶³-sized padding and strides that still
/// give a small output wrapped the unfold's isize coordinates (a subtract
/// overflow); and a dilated max-pool window that covers only padding
/// indexed an empty row list.
#[test]
fn extreme_but_consistent_geometry_computes_or_refuses_without_panicking() {
    let (g, x) = leaf(&[1, 1, 5, 4]);
    let w = g.leaf(Tensor::from_vec([1, 1, 1, 1], vec![2.0f64]));
    // Padding 2⁶⁰ with stride 2⁶³: the one output position reads padding only.
    let y = try_conv2d(
        &x,
        &w,
        None,
        Conv2dOptions::default().stride(HALF).padding(1 << 60),
    )
    .unwrap();
    assert_eq!(y.shape(), &[1, 1, 1, 1]);
    assert_eq!(y.item(), 0.0);
    let row = g.leaf(Tensor::from_vec([1, 1, 1, 3], vec![1.0f64, 2.0, 3.0]));
    let win = Window {
        kernel: (2, 1),
        stride: (1, 1),
        padding: (1, 0),
        dilation: (2, 1),
    };
    let e = err(try_max_pool2d(&row, win));
    assert_eq!(e.kind, ErrorKind::Argument);
    assert!(e.to_string().contains("covers only padding"), "{e}");
    // A huge padded kernel visits only the pixels under it (no 2⁶² loop).
    let big = Window {
        kernel: (1 << 61, 1),
        stride: (1, 1),
        padding: (1 << 60, 0),
        dilation: (1, 1),
    };
    let m = try_max_pool2d(&row, big).unwrap();
    assert_eq!(m.shape(), &[1, 1, 2, 3]);
}

/// The boundary of the unsafe GEMM's contract: with k = 0 the product is all
/// zeros, which the kernel must write (β = 0) into the uninitialised output
/// before `set_len` exposes it; empty m or n give empty outputs.
#[test]
fn matmul_with_an_empty_inner_dimension_writes_zeros() {
    let g = Graph::new();
    for (m, n) in [(3, 4), (1, 1), (33, 17)] {
        let a = g.leaf(Tensor::<f64>::try_from_vec([m, 0], vec![]).unwrap());
        let b = g.leaf(Tensor::<f64>::try_from_vec([0, n], vec![]).unwrap());
        let y = a.try_matmul(&b).unwrap();
        assert_eq!(y.shape(), &[m, n]);
        assert!(y.value().data().iter().all(|&v| v == 0.0), "{m}x0 · 0x{n}");
    }
    let g32 = Graph::new();
    let a = g32.leaf(Tensor::<f32>::try_from_vec([2, 0, 5], vec![]).unwrap());
    let b = g32.leaf(Tensor::<f32>::try_from_vec([5, 3], vec![0.5; 15]).unwrap());
    assert_eq!(a.try_matmul(&b).unwrap().shape(), &[2, 0, 3]);
}

/// Found by the shapes fuzz target: padding and broadcasting to a valid but
/// unobtainable size (10¹⁰ elements and more) aborted in the kernels'
/// allocations; they now reserve fallibly.
#[test]
fn outputs_larger_than_memory_are_errors_in_pad_and_broadcasting() {
    let (_g, x) = leaf(&[2, 3]);
    let e = err(x.try_pad(&[1 << 40, 1 << 40], 0.0));
    assert_eq!(e.kind, ErrorKind::Overflow, "{e}");
    let e = err(x.try_broadcast_to(&[1 << 40, 2, 3]));
    assert_eq!(e.kind, ErrorKind::Overflow, "{e}");
    // [2²⁰, 1] + [1, 2²⁰]: 2⁴⁰ elements (8 TiB), within the limit but not memory.
    let g = Graph::new();
    let a = g.leaf(Tensor::from_vec([1 << 20, 1], vec![0.5f64; 1 << 20]));
    let b = g.leaf(Tensor::from_vec([1, 1 << 20], vec![0.5f64; 1 << 20]));
    let e = err(a.try_add(&b));
    assert_eq!(e.kind, ErrorKind::Overflow, "{e}");
}
