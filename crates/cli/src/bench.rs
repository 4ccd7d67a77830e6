//! `chainrule bench WORKLOAD`: one JSON line per run on stdout.
//!
//! Every line also carries the machine it was taken on ([`machine`]):
//! `cpu` (the model name of /proc/cpuinfo, or `"unknown"`), `simd` (the
//! features among avx512f, avx2 and fma detected at run time, joined by `+`,
//! or `"portable"`), `gemm_path` (the kernel matrixmultiply 0.3.11 selects
//! on this CPU), `threads` (rayon's pool) and `load_avg` (the 1-minute load
//! average read before the workload, or null).
//!
//! matrixmultiply's kernel can be forced, but only when it is compiled: it
//! reads `MMTEST_FEATURE` with `option_env!`, and when that is set and not
//! empty it uses only the comma-separated features listed (those the CPU
//! also has). Cargo tracks the variable and rebuilds matrixmultiply (and
//! this crate, whose `gemm_path` reads it the same way) when it changes:
//!
//! ```text
//! MMTEST_FEATURE=avx2,fma cargo build --release   # gemm_path "matrixmultiply fma-avx2"
//! MMTEST_FEATURE=avx cargo build --release        # "matrixmultiply avx"
//! MMTEST_FEATURE=none cargo build --release       # "matrixmultiply fallback"
//! ```
//!
//! Setting it when running the binary changes nothing. (matrixmultiply
//! 0.3.11 reads no `MMNO_*` variable, and `MATMUL_NUM_THREADS` only with its
//! `threading` feature, which the workspace does not enable.)

mod machine;

use crate::flags;
use chainrule::data::fashion::{self, FashionMnist};
use chainrule::data::transform::{Standardize, Transform};
use chainrule::data::{DataError, InMemory};
use chainrule::optim::optimizer_by_name;
use chainrule::prelude::*;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

/// The benchmark workloads.
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum Workload {
    /// 100,000 scalar ops (x = x*a, x = x+b, x = tanh(x), ...) then backward: per-op overhead.
    Tiny,
    /// 1024x1024 @ 1024x1024 f32 forward and backward of sum(): GEMM throughput.
    Matmul,
    /// A batch of 64 28x28 images through Conv2d(1,32,3,pad 1), ReLU, Conv2d(32,64,3,pad 1), mean; forward and backward.
    Conv,
    /// One shuffled epoch of MLP 784-512-256-10 (ReLU, Adam 1e-3, batch 128) over Fashion-MNIST's 60,000 images.
    Mlp,
    /// 200 Adam steps (batch 64, after 5 warm-up steps) of the benchmark CNN on Fashion-MNIST; its `median_sec` is the total seconds of the 200 steps (the name is kept for old scripts).
    Cnn,
    /// 200 steps (batch 64, after 5 warm-up steps) of the CNN `chainrule train` builds by default, with its defaults (dropout 0.3, Adam 1e-3, label smoothing 0.1, global standardization): total_sec, ms_per_step, final_loss.
    CnnTrain,
    /// Inspection of a 10,000-node graph (summary, backward trace, DOT), and `explain` of a 10,000-variable sum and of 10,000 nested minus signs.
    Inspect,
}

/// Options of `chainrule bench`.
#[derive(clap::Args)]
pub struct BenchArgs {
    /// Which workload.
    ///
    /// Every JSON line also names the machine: cpu, simd (features detected
    /// at run time), gemm_path (matrixmultiply's kernel on this CPU), threads
    /// and load_avg (before the run). matrixmultiply's kernel can be forced
    /// only when building, e.g. `MMTEST_FEATURE=avx2,fma cargo build
    /// --release` (`avx` or `none` for the others); at run time it has no effect.
    workload: Workload,
    /// Read Fashion-MNIST (mlp, cnn, cnn-train) from this directory (overrides $CHAINRULE_DATA).
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
    /// Timed steps of cnn and cnn-train, ≥ 1 (default 200; fewer for a quick check, not a figure).
    #[arg(long, value_parser = flags::at_least_one)]
    steps: Option<usize>,
}

