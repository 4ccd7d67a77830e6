//! BatchNorm's running statistics come from `ops::batch_norm` (the layer
//! passes its buffers and the averaging factor): PyTorch's momentum rule,
//! the cumulative average for `momentum: None`, and eval mode on the
//! running statistics.

use chainrule_nn::*;
use chainrule_tape::{Graph, Tensor};

/// [N = 2, C = 1]: batch mean m and unbiased variance 2·d² for values m ± d.
fn batch(m: f64, d: f64) -> Tensor<f64> {
    Tensor::from_vec([2, 1], vec![m - d, m + d])
}

fn running(bn: &BatchNorm<f64>) -> (f64, f64, f64) {
    let v = |b: &Option<Buffer<f64>>| b.as_ref().unwrap().value().item();
    (
        v(&bn.running_mean),
        v(&bn.running_var),
        v(&bn.num_batches_tracked),
    )
}

#[test]
fn momentum_none_keeps_the_cumulative_average_of_the_batch_statistics() {
    let options = BatchNormOptions {
        momentum: None,
        ..Default::default()
    };
    let bn = BatchNorm::<f64>::new_1d(1, options);
    for (m, d) in [(1.0, 1.0), (3.0, 2.0)] {
        let g = Graph::new();
        bn.forward(&g, &g.input(batch(m, d)));
    }
    // Means 1 and 3 average to 2; unbiased variances 2 and 8 to 5. Exact in binary.
    assert_eq!(running(&bn), (2.0, 5.0, 2.0));
}

#[test]
fn momentum_blends_and_eval_mode_normalizes_with_the_running_statistics() {
    let mut bn = BatchNorm::<f64>::new_1d(1, BatchNormOptions::default());
    let g = Graph::new();
    bn.forward(&g, &g.input(batch(10.0, 1.0)));
    // 0.9·0 + 0.1·10 and 0.9·1 + 0.1·2; tolerance for the rounding of 0.1.
    let (m, v, n) = running(&bn);
    assert!((m - 1.0).abs() < 1e-12 && (v - 1.1).abs() < 1e-12 && n == 1.0);
    bn.eval();
    let g = Graph::new();
    let y = bn.forward(&g, &g.input(Tensor::from_vec([1, 1], vec![1.0])));
    // (1 − 1)/√(1.1 + ε) = 0, and eval leaves the statistics alone.
    assert_eq!(y.value().data(), &[0.0]);
    assert_eq!(running(&bn).2, 1.0);
}
