//! PyTorch interop: a PyTorch CNN's safetensors file loads into chainrule and
//! gives PyTorch's logits; chainrule's saved CNN loads into PyTorch and gives
//! chainrule's logits; BatchNorm's running statistics follow PyTorch.
//! Fixtures: tools/torch_reference/make_nn_interop.py.

use chainrule_nn::state::{load, save};
use chainrule_nn::*;
use chainrule_tape::{Graph, Tensor};
use rand::rngs::StdRng;
use rand::SeedableRng;
use serde_json::Value;
use std::path::PathBuf;

fn fixture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/nn")
}

fn fixture() -> Value {
    serde_json::from_str(&std::fs::read_to_string(fixture_dir().join("interop.json")).unwrap())
        .unwrap()
}

/// The same layers as the script's `cnn()`.
fn cnn(seed: u64) -> Sequential<f32> {
    let mut rng = StdRng::seed_from_u64(seed);
    let pad1 = ConvOptions {
        padding: 1,
        ..Default::default()
    };
    Sequential::new()
        .push(Conv2d::new(1, 4, 3, pad1, &mut rng))
        .push(BatchNorm::new_2d(4, BatchNormOptions::default()))
        .push(Relu)
        .push(MaxPool2d::new(2))
        .push(Conv2d::new(4, 8, 3, pad1, &mut rng))
        .push(Relu)
        .push(Flatten)
        .push(Linear::new(128, 10, &mut rng))
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

fn logits(model: &Sequential<f32>, fx: &Value) -> Vec<f32> {
    let shape: Vec<usize> = fx["input"]["shape"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_u64().unwrap() as usize)
        .collect();
    let x: Vec<f32> = floats(&fx["input"]["data"])
        .into_iter()
        .map(|v| v as f32)
        .collect();
    let g = Graph::new();
    model
        .forward(&g, &g.input(Tensor::from_vec(&shape, x)))
        .value()
        .to_vec()
}

/// f32 forward passes of ~150 multiply-adds per logit on both sides, in
/// different summation orders: agreement to 1e-5 absolute (logits are O(1)).
fn assert_logits(got: &[f32], want: &[f64]) {
    assert_eq!(got.len(), want.len());
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (*g as f64 - w).abs() <= 1e-5,
            "logit {i}: chainrule {g}, torch {w}"
        );
    }
}

#[test]
fn a_pytorch_cnn_loads_strictly_and_gives_pytorchs_logits() {
    let fx = fixture();
    let mut model = cnn(99);
    let report = load(
        &model,
        fixture_dir().join("cnn_from_torch.safetensors"),
        true,
    )
    .unwrap();
    assert!(report.is_clean(), "{report}");
    model.eval();
    assert_logits(&logits(&model, &fx), &floats(&fx["torch_model_logits"]));
}

#[test]
fn a_chainrule_cnn_saved_to_safetensors_gives_the_same_logits_in_pytorch() {
    // The model: seed 11, then two training-mode passes for non-trivial running statistics.
    let mut model = cnn(11);
    let mut rng = StdRng::seed_from_u64(12);
    for _ in 0..2 {
        let g = Graph::new();
        model.forward(&g, &g.input(Tensor::randn([6, 1, 8, 8], &mut rng)));
    }
    model.eval();
    let committed = fixture_dir().join("cnn_from_chainrule.safetensors");
    if std::env::var_os("CHAINRULE_WRITE_FIXTURES").is_some() {
        save(&model, &committed).unwrap();
    }
    // The committed file holds exactly this model (the build is deterministic)...
    let reloaded = cnn(0);
    load(&reloaded, &committed, true).unwrap();
    for ((n, a), (_, b)) in state::state_dict(&model)
        .into_iter()
        .zip(state::state_dict(&reloaded))
    {
        assert_eq!(a.data(), b.data(), "{n}");
    }
    // ...and PyTorch, loading it, computed these logits.
    let fx = fixture();
    assert_logits(&logits(&model, &fx), &floats(&fx["chainrule_model_logits"]));
}

#[test]
fn batch_norm_running_statistics_follow_pytorch() {
    let fx = fixture();
    let bn = &fx["batch_norm"];
    let shape: Vec<usize> = bn["shape"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_u64().unwrap() as usize)
        .collect();
    let inputs: Vec<Tensor<f64>> = bn["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| Tensor::from_vec(&shape, floats(x)))
        .collect();
    for case in bn["cases"].as_array().unwrap() {
        let momentum = case["momentum"].as_f64();
        let mut layer = BatchNorm::<f64>::new_2d(
            3,
            BatchNormOptions {
                momentum,
                ..Default::default()
            },
        );
        let steps = case["steps"].as_array().unwrap();
        // f64 on both sides, same formulas: 1e-10 relative.
        let close = |got: &[f64], want: &Value, what: &str| {
            for (g, w) in got.iter().zip(floats(want)) {
                assert!(
                    (g - w).abs() <= 1e-10 * w.abs().max(1.0),
                    "momentum {momentum:?} {what}: {g} vs torch {w}"
                );
            }
        };
        for (x, step) in inputs.iter().zip(steps) {
            let g = Graph::new();
            let y = layer.forward(&g, &g.input(x.clone()));
            close(y.value().data(), &step["output"], "output");
            close(
                layer.running_mean.as_ref().unwrap().value().data(),
                &step["running_mean"],
                "running_mean",
            );
            close(
                layer.running_var.as_ref().unwrap().value().data(),
                &step["running_var"],
                "running_var",
            );
            assert_eq!(
                layer.num_batches_tracked.as_ref().unwrap().value().item(),
                step["num_batches_tracked"].as_f64().unwrap()
            );
        }
        layer.eval();
        let g = Graph::new();
        let y = layer.forward(&g, &g.input(inputs[0].clone()));
        close(y.value().data(), &steps[3]["output"], "eval output");
    }
}
