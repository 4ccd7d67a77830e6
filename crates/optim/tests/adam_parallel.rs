//! Adam's fused update splits parameters of 32k+ elements across threads;
//! each element's arithmetic must not depend on that split.

use chainrule_optim::{Adam, AdamConfig, Optimizer};
use chainrule_tape::{Parameter, Tensor};

fn values(n: usize, seed: u32) -> Vec<f32> {
    (0..n)
        .map(|i| {
            ((i as u32).wrapping_mul(2654435761).wrapping_add(seed) % 2000) as f32 * 1e-3 - 1.0
        })
        .collect()
}

#[test]
fn a_large_parameter_updates_exactly_as_its_halves_do() {
    let n = 100_000; // above the parallel threshold; each half (50,000) is too
    let quarter = 20_000; // below it: the sequential path
    for config in [
        AdamConfig::default(),
        AdamConfig::adamw(),
        AdamConfig {
            amsgrad: true,
            weight_decay: 1e-2,
            maximize: true,
            ..Default::default()
        },
    ] {
        let whole = Parameter::new(Tensor::from_vec([n], values(n, 1)));
        let parts: Vec<Parameter<f32>> = (0..n / quarter)
            .map(|k| {
                Parameter::new(Tensor::from_vec(
                    [quarter],
                    values(n, 1)[k * quarter..(k + 1) * quarter].to_vec(),
                ))
            })
            .collect();
        let mut big = Adam::new(vec![whole.clone()], config).unwrap();
        let mut small = Adam::new(parts.clone(), config).unwrap();
        for step in 0..3 {
            // Shrinking gradients, so v falls after the first step and
            // AMSGrad's running maximum differs from v.
            let scale = 0.01f32.powi(step as i32);
            let g: Vec<f32> = values(n, 7 + step).iter().map(|v| v * scale).collect();
            whole.set_grad(Some(Tensor::from_vec([n], g.clone())));
            for (k, p) in parts.iter().enumerate() {
                p.set_grad(Some(Tensor::from_vec(
                    [quarter],
                    g[k * quarter..(k + 1) * quarter].to_vec(),
                )));
            }
            big.step().unwrap();
            small.step().unwrap();
        }
        let joined: Vec<f32> = parts.iter().flat_map(|p| p.value().to_vec()).collect();
        // Bit-identical: the same operations on the same numbers in the same order.
        assert_eq!(whole.value().to_vec(), joined, "{config:?}");
        assert_ne!(whole.value().to_vec(), values(n, 1), "the parameter moved");
    }
}
