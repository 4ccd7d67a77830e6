//! `chainrule train`: Fashion-MNIST end to end (the README's main command).

use crate::flags;
use chainrule::data::fashion;
use chainrule::nn::state::save;
use chainrule::optim::{
    flatten_hyperparameters, optimizer_by_name, ConstantLr, CosineAnnealingLr, ExponentialLr,
    OneCycleLr, Schedule, Scheduler, StepLr, OPTIMIZER_NAMES,
};
use chainrule::prelude::*;
use chainrule_cli::models::{apply_init, cnn, mlp, InitScheme};
use chainrule_train::checkpoint::{Float, RunSettings};
use chainrule_train::metrics::{confusion_table, evaluate};
use chainrule_train::splits::{fashion_splits, Scaling, Splits};
use chainrule_train::{Augmentation, ScheduleStep, Trainer, TrainerConfig};
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

/// Which network.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ModelKind {
    /// 784-512-256-10 with ReLU and dropout.
    Mlp,
    /// Two conv-BatchNorm-ReLU-pool blocks, dropout, two linear layers.
    Cnn,
}

impl ModelKind {
    /// How this model's images are standardized.
    pub fn scaling(self) -> Scaling {
        match self {
            ModelKind::Mlp => Scaling::PerPixel,
            ModelKind::Cnn => Scaling::Global,
        }
    }
}

/// Training-image augmentations selectable with `--augment`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum AugmentKind {
    /// Random crop (padding 2, background border) and horizontal flip.
    CropFlip,
    /// Horizontal flip only.
    Flip,
}

/// Learning-rate schedules selectable with `--schedule`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ScheduleKind {
    /// Constant rate.
    None,
    /// Cosine annealing to 0 over the run, stepped per batch.
    Cosine,
    /// One-cycle (warm-up to 10× then anneal), per batch.
    Onecycle,
    /// ×0.5 every 5 epochs.
    Step,
    /// ×0.9 every epoch.
    Exponential,
}

/// Options of `chainrule train`.
#[derive(clap::Args, Clone)]
pub struct TrainArgs {
    /// The network.
    #[arg(long, value_enum, default_value = "cnn")]
    pub model: ModelKind,
    /// The optimizer (sgd, momentum, nesterov, adagrad, rmsprop, adadelta, adam, amsgrad, adamw, adamax, nadam, radam, rprop, asgd, lion, quickprop).
    #[arg(long, default_value = "adam")]
    pub optimizer: String,
    /// Learning rate, finite and ≥ 0 (default: the optimizer's PyTorch default, 1e-3 for Adam).
    #[arg(long, value_parser = flags::non_negative)]
    pub lr: Option<f64>,
    /// Learning-rate schedule.
    #[arg(long, value_enum, default_value = "cosine")]
    pub schedule: ScheduleKind,
    /// Mini-batch size, ≥ 1 (default: 128 for the MLP, 64 for the CNN).
    #[arg(long, value_parser = flags::at_least_one)]
    pub batch_size: Option<usize>,
    /// Epochs, ≥ 1 (default: 20 for the MLP, 14 for the CNN).
    #[arg(long, value_parser = flags::at_least_one)]
    pub epochs: Option<usize>,
    /// Weight initialisation.
    #[arg(long, value_enum, default_value = "default")]
    pub init: InitScheme,
    /// Seed of the initial weights, shuffling, augmentation and dropout.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Output directory (weights, checkpoint, metrics.csv, curves.png).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Continue from the checkpoint in --out. The run's settings must be
    /// the checkpoint's (it records them): any difference is an error
    /// naming the setting and both values.
    #[arg(long)]
    pub resume: bool,
    /// With --resume: continue although --epochs, --patience, --min-delta,
    /// --clip, --label-smoothing, --augment or the data source (not its
    /// size) differ from the checkpoint's, using the values given (recorded
    /// in the checkpoint). The model, --dropout, --init, --optimizer, --lr,
    /// --schedule, --batch-size, --seed, --limit and the number of training
    /// images can never be overridden.
    #[arg(long, requires = "resume")]
    pub force: bool,
    /// Early stopping: epochs (≥ 1) without validation improvement.
    #[arg(long, value_parser = flags::at_least_one)]
    pub patience: Option<usize>,
    /// Smallest validation-loss decrease that counts as an improvement (finite, ≥ 0).
    #[arg(long, default_value_t = 0.0, value_parser = flags::non_negative)]
    pub min_delta: f64,
    /// Clip the global gradient norm to this (finite, > 0).
    #[arg(long, value_parser = flags::positive)]
    pub clip: Option<f64>,
    /// Dropout probability of the classifier layers, in [0, 1].
    #[arg(long, default_value_t = 0.3, value_parser = flags::probability)]
    pub dropout: f64,
    /// Label smoothing ε of the cross-entropy, in [0, 1] (default: 0,
    /// PyTorch's, for the MLP; 0.1 for the CNN).
    #[arg(long, value_parser = flags::probability)]
    pub label_smoothing: Option<f64>,
    /// Random transformations of training images: `crop-flip` (random crop
    /// with padding 2 and horizontal flip; the default of a bare `--augment`)
    /// or `flip`.
    #[arg(long, value_enum, num_args = 0..=1, default_missing_value = "crop-flip")]
    pub augment: Option<AugmentKind>,
    /// Use only the first N training images (quick runs; N ≥ 12, so that
    /// the validation set is not empty).
    #[arg(long, value_parser = flags::limit)]
    pub limit: Option<usize>,
    /// Use the subset committed in the repository even if the full set is installed.
    #[arg(long)]
    pub subset: bool,
    /// Read Fashion-MNIST from this directory (the four IDX files, .gz or
    /// raw; overrides $CHAINRULE_DATA; an error if unusable, never replaced).
    #[arg(long, value_name = "DIR", conflicts_with = "subset")]
    pub data: Option<PathBuf>,
}

