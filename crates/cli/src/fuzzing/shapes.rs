//! The shape and broadcasting fuzz target: bytes pick shapes (small sizes
//! beside sizes of 2⁶⁰ and more, which overflow any product they enter) and a
//! sequence of shape-sensitive ops with their size arguments. Every call must
//! return `Ok` or `Err`; every `Ok` tensor must hold exactly `∏ shape`
//! elements; backward through small results must not panic either.

use super::ByteReader;
use chainrule::ops::{
    try_avg_pool2d, try_concat, try_conv2d, try_conv_transpose2d, try_max_pool2d, try_one_hot,
    Conv2dOptions, ConvTranspose2dOptions, Indices, Pool2dOptions, VarOps, Window,
};
use chainrule::tape::shape::{broadcast_shapes, extent};
use chainrule::tape::{BackwardOptions, Graph, Result, Tensor, Var};

/// Sizes the fuzzer draws from: real small sizes, and sizes so large that any
/// output they reach is refused before allocation (≥ 2⁶⁰ elements), so a run
/// never legitimately allocates more than a few megabytes.
const SIZES: [usize; 16] = [
    0,
    1,
    2,
    3,
    4,
    5,
    6,
    7,
    1,
    2,
    1 << 60,
    (1 << 61) + 1,
    1 << 62,
    1 << 63,
    (1 << 63) + 3,
    usize::MAX,
];

/// At most this many elements are given real data (the rest are refused).
const MAX_DATA: usize = 1024;

/// Ops applied per input. The graph keeps every result alive until the
/// input is done, and a repeat of a full tensor may give 7⁴ times its
/// elements, so a bounded chain keeps a run within the fuzzer's memory limit.
const MAX_OPS: usize = 8;

fn size(r: &mut ByteReader<'_>) -> usize {
    SIZES[usize::from(r.byte()) % SIZES.len()]
}

fn small(r: &mut ByteReader<'_>) -> usize {
    usize::from(r.byte() % 4)
}

fn shape(r: &mut ByteReader<'_>) -> Vec<usize> {
    let rank = usize::from(r.byte() % 5);
    (0..rank).map(|_| size(r)).collect()
}

fn axis(r: &mut ByteReader<'_>) -> isize {
    isize::from(r.byte() as i8 % 6)
}

/// A tensor of the drawn shape when it is small enough to hold, after
/// checking that construction refuses exactly the invalid shapes.
fn tensor(g: &Graph<f64>, dims: &[usize]) -> Option<Var<f64>> {
    let valid = extent(dims).is_some();
    let n = dims.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
    match n {
        Some(n) if valid && n <= MAX_DATA => {
            let data = (0..n).map(|i| (i % 7) as f64 - 3.0).collect();
            Some(g.leaf(Tensor::try_from_vec(dims, data).expect("a valid shape")))
        }
        _ => {
            let refused = Tensor::<f64>::try_from_vec(dims, Vec::new());
            assert!(
                refused.is_err() || n == Some(0),
                "accepted an empty buffer for {dims:?}"
            );
            None
        }
    }
}

fn window(r: &mut ByteReader<'_>) -> Window {
    Window {
        kernel: (size(r), size(r)),
        stride: (size(r), size(r)),
        padding: (size(r), size(r)),
        dilation: (size(r), size(r)),
    }
}

/// Applies one op chosen by the next byte to `x` (and `y`).
fn apply(r: &mut ByteReader<'_>, x: &Var<f64>, y: &Var<f64>) -> Result<Var<f64>> {
    match r.byte() % 16 {
        0 => x.try_add(y),
        1 => x.try_matmul(y),
        2 => x.try_reshape(&[axis(r) - 1, size(r) as isize, size(r) as isize]),
        3 => x.try_broadcast_to(&shape(r)),
        4 => x.try_repeat(&shape(r)),
        5 => x.try_pad(&shape(r), 0.5),
        6 => try_concat(&[x, y], axis(r)),
        7 => x.try_sum(&[axis(r)], r.byte().is_multiple_of(2)),
        8 => x.try_permute(&[small(r), small(r), small(r), small(r)][..x.shape().len().min(4)]),
        9 => x.try_expand(&[size(r) as isize, -1, size(r) as isize]),
        10 => x.try_slice(axis(r), size(r), size(r), size(r)),
        11 => try_max_pool2d(x, window(r)),
        12 => {
            let options = Pool2dOptions::from(window(r));
            try_avg_pool2d(x, options.count_include_pad(r.byte().is_multiple_of(2)))
        }
        13 => {
            let (s, p, d) = ((size(r), size(r)), (size(r), size(r)), (size(r), size(r)));
            let options = Conv2dOptions {
                stride: s.into(),
                padding: p.into(),
                dilation: d.into(),
                groups: size(r),
            };
            try_conv2d(x, y, None, options)
        }
        14 => {
            let (s, p, d) = ((size(r), size(r)), (size(r), size(r)), (size(r), size(r)));
            let output_padding = (small(r), small(r));
            let options = ConvTranspose2dOptions {
                stride: s.into(),
                padding: p.into(),
                output_padding: output_padding.into(),
                dilation: d.into(),
                groups: size(r),
            };
            try_conv_transpose2d(x, y, None, options)
        }
        _ => {
            let idx = Indices::vector(vec![small(r), small(r)]);
            try_one_hot::<f64>(&idx, size(r)).map(Var::constant)
        }
    }
}

/// Runs the target on one input. Panics (the fuzzer's finding) only if the
/// library panics or breaks the tensor invariant.
pub fn run(data: &[u8]) {
    let mut r = ByteReader::new(data);
    let (a, b) = (shape(&mut r), shape(&mut r));
    let _ = broadcast_shapes("fuzz", &a, &b);
    let g = Graph::new();
    let (Some(mut x), Some(y)) = (tensor(&g, &a), tensor(&g, &b)) else {
        return;
    };
    for _ in 0..MAX_OPS {
        if r.is_empty() {
            break;
        }
        match apply(&mut r, &x, &y) {
            Ok(out) => {
                let n: usize = out.shape().iter().product();
                assert_eq!(out.value().data().len(), n, "tensor invariant");
                if n <= MAX_DATA && out.graph().is_some() {
                    let keep = BackwardOptions {
                        retain_graph: true,
                        ..Default::default()
                    };
                    let _ = out.try_sum_all().map(|s| s.try_backward(keep));
                }
                // Chained on only while its extent (zeros counted as one)
                // is small: a [192, 256, 256, 0] tensor holds nothing, but
                // padding its last axis asks for 10⁸ real elements.
                if extent(out.shape()).is_some_and(|e| e <= MAX_DATA) {
                    x = out;
                }
            }
            Err(e) => {
                assert!(!e.to_string().is_empty());
            }
        }
    }
}
