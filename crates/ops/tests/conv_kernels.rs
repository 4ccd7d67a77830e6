//! conv2d against a naive loop of its definition, forward and both
//! gradients, over the CNN's shapes and odd geometries (stride, dilation,
//! groups, padding 0/1/2, non-square, N = 1), in f32 and f64; and the
//! `cnn_convs_batch64` workload measured under cachegrind (ignored by default).
//!
//! With o = output, the definition is
//! `out[n,o,y,x] = b[o] + Σ_{c,i,j} w[o,c,i,j]·x[n, g·C/g + c, s·y + d·i − p, s·x + d·j − p]`
//! (zero outside the image; g the group of o). For the loss `Σ out·R`:
//! `∂/∂w[o,c,i,j] = Σ_{n,y,x} R[n,o,y,x]·x[…]`, `∂/∂x[…] = Σ R·w` over every
//! (o, y, x, i, j) that reads that pixel, `∂/∂b[o] = Σ_{n,y,x} R[n,o,y,x]`.

use chainrule_ops::*;
use chainrule_tape::{grad, Element, Graph, Tensor};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// One geometry: x [n, c, h, w], weight [o, c/groups, kh, kw].
#[derive(Clone, Copy, Debug)]
struct Case {
    x: [usize; 4],
    o: usize,
    kernel: (usize, usize),
    stride: (usize, usize),
    padding: (usize, usize),
    dilation: (usize, usize),
    groups: usize,
    bias: bool,
}

impl Case {
    fn options(&self) -> Conv2dOptions {
        Conv2dOptions::default()
            .stride(self.stride)
            .padding(self.padding)
            .dilation(self.dilation)
            .groups(self.groups)
    }
    fn out_hw(&self) -> (usize, usize) {
        let len = |n: usize, k, s, p, d: usize| (n + 2 * p - d * (k - 1) - 1) / s + 1;
        (
            len(
                self.x[2],
                self.kernel.0,
                self.stride.0,
                self.padding.0,
                self.dilation.0,
            ),
            len(
                self.x[3],
                self.kernel.1,
                self.stride.1,
                self.padding.1,
                self.dilation.1,
            ),
        )
    }
    fn w_shape(&self) -> [usize; 4] {
        [
            self.o,
            self.x[1] / self.groups,
            self.kernel.0,
            self.kernel.1,
        ]
    }
}

/// Naive forward and the gradients of `Σ out·r` (x, w, b), in f64.
fn naive(c: &Case, x: &[f64], w: &[f64], b: &[f64], r: &[f64]) -> [Vec<f64>; 4] {
    let [n, ch, h, wd] = c.x;
    let [o, cg, kh, kw] = c.w_shape();
    let (oh, ow) = c.out_hw();
    let og = o / c.groups;
    let (mut out, mut dx, mut dw) = (
        vec![0.0; n * o * oh * ow],
        vec![0.0; x.len()],
        vec![0.0; w.len()],
    );
    let mut db = vec![0.0; o];
    for (s, oc, oy, ox) in itertools4(n, o, oh, ow) {
        let oi = ((s * o + oc) * oh + oy) * ow + ox;
        let mut acc = if c.bias { b[oc] } else { 0.0 };
        db[oc] += r[oi];
        for (ci, i, j) in
            (0..cg).flat_map(|ci| (0..kh).flat_map(move |i| (0..kw).map(move |j| (ci, i, j))))
        {
            let y = (oy * c.stride.0 + i * c.dilation.0) as isize - c.padding.0 as isize;
            let xx = (ox * c.stride.1 + j * c.dilation.1) as isize - c.padding.1 as isize;
            if y < 0 || xx < 0 || y >= h as isize || xx >= wd as isize {
                continue;
            }
            let xc = (oc / og) * cg + ci;
            let xi = ((s * ch + xc) * h + y as usize) * wd + xx as usize;
            let wi = ((oc * cg + ci) * kh + i) * kw + j;
            acc += w[wi] * x[xi];
            dw[wi] += r[oi] * x[xi];
            dx[xi] += r[oi] * w[wi];
        }
        out[oi] = acc;
    }
    [out, dx, dw, db]
}

fn itertools4(
    a: usize,
    b: usize,
    c: usize,
    d: usize,
) -> impl Iterator<Item = (usize, usize, usize, usize)> {
    (0..a).flat_map(move |i| {
        (0..b).flat_map(move |j| (0..c).flat_map(move |k| (0..d).map(move |l| (i, j, k, l))))
    })
}

fn random(rng: &mut StdRng, len: usize) -> Vec<f64> {
    (0..len).map(|_| rng.gen_range(-1.0..1.0)).collect()
}

