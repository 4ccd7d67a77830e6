//! `chainrule compare` (the lecture notes' optimizer comparison) and
//! `chainrule tune` (random and grid search, Bergstra & Bengio 2012).

use crate::flags;
use crate::train_cmd::ModelKind;
use chainrule::nn::state::write_atomically;
use chainrule::optim::{
    optimizer_by_name, CosineAnnealingLr, Hyper, Schedule, Scheduler, OPTIMIZER_NAMES,
};
use chainrule::prelude::*;
use chainrule_cli::models::{cnn, mlp};
use chainrule_train::metrics::{evaluate, plot_curves, Series};
use chainrule_train::splits::{fashion_splits, Splits};
use chainrule_train::{History, ScheduleStep, Trainer, TrainerConfig};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rayon::prelude::*;
use std::path::PathBuf;
use std::process::ExitCode;

/// One training run's settings.
#[derive(Clone, Debug)]
struct RunSpec {
    model: ModelKind,
    optimizer: String,
    lr: f64,
    batch_size: usize,
    weight_decay: f64,
    epochs: usize,
    seed: u64,
}

struct RunResult {
    spec: RunSpec,
    history: History,
    test_accuracy: f64,
}

/// Trains from the seed's initial weights (the same for every spec with that seed).
fn run(spec: &RunSpec, data: &Splits) -> Result<RunResult, String> {
    let mut rng = StdRng::seed_from_u64(spec.seed);
    let mut model = match spec.model {
        ModelKind::Mlp => mlp(0.3, spec.seed, &mut rng),
        ModelKind::Cnn => cnn(0.3, spec.seed, &mut rng),
    };
    let mut opt = optimizer_by_name(&spec.optimizer, model.parameters(), Some(spec.lr))
        .map_err(|e| e.to_string())?;
    if spec.weight_decay > 0.0 {
        opt.set_hyperparameter(0, "weight_decay", Hyper::F64(spec.weight_decay))
            .map_err(|e| e.to_string())?;
    }
    let steps = data.train.labels.len().div_ceil(spec.batch_size) * spec.epochs;
    let schedule: Box<dyn Schedule> = Box::new(CosineAnnealingLr {
        t_max: steps as u64,
        eta_min: 0.0,
    });
    let mut sched = Scheduler::new(opt.as_mut(), schedule);
    let trainer = Trainer::new(TrainerConfig {
        epochs: spec.epochs,
        batch_size: spec.batch_size,
        seed: spec.seed,
        schedule_step: ScheduleStep::PerBatch,
        progress: false,
        verbose: false,
        ..Default::default()
    });
    let history = match trainer.fit(
        &mut model,
        opt.as_mut(),
        Some(&mut sched),
        &data.train,
        &data.val,
        false,
    ) {
        Ok(h) => h,
        Err(chainrule_train::TrainError::Diverged { .. }) => {
            return Ok(RunResult {
                spec: spec.clone(),
                history: History::default(),
                test_accuracy: f64::NAN,
            });
        }
        Err(e) => return Err(e.to_string()),
    };
    let test_accuracy = evaluate(&model, &data.test, 500)
        .map_err(|e| e.to_string())?
        .accuracy;
    Ok(RunResult {
        spec: spec.clone(),
        history,
        test_accuracy,
    })
}

/// Learning rates of `compare` per optimizer (each method's usual range for this MLP).
fn default_lr(optimizer: &str) -> f64 {
    match optimizer {
        "sgd" => 0.05,
        "momentum" | "nesterov" => 0.01,
        "adagrad" => 0.01,
        "adadelta" => 1.0,
        "rprop" => 1e-3,
        "lion" => 1e-4,
        "quickprop" => 0.01,
        _ => 1e-3,
    }
}

/// Options of `chainrule compare`.
#[derive(clap::Args)]
pub struct CompareArgs {
    /// Optimizers to compare (comma-separated).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "sgd,momentum,nesterov,adagrad,rmsprop,adadelta,adam"
    )]
    optimizers: Vec<String>,
    /// The network.
    #[arg(long, value_enum, default_value = "mlp")]
    model: ModelKind,
    /// Epochs per optimizer (≥ 1).
    #[arg(long, default_value_t = 5, value_parser = flags::at_least_one)]
    epochs: usize,
    /// Mini-batch size (≥ 1).
    #[arg(long, default_value_t = 128, value_parser = flags::at_least_one)]
    batch_size: usize,
    /// One learning rate for all, finite and ≥ 0 (default: a per-optimizer rate, printed in the table).
    #[arg(long, value_parser = flags::non_negative)]
    lr: Option<f64>,
    /// Seed of the shared initial weights and data order.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Use only the first N training images (N ≥ 12).
    #[arg(long, value_parser = flags::limit)]
    limit: Option<usize>,
    /// Use the embedded subset.
    #[arg(long)]
    subset: bool,
    /// Read Fashion-MNIST from this directory (overrides $CHAINRULE_DATA).
    #[arg(long, value_name = "DIR", conflicts_with = "subset")]
    data: Option<PathBuf>,
    /// Where compare.png and compare.csv go.
    #[arg(long, default_value = "runs/compare")]
    out: PathBuf,
}

