//! The training loop helper. Explicit loops stay easy (see the README);
//! this adds what every real run needs around them.

use super::checkpoint::{self, Checkpoint, ResumeCheck, RunSettings, SchedulerState, TrainerState};
use super::metrics::{evaluate, plot_curves, write_csv};
use crate::data::transform::{random_crop, random_horizontal_flip};
use crate::data::{DataLoader, InMemory, Regime};
use crate::nn::state::state_dict;
use crate::nn::{Module, Sequential};
use crate::ops::{argmax, loss, ClassLossOptions};
use crate::optim::{clip_grad_norm, ClipGradNormOptions, Optimizer, Schedule, Scheduler};
use crate::tape::{Graph, Tensor};
use indicatif::{ProgressBar, ProgressStyle};
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// When the learning-rate schedule advances.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScheduleStep {
    /// After every optimizer step (OneCycle, cyclic, warm-up).
    PerBatch,
    /// After every epoch (step, exponential, plateau-style decay).
    PerEpoch,
}

/// Random transformations of each training batch of [C, H, W] images.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Augmentation {
    /// Padding of the random crop (0: no crop).
    pub crop_padding: usize,
    /// Value of the padded border: the background after scaling.
    pub fill: f32,
    /// Mirror left-right with probability 1/2.
    pub flip: bool,
}

impl Augmentation {
    /// Random crop with `padding` (border `fill`) and a random flip.
    pub fn crop_and_flip(padding: usize, fill: f32) -> Self {
        Augmentation {
            crop_padding: padding,
            fill,
            flip: true,
        }
    }

    /// A random horizontal flip only.
    pub fn flip_only() -> Self {
        Augmentation {
            crop_padding: 0,
            fill: 0.0,
            flip: true,
        }
    }

    /// Transforms a batch in place, drawing from `rng`.
    pub fn apply(&self, x: &mut [f32], shape: &[usize], rng: &mut impl rand::Rng) {
        if self.crop_padding > 0 {
            random_crop(x, shape, self.crop_padding, self.fill, rng);
        }
        if self.flip {
            random_horizontal_flip(x, shape, 0.5, rng);
        }
    }
}

/// Settings of a [`Trainer`].
#[derive(Clone, Debug)]
pub struct TrainerConfig {
    /// Epochs to run (including any already in a resumed checkpoint).
    pub epochs: usize,
    /// Mini-batch size.
    pub batch_size: usize,
    /// Seed of the shuffling, augmentation and dropout streams (one per epoch).
    pub seed: u64,
    /// Stop after this many epochs without a validation-loss improvement of
    /// at least `min_delta`, and restore the best weights.
    pub patience: Option<usize>,
    /// Smallest decrease of the validation loss that counts as an improvement.
    pub min_delta: f64,
    /// Clip the global gradient norm to this before each step.
    pub clip_grad_norm: Option<f64>,
    /// When the schedule advances.
    pub schedule_step: ScheduleStep,
    /// Random transformations of training images (none: train on them as they are).
    pub augment: Option<Augmentation>,
    /// Label smoothing of the cross-entropy loss.
    pub label_smoothing: f64,
    /// Where checkpoints, metrics.csv and curves.png go (none: nowhere).
    pub out_dir: Option<PathBuf>,
    /// Show a progress bar (on a terminal).
    pub progress: bool,
    /// Print a line per epoch.
    pub verbose: bool,
    /// The run's settings, recorded in every checkpoint and, on resume,
    /// compared with the checkpoint's (none: not recorded or compared).
    pub settings: Option<RunSettings>,
    /// On resume, continue although settings that may be overridden differ
    /// (`--force`; see [`RunSettings::resume_with`]).
    pub force_resume: bool,
}

impl Default for TrainerConfig {
    fn default() -> Self {
        TrainerConfig {
            epochs: 10,
            batch_size: 128,
            seed: 0,
            patience: None,
            min_delta: 0.0,
            clip_grad_norm: None,
            schedule_step: ScheduleStep::PerBatch,
            augment: None,
            label_smoothing: 0.0,
            out_dir: None,
            progress: true,
            verbose: true,
            settings: None,
            force_resume: false,
        }
    }
}