/// conv2d's forward and gradients in `T` against [`naive`] in f64; returns
/// the largest error relative to max(1, |reference|).
fn max_error<T: Element>(c: &Case, seed: u64) -> f64 {
    let mut rng = StdRng::seed_from_u64(seed);
    let (oh, ow) = c.out_hw();
    let xv = random(&mut rng, c.x.iter().product());
    let wv = random(&mut rng, c.w_shape().iter().product());
    let bv = random(&mut rng, c.o);
    let rv = random(&mut rng, c.x[0] * c.o * oh * ow);
    let reference = naive(c, &xv, &wv, &bv, &rv);
    let cast = |v: &[f64]| v.iter().map(|&a| T::from(a).unwrap()).collect::<Vec<T>>();
    let g = Graph::<T>::new();
    let x = g.leaf(Tensor::from_vec(c.x, cast(&xv)));
    let w = g.leaf(Tensor::from_vec(c.w_shape(), cast(&wv)));
    let b = g.leaf(Tensor::from_vec([c.o], cast(&bv)));
    let r = g.leaf(Tensor::from_vec([c.x[0], c.o, oh, ow], cast(&rv)));
    let out = try_conv2d(&x, &w, c.bias.then_some(&b), c.options()).unwrap();
    assert_eq!(out.shape(), [c.x[0], c.o, oh, ow], "{c:?}");
    let loss = (&out * &r).sum_all();
    let [dx, dw, db] = grad(&loss, [&x, &w, &b], false);
    let got = [
        out.value().to_vec(),
        dx.value().to_vec(),
        dw.value().to_vec(),
        db.value().to_vec(),
    ];
    let mut worst = 0.0f64;
    for (k, (got, want)) in got.iter().zip(&reference).enumerate() {
        if k == 3 && !c.bias {
            continue;
        }
        assert_eq!(got.len(), want.len(), "{c:?} output {k}");
        for (g, w) in got.iter().zip(want) {
            worst = worst.max((g.to_f64().unwrap() - w).abs() / w.abs().max(1.0));
        }
    }
    worst
}

fn case(x: [usize; 4], o: usize, kernel: (usize, usize)) -> Case {
    Case {
        x,
        o,
        kernel,
        stride: (1, 1),
        padding: (0, 0),
        dilation: (1, 1),
        groups: 1,
        bias: false,
    }
}

/// CNN-like (small batch) and odd geometries.
fn cases() -> Vec<Case> {
    let cnn1 = Case {
        padding: (1, 1),
        ..case([3, 1, 28, 28], 32, (3, 3))
    };
    let cnn2 = Case {
        padding: (1, 1),
        ..case([2, 32, 14, 14], 64, (3, 3))
    };
    vec![
        cnn1,
        cnn2,
        Case {
            bias: true,
            ..case([1, 3, 7, 5], 4, (3, 2))
        },
        Case {
            stride: (2, 2),
            padding: (2, 2),
            ..case([2, 3, 9, 8], 5, (3, 3))
        },
        Case {
            dilation: (2, 2),
            padding: (1, 2),
            ..case([1, 2, 8, 7], 3, (3, 2))
        },
        Case {
            groups: 2,
            padding: (1, 0),
            bias: true,
            ..case([2, 4, 6, 5], 6, (2, 3))
        },
        Case {
            stride: (2, 1),
            dilation: (1, 2),
            groups: 2,
            ..case([3, 6, 7, 9], 4, (3, 3))
        },
        case([1, 2, 4, 4], 3, (1, 1)),
        case([2, 1, 3, 5], 2, (3, 5)),
    ]
}

/// f64: kernel and reference add the same products in different orders.
/// The longest sum here (cnn2's weight gradient, 2·14·14 = 392 products of
/// values in [−1, 1]) has rounding error ≤ 392·2⁻⁵³·392 ≈ 2e-11 in the worst
/// case and ~√392·2⁻⁵³·(its size) ≈ 1e-13 relative in practice; 1e-12
/// relative to max(1, |value|) keeps an order of margin above that.
#[test]
fn conv2d_matches_the_naive_loop_f64() {
    for (i, c) in cases().iter().enumerate() {
        let e = max_error::<f64>(c, i as u64);
        assert!(e < 1e-12, "{c:?}: error {e}");
    }
}

/// f32, against the f64 reference: the inputs are rounded to f32 (2⁻²⁴
/// relative) and sums of up to 3·784 = 2352 products (cnn1's weight
/// gradient) round at ~√2352·2⁻²⁴·|sum| ≈ 3e-6 relative; 1e-4 relative to
/// max(1, |value|) leaves margin for unlucky orders, while a wrong tap, channel
/// or sample (the mutations this file is for) errs by O(1).
#[test]
fn conv2d_matches_the_naive_loop_f32() {
    for (i, c) in cases().iter().enumerate() {
        let e = max_error::<f32>(c, 100 + i as u64);
        assert!(e < 1e-4, "{c:?}: error {e}");
    }
}

/// The workload measured with `valgrind --tool=cachegrind --cache-sim=no`:
/// one forward and backward of the CNN's two convolutions at batch 64
/// (x needs no gradient, as the data; the second conv's input does).
#[test]
#[ignore = "a workload for cachegrind, not a check"]
fn cnn_convs_batch64() {
    let mut rng = StdRng::seed_from_u64(7);
    let g = Graph::<f32>::new();
    let mut leaf = |shape: &[usize]| {
        let v: Vec<f32> = (0..shape.iter().product())
            .map(|_| rng.gen_range(-1.0..1.0))
            .collect();
        Tensor::from_vec(shape, v)
    };
    let x = chainrule_tape::Var::constant(leaf(&[64, 1, 28, 28]));
    let w1 = g.leaf(leaf(&[32, 1, 3, 3]));
    let h = g.leaf(leaf(&[64, 32, 14, 14]));
    let w2 = g.leaf(leaf(&[64, 32, 3, 3]));
    let pad = Conv2dOptions::default().padding(1);
    let y1 = conv2d(&x, &w1, None, pad);
    let y2 = conv2d(&h, &w2, None, pad);
    let loss = &y1.sum_all() + &y2.sum_all();
    let [d1, dh, d2] = grad(&loss, [&w1, &h, &w2], false);
    assert!(d1.value().data()[0].is_finite() && dh.value().data()[0].is_finite());
    assert!(d2.value().data()[0].is_finite());
}
