//! The training loop helper: exact resume, early stopping that restores the
//! best weights, and the files a run leaves (checkpoint, CSV, plot).

use chainrule::data::fashion;
use chainrule::data::InMemory;
use chainrule::nn::state::state_dict;
use chainrule::optim::{optimizer_by_name, CosineAnnealingLr, Schedule, Scheduler};
use chainrule::prelude::*;
use chainrule_cli::models::mlp;
use chainrule_train::{Augmentation, ScheduleStep, Trainer, TrainerConfig};
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

// ---- Checkpoint integrity, validation, settings and stale temporary files ----

use chainrule::nn::state::{remove_stale_temp_files, temp_owner, temp_path};
use chainrule_train::checkpoint::{self, Float, RunSettings};
use chainrule_train::TrainError;

/// The settings a `chainrule train` run would record for [`run`]'s setup.
fn settings(epochs: usize) -> RunSettings {
    RunSettings {
        model: "mlp".into(),
        optimizer: "adam".into(),
        lr: Float(1e-3),
        hyperparameters: [("lr", 1e-3), ("betas.0", 0.9), ("betas.1", 0.999)]
            .into_iter()
            .map(|(k, v)| (k.to_string(), Float(v)))
            .collect(),
        schedule: "cosine".into(),
        batch_size: 64,
        epochs,
        seed: 3,
        limit: None,
        data: "--subset".into(),
        train_images: 600,
        init: "default".into(),
        dropout: Float(0.3),
        clip: None,
        label_smoothing: Float(0.0),
        augment: Some("crop-flip".into()),
        patience: None,
        min_delta: Float(0.0),
        forced: Vec::new(),
    }
}

/// [`run`] with `epochs` epochs of a run recording `recorded` settings (if
/// any), resuming if asked; the error instead of a panic.
fn try_run(
    out: &std::path::Path,
    epochs: usize,
    recorded: Option<RunSettings>,
    force: bool,
) -> Result<Vec<(String, Tensor<f32>)>, TrainError> {
    let (train, val) = data();
    let mut model = mlp(0.3, 7, &mut StdRng::seed_from_u64(7));
    let mut opt = optimizer_by_name("adam", model.parameters(), None).unwrap();
    let schedule: Box<dyn Schedule> = Box::new(CosineAnnealingLr {
        t_max: 40,
        eta_min: 0.0,
    });
    let mut sched = Scheduler::new(opt.as_mut(), schedule);
    let cfg = TrainerConfig {
        settings: recorded,
        force_resume: force,
        ..config(Some(out.to_path_buf()), epochs)
    };
    Trainer::new(cfg).fit(
        &mut model,
        opt.as_mut(),
        Some(&mut sched),
        &train,
        &val,
        true,
    )?;
    Ok(state_dict(&model))
}

/// Replaces the first occurrence of `from` in `path` by `to` (same length,
/// so the header's length prefix stays right): a hand edit of the file.
fn edit(path: &std::path::Path, from: &[u8], to: &[u8]) {
    assert_eq!(from.len(), to.len());
    let mut bytes = std::fs::read(path).unwrap();
    let at = (0..bytes.len() - from.len())
        .find(|&i| &bytes[i..i + from.len()] == from)
        .unwrap_or_else(|| panic!("no {:?}", String::from_utf8_lossy(from)));
    bytes[at..at + to.len()].copy_from_slice(to);
    std::fs::write(path, bytes).unwrap();
}

