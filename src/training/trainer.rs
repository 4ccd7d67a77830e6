//! The training loop helper. Explicit loops stay easy (see the README);
//! this adds what every real run needs around them.

use super::checkpoint::{self, Checkpoint};
use super::metrics::{evaluate, plot_curves, write_csv};
use crate::data::transform::{random_crop, random_horizontal_flip};
use crate::data::{DataLoader, InMemory, Regime};
use crate::nn::state::state_dict;
use crate::nn::{Module, Sequential};
use crate::ops::{argmax, loss, ClassLossOptions};
use crate::optim::{clip_grad_norm, Optimizer, Schedule, Scheduler};
use crate::tape::{Graph, Tensor};
use indicatif::{ProgressBar, ProgressStyle};
use rand::rngs::StdRng;
use rand::SeedableRng;
use serde_json::{json, Value};
use std::path::PathBuf;
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
        }
    }
}

/// One epoch's figures.
#[derive(Clone, Debug, PartialEq)]
pub struct EpochRecord {
    /// 1-based epoch number.
    pub epoch: usize,
    /// Mean training loss over the epoch's batches.
    pub train_loss: f64,
    /// Training accuracy over the epoch (in training mode).
    pub train_accuracy: f64,
    /// Validation loss (eval mode).
    pub val_loss: f64,
    /// Validation accuracy.
    pub val_accuracy: f64,
    /// Learning rate at the end of the epoch.
    pub lr: f64,
    /// Wall-clock seconds of the epoch.
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

fn record_json(r: &EpochRecord) -> Value {
    json!([
        r.epoch,
        r.train_loss,
        r.train_accuracy,
        r.val_loss,
        r.val_accuracy,
        r.lr,
        r.seconds
    ])
}

fn record_from(v: &Value) -> Option<EpochRecord> {
    let a = v.as_array()?;
    let f = |i: usize| a.get(i).and_then(Value::as_f64);
    Some(EpochRecord {
        epoch: f(0)? as usize,
        train_loss: f(1)?,
        train_accuracy: f(2)?,
        val_loss: f(3)?,
        val_accuracy: f(4)?,
        lr: f(5)?,
        seconds: f(6)?,
    })
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
        if let (true, Some(path)) = (resume, self.checkpoint_path()) {
            if path.is_file() {
                let ck = checkpoint::load(&path)?;
                set_state(model, &ck.model);
                best = ck.best;
                opt.load_state(ck.optimizer)?;
                let t = &ck.trainer;
                start = t["epochs_done"].as_u64().unwrap_or(0) as usize;
                best_loss = t["best_loss"].as_f64().unwrap_or(f64::INFINITY);
                bad_epochs = t["bad_epochs"].as_u64().unwrap_or(0) as usize;
                history.best_epoch = t["best_epoch"].as_u64().unwrap_or(0) as usize;
                history.records = t["records"]
                    .as_array()
                    .map(|a| a.iter().filter_map(record_from).collect())
                    .unwrap_or_default();
                if let (Some(s), Some(last), Some(base)) = (
                    scheduler.as_deref_mut(),
                    t["scheduler_epoch"].as_u64(),
                    t["scheduler_base_lrs"].as_array(),
                ) {
                    s.load_state(opt, (last, base.iter().filter_map(Value::as_f64).collect()));
                }
                if c.verbose {
                    println!("resumed from {} after epoch {start}", path.display());
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
                    clip_grad_norm(&model.parameters(), max, 2.0, false)?;
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
                let (sched_epoch, base) = scheduler
                    .as_deref()
                    .map(|s| s.state())
                    .unwrap_or((0, Vec::new()));
                let trainer = json!({
                    "epochs_done": epoch + 1,
                    "best_loss": best_loss,
                    "bad_epochs": bad_epochs,
                    "best_epoch": history.best_epoch,
                    "records": history.records.iter().map(record_json).collect::<Vec<_>>(),
                    "scheduler_epoch": sched_epoch,
                    "scheduler_base_lrs": base,
                });
                let ck = Checkpoint {
                    model: state_dict(model),
                    best: best.clone(),
                    optimizer: opt.state(),
                    trainer,
                };
                checkpoint::save(&dir.join("checkpoint.safetensors"), &ck)?;
                write_csv(&dir.join("metrics.csv"), &history.records)
                    .map_err(|e| TrainError::Output(e.to_string()))?;
                let series = |f: fn(&EpochRecord) -> f64| {
                    history
                        .records
                        .iter()
                        .map(|r| (r.epoch as f64, f(r)))
                        .collect::<Vec<_>>()
                };
                plot_curves(
                    &dir.join("curves.png"),
                    &[
                        (
                            train_loss_label(c.label_smoothing),
                            series(|r| r.train_loss),
                        ),
                        ("validation".into(), series(|r| r.val_loss)),
                    ],
                    &[
                        ("train".into(), series(|r| r.train_accuracy)),
                        ("validation".into(), series(|r| r.val_accuracy)),
                    ],
                )
                .map_err(TrainError::Output)?;
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