pub fn compare(args: &CompareArgs) -> ExitCode {
    let result = (|| -> Result<(), String> {
        if args.optimizers.is_empty() {
            return Err("--optimizers: name at least one optimizer".into());
        }
        for o in &args.optimizers {
            if !OPTIMIZER_NAMES.contains(&o.as_str()) {
                return Err(format!(
                    "no optimizer called {o:?}; known: {}",
                    OPTIMIZER_NAMES.join(", ")
                ));
            }
        }
        flags::check_output_dir("--out", &args.out)?;
        let data = fashion_splits(
            args.subset,
            args.data.as_deref(),
            args.limit,
            args.model.scaling(),
        )?;
        let mut results = Vec::new();
        for name in &args.optimizers {
            let spec = RunSpec {
                model: args.model,
                optimizer: name.clone(),
                lr: args.lr.unwrap_or_else(|| default_lr(name)),
                batch_size: args.batch_size,
                weight_decay: 0.0,
                epochs: args.epochs,
                seed: args.seed,
            };
            let r = run(&spec, &data)?;
            println!(
                "{:<10} lr {:<8.1e} test accuracy {:.4}",
                name, spec.lr, r.test_accuracy
            );
            results.push(r);
        }
        std::fs::create_dir_all(&args.out).map_err(|e| format!("{}: {e}", args.out.display()))?;
        let mut csv = String::from("optimizer,lr,epoch,train_loss,val_loss,val_accuracy\n");
        println!(
            "\n{:<10} {:>9} {:>11} {:>9} {:>9} {:>9} {:>8}",
            "optimizer", "lr", "train loss", "val loss", "val acc", "test acc", "seconds"
        );
        for r in &results {
            let last = r.history.records.last();
            let f = |g: fn(&chainrule_train::EpochRecord) -> f64| last.map_or(f64::NAN, g);
            println!(
                "{:<10} {:>9.1e} {:>11.4} {:>9.4} {:>9.4} {:>9.4} {:>8.1}",
                r.spec.optimizer,
                r.spec.lr,
                f(|e| e.train_loss),
                f(|e| e.val_loss),
                f(|e| e.val_accuracy),
                r.test_accuracy,
                r.history.records.iter().map(|e| e.seconds).sum::<f64>()
            );
            for e in &r.history.records {
                csv.push_str(&format!(
                    "{},{},{},{},{},{}\n",
                    r.spec.optimizer, r.spec.lr, e.epoch, e.train_loss, e.val_loss, e.val_accuracy
                ));
            }
        }
        let csv_path = args.out.join("compare.csv");
        write_atomically(&csv_path, csv.as_bytes())
            .map_err(|e| format!("{}: {e}", csv_path.display()))?;
        let series = |f: fn(&chainrule_train::EpochRecord) -> f64| -> Vec<Series> {
            results
                .iter()
                .map(|r| {
                    (
                        r.spec.optimizer.clone(),
                        r.history
                            .records
                            .iter()
                            .map(|e| (e.epoch as f64, f(e)))
                            .collect(),
                    )
                })
                .collect()
        };
        let png = args.out.join("compare.png");
        plot_curves(&png, &series(|e| e.train_loss), &series(|e| e.val_accuracy))?;
        println!(
            "\ncurves (training loss, validation accuracy) in {}",
            png.display()
        );
        Ok(())
    })();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("chainrule compare: {e}");
            ExitCode::from(2)
        }
    }
}

/// How `tune` chooses configurations.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Search {
    /// Independent draws: lr and weight decay log-uniform, batch size from the list.
    Random,
    /// Every combination of a log grid of lr, the batch sizes and a weight-decay grid.
    Grid,
}

/// Options of `chainrule tune`.
#[derive(clap::Args)]
pub struct TuneArgs {
    /// Random or grid search.
    #[arg(long, value_enum, default_value = "random")]
    search: Search,
    /// Random-search trials, 1 to 10,000 (grid search runs its whole grid).
    #[arg(long, default_value_t = 8, value_parser = |s: &str| flags::whole_in(s, 1, 10_000))]
    trials: usize,
    /// Trials run at the same time, 1 to 64.
    #[arg(long, default_value_t = 2, value_parser = |s: &str| flags::whole_in(s, 1, 64))]
    parallel: usize,
    /// The optimizer.
    #[arg(long, default_value = "adam")]
    optimizer: String,
    /// The network.
    #[arg(long, value_enum, default_value = "mlp")]
    model: ModelKind,
    /// Epochs per trial (≥ 1).
    #[arg(long, default_value_t = 3, value_parser = flags::at_least_one)]
    epochs: usize,
    /// Learning-rate range (log-uniform), low and high: finite, > 0, low ≤ high.
    #[arg(long, value_delimiter = ',', default_value = "1e-4,1e-2", value_parser = flags::positive)]
    lr_range: Vec<f64>,
    /// Batch sizes to choose from (each ≥ 1).
    #[arg(long, value_delimiter = ',', default_value = "64,128,256", value_parser = flags::at_least_one)]
    batch_sizes: Vec<usize>,
    /// Weight-decay range (log-uniform; a quarter of random trials use 0):
    /// finite, > 0, low ≤ high.
    #[arg(long, value_delimiter = ',', default_value = "1e-6,1e-3", value_parser = flags::positive)]
    wd_range: Vec<f64>,
    /// Seed of the search and of every trial's weights.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Use only the first N training images (N ≥ 12).
    #[arg(long, value_parser = flags::limit)]
    limit: Option<usize>,
    /// Use the embedded subset.
    #[arg(long)]
    subset: bool,
    /// Read Fashion-MNIST from this directory (overrides $CHAINRULE_DATA).
    #[arg(long, value_name = "DIR", conflicts_with = "subset")]
    data: Option<PathBuf>,
    /// Configurations to print (≥ 1).
    #[arg(long, default_value_t = 5, value_parser = flags::at_least_one)]
    top: usize,
}