/// Timed steps of `cnn` and `cnn-train` unless `--steps` says otherwise.
const DEFAULT_STEPS: usize = 200;

/// Untimed steps before the timed ones (first-touch allocations, caches).
const WARM_UP_STEPS: usize = 5;

/// Runs the workload and prints its JSON line, with the machine's fields
/// ([`machine::annotate`]); a dataset that cannot be read, or `--steps`
/// given to a workload without steps, exits with code 2.
pub fn run(args: &BenchArgs) -> ExitCode {
    let load = machine::load_avg();
    match workload_line(args) {
        Ok(mut line) => {
            machine::annotate(&mut line, load);
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("chainrule bench: {e}");
            ExitCode::from(2)
        }
    }
}

/// The workload's JSON object, or the error that stopped it.
fn workload_line(args: &BenchArgs) -> Result<serde_json::Value, String> {
    let steps = match (args.workload, args.steps) {
        (Workload::Cnn | Workload::CnnTrain, steps) => steps.unwrap_or(DEFAULT_STEPS),
        (_, Some(_)) => return Err("--steps applies only to cnn and cnn-train".into()),
        (_, None) => 0,
    };
    let data = || fashion(args.data.as_deref()).map_err(|e| e.to_string());
    Ok(match args.workload {
        Workload::Tiny => tiny(),
        Workload::Matmul => matmul(),
        Workload::Conv => conv(),
        Workload::Mlp => mlp_epoch(data()?),
        Workload::Cnn => cnn_steps(data()?.train, steps),
        Workload::CnnTrain => cnn_train(data()?.train, steps),
        Workload::Inspect => inspect(),
    })
}

/// Peak resident set size of this process in MiB (VmHWM), or 0 where unavailable.
pub fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

const TINY_OPS: usize = 100_000;

/// One forward+backward of the tiny workload; returns (x, a_grad, b_grad).
fn tiny_once() -> (f32, f32, f32) {
    let g = Graph::<f32>::new();
    let a = g.leaf(Tensor::scalar(0.5));
    let b = g.leaf(Tensor::scalar(0.5));
    let mut x = Var::constant(Tensor::scalar(0.1f32));
    for i in 0..TINY_OPS {
        x = match i % 3 {
            0 => &x * &a,
            1 => &x + &b,
            _ => x.tanh(),
        };
    }
    x.backward();
    (x.item(), a.grad().unwrap().item(), b.grad().unwrap().item())
}

fn tiny() -> serde_json::Value {
    let _warm = tiny_once();
    let mut times = Vec::new();
    let mut values = (0.0, 0.0, 0.0);
    for _ in 0..5 {
        let t = Instant::now();
        values = tiny_once();
        times.push(t.elapsed().as_secs_f64());
    }
    let total = median(times);
    json!({
        "workload": "tiny",
        "ops": TINY_OPS,
        "total_sec": total,
        "ns_per_op": total * 1e9 / TINY_OPS as f64,
        "peak_rss_mib": peak_rss_mib(),
        "values": { "x": values.0, "a_grad": values.1, "b_grad": values.2 },
    })
}

fn matmul() -> serde_json::Value {
    const N: usize = 1024;
    let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(0);
    let a0 = Tensor::<f32>::randn([N, N], &mut rng);
    let b0 = Tensor::<f32>::randn([N, N], &mut rng);
    let mut totals = Vec::new();
    let mut forwards = Vec::new();
    for rep in 0..23 {
        let t = Instant::now();
        let g = Graph::<f32>::new();
        let a = g.leaf(a0.clone());
        let b = g.leaf(b0.clone());
        let c = a.matmul(&b);
        let forward = t.elapsed().as_secs_f64();
        c.sum_all().backward();
        let total = t.elapsed().as_secs_f64();
        assert_eq!(a.grad().unwrap().shape(), &[N, N]);
        if rep >= 3 {
            totals.push(total);
            forwards.push(forward);
        }
    }
    let flop = 2.0 * (N as f64).powi(3);
    let (total, forward) = (median(totals), median(forwards));
    json!({
        "workload": "matmul",
        "n": N,
        "median_sec": total,
        "gflops": 3.0 * flop / total / 1e9,
        "forward_gflops": flop / forward / 1e9,
        "peak_rss_mib": peak_rss_mib(),
    })
}