fn schedule_for(
    kind: ScheduleKind,
    base_lr: f64,
    epochs: usize,
    steps_per_epoch: usize,
) -> (Box<dyn Schedule>, ScheduleStep) {
    let total = epochs.saturating_mul(steps_per_epoch) as u64;
    match kind {
        ScheduleKind::None => (
            Box::new(ConstantLr {
                factor: 1.0,
                total_iters: 0,
            }),
            ScheduleStep::PerEpoch,
        ),
        ScheduleKind::Cosine => (
            Box::new(CosineAnnealingLr {
                t_max: total,
                eta_min: 0.0,
            }),
            ScheduleStep::PerBatch,
        ),
        ScheduleKind::Onecycle => (
            Box::new(OneCycleLr::new(base_lr * 10.0, total.max(2))),
            ScheduleStep::PerBatch,
        ),
        ScheduleKind::Step => (
            Box::new(StepLr {
                step_size: 5,
                gamma: 0.5,
            }),
            ScheduleStep::PerEpoch,
        ),
        ScheduleKind::Exponential => (
            Box::new(ExponentialLr { gamma: 0.9 }),
            ScheduleStep::PerEpoch,
        ),
    }
}

/// The CLI spelling of a value-enum flag's value.
fn flag_value(v: &impl clap::ValueEnum) -> String {
    v.to_possible_value()
        .map_or_else(String::new, |p| p.get_name().to_string())
}

/// The first group's hyperparameters of `opt`.
fn hyperparameters(opt: &dyn Optimizer<f32>) -> BTreeMap<String, Float> {
    let list = opt.hyperparameters(0).unwrap_or_default();
    flatten_hyperparameters(&list)
        .into_iter()
        .map(|(k, v)| (k, Float(v)))
        .collect()
}

/// Where the images come from, as the flags chose it.
fn data_source(args: &TrainArgs) -> Result<String, String> {
    Ok(
        match fashion::DataDir::from_env(args.subset, args.data.as_deref())
            .map_err(|e| e.to_string())?
        {
            fashion::DataDir::Flag(d) => format!("--data {}", d.display()),
            fashion::DataDir::Env(d) => format!("CHAINRULE_DATA={}", d.display()),
            fashion::DataDir::Subset => "--subset".into(),
            fashion::DataDir::Default => "default".into(),
        },
    )
}

/// The run's settings as its checkpoint records them (`hyper`: the
/// optimizer's hyperparameters before any schedule changed them; the
/// per-model defaults of batch size, epochs and label smoothing resolved).
fn run_settings(
    args: &TrainArgs,
    hyper: BTreeMap<String, Float>,
    data: String,
    train_images: usize,
    (batch_size, epochs, label_smoothing): (usize, usize, f64),
) -> RunSettings {
    RunSettings {
        model: flag_value(&args.model),
        optimizer: args.optimizer.clone(),
        lr: hyper.get("lr").copied().unwrap_or(Float(f64::NAN)),
        hyperparameters: hyper,
        schedule: flag_value(&args.schedule),
        batch_size,
        epochs,
        seed: args.seed,
        limit: args.limit,
        data,
        train_images,
        init: flag_value(&args.init),
        dropout: Float(args.dropout),
        clip: args.clip.map(Float),
        label_smoothing: Float(label_smoothing),
        augment: args.augment.as_ref().map(flag_value),
        patience: args.patience,
        min_delta: Float(args.min_delta),
        forced: Vec::new(),
    }
}

