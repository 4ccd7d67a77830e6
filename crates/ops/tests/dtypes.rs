//! f32 (training) and f64 (checking) run the same code end to end, and the
//! parallel kernels used above 32k elements agree with the serial ones.

use chainrule_ops::VarOps;
use chainrule_tape::{Element, Graph, Tensor, Var};
use rand::{rngs::StdRng, SeedableRng};

/// loss = mean(relu(x·W1 + b1)·W2 − y)², returning (loss, ∂loss/∂W1, ∂loss/∂b1).
fn mlp<T: Element>(
    x: &Tensor<T>,
    w1: &Tensor<T>,
    b1: &Tensor<T>,
    w2: &Tensor<T>,
    y: &Tensor<T>,
) -> (f64, Vec<f64>, Vec<f64>) {
    let g = Graph::<T>::new();
    let (w1, b1) = (g.leaf(w1.clone()), g.leaf(b1.clone()));
    let h = (&g.input(x.clone()).matmul(&w1) + &b1).relu();
    let out = h.matmul(&g.input(w2.clone()));
    let loss = (&out - &g.input(y.clone())).square().mean_all();
    loss.backward();
    let widen = |t: Tensor<T>| t.data().iter().map(|v| v.as_f64()).collect();
    (
        loss.item().as_f64(),
        widen(w1.grad().unwrap()),
        widen(b1.grad().unwrap()),
    )
}

#[test]
fn f32_and_f64_agree_through_a_network() {
    let mut rng = StdRng::seed_from_u64(7);
    let x = Tensor::<f64>::randn([16, 8], &mut rng);
    let w1 = Tensor::<f64>::randn([8, 32], &mut rng);
    let b1 = Tensor::<f64>::randn([32], &mut rng);
    let w2 = Tensor::<f64>::randn([32, 4], &mut rng);
    let y = Tensor::<f64>::randn([16, 4], &mut rng);
    let (l64, gw64, gb64) = mlp(&x, &w1, &b1, &w2, &y);
    let (l32, gw32, gb32) = mlp::<f32>(&x.cast(), &w1.cast(), &b1.cast(), &w2.cast(), &y.cast());
    // f32 has a 6e-8 unit roundoff; sums of ~32 terms of size ~10 keep
    // relative errors near 1e-6, so 1e-4 relative (plus 1e-5 absolute for
    // entries near zero) separates rounding from a real discrepancy.
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-4 * b.abs() + 1e-5;
    assert!(close(l32, l64), "{l32} vs {l64}");
    for (a, b) in gw32.iter().zip(&gw64).chain(gb32.iter().zip(&gb64)) {
        assert!(close(*a, *b), "{a} vs {b}");
    }
}

#[test]
fn large_kernels_run_in_parallel_and_match_a_serial_reference() {
    // 300 x 400 = 120,000 elements: above the 32,768-element parallel threshold.
    let mut rng = StdRng::seed_from_u64(8);
    let a = Tensor::<f64>::randn([300, 400], &mut rng);
    let b = Tensor::<f64>::randn([400], &mut rng);
    let g = Graph::new();
    let (va, vb) = (g.leaf(a.clone()), g.leaf(b.clone()));
    let y = (&va * &vb).tanh();
    let s = y.sum(&[0], false);
    // Serial reference, written out by hand.
    let mut want = vec![0.0f64; 400];
    for i in 0..300 {
        for (j, w) in want.iter_mut().enumerate() {
            *w += (a.data()[i * 400 + j] * b.data()[j]).tanh();
        }
    }
    for (got, w) in s.value().data().iter().zip(&want) {
        // Summation order differs between the blocked parallel reduction and
        // the loop above: 300 terms of size ≤ 1 differ by a few ulps (~1e-13).
        assert!((got - w).abs() < 1e-12, "{got} vs {w}");
    }
    s.sum_all().backward();
    let gb = vb.grad().unwrap();
    for j in [0usize, 123, 399] {
        let want: f64 = (0..300)
            .map(|i| {
                let t = (a.data()[i * 400 + j] * b.data()[j]).tanh();
                (1.0 - t * t) * a.data()[i * 400 + j]
            })
            .sum();
        assert!(
            (gb.data()[j] - want).abs() < 1e-11,
            "{} vs {want}",
            gb.data()[j]
        );
    }
    let _: Var<f64> = y;
}