fn conv() -> serde_json::Value {
    use chainrule::ops::{conv2d, Conv2dOptions};
    let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(0);
    let x0 = Tensor::<f32>::randn([64, 1, 28, 28], &mut rng);
    let bound = |fan_in: f64| 1.0 / fan_in.sqrt();
    let w1 = Tensor::<f32>::rand_uniform([32, 1, 3, 3], -bound(9.0), bound(9.0), &mut rng);
    let b1 = Tensor::<f32>::rand_uniform([32], -bound(9.0), bound(9.0), &mut rng);
    let w2 = Tensor::<f32>::rand_uniform([64, 32, 3, 3], -bound(288.0), bound(288.0), &mut rng);
    let b2 = Tensor::<f32>::rand_uniform([64], -bound(288.0), bound(288.0), &mut rng);
    let mut times = Vec::new();
    for rep in 0..13 {
        let t = Instant::now();
        let g = Graph::<f32>::new();
        let x = Var::constant(x0.clone());
        let params = [&w1, &b1, &w2, &b2].map(|p| g.leaf(p.clone()));
        let same = Conv2dOptions::default().padding(1);
        let h = conv2d(&x, &params[0], Some(&params[1]), same).relu();
        let y = conv2d(&h, &params[2], Some(&params[3]), same);
        y.mean_all().backward();
        assert_eq!(params[2].grad().unwrap().shape(), &[64, 32, 3, 3]);
        if rep >= 3 {
            times.push(t.elapsed().as_secs_f64());
        }
    }
    json!({
        "workload": "conv",
        "batch": 64,
        "median_sec": median(times),
        "peak_rss_mib": peak_rss_mib(),
    })
}

/// Fashion-MNIST from `--data`, `$CHAINRULE_DATA`, or the system dataset
/// or embedded subset, with its notice on stderr.
fn fashion(data: Option<&Path>) -> Result<FashionMnist, DataError> {
    let data = fashion::load_dir(&fashion::DataDir::from_env(false, data)?)?;
    eprintln!("{}", data.notice());
    Ok(data)
}

/// One optimizer step of `model` on a batch with the cross-entropy of
/// `options`; returns the loss.
fn train_step(
    model: &Sequential<f32>,
    opt: &mut dyn Optimizer<f32>,
    options: &ClassLossOptions<f32>,
    batch: chainrule::data::Batch,
) -> f32 {
    let g = Graph::new();
    let logits = model.forward(&g, &g.input(batch.x));
    let loss = loss::try_cross_entropy(&logits, &batch.y, options).expect("valid labels");
    loss.backward();
    opt.step().expect("finite gradients");
    opt.zero_grad();
    loss.item()
}

/// Adam with lr 1e-3 (the benchmarks' optimizer) over the model's parameters.
fn adam_1e3(model: &Sequential<f32>) -> Adam<f32> {
    Adam::new(
        model.parameters(),
        AdamConfig {
            lr: 1e-3,
            ..Default::default()
        },
    )
    .expect("valid")
}