pub fn run(args: &TrainArgs) -> ExitCode {
    match train(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("chainrule train: {e}");
            ExitCode::from(2)
        }
    }
}

fn train(args: &TrainArgs) -> Result<(), String> {
    if !OPTIMIZER_NAMES.contains(&args.optimizer.as_str()) {
        return Err(format!(
            "no optimizer called {:?}; known: {}",
            args.optimizer,
            OPTIMIZER_NAMES.join(", ")
        ));
    }
    // Per-model defaults: the CNN's were chosen by whole runs (README).
    let is_cnn = matches!(args.model, ModelKind::Cnn);
    let batch_size = args.batch_size.unwrap_or(if is_cnn { 64 } else { 128 });
    let label_smoothing = args
        .label_smoothing
        .unwrap_or(if is_cnn { 0.1 } else { 0.0 });
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("runs/{:?}", args.model).to_lowercase()));
    flags::check_output_dir("--out", &out)?;
    let Splits {
        train,
        val,
        test,
        background,
    } = fashion_splits(
        args.subset,
        args.data.as_deref(),
        args.limit,
        args.model.scaling(),
    )?;
    let epochs = args.epochs.unwrap_or(match args.model {
        ModelKind::Mlp => 20,
        ModelKind::Cnn => 14,
    });
    let mut rng = StdRng::seed_from_u64(args.seed);
    let mut model = match args.model {
        ModelKind::Mlp => mlp(args.dropout, args.seed, &mut rng),
        ModelKind::Cnn => cnn(args.dropout, args.seed, &mut rng),
    };
    apply_init(&model, args.init, &mut rng);
    println!(
        "{}",
        model.summary(&[1, 1, 28, 28]).map_err(|e| e.to_string())?
    );
    let mut opt = optimizer_by_name(&args.optimizer, model.parameters(), args.lr)
        .map_err(|e| e.to_string())?;
    // The optimizer's settings before the schedule sets its first rate.
    let start_hyper = hyperparameters(opt.as_ref());
    let steps = train.labels.len().div_ceil(batch_size);
    let (schedule, step) = schedule_for(args.schedule, opt.lr(), epochs, steps);
    let mut scheduler = Scheduler::new(opt.as_mut(), schedule);
    let trainer = Trainer::new(TrainerConfig {
        epochs,
        batch_size,
        seed: args.seed,
        patience: args.patience,
        min_delta: args.min_delta,
        clip_grad_norm: args.clip,
        schedule_step: step,
        augment: args.augment.map(|kind| match kind {
            AugmentKind::CropFlip => Augmentation::crop_and_flip(2, background),
            AugmentKind::Flip => Augmentation::flip_only(),
        }),
        label_smoothing,
        out_dir: Some(out.clone()),
        progress: true,
        verbose: true,
        settings: Some(run_settings(
            args,
            start_hyper,
            data_source(args)?,
            train.labels.len(),
            (batch_size, epochs, label_smoothing),
        )),
        force_resume: args.force,
    });
    println!(
        "training {:?} with {} (lr {:.1e}, {:?} schedule), batch {}, label smoothing {label_smoothing}, {epochs} epochs, on {} images ({} for validation)",
        args.model,
        args.optimizer,
        opt.lr(),
        args.schedule,
        batch_size,
        train.labels.len(),
        val.labels.len()
    );
    let history = trainer
        .fit(
            &mut model,
            opt.as_mut(),
            Some(&mut scheduler),
            &train,
            &val,
            args.resume,
        )
        .map_err(|e| e.to_string())?;
    let seconds: f64 = history.records.iter().map(|r| r.seconds).sum();
    let eval = evaluate(&model, &test, 500).map_err(|e| e.to_string())?;
    save(&model, out.join("model.safetensors")).map_err(|e| e.to_string())?;
    println!(
        "\nconfusion matrix on the {} test images:\n{}",
        test.labels.len(),
        confusion_table(&eval.confusion, &fashion::CLASSES)
    );
    println!(
        "training time {seconds:.1} s; weights, checkpoint, metrics.csv and curves.png in {}",
        out.display()
    );
    println!("test loss {:.4}", eval.loss);
    println!("test accuracy {:.4}", eval.accuracy);
    Ok(())
}
