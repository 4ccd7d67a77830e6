//! `chainrule bench WORKLOAD`: one JSON line per run on stdout.

use chainrule::data::fashion::{self, FashionMnist};
use chainrule::data::DataError;
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
    /// 200 Adam steps (batch 64, after 5 warm-up steps) of the benchmark CNN on Fashion-MNIST.
    Cnn,
    /// Inspection of a 10,000-node graph (summary, backward trace, DOT), and `explain` of a 10,000-variable sum and of 10,000 nested minus signs.
    Inspect,
}

/// Options of `chainrule bench`.
#[derive(clap::Args)]
pub struct BenchArgs {
    /// Which workload.
    workload: Workload,
    /// Read Fashion-MNIST (mlp, cnn) from this directory (overrides $CHAINRULE_DATA).
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
}

/// Runs the workload and prints its JSON line; a dataset that cannot be
/// read exits with code 2.
pub fn run(args: &BenchArgs) -> ExitCode {
    let line = match args.workload {
        Workload::Tiny => Ok(tiny()),
        Workload::Matmul => Ok(matmul()),
        Workload::Conv => Ok(conv()),
        Workload::Mlp => fashion(args.data.as_deref()).map(mlp_epoch),
        Workload::Cnn => fashion(args.data.as_deref()).map(|d| cnn_steps(d.train)),
        Workload::Inspect => Ok(inspect()),
    };
    match line {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("chainrule bench: {e}");
            ExitCode::from(2)
        }
    }
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

/// One Adam step of `model` on a batch; returns the loss.
fn train_step(
    model: &Sequential<f32>,
    opt: &mut dyn Optimizer<f32>,
    batch: chainrule::data::Batch,
) -> f32 {
    let g = Graph::new();
    let logits = model.forward(&g, &g.input(batch.x));
    let loss = loss::try_cross_entropy(&logits, &batch.y, &ClassLossOptions::default())
        .expect("valid labels");
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
        loss_sum += train_step(&model, &mut opt, batch) as f64 * b as f64;
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

fn cnn_steps(train: chainrule::data::InMemory) -> serde_json::Value {
    use chainrule::data::{DataLoader, Regime};
    let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(0);
    let model = chainrule_cli::models::bench_cnn(&mut rng);
    let mut opt = adam_1e3(&model);
    // 205 batches of one shuffled epoch (938 batches of 64 in the full set).
    let batches: Vec<_> = DataLoader::new(&train, Regime::MiniBatch(64))
        .epoch(&mut rng)
        .take(205)
        .collect();
    let mut batches = batches.into_iter().cycle();
    for _ in 0..5 {
        train_step(&model, &mut opt, batches.next().expect("cycle"));
    }
    let t = Instant::now();
    for _ in 0..200 {
        train_step(&model, &mut opt, batches.next().expect("cycle"));
    }
    json!({
        "workload": "cnn",
        "steps": 200,
        "median_sec": t.elapsed().as_secs_f64(),
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