fn mlp_epoch(data: FashionMnist) -> serde_json::Value {
    use chainrule::data::{DataLoader, Regime};
    let FashionMnist { train, test, .. } = data;
    let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(0);
    let model = chainrule_cli::models::bench_mlp(&mut rng);
    let mut opt = adam_1e3(&model);
    let t = Instant::now();
    let (mut loss_sum, mut n) = (0.0f64, 0usize);
    for batch in DataLoader::new(&train, Regime::MiniBatch(128)).epoch(&mut rng) {
        let b = batch.y.len();
        let loss = train_step(&model, &mut opt, &ClassLossOptions::default(), batch);
        loss_sum += loss as f64 * b as f64;
        n += b;
    }
    let epoch_sec = t.elapsed().as_secs_f64();
    let eval = chainrule_train::metrics::evaluate(&model, &test, 1000)
        .expect("the bench MLP scores Fashion-MNIST's 10 classes");
    json!({
        "workload": "mlp",
        "images": n,
        "epoch_sec": epoch_sec,
        "train_loss": loss_sum / n as f64,
        "test_accuracy": eval.accuracy,
        "peak_rss_mib": peak_rss_mib(),
    })
}

/// [`WARM_UP_STEPS`] untimed then `steps` timed optimizer steps of `model`
/// on mini-batches of 64 from one shuffled epoch of `train` (938 batches in
/// the full set, reused in turn if more are needed). Returns the seconds of
/// the timed steps and the last step's loss.
fn timed_steps(
    model: &Sequential<f32>,
    opt: &mut dyn Optimizer<f32>,
    options: &ClassLossOptions<f32>,
    train: &InMemory,
    steps: usize,
    rng: &mut rand::rngs::StdRng,
) -> (f64, f32) {
    use chainrule::data::{DataLoader, Regime};
    let batches: Vec<_> = DataLoader::new(train, Regime::MiniBatch(64))
        .epoch(rng)
        .take(steps.saturating_add(WARM_UP_STEPS))
        .collect();
    let mut batches = batches.into_iter().cycle();
    let mut next = || batches.next().expect("a non-empty training set");
    for _ in 0..WARM_UP_STEPS {
        train_step(model, opt, options, next());
    }
    let t = Instant::now();
    let mut loss = f32::NAN;
    for _ in 0..steps {
        loss = train_step(model, opt, options, next());
    }
    (t.elapsed().as_secs_f64(), loss)
}

/// `bench cnn`: the benchmark CNN ([`chainrule_cli::models::bench_cnn`]),
/// Adam 1e-3, images in [0, 1]. `median_sec` is the total of the timed
/// steps, not a median (the key is kept for the scripts that read it).
fn cnn_steps(train: InMemory, steps: usize) -> serde_json::Value {
    let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(0);
    let model = chainrule_cli::models::bench_cnn(&mut rng);
    let mut opt = adam_1e3(&model);
    let options = ClassLossOptions::default();
    let (total, _) = timed_steps(&model, &mut opt, &options, &train, steps, &mut rng);
    json!({
        "workload": "cnn",
        "steps": steps,
        "median_sec": total,
        "peak_rss_mib": peak_rss_mib(),
    })
}

// `chainrule train`'s defaults for its CNN (train_cmd.rs: the flags'
// defaults and the per-model ones in `train`); the batch, 64, is
// `timed_steps`'s.
/// `train --dropout`'s default.
const TRAIN_DROPOUT: f64 = 0.3;
/// `train --optimizer`'s default (with no `--lr`: PyTorch's 1e-3).
const TRAIN_OPTIMIZER: &str = "adam";
/// `train --seed`'s default.
const TRAIN_SEED: u64 = 0;
/// `train`'s label smoothing for the CNN.
const TRAIN_LABEL_SMOOTHING: f64 = 0.1;

