//! The training loop helper. Explicit loops stay easy (see the README);
//! this adds what every real run needs around them.

use super::checkpoint::{self, Checkpoint, ResumeCheck, RunSettings, SchedulerState, TrainerState};
use super::metrics::{evaluate, plot_curves, write_csv};
use crate::data::transform::{random_crop, random_horizontal_flip};
use crate::data::{Batch, DataLoader, InMemory, Regime};
use crate::nn::state::state_dict;
use crate::nn::Module;
use crate::ops::{loss, try_argmax, ClassLossOptions};
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
///
/// Any [`Module<f32>`] whose forward maps a batch `[B, …]` to logits
/// `[B, classes]` can be trained; the class count is the logits' width,
/// which cross-entropy checks every label against (no constant).
pub struct Trainer {
    /// The settings.
    pub config: TrainerConfig,
}

/// Batch size of the validation passes (no gradients, so larger than a
/// training batch).
const EVAL_BATCH: usize = 500;

fn epoch_seed(seed: u64, epoch: usize) -> u64 {
    seed ^ (epoch as u64 + 1).wrapping_mul(0xA076_1D64_78BD_642F)
}

/// Installs `tensors` into `model`'s parameters and buffers of the same names.
fn set_state<M: Module<f32> + ?Sized>(model: &M, tensors: &[(String, Tensor<f32>)]) {
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

/// Where a run stands: what each epoch updates and each checkpoint records.
struct Progress {
    /// Epochs completed.
    epochs_done: usize,
    /// The best validation loss so far (infinite before any).
    best_loss: f64,
    /// Epochs since the last improvement.
    bad_epochs: usize,
    /// The epoch of the best validation loss (0: none yet).
    best_epoch: usize,
    /// One record per completed epoch.
    records: Vec<EpochRecord>,
    /// The weights of the best epoch (early stopping restores them).
    best: Vec<(String, Tensor<f32>)>,
    /// The settings recorded in checkpoints.
    settings: Option<RunSettings>,
}

impl Progress {
    /// A run that has not started: `model`'s weights are the best so far.
    fn new<M: Module<f32> + ?Sized>(model: &M, settings: Option<RunSettings>) -> Self {
        Progress {
            epochs_done: 0,
            best_loss: f64::INFINITY,
            bad_epochs: 0,
            best_epoch: 0,
            records: Vec::new(),
            best: state_dict(model),
            settings,
        }
    }

    /// Adds an epoch's record; a validation loss below the best by more
    /// than `min_delta` makes `model`'s weights the best.
    fn push<M: Module<f32> + ?Sized>(&mut self, record: EpochRecord, model: &M, min_delta: f64) {
        self.epochs_done = record.epoch;
        if record.val_loss < self.best_loss - min_delta {
            self.best_loss = record.val_loss;
            self.bad_epochs = 0;
            self.best = state_dict(model);
            self.best_epoch = record.epoch;
        } else {
            self.bad_epochs += 1;
        }
        self.records.push(record);
    }

    /// The checkpoint's trainer state.
    fn trainer_state(&self, scheduler: Option<&Scheduler<Box<dyn Schedule>>>) -> TrainerState {
        TrainerState {
            epochs_done: self.epochs_done,
            best_loss: self.best_loss,
            bad_epochs: self.bad_epochs,
            best_epoch: self.best_epoch,
            records: self.records.clone(),
            scheduler: scheduler.map(|s| {
                let (last_epoch, base) = s.state();
                SchedulerState {
                    last_epoch,
                    base_lrs: base.into_iter().map(checkpoint::Float).collect(),
                }
            }),
        }
    }
}

/// Running sums of an epoch's training batches.
#[derive(Default)]
struct Tally {
    loss_sum: f64,
    correct: usize,
    seen: usize,
}

impl Tally {
    fn mean_loss(&self) -> f64 {
        self.loss_sum / self.seen.max(1) as f64
    }

    fn accuracy(&self) -> f64 {
        self.correct as f64 / self.seen.max(1) as f64
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

    /// Trains `model` (any [`Module<f32>`]: a [`crate::nn::Sequential`],
    /// a custom module, a `dyn Module<f32>`) on `train`, validating on `val`
    /// after every epoch. With `resume`, continues from the output
    /// directory's checkpoint (if any) exactly where it stopped.
    pub fn fit<M: Module<f32> + ?Sized>(
        &self,
        model: &mut M,
        opt: &mut dyn Optimizer<f32>,
        mut scheduler: Option<&mut Scheduler<Box<dyn Schedule>>>,
        train: &InMemory,
        val: &InMemory,
        resume: bool,
    ) -> Result<History, TrainError> {
        let c = &self.config;
        self.remove_stale_temp_files();
        let mut progress = match self.checkpoint_path().filter(|p| resume && p.is_file()) {
            Some(path) => self.resume(&path, model, opt, scheduler.as_deref_mut(), train)?,
            None => Progress::new(model, c.settings.clone()),
        };
        let mut stopped_early = false;
        for epoch in progress.epochs_done..c.epochs {
            let record = self.epoch(epoch, model, opt, scheduler.as_deref_mut(), train, val)?;
            progress.push(record, model, c.min_delta);
            self.write_outputs(&progress, model, opt, scheduler.as_deref())?;
            if c.patience.is_some_and(|p| progress.bad_epochs >= p) {
                stopped_early = true;
                if c.verbose {
                    println!(
                        "early stopping: no validation improvement for {} epochs; restoring epoch {}",
                        progress.bad_epochs, progress.best_epoch
                    );
                }
                break;
            }
        }
        if c.patience.is_some() {
            set_state(model, &progress.best);
        }
        model.eval();
        Ok(History {
            records: progress.records,
            best_epoch: progress.best_epoch,
            stopped_early,
        })
    }

    /// Loads the checkpoint at `path`, checks it against this run (see
    /// [`checkpoint::restore`]), installs its weights in `model` and its
    /// state in `opt` and `scheduler`; reports settings `--force` changed
    /// and redraws the metrics files from the checkpoint's records.
    fn resume<M: Module<f32> + ?Sized>(
        &self,
        path: &Path,
        model: &M,
        opt: &mut dyn Optimizer<f32>,
        scheduler: Option<&mut Scheduler<Box<dyn Schedule>>>,
        train: &InMemory,
    ) -> Result<Progress, TrainError> {
        let c = &self.config;
        let ck = checkpoint::load(path)?;
        let expect = ResumeCheck {
            settings: c.settings.as_ref(),
            force: c.force_resume,
            batches_per_epoch: DataLoader::new(train, Regime::MiniBatch(c.batch_size))
                .batches_per_epoch(),
            per_batch: c.schedule_step == ScheduleStep::PerBatch,
        };
        let r = checkpoint::restore(path, ck, model, opt, scheduler, &expect)?;
        for d in &r.forced {
            eprintln!(
                "--force: {} continues with {} (the checkpoint has {})",
                d.setting, d.given, d.checkpoint
            );
        }
        set_state(model, &r.model);
        let t = r.trainer;
        if c.verbose {
            println!(
                "resumed from {} after epoch {}",
                path.display(),
                t.epochs_done
            );
        }
        // A kill while the last run wrote its plot may have left it empty
        // or stale: redraw both from the checkpoint's records.
        if let Some(dir) = &c.out_dir {
            write_metrics(dir, &t.records, c.label_smoothing)?;
        }
        Ok(Progress {
            epochs_done: t.epochs_done,
            best_loss: t.best_loss,
            bad_epochs: t.bad_epochs,
            best_epoch: t.best_epoch,
            records: t.records,
            best: r.best,
            settings: r.settings,
        })
    }

    /// Runs epoch `epoch` (0-based): a pass over `train` in training mode,
    /// the per-epoch schedule step, and a validation pass over `val` in
    /// eval mode; returns its record.
    fn epoch<M: Module<f32> + ?Sized>(
        &self,
        epoch: usize,
        model: &mut M,
        opt: &mut dyn Optimizer<f32>,
        mut scheduler: Option<&mut Scheduler<Box<dyn Schedule>>>,
        train: &InMemory,
        val: &InMemory,
    ) -> Result<EpochRecord, TrainError> {
        let c = &self.config;
        let began = Instant::now();
        model.train();
        let seed = epoch_seed(c.seed, epoch);
        model.reseed(seed);
        let rng = &mut StdRng::seed_from_u64(seed);
        let tally = self.train_epoch(epoch, model, opt, scheduler.as_deref_mut(), train, rng)?;
        if c.schedule_step == ScheduleStep::PerEpoch {
            if let Some(s) = scheduler {
                s.try_step(opt)?;
            }
        }
        model.eval();
        let v = evaluate(model, val, EVAL_BATCH)?;
        let record = EpochRecord {
            epoch: epoch + 1,
            train_loss: tally.mean_loss(),
            train_accuracy: tally.accuracy(),
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
        Ok(record)
    }

    /// One pass over `train` in mini-batches shuffled (and augmented) with
    /// `rng`, an optimizer step per batch (and a schedule step, per batch);
    /// shows the progress bar.
    fn train_epoch<M: Module<f32> + ?Sized>(
        &self,
        epoch: usize,
        model: &M,
        opt: &mut dyn Optimizer<f32>,
        mut scheduler: Option<&mut Scheduler<Box<dyn Schedule>>>,
        train: &InMemory,
        rng: &mut StdRng,
    ) -> Result<Tally, TrainError> {
        let c = &self.config;
        let began = Instant::now();
        let bar = self.progress_bar(epoch, train.labels.len());
        let mut tally = Tally::default();
        for mut batch in DataLoader::new(train, Regime::MiniBatch(c.batch_size)).epoch(rng) {
            if let Some(augment) = &c.augment {
                let mut x = batch.x.to_vec();
                augment.apply(&mut x, &train.shape, rng);
                batch.x = Tensor::from_vec(batch.x.shape(), x);
            }
            let n = batch.y.len();
            let (loss, correct) = self.step(epoch, model, opt, batch).inspect_err(|_| {
                bar.finish_and_clear();
            })?;
            if c.schedule_step == ScheduleStep::PerBatch {
                if let Some(s) = scheduler.as_deref_mut() {
                    s.try_step(opt)?;
                }
            }
            tally.correct += correct;
            tally.loss_sum += loss * n as f64;
            tally.seen += n;
            bar.inc(n as u64);
            let secs = began.elapsed().as_secs_f64().max(1e-9);
            bar.set_message(format!(
                "loss {:.4} acc {:.4} lr {:.2e} {:.0} samples/s",
                tally.mean_loss(),
                tally.accuracy(),
                opt.lr(),
                tally.seen as f64 / secs
            ));
        }
        bar.finish_and_clear();
        Ok(tally)
    }

    /// One optimizer step on `batch`: forward, cross-entropy (an error if
    /// it is not finite), backward, clipping, step. Returns the batch's
    /// mean loss and how many examples it classified correctly.
    fn step<M: Module<f32> + ?Sized>(
        &self,
        epoch: usize,
        model: &M,
        opt: &mut dyn Optimizer<f32>,
        batch: Batch,
    ) -> Result<(f64, usize), TrainError> {
        let c = &self.config;
        let options = ClassLossOptions {
            label_smoothing: c.label_smoothing,
            ..Default::default()
        };
        let g = Graph::new();
        let logits = model.try_forward(&g, &g.input(batch.x))?;
        let l = loss::try_cross_entropy(&logits, &batch.y, &options)?;
        let loss = l.item() as f64;
        if !loss.is_finite() {
            return Err(TrainError::Diverged {
                epoch: epoch + 1,
                loss,
            });
        }
        l.backward();
        if let Some(max) = c.clip_grad_norm {
            clip_grad_norm(&model.parameters(), max, ClipGradNormOptions::default())?;
        }
        opt.step()?;
        opt.zero_grad();
        let pred = try_argmax(logits.value(), 1)?;
        let correct = pred
            .data
            .iter()
            .zip(&batch.y.data)
            .filter(|(p, t)| p == t)
            .count();
        Ok((loss, correct))
    }

    /// Epoch `epoch`'s progress bar over `examples` (hidden unless
    /// [`TrainerConfig::progress`]).
    fn progress_bar(&self, epoch: usize, examples: usize) -> ProgressBar {
        if !self.config.progress {
            return ProgressBar::hidden();
        }
        let bar = ProgressBar::new(examples as u64);
        bar.set_style(
            ProgressStyle::with_template("epoch {prefix} {bar:30} {pos}/{len} {msg}")
                .expect("a valid template"),
        );
        bar.set_prefix(format!("{}/{}", epoch + 1, self.config.epochs));
        bar
    }

    /// Writes the checkpoint, `metrics.csv` and `curves.png` to the output
    /// directory (if any), each atomically.
    fn write_outputs<M: Module<f32> + ?Sized>(
        &self,
        progress: &Progress,
        model: &M,
        opt: &dyn Optimizer<f32>,
        scheduler: Option<&Scheduler<Box<dyn Schedule>>>,
    ) -> Result<(), TrainError> {
        let Some(dir) = &self.config.out_dir else {
            return Ok(());
        };
        std::fs::create_dir_all(dir)
            .map_err(|e| TrainError::Output(format!("{}: {e}", dir.display())))?;
        let ck = Checkpoint {
            model: state_dict(model),
            best: progress.best.clone(),
            optimizer: opt.state(),
            trainer: progress.trainer_state(scheduler),
            settings: progress.settings.clone(),
        };
        checkpoint::save(&dir.join("checkpoint.safetensors"), &ck)?;
        write_metrics(dir, &progress.records, self.config.label_smoothing)
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