fn error_text(r: Result<Vec<(String, Tensor<f32>)>, TrainError>) -> String {
    match r {
        Ok(_) => panic!("resumed from a checkpoint that should have been refused"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn an_edited_checkpoint_is_refused_as_altered() {
    let out = dir("edited");
    let ck = out.join("checkpoint.safetensors");
    // 600 training images in batches of 64: 10 steps per epoch.
    let edits: [(&[u8], &[u8]); 3] = [
        // The fuzzer's edit: β2 renamed to β1 (a panic on the next step).
        (b"betas.1", b"betas.0"),
        // Silently different results: another β1, another step count.
        (br#"betas.0\":0.9,"#, br#"betas.0\":0.1,"#),
        (br#"{\"step\":10,"#, br#"{\"step\":9 ,"#),
    ];
    for (from, to) in edits {
        let _ = std::fs::remove_dir_all(&out);
        try_run(&out, 1, None, false).unwrap();
        edit(&ck, from, to);
        let err = error_text(try_run(&out, 2, None, false));
        assert!(
            err.contains(&ck.display().to_string())
                && err.contains("checksum mismatch: the file was altered or damaged"),
            "{err}"
        );
    }
    std::fs::remove_dir_all(&out).ok();
}

#[test]
fn no_byte_of_a_checkpoint_can_be_changed_unnoticed_or_make_loading_panic() {
    let out = dir("mutate");
    try_run(&out, 1, Some(settings(1)), false).unwrap();
    let bytes = std::fs::read(out.join("checkpoint.safetensors")).unwrap();
    let good = checkpoint::load_bytes(&bytes).unwrap();
    assert_eq!(good.settings, Some(settings(1)));
    assert_eq!(good.trainer.epochs_done, 1);
    let header = 8 + u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    // Every 3rd header byte (length prefix, JSON, metadata, padding) and a
    // spread of tensor bytes, each changed to another digit, the letter's
    // other case (edits that keep the JSON valid) or its inverse.
    let change = |c: u8| match c {
        b'0'..=b'9' => b'0' + (c - b'0' + 1) % 10,
        b'a'..=b'z' | b'A'..=b'Z' => c ^ 0x20,
        _ => c ^ 0xFF,
    };
    let positions = (0..header)
        .step_by(3)
        .chain((header..bytes.len()).step_by(bytes.len() / 40));
    for i in positions {
        let mut b = bytes.clone();
        b[i] = change(b[i]);
        assert!(
            checkpoint::load_bytes(&b).is_err(),
            "byte {i} changed unnoticed"
        );
    }
    for len in [0, 7, 8, header - 1, header, bytes.len() - 1] {
        assert!(
            checkpoint::load_bytes(&bytes[..len]).is_err(),
            "{len} bytes"
        );
    }
    std::fs::remove_dir_all(&out).ok();
}

/// Loads `out`'s checkpoint, lets `change` alter it, and saves it again
/// (with correct checksums: content no checksum catches).
fn rewrite(out: &std::path::Path, change: impl FnOnce(&mut checkpoint::Checkpoint)) {
    let path = out.join("checkpoint.safetensors");
    let mut ck = checkpoint::load(&path).unwrap();
    change(&mut ck);
    checkpoint::save(&path, &ck).unwrap();
}

#[test]
fn checkpoint_content_that_does_not_fit_is_an_error_naming_it() {
    let out = dir("misfit");
    type Change = Box<dyn FnOnce(&mut checkpoint::Checkpoint)>;
    let cases: Vec<(Change, &str)> = vec![
        (
            Box::new(|ck| {
                let b2 = ck.optimizer.groups[0].remove("betas.1").unwrap();
                ck.optimizer.groups[0].insert("betas.0".into(), b2);
            }),
            "group 0 lacks hyperparameter betas.1",
        ),
        (
            Box::new(|ck| {
                ck.optimizer.params[1].buffers.remove("exp_avg_sq");
            }),
            "parameter 1: lacks buffer exp_avg_sq",
        ),
        (
            Box::new(|ck| {
                ck.optimizer.params[0].step = 93;
            }),
            "parameter 0 has taken 93 steps, more than the 10 of 1 epochs of 10 batches",
        ),
        (
            Box::new(|ck| {
                let i = ck.model.iter().position(|(n, _)| n == "1.weight").unwrap();
                ck.model[i].1 = Tensor::zeros([3, 4]);
            }),
            "model.1.weight: module has shape [512, 784], file has [3, 4]",
        ),
        (
            Box::new(|ck| {
                ck.best.pop();
            }),
            "missing keys [\"best.",
        ),
        (
            Box::new(|ck| {
                ck.trainer.scheduler.as_mut().unwrap().last_epoch = 5;
            }),
            "scheduler state: 5 steps taken, expected 10 after 1 epochs",
        ),
        (
            Box::new(|ck| {
                ck.trainer.scheduler.as_mut().unwrap().base_lrs.clear();
            }),
            "0 initial learning rates, the optimizer has 1 groups",
        ),
    ];
    for (change, want) in cases {
        let _ = std::fs::remove_dir_all(&out);
        try_run(&out, 1, None, false).unwrap();
        rewrite(&out, change);
        let err = error_text(try_run(&out, 2, None, false));
        assert!(
            err.contains(want) && err.contains("checkpoint.safetensors"),
            "{err}\nwanted {want}"
        );
    }
    // Counters that contradict each other do not load at all.
    let _ = std::fs::remove_dir_all(&out);
    try_run(&out, 1, None, false).unwrap();
    rewrite(&out, |ck| ck.trainer.epochs_done = 2);
    let err = checkpoint::load(&out.join("checkpoint.safetensors"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("trainer metadata: 1 epoch records for 2 completed epochs"),
        "{err}"
    );
    std::fs::remove_dir_all(&out).ok();
}

#[test]
fn resume_refuses_other_settings_unless_forced_where_that_is_safe() {
    let out = dir("settings");
    try_run(&out, 1, Some(settings(1)), false).unwrap();
    // More epochs: refused without --force...
    let err = error_text(try_run(&out, 2, Some(settings(2)), false));
    assert!(
        err.contains("--epochs: the checkpoint has 1, this run has 2")
            && err.contains("pass --force"),
        "{err}"
    );
    // ...never for the optimizer's settings or the architecture, even forced.
    let mut other = settings(2);
    other.lr = Float(0.01);
    other.model = "cnn".into();
    let err = error_text(try_run(&out, 2, Some(other), true));
    assert!(
        err.contains("--lr: the checkpoint has 0.001, this run has 0.01 (cannot be overridden")
            && err.contains(
                "--model: the checkpoint has mlp, this run has cnn (cannot be overridden"
            ),
        "{err}"
    );
    // Forced, it continues, and the record keeps what changed.
    try_run(&out, 2, Some(settings(2)), true).unwrap();
    let ck = checkpoint::load(&out.join("checkpoint.safetensors")).unwrap();
    assert_eq!(ck.trainer.epochs_done, 2);
    let s = ck.settings.unwrap();
    assert_eq!(s.epochs, 2);
    assert_eq!(
        (
            s.forced[0].setting.as_str(),
            s.forced[0].from.as_str(),
            s.forced[0].to.as_str(),
            s.forced[0].after_epoch
        ),
        ("--epochs", "1", "2", 1)
    );
    std::fs::remove_dir_all(&out).ok();
}

#[test]
fn a_killed_run_resumes_bit_identically_with_its_settings_checked() {
    let straight = run(None, 3, false);
    let out = dir("killed");
    // A 3-epoch run "killed" after epoch 2: its settings say 3 epochs.
    let (train, val) = data();
    let mut model = mlp(0.3, 7, &mut StdRng::seed_from_u64(7));
    let mut opt = optimizer_by_name("adam", model.parameters(), None).unwrap();
    let schedule: Box<dyn Schedule> = Box::new(CosineAnnealingLr {
        t_max: 40,
        eta_min: 0.0,
    });
    let mut sched = Scheduler::new(opt.as_mut(), schedule);
    let cfg = TrainerConfig {
        settings: Some(settings(3)),
        ..config(Some(out.clone()), 2)
    };
    Trainer::new(cfg)
        .fit(
            &mut model,
            opt.as_mut(),
            Some(&mut sched),
            &train,
            &val,
            false,
        )
        .unwrap();
    let resumed = try_run(&out, 3, Some(settings(3)), false).unwrap();
    for ((n, a), (_, b)) in straight.iter().zip(&resumed) {
        assert_eq!(a.data(), b.data(), "{n} differs after resuming");
    }
    std::fs::remove_dir_all(&out).ok();
}

#[test]
fn stale_temporary_files_of_killed_runs_are_removed_on_start() {
    let out = dir("stale");
    std::fs::create_dir_all(&out).unwrap();
    // A process that has exited: its pid names no live process.
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let dead = child.id();
    child.wait().unwrap();
    let stale = [
        out.join(format!(".checkpoint.safetensors.tmp-{dead}")),
        out.join(format!(".model.safetensors.tmp-{dead}")),
    ];
    let kept = [
        // This process's own, and pid 1's (alive: another run's in progress).
        temp_path(&out.join("other.safetensors")),
        out.join(".checkpoint.safetensors.tmp-1"),
        // Not our pattern.
        out.join(".notes.tmp-abc"),
        out.join("checkpoint.safetensors.tmp-5"),
    ];
    for f in stale.iter().chain(&kept) {
        std::fs::write(f, vec![0u8; 1000]).unwrap();
    }
    assert_eq!(temp_owner(".model.safetensors.tmp-42"), Some(42));
    assert_eq!(temp_owner(".notes.tmp-abc"), None);
    try_run(&out, 1, None, false).unwrap();
    for f in &stale {
        assert!(!f.exists(), "{} was not removed", f.display());
    }
    for f in &kept {
        assert!(f.exists(), "{} was removed", f.display());
    }
    assert!(remove_stale_temp_files(&out).unwrap().is_empty());
    std::fs::remove_dir_all(&out).ok();
}