fn log_uniform(rng: &mut impl Rng, lo: f64, hi: f64) -> f64 {
    (rng.gen_range(lo.ln()..=hi.ln())).exp()
}

pub fn tune(args: &TuneArgs) -> ExitCode {
    let result = (|| -> Result<(), String> {
        if !OPTIMIZER_NAMES.contains(&args.optimizer.as_str()) {
            return Err(format!("no optimizer called {:?}", args.optimizer));
        }
        for (flag, r) in [
            ("--lr-range", &args.lr_range),
            ("--wd-range", &args.wd_range),
        ] {
            if r.len() != 2 || r[0] > r[1] {
                return Err(format!(
                    "{flag} takes two values low,high with low ≤ high, got {r:?}"
                ));
            }
        }
        let data = fashion_splits(
            args.subset,
            args.data.as_deref(),
            args.limit,
            args.model.scaling(),
        )?;
        let base = RunSpec {
            model: args.model,
            optimizer: args.optimizer.clone(),
            lr: 0.0,
            batch_size: 0,
            weight_decay: 0.0,
            epochs: args.epochs,
            seed: args.seed,
        };
        let mut rng = StdRng::seed_from_u64(args.seed);
        let specs: Vec<RunSpec> = match args.search {
            Search::Random => (0..args.trials)
                .map(|_| RunSpec {
                    lr: log_uniform(&mut rng, args.lr_range[0], args.lr_range[1]),
                    batch_size: args.batch_sizes[rng.gen_range(0..args.batch_sizes.len())],
                    weight_decay: if rng.gen_bool(0.25) {
                        0.0
                    } else {
                        log_uniform(&mut rng, args.wd_range[0], args.wd_range[1])
                    },
                    ..base.clone()
                })
                .collect(),
            Search::Grid => {
                let steps = |lo: f64, hi: f64| -> Vec<f64> {
                    (0..3)
                        .map(|i| (lo.ln() + (hi.ln() - lo.ln()) * i as f64 / 2.0).exp())
                        .collect()
                };
                let mut v = Vec::new();
                for lr in steps(args.lr_range[0], args.lr_range[1]) {
                    for &b in &args.batch_sizes {
                        for wd in [0.0].into_iter().chain(
                            steps(args.wd_range[0], args.wd_range[1])
                                .into_iter()
                                .step_by(2),
                        ) {
                            v.push(RunSpec {
                                lr,
                                batch_size: b,
                                weight_decay: wd,
                                ..base.clone()
                            });
                        }
                    }
                }
                v
            }
        };
        println!(
            "{:?} search: {} trials of {} epochs, {} at a time",
            args.search,
            specs.len(),
            args.epochs,
            args.parallel
        );
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(args.parallel)
            .build()
            .map_err(|e| e.to_string())?;
        let mut results: Vec<RunResult> = pool.install(|| {
            specs
                .par_iter()
                .map(|s| run(s, &data))
                .collect::<Result<_, _>>()
        })?;
        let val_acc = |r: &RunResult| {
            r.history
                .records
                .last()
                .map_or(f64::NEG_INFINITY, |e| e.val_accuracy)
        };
        results.sort_by(|a, b| val_acc(b).total_cmp(&val_acc(a)));
        println!(
            "\n{:>4} {:>10} {:>6} {:>10} {:>9} {:>9}",
            "rank", "lr", "batch", "wd", "val acc", "test acc"
        );
        for (i, r) in results.iter().take(args.top).enumerate() {
            println!(
                "{:>4} {:>10.2e} {:>6} {:>10.2e} {:>9.4} {:>9.4}",
                i + 1,
                r.spec.lr,
                r.spec.batch_size,
                r.spec.weight_decay,
                val_acc(r),
                r.test_accuracy
            );
        }
        Ok(())
    })();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("chainrule tune: {e}");
            ExitCode::from(2)
        }
    }
}