/// One epoch's figures.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EpochRecord {
    /// 1-based epoch number.
    pub epoch: usize,
    /// Mean training loss over the epoch's batches.
    #[serde(with = "checkpoint::float")]
    pub train_loss: f64,
    /// Training accuracy over the epoch (in training mode).
    #[serde(with = "checkpoint::float")]
    pub train_accuracy: f64,
    /// Validation loss (eval mode).
    #[serde(with = "checkpoint::float")]
    pub val_loss: f64,
    /// Validation accuracy.
    #[serde(with = "checkpoint::float")]
    pub val_accuracy: f64,
    /// Learning rate at the end of the epoch.
    #[serde(with = "checkpoint::float")]
    pub lr: f64,
    /// Wall-clock seconds of the epoch.
    #[serde(with = "checkpoint::float")]
    pub seconds: f64,
}

/// What a run did.
#[derive(Clone, Debug, Default)]
pub struct History {
    /// One record per epoch.
    pub records: Vec<EpochRecord>,
    /// The epoch with the best validation loss.
    pub best_epoch: usize,
    /// Whether early stopping ended the run.
    pub stopped_early: bool,
}

/// Errors of a training run.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// An op failed (shapes, bad labels).
    #[error(transparent)]
    Op(#[from] crate::tape::Error),
    /// A checkpoint could not be written or read.
    #[error(transparent)]
    State(#[from] crate::nn::state::StateError),
    /// Metrics or plots could not be written.
    #[error("{0}")]
    Output(String),
    /// A checkpoint does not fit the run resuming from it (settings,
    /// tensors, step counts).
    #[error("{0}")]
    Resume(String),
    /// The loss stopped being finite.
    #[error("training diverged in epoch {epoch} (loss {loss}); try a smaller --lr or --clip")]
    Diverged {
        /// 1-based epoch.
        epoch: usize,
        /// The non-finite loss.
        loss: f64,
    },
}

/// Trains a classifier with cross-entropy; see [`TrainerConfig`].
pub struct Trainer {
    /// The settings.
    pub config: TrainerConfig,
}

fn epoch_seed(seed: u64, epoch: usize) -> u64 {
    seed ^ (epoch as u64 + 1).wrapping_mul(0xA076_1D64_78BD_642F)
}

fn set_state(model: &Sequential<f32>, tensors: &[(String, Tensor<f32>)]) {
    for (n, p) in model.named_parameters() {
        if let Some((_, t)) = tensors.iter().find(|(k, _)| *k == n) {
            p.set_value(t.clone());
        }
    }
    for (n, b) in model.named_buffers() {
        if let Some((_, t)) = tensors.iter().find(|(k, _)| *k == n) {
            b.set(t.clone());
        }
    }
}

impl Trainer {
    /// A trainer with these settings.
    pub fn new(config: TrainerConfig) -> Self {
        Trainer { config }
    }

    /// The checkpoint file in the output directory.
    pub fn checkpoint_path(&self) -> Option<PathBuf> {
        self.config
            .out_dir
            .as_ref()
            .map(|d| d.join("checkpoint.safetensors"))
    }

    /// Trains `model` on `train`, validating on `val` after every epoch.
    /// With `resume`, continues from the output directory's checkpoint
    /// (if any) exactly where it stopped.
    pub fn fit(
        &self,
        model: &mut Sequential<f32>,
        opt: &mut dyn Optimizer<f32>,
        mut scheduler: Option<&mut Scheduler<Box<dyn Schedule>>>,
        train: &InMemory,
        val: &InMemory,
        resume: bool,
    ) -> Result<History, TrainError> {
        let c = &self.config;
        let mut history = History::default();
        let mut best_loss = f64::INFINITY;
        let mut bad_epochs = 0usize;
        let mut best = state_dict(model);
        let mut start = 0;
        let mut settings = c.settings.clone();
        self.remove_stale_temp_files();
        if let (true, Some(path)) = (resume, self.checkpoint_path()) {
            if path.is_file() {
                let r = self.resume(&path, model, opt, scheduler.as_deref_mut(), train)?;
                set_state(model, &r.model);
                best = r.best;
                settings = r.settings;
                let t = r.trainer;
                (start, best_loss, bad_epochs) = (t.epochs_done, t.best_loss, t.bad_epochs);
                history.best_epoch = t.best_epoch;
                history.records = t.records;
                if c.verbose {
                    println!("resumed from {} after epoch {start}", path.display());
                }
                // A kill while the last run wrote its plot may have left it
                // empty or stale: redraw both from the checkpoint's records.
                if let Some(dir) = &c.out_dir {
                    write_metrics(dir, &history.records, c.label_smoothing)?;
                }
            }
        }
        let classes = 10;
        for epoch in start..c.epochs {
            let began = Instant::now();
            model.train();
            let seed = epoch_seed(c.seed, epoch);
            model.reseed(seed);
            let mut rng = StdRng::seed_from_u64(seed);
            let loader = DataLoader::new(train, Regime::MiniBatch(c.batch_size));
            let bar = if c.progress {
                let bar = ProgressBar::new(train.labels.len() as u64);
                bar.set_style(
                    ProgressStyle::with_template("epoch {prefix} {bar:30} {pos}/{len} {msg}")
                        .expect("a valid template"),
                );
                bar.set_prefix(format!("{}/{}", epoch + 1, c.epochs));
                bar
            } else {
                ProgressBar::hidden()
            };
            let (mut loss_sum, mut correct, mut seen) = (0.0f64, 0usize, 0usize);
            let options = ClassLossOptions {
                label_smoothing: c.label_smoothing,
                ..Default::default()
            };
            for mut batch in loader.epoch(&mut rng) {
                if let Some(augment) = &c.augment {
                    let mut x = batch.x.to_vec();
                    augment.apply(&mut x, &train.shape, &mut rng);
                    batch.x = Tensor::from_vec(batch.x.shape(), x);
                }
                let g = Graph::new();
                let logits = model.try_forward(&g, &g.input(batch.x))?;
                let l = loss::cross_entropy(&logits, &batch.y, &options)?;
                if !l.item().is_finite() {
                    bar.finish_and_clear();
                    return Err(TrainError::Diverged {
                        epoch: epoch + 1,
                        loss: l.item() as f64,
                    });
                }
                l.backward();
                if let Some(max) = c.clip_grad_norm {
                    clip_grad_norm(&model.parameters(), max, ClipGradNormOptions::default())?;
                }
                opt.step()?;
                opt.zero_grad();
                if c.schedule_step == ScheduleStep::PerBatch {
                    if let Some(s) = scheduler.as_deref_mut() {
                        s.step(opt);
                    }
                }
                let n = batch.y.len();
                let pred = argmax(logits.value(), 1)?;
                correct += pred
                    .data
                    .iter()
                    .zip(&batch.y.data)
                    .filter(|(p, t)| p == t)
                    .count();
                loss_sum += l.item() as f64 * n as f64;
                seen += n;
                bar.inc(n as u64);
                let secs = began.elapsed().as_secs_f64().max(1e-9);
                bar.set_message(format!(
                    "loss {:.4} acc {:.4} lr {:.2e} {:.0} samples/s",
                    loss_sum / seen as f64,
                    correct as f64 / seen as f64,
                    opt.lr(),
                    seen as f64 / secs
                ));
            }
            bar.finish_and_clear();
            if c.schedule_step == ScheduleStep::PerEpoch {
                if let Some(s) = scheduler.as_deref_mut() {
                    s.step(opt);
                }
            }
            model.eval();
            let v = evaluate(model, val, classes, 500);
            let record = EpochRecord {
                epoch: epoch + 1,
                train_loss: loss_sum / seen.max(1) as f64,
                train_accuracy: correct as f64 / seen.max(1) as f64,
                val_loss: v.loss,
                val_accuracy: v.accuracy,
                lr: opt.lr(),
                seconds: began.elapsed().as_secs_f64(),
            };
            if c.verbose {
                println!(
                    "epoch {:>3}/{}  train loss {:.4} acc {:.4}  val loss {:.4} acc {:.4}  lr {:.2e}  {:.1} s",
                    record.epoch, c.epochs, record.train_loss, record.train_accuracy, record.val_loss, record.val_accuracy, record.lr, record.seconds
                );
            }
            history.records.push(record);
            if v.loss < best_loss - c.min_delta {
                best_loss = v.loss;
                bad_epochs = 0;
                best = state_dict(model);
                history.best_epoch = epoch + 1;
            } else {
                bad_epochs += 1;
            }
            if let Some(dir) = &c.out_dir {
                std::fs::create_dir_all(dir)
                    .map_err(|e| TrainError::Output(format!("{}: {e}", dir.display())))?;
                let trainer = TrainerState {
                    epochs_done: epoch + 1,
                    best_loss,
                    bad_epochs,
                    best_epoch: history.best_epoch,
                    records: history.records.clone(),
                    scheduler: scheduler.as_deref().map(|s| {
                        let (last_epoch, base) = s.state();
                        SchedulerState {
                            last_epoch,
                            base_lrs: base.into_iter().map(checkpoint::Float).collect(),
                        }
                    }),
                };
                let ck = Checkpoint {
                    model: state_dict(model),
                    best: best.clone(),
                    optimizer: opt.state(),
                    trainer,
                    settings: settings.clone(),
                };
                checkpoint::save(&dir.join("checkpoint.safetensors"), &ck)?;
                write_metrics(dir, &history.records, c.label_smoothing)?;
            }
            if c.patience.is_some_and(|p| bad_epochs >= p) {
                history.stopped_early = true;
                if c.verbose {
                    println!("early stopping: no validation improvement for {bad_epochs} epochs; restoring epoch {}", history.best_epoch);
                }
                break;
            }
        }
        if c.patience.is_some() {
            set_state(model, &best);
        }
        model.eval();
        Ok(history)
    }
}

impl Trainer {
    /// Loads the checkpoint at `path` and restores it into `opt` and
    /// `scheduler` after checking it against this run (see
    /// [`checkpoint::restore`]); reports settings `--force` changed.
    fn resume(
        &self,
        path: &Path,
        model: &Sequential<f32>,
        opt: &mut dyn Optimizer<f32>,
        scheduler: Option<&mut Scheduler<Box<dyn Schedule>>>,
        train: &InMemory,
    ) -> Result<checkpoint::Restored, TrainError> {
        let c = &self.config;
        let ck = checkpoint::load(path)?;
        let expect = ResumeCheck {
            settings: c.settings.as_ref(),
            force: c.force_resume,
            batches_per_epoch: DataLoader::new(train, Regime::MiniBatch(c.batch_size))
                .batches_per_epoch(),
            per_batch: c.schedule_step == ScheduleStep::PerBatch,
        };
        let restored = checkpoint::restore(path, ck, model, opt, scheduler, &expect)?;
        for d in &restored.forced {
            eprintln!(
                "--force: {} continues with {} (the checkpoint has {})",
                d.setting, d.given, d.checkpoint
            );
        }
        Ok(restored)
    }

    /// Removes temporary files a killed run left in the output directory
    /// (see [`crate::nn::state::remove_stale_temp_files`]); a failure is
    /// only a warning, since nothing of this run depends on it.
    fn remove_stale_temp_files(&self) {
        let Some(dir) = &self.config.out_dir else {
            return;
        };
        match crate::nn::state::remove_stale_temp_files(dir) {
            Ok(removed) => {
                for f in removed.iter().filter(|_| self.config.verbose) {
                    println!("removed {}, left by a run that was killed", f.display());
                }
            }
            Err(e) => eprintln!(
                "warning: cannot look for stale temporary files in {}: {e}",
                dir.display()
            ),
        }
    }
}

/// Writes `metrics.csv` and draws `curves.png` in `dir` from `records`,
/// each atomically (a kill leaves the previous file, never a partial one).
fn write_metrics(
    dir: &Path,
    records: &[EpochRecord],
    label_smoothing: f64,
) -> Result<(), TrainError> {
    write_csv(&dir.join("metrics.csv"), records)
        .map_err(|e| TrainError::Output(format!("{}: {e}", dir.join("metrics.csv").display())))?;
    let series = |f: fn(&EpochRecord) -> f64| {
        records
            .iter()
            .map(|r| (r.epoch as f64, f(r)))
            .collect::<Vec<_>>()
    };
    plot_curves(
        &dir.join("curves.png"),
        &[
            (train_loss_label(label_smoothing), series(|r| r.train_loss)),
            ("validation".into(), series(|r| r.val_loss)),
        ],
        &[
            ("train".into(), series(|r| r.train_accuracy)),
            ("validation".into(), series(|r| r.val_accuracy)),
        ],
    )
    .map_err(TrainError::Output)
}

/// The legend of the training-loss curve: it says when the loss minimised
/// is smoothed, since validation loss is plain cross-entropy and sits far
/// below a smoothed loss (whose floor is above zero).
fn train_loss_label(label_smoothing: f64) -> String {
    if label_smoothing > 0.0 {
        format!("train (label smoothing {label_smoothing})")
    } else {
        "train".into()
    }
}
