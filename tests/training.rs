//! The training loop helper: exact resume, early stopping that restores the
//! best weights, and the files a run leaves (checkpoint, CSV, plot).

use chainrule::data::fashion;
use chainrule::data::InMemory;
use chainrule::nn::state::state_dict;
use chainrule::optim::{optimizer_by_name, CosineAnnealingLr, Schedule, Scheduler};
use chainrule::prelude::*;
use chainrule::training::models::mlp;
use chainrule::training::{Augmentation, ScheduleStep, Trainer, TrainerConfig};
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::path::PathBuf;

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("chainrule-training-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn data() -> (InMemory, InMemory) {
    let d = fashion::load_from(&fashion::subset_dir(), true).unwrap();
    (d.train.head(600), d.test.head(200))
}

fn config(out: Option<PathBuf>, epochs: usize) -> TrainerConfig {
    TrainerConfig {
        epochs,
        batch_size: 64,
        seed: 3,
        out_dir: out,
        progress: false,
        verbose: false,
        augment: Some(Augmentation::crop_and_flip(2, 0.0)),
        schedule_step: ScheduleStep::PerBatch,
        ..Default::default()
    }
}

/// Runs `epochs` epochs (resuming from `out` if asked) and returns the final weights.
fn run(out: Option<PathBuf>, epochs: usize, resume: bool) -> Vec<(String, Tensor<f32>)> {
    let (train, val) = data();
    let model_seed = 7;
    let mut model = mlp(0.3, model_seed, &mut StdRng::seed_from_u64(model_seed));
    let mut opt = optimizer_by_name("adam", model.parameters(), None).unwrap();
    let schedule: Box<dyn Schedule> = Box::new(CosineAnnealingLr {
        t_max: 40,
        eta_min: 0.0,
    });
    let mut sched = Scheduler::new(opt.as_mut(), schedule);
    Trainer::new(config(out, epochs))
        .fit(
            &mut model,
            opt.as_mut(),
            Some(&mut sched),
            &train,
            &val,
            resume,
        )
        .unwrap();
    state_dict(&model)
}

#[test]
fn resuming_from_a_checkpoint_is_bit_identical() {
    let straight = run(None, 3, false);
    let out = dir("resume");
    let _ = run(Some(out.clone()), 2, false); // stops after epoch 2, checkpoint written
    let resumed = run(Some(out.clone()), 3, true); // loads it, runs epoch 3
    for ((n, a), (_, b)) in straight.iter().zip(&resumed) {
        assert_eq!(a.data(), b.data(), "{n} differs after resuming");
    }
    // Not vacuous: without the checkpoint's optimizer state the third epoch differs.
    std::fs::remove_file(out.join("checkpoint.safetensors")).unwrap();
    let fresh = run(Some(out.clone()), 1, false);
    assert_ne!(fresh[0].1.data(), straight[0].1.data());
    let csv = std::fs::read_to_string(out.join("metrics.csv")).unwrap();
    assert_eq!(csv.lines().count(), 2, "{csv}");
    assert!(csv.starts_with("epoch,train_loss,train_accuracy,val_loss,val_accuracy,lr,seconds"));
    assert_eq!(
        &std::fs::read(out.join("curves.png")).unwrap()[..4],
        b"\x89PNG"
    );
    std::fs::remove_dir_all(&out).ok();
}

#[test]
fn early_stopping_restores_the_best_weights() {
    let (train, val) = data();
    let build = || {
        let mut model = mlp(0.3, 1, &mut StdRng::seed_from_u64(1));
        let opt = optimizer_by_name("adam", model.parameters(), Some(0.002)).unwrap();
        model.train();
        (model, opt)
    };
    // min_delta 100: no epoch after the first counts as an improvement, so
    // patience 2 stops after epoch 3 and restores epoch 1's weights.
    let (mut model, mut opt) = build();
    let cfg = TrainerConfig {
        patience: Some(2),
        min_delta: 100.0,
        ..config(None, 10)
    };
    let history = Trainer::new(cfg)
        .fit(&mut model, opt.as_mut(), None, &train, &val, false)
        .unwrap();
    assert!(history.stopped_early);
    assert_eq!((history.records.len(), history.best_epoch), (3, 1));
    let (mut one, mut opt1) = build();
    Trainer::new(config(None, 1))
        .fit(&mut one, opt1.as_mut(), None, &train, &val, false)
        .unwrap();
    for ((n, a), (_, b)) in state_dict(&model).iter().zip(state_dict(&one)) {
        assert_eq!(a.data(), b.data(), "{n} is not epoch 1's");
    }
}
