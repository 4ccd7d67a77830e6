//! A checkpoint written by an earlier chainrule still loads and resumes.

use chainrule_data::InMemory;
use chainrule_nn::state::{read_file, state_dict, write_tensors, Metadata, CHECKSUM_KEY};
use chainrule_nn::{BatchNorm, BatchNormOptions, Linear, Module, Relu, Sequential};
use chainrule_optim::{optimizer_by_name, CosineAnnealingLr, Schedule, Scheduler};
use chainrule_tape::Tensor;
use chainrule_train::checkpoint::{self, Float, RunSettings};
use chainrule_train::{ScheduleStep, Trainer, TrainerConfig};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/checkpoint_format2.safetensors")
}

/// 24 examples of 4 features in 3 classes (the class shifts the mean).
fn data(seed: u64) -> InMemory {
    let mut rng = StdRng::seed_from_u64(seed);
    let labels: Vec<usize> = (0..24).map(|i| i % 3).collect();
    let features = labels
        .iter()
        .flat_map(|&c| {
            (0..4)
                .map(move |j| (c * 4 + j) as f32 * 0.1)
                .collect::<Vec<_>>()
        })
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

/// A new empty directory (tests run in parallel: each call its own).
fn scratch(name: &str) -> PathBuf {
    static CALLS: AtomicUsize = AtomicUsize::new(0);
    let n = CALLS.fetch_add(1, Ordering::Relaxed);
    let d = std::env::temp_dir().join(format!(
        "chainrule-compat-{name}-{}-{n}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The fixture's run: `epochs` of 3 epochs (resuming from `out` if asked);
/// returns the final weights and the history's validation losses.
fn run(
    out: Option<PathBuf>,
    epochs: usize,
    resume: bool,
) -> (Vec<(String, Tensor<f32>)>, Vec<f64>) {
    let mut m = model();
    let mut opt = optimizer_by_name("adam", m.parameters(), None).unwrap();
    let schedule: Box<dyn Schedule> = Box::new(CosineAnnealingLr {
        t_max: 6,
        eta_min: 0.0,
    });
    let mut sched = Scheduler::new(opt.as_mut(), schedule);
    let config = TrainerConfig {
        epochs,
        batch_size: 8,
        seed: 2,
        patience: Some(5),
        clip_grad_norm: Some(1.0),
        schedule_step: ScheduleStep::PerBatch,
        out_dir: out,
        progress: false,
        verbose: false,
        settings: Some(settings()),
        ..Default::default()
    };
    let history = Trainer::new(config)
        .fit(
            &mut m,
            opt.as_mut(),
            Some(&mut sched),
            &data(0),
            &data(1),
            resume,
        )
        .unwrap();
    let losses = history.records.iter().map(|r| r.val_loss).collect();
    (state_dict(&m), losses)
}

#[test]
fn a_checkpoint_written_before_the_trainer_was_reshaped_loads_unchanged() {
    let ck = checkpoint::load(&fixture()).unwrap();
    let t = &ck.trainer;
    assert_eq!((t.epochs_done, t.best_epoch, t.bad_epochs), (2, 2, 0));
    assert_eq!(t.records.len(), 2);
    assert_eq!(t.records[1].epoch, 2);
    assert_eq!(t.best_loss, t.records[1].val_loss);
    let s = t.scheduler.as_ref().unwrap();
    assert_eq!((s.last_epoch, s.base_lrs.clone()), (6, vec![Float(1e-3)]));
    assert_eq!(ck.settings, Some(settings()));
    let names: Vec<&str> = ck.model.iter().map(|(n, _)| n.as_str()).collect();
    for want in [
        "0.weight",
        "1.running_mean",
        "1.num_batches_tracked",
        "3.bias",
    ] {
        assert!(names.contains(&want), "{want} not in {names:?}");
    }
    assert_eq!(ck.best.len(), ck.model.len());
    assert_eq!(ck.optimizer.optimizer, "Adam");
    assert_eq!(ck.optimizer.params.len(), 6);
    assert!(ck.optimizer.params.iter().all(|p| p.step == 6));
}

#[test]
fn a_checkpoint_written_before_the_trainer_was_reshaped_resumes() {
    let out = scratch("resume");
    std::fs::copy(fixture(), out.join("checkpoint.safetensors")).unwrap();
    let (resumed, losses) = run(Some(out.clone()), 3, true);
    assert_eq!(losses.len(), 3);
    let old = checkpoint::load(&fixture()).unwrap().trainer.records;
    assert_eq!(losses[..2], [old[0].val_loss, old[1].val_loss]);
    // The reshaped trainer computes what the old one did: a straight run's
    // first two epochs give the fixture's validation losses, and its third
    // epoch the resumed one's. (Bit-identical when this was written; the
    // bound allows only for op kernels that later sum in another order,
    // ~1e-7 relative per op in f32 over 18 steps, while a change in the
    // trainer's logic — shuffling, schedule, clipping — moves them by 1e-3
    // or more.)
    let (straight, straight_losses) = run(None, 3, false);
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-5 * a.abs().max(1.0);
    for (i, (a, b)) in straight_losses.iter().zip(&losses).enumerate() {
        assert!(close(*a, *b), "epoch {}: {a} straight, {b} resumed", i + 1);
    }
    for ((n, a), (_, b)) in straight.iter().zip(&resumed) {
        for (x, y) in a.data().iter().zip(b.data()) {
            assert!(
                close(*x as f64, *y as f64),
                "{n}: {x} straight, {y} resumed"
            );
        }
    }
    std::fs::remove_dir_all(&out).ok();
}

/// The fixture with metadata entry `key` edited by `edit` (and the
/// checksums made right again, as a writer would): the load error's text.
fn load_edited(key: &str, edit: impl FnOnce(&mut serde_json::Value)) -> String {
    let (raw, mut meta): (_, Metadata) = read_file(fixture()).unwrap();
    let tensors: Vec<(String, Tensor<f32>)> = raw
        .into_iter()
        .map(|(n, (shape, v))| {
            let t = Tensor::from_vec(&shape, v.into_iter().map(|x| x as f32).collect());
            (n, t)
        })
        .collect();
    meta.retain(|k, _| k != "format" && k != CHECKSUM_KEY && !k.starts_with("crc32."));
    let mut value: serde_json::Value = serde_json::from_str(&meta[key]).unwrap();
    edit(&mut value);
    meta.insert(key.into(), value.to_string());
    let out = scratch("edited");
    let path = out.join("checkpoint.safetensors");
    write_tensors(&path, &tensors, meta).unwrap();
    let result = checkpoint::load(&path);
    std::fs::remove_dir_all(&out).ok();
    match result {
        Ok(_) => String::new(),
        Err(e) => e.to_string(),
    }
}

fn assert_contains(err: &str, want: &str) {
    assert!(err.contains(want), "{err:?}\nwanted {want:?}");
}

#[test]
fn rewriting_the_fixture_unchanged_loads() {
    assert_eq!(load_edited("trainer", |_| {}), "");
}

#[test]
fn a_missing_key_is_an_error_naming_it() {
    let err = load_edited("trainer", |v| {
        v.as_object_mut().unwrap().remove("best_loss");
    });
    assert_contains(&err, "trainer metadata: missing field `best_loss`");
    // Optional values are written as null and still required: no silent None.
    let err = load_edited("trainer", |v| {
        v.as_object_mut().unwrap().remove("scheduler");
    });
    assert_contains(&err, "trainer metadata: missing field `scheduler`");
    let err = load_edited("settings", |v| {
        v.as_object_mut().unwrap().remove("clip");
    });
    assert_contains(&err, "settings metadata: missing field `clip`");
    let err = load_edited("settings", |v| {
        v.as_object_mut().unwrap().remove("forced");
    });
    assert_contains(&err, "settings metadata: missing field `forced`");
    let err = load_edited("trainer", |v| {
        v["records"][1].as_object_mut().unwrap().remove("lr");
    });
    assert_contains(&err, "trainer metadata: records[1]: missing field `lr`");
}

#[test]
fn an_unknown_key_is_an_error_naming_it() {
    let err = load_edited("trainer", |v| {
        v["best_los"] = 1.0.into();
    });
    assert_contains(&err, "trainer metadata: unknown field `best_los`");
    let err = load_edited("trainer", |v| {
        v["scheduler"]["gamma"] = 1.0.into();
    });
    assert_contains(&err, "trainer metadata: scheduler: unknown field `gamma`");
}

#[test]
fn a_wrongly_typed_key_is_an_error_naming_it() {
    let err = load_edited("trainer", |v| {
        v["epochs_done"] = "two".into();
    });
    assert_contains(
        &err,
        "trainer metadata: epochs_done: invalid type: string \"two\"",
    );
    let err = load_edited("trainer", |v| {
        v["records"][1]["val_loss"] = true.into();
    });
    assert_contains(
        &err,
        "trainer metadata: records[1].val_loss: invalid type: boolean `true`",
    );
    let err = load_edited("trainer", |v| {
        v["bad_epochs"] = (-1).into();
    });
    assert_contains(
        &err,
        "trainer metadata: bad_epochs: invalid value: integer `-1`",
    );
    let err = load_edited("settings", |v| {
        v["patience"] = "5".into();
    });
    assert_contains(
        &err,
        "settings metadata: patience: invalid type: string \"5\"",
    );
    let err = load_edited("optimizer", |v| {
        v["params"][2]["step"] = 1.5.into();
    });
    assert_contains(
        &err,
        "optimizer metadata: params[2].step: invalid type: floating point `1.5`",
    );
}

/// Writes the fixture: 2 of 3 epochs of the tiny model with Adam, a cosine
/// schedule and recorded settings. Run by hand with `--ignored` only when
/// the format changes on purpose.
///
/// The committed file was written by the trainer before issue 16 reshaped
/// it (commit f3a6133): it is the old code's output, and must keep loading.
#[test]
#[ignore = "fixture generator: run by hand only when checkpoint format 2 must be rewritten"]
fn write_fixture() {
    let out = scratch("write");
    run(Some(out.clone()), 2, false);
    std::fs::copy(out.join("checkpoint.safetensors"), fixture()).unwrap();
    std::fs::remove_dir_all(&out).ok();
}
