//! A checkpoint written by an earlier chainrule still loads and resumes.

use chainrule_data::InMemory;
use chainrule_nn::{BatchNorm, BatchNormOptions, Linear, Module, Relu, Sequential};
use chainrule_optim::{optimizer_by_name, CosineAnnealingLr, Schedule, Scheduler};
use chainrule_train::checkpoint::{Float, RunSettings};
use chainrule_train::{ScheduleStep, Trainer, TrainerConfig};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::path::PathBuf;

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/checkpoint_format2.safetensors")
}

/// 24 examples of 4 features in 3 classes (the class shifts the mean).
fn data(seed: u64) -> InMemory {
    let mut rng = StdRng::seed_from_u64(seed);
    let labels: Vec<usize> = (0..24).map(|i| i % 3).collect();
    let features = labels
        .iter()
        .flat_map(|&c| (0..4).map(move |j| (c * 4 + j) as f32 * 0.1).collect::<Vec<_>>())
        .map(|v| v + rng.gen_range(-0.5..0.5))
        .collect();
    InMemory {
        features,
        shape: vec![4],
        labels,
    }
}

/// 4 → 5 → batch norm → ReLU → 3 (a buffer as well as parameters).
fn model() -> Sequential<f32> {
    let mut rng = StdRng::seed_from_u64(5);
    Sequential::new()
        .push(Linear::new(4, 5, &mut rng))
        .push(BatchNorm::new_1d(5, BatchNormOptions::default()))
        .push(Relu)
        .push(Linear::new(5, 3, &mut rng))
}

fn settings() -> RunSettings {
    RunSettings {
        model: "tiny".into(),
        optimizer: "adam".into(),
        lr: Float(1e-3),
        hyperparameters: [("lr".to_string(), Float(1e-3))].into_iter().collect(),
        schedule: "cosine".into(),
        batch_size: 8,
        epochs: 3,
        seed: 2,
        limit: None,
        data: "synthetic".into(),
        train_images: 24,
        init: "default".into(),
        dropout: Float(0.0),
        clip: Some(Float(1.0)),
        label_smoothing: Float(0.0),
        augment: None,
        patience: Some(5),
        min_delta: Float(0.0),
        forced: Vec::new(),
    }
}

/// Writes the fixture: 2 of 3 epochs of the tiny model with Adam, a cosine
/// schedule and recorded settings. Run by hand with `--ignored` only when
/// the format changes on purpose.
#[test]
#[ignore]
fn write_fixture() {
    let out = std::env::temp_dir().join(format!("chainrule-compat-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let mut m = model();
    let mut opt = optimizer_by_name("adam", m.parameters(), None).unwrap();
    let schedule: Box<dyn Schedule> = Box::new(CosineAnnealingLr {
        t_max: 6,
        eta_min: 0.0,
    });
    let mut sched = Scheduler::new(opt.as_mut(), schedule);
    let config = TrainerConfig {
        epochs: 2,
        batch_size: 8,
        seed: 2,
        patience: Some(5),
        clip_grad_norm: Some(1.0),
        schedule_step: ScheduleStep::PerBatch,
        out_dir: Some(out.clone()),
        progress: false,
        verbose: false,
        settings: Some(settings()),
        ..Default::default()
    };
    Trainer::new(config)
        .fit(&mut m, opt.as_mut(), Some(&mut sched), &data(0), &data(1), false)
        .unwrap();
    std::fs::copy(out.join("checkpoint.safetensors"), fixture()).unwrap();
    std::fs::remove_dir_all(&out).ok();
}