/// `bench cnn-train`: the main job's model as `chainrule train` builds it
/// by default ([`chainrule_cli::models::cnn`]: conv-BatchNorm-ReLU-pool ×2,
/// dropout, 3136-256-10), in training mode, with its optimizer, label
/// smoothing and batch (64), on images standardized by the training set's
/// global mean and deviation as `train` does (fitted here on all 60,000;
/// `train` holds 5,000 out first). `train`'s cosine schedule is left out: it
/// changes the rate by under 0.1% in 205 of its 12,040 steps.
///
/// Fields: `total_sec` (seconds of the `steps` timed steps), `ms_per_step`,
/// `final_loss` (the last step's), `peak_rss_mib`.
fn cnn_train(mut train: InMemory, steps: usize) -> serde_json::Value {
    Standardize::fit_global(&train).apply(&mut train);
    let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(TRAIN_SEED);
    let model = chainrule_cli::models::cnn(TRAIN_DROPOUT, TRAIN_SEED, &mut rng);
    let mut opt = optimizer_by_name(TRAIN_OPTIMIZER, model.parameters(), None)
        .expect("adam is a known optimizer");
    let options = ClassLossOptions {
        label_smoothing: TRAIN_LABEL_SMOOTHING,
        ..Default::default()
    };
    let (total, loss) = timed_steps(&model, opt.as_mut(), &options, &train, steps, &mut rng);
    json!({
        "workload": "cnn-train",
        "steps": steps,
        "total_sec": total,
        "ms_per_step": total * 1e3 / steps as f64,
        "final_loss": loss,
        "peak_rss_mib": peak_rss_mib(),
    })
}

/// The median seconds of three runs of `f`, and the last run's result.
fn median_of_three<R>(mut f: impl FnMut() -> R) -> (f64, R) {
    let mut times = Vec::new();
    let mut result = None;
    for _ in 0..3 {
        let t = Instant::now();
        result = Some(f());
        times.push(t.elapsed().as_secs_f64());
    }
    (median(times), result.expect("three runs"))
}

/// `chainrule explain`'s library path on `expression` with every variable at 1.
fn explain_at_ones(expression: &str, names: &[String]) -> usize {
    use chainrule_cli::explain::{explain, Request};
    let values: Vec<String> = names.iter().map(|n| format!("{n}=1")).collect();
    let request = Request {
        expression,
        values: &values,
        hessian: false,
        dot: true,
    };
    let e = explain(&request).expect("a valid expression");
    e.text.len() + e.dot.map_or(0, |d| d.len())
}

/// Inspection of large graphs: every stage must stay near-linear.
fn inspect() -> serde_json::Value {
    const LEAVES: usize = 5_000;
    let g = Graph::<f64>::new();
    g.retain_grads(true);
    let xs: Vec<Var<f64>> = (0..LEAVES)
        .map(|i| g.named_leaf(format!("x{i}"), Tensor::scalar(1.0 / (1 + i) as f64)))
        .collect();
    let mut sum = xs[0].clone();
    for x in &xs[1..] {
        sum = &sum + x;
    }
    // 5,000 leaves, 4,999 additions and a tanh: 10,000 nodes.
    let y = sum.tanh();
    let (trace_sec, trace) =
        median_of_three(|| g.trace(&y, None).expect("a scalar output").to_string());
    y.backward();
    let (summary_sec, summary) = median_of_three(|| g.summary());
    let (dot_sec, dot) = median_of_three(|| g.to_dot());
    let names: Vec<String> = (0..10_000).map(|i| format!("x{i}")).collect();
    let sum_text = names.join("+");
    let (explain_sum_sec, sum_bytes) = median_of_three(|| explain_at_ones(&sum_text, &names));
    let minus_text = "-".repeat(10_000) + "x";
    let x = ["x".to_string()];
    let (explain_minus_sec, minus_bytes) = median_of_three(|| explain_at_ones(&minus_text, &x));
    json!({
        "workload": "inspect",
        "graph_nodes": 2 * LEAVES,
        "summary_sec": summary_sec,
        "trace_sec": trace_sec,
        "dot_sec": dot_sec,
        "explain_sum_10000_sec": explain_sum_sec,
        "explain_minus_10000_sec": explain_minus_sec,
        "output_bytes": {
            "summary": summary.len(),
            "trace": trace.len(),
            "dot": dot.len(),
            "explain_sum_10000": sum_bytes,
            "explain_minus_10000": minus_bytes,
        },
        "x0_grad": xs[0].grad().expect("a leaf of y").item(),
        "peak_rss_mib": peak_rss_mib(),
    })
}
