//! `chainrule optbench`: every optimizer on classic 2-D test functions, with
//! and without gradient noise (Schaul, Antonoglou & Silver 2014, "Unit tests
//! for stochastic optimization"), as a table and optionally a plot.
//!
//! Each (optimizer, function, noise) cell runs with every learning rate of a
//! log grid and reports the best run: first by steps to come within 1e-4 of
//! an optimum, then by final distance. The saddle x² − y² has no optimum; its
//! cells report the final f and the steps taken to escape (|y| ≥ 1).

mod plot;
pub mod problems;

use chainrule::optim::{
    optimizer_by_name, Lbfgs, LbfgsConfig, LevenbergMarquardt, LineSearchFn, LmConfig,
    OPTIMIZER_NAMES,
};
use chainrule::prelude::*;
use problems::{problems, Problem};
use rand::rngs::StdRng;
use rand::SeedableRng;
use rand_distr::{Distribution, Normal};
use rayon::prelude::*;
use std::path::PathBuf;
use std::process::ExitCode;

/// Gradient noise, as in Schaul et al. 2014.
#[derive(Clone, Copy, Debug, PartialEq, clap::ValueEnum)]
pub enum Noise {
    /// Exact gradients.
    None,
    /// g + σ·ε, ε ~ N(0, 1) per component.
    Additive,
    /// g·(1 + σ·ε), ε ~ N(0, 1) per component.
    Multiplicative,
}

/// Arguments of `chainrule optbench`.
#[derive(clap::Args)]
pub struct OptbenchArgs {
    /// Optimizers (comma-separated); also `lbfgs` (strong-Wolfe) and `lm` (Levenberg–Marquardt).
    #[arg(long, value_delimiter = ',')]
    optimizers: Vec<String>,
    /// Test functions (comma-separated): rosenbrock, beale, booth, himmelblau, saddle, rastrigin.
    #[arg(long, value_delimiter = ',')]
    functions: Vec<String>,
    /// Noise settings to run.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "none,additive,multiplicative"
    )]
    noise: Vec<Noise>,
    /// Steps per run (≥ 1).
    #[arg(long, default_value_t = 2000, value_parser = crate::flags::at_least_one)]
    steps: usize,
    /// σ of the additive noise (finite, ≥ 0).
    #[arg(long, default_value_t = 0.1, value_parser = crate::flags::non_negative)]
    additive_sigma: f64,
    /// σ of the multiplicative noise (finite, ≥ 0).
    #[arg(long, default_value_t = 0.5, value_parser = crate::flags::non_negative)]
    multiplicative_sigma: f64,
    /// Seed of the noise.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Draw the noise-free paths over each function's contour lines to this PNG.
    #[arg(long)]
    plot: Option<PathBuf>,
}

/// Learning rates tried for every optimizer (a log grid).
const LR_GRID: [f64; 6] = [1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0];
/// Distance to an optimum that counts as solved.
const TARGET: f64 = 1e-4;

/// The result of one optimizer on one function.
pub struct Outcome {
    /// Optimizer name.
    pub optimizer: String,
    /// Function name.
    pub problem: &'static str,
    /// Noise setting.
    pub noise: Noise,
    /// Learning rate used (NaN where there is none, as for LM).
    pub lr: f64,
    /// Points visited, the start first.
    pub path: Vec<(f64, f64)>,
    /// Steps after which the run stays within TARGET of an optimum (saddle:
    /// the first step with |y| ≥ 1); None if it ends outside.
    pub steps_to_target: Option<usize>,
    /// Largest distance to the nearest optimum over the last 5 % of the
    /// steps (saddle: f at the end).
    pub final_score: f64,
}

impl Outcome {
    fn rank(&self) -> (usize, f64) {
        let score = if self.final_score.is_nan() {
            f64::INFINITY
        } else {
            self.final_score
        };
        (self.steps_to_target.unwrap_or(usize::MAX), score)
    }
}

struct Cell<'a> {
    problem: &'a Problem,
    optimizer: &'a str,
    noise: Noise,
    lr: f64,
    seed: u64,
}

fn perturb(g: &mut [f64], noise: Noise, args: &OptbenchArgs, rng: &mut StdRng) {
    let eps = Normal::new(0.0, 1.0).expect("unit normal");
    for v in g {
        match noise {
            Noise::None => {}
            Noise::Additive => *v += args.additive_sigma * eps.sample(rng),
            Noise::Multiplicative => *v *= 1.0 + args.multiplicative_sigma * eps.sample(rng),
        }
    }
}

/// f at the parameters, backpropagated, with noise added to the gradients.
fn evaluate(
    cell: &Cell,
    px: &Parameter<f64>,
    py: &Parameter<f64>,
    args: &OptbenchArgs,
    rng: &mut StdRng,
) -> f64 {
    px.zero_grad();
    py.zero_grad();
    let g = Graph::new();
    let f = (cell.problem.f)(&g.param(px), &g.param(py));
    f.backward();
    let mut grads = [px, py].map(|p| p.grad().map_or(0.0, |t| t.item()));
    perturb(&mut grads, cell.noise, args, rng);
    px.set_grad(Some(Tensor::scalar(grads[0])));
    py.set_grad(Some(Tensor::scalar(grads[1])));
    f.item()
}

/// Stacks scalar residuals into a vector as Σ eᵢ·rᵢ (one-hot constants).
fn stack_residuals(r: Vec<Var<f64>>) -> Var<f64> {
    let n = r.len();
    r.into_iter()
        .enumerate()
        .map(|(i, ri)| ri * Var::constant(Tensor::from_fn([n], |k| if k == i { 1.0 } else { 0.0 })))
        .reduce(|a, b| a + b)
        .expect("at least one residual")
}

fn run_cell(cell: &Cell, args: &OptbenchArgs) -> Outcome {
    let p = cell.problem;
    let px = Parameter::new(Tensor::scalar(p.start.0));
    let py = Parameter::new(Tensor::scalar(p.start.1));
    let mut rng = StdRng::seed_from_u64(cell.seed);
    let mut path = vec![p.start];
    let mut steps_to_target = None;
    let mut last_outside = 0;
    let here = || (px.value().item(), py.value().item());
    let reached = |(x, y): (f64, f64)| {
        if p.optima.is_empty() {
            y.abs() >= 1.0
        } else {
            p.distance(x, y) <= TARGET
        }
    };
    let mut stepper: Box<dyn FnMut(&mut StdRng) -> bool> = match cell.optimizer {
        "lm" => {
            let mut lm = LevenbergMarquardt::new(vec![px.clone(), py.clone()], LmConfig::default())
                .expect("default LM settings are valid");
            let residuals = p.residuals.expect("lm runs only on sums of squares");
            Box::new(move |_| {
                lm.step(|v| stack_residuals(residuals(&v[0], &v[1])))
                    .is_ok()
            })
        }
        "lbfgs" => {
            let config = LbfgsConfig {
                lr: cell.lr,
                max_iter: 1,
                line_search_fn: Some(LineSearchFn::StrongWolfe),
                ..Default::default()
            };
            let mut opt =
                Lbfgs::new(vec![px.clone(), py.clone()], config).expect("valid LBFGS settings");
            let (px, py) = (px.clone(), py.clone());
            Box::new(move |rng| opt.step(|| Ok(evaluate(cell, &px, &py, args, rng))).is_ok())
        }
        name => {
            let mut opt = optimizer_by_name(name, vec![px.clone(), py.clone()], Some(cell.lr))
                .expect("names are checked before running");
            let (px, py) = (px.clone(), py.clone());
            Box::new(move |rng| {
                evaluate(cell, &px, &py, args, rng);
                opt.step().is_ok()
            })
        }
    };
    for step in 1..=args.steps {
        if !stepper(&mut rng) {
            break;
        }
        let point = here();
        path.push(point);
        if !(point.0.is_finite() && point.1.is_finite()) {
            break;
        }
        if !reached(point) {
            last_outside = step;
        } else if p.optima.is_empty() && steps_to_target.is_none() {
            steps_to_target = Some(step);
        }
    }
    let last = *path.last().expect("the start is on the path");
    if !p.optima.is_empty() && reached(last) {
        steps_to_target = Some(last_outside + 1);
    }
    let final_score = if p.optima.is_empty() {
        let v = p.value(last.0, last.1);
        if v.is_finite() {
            v
        } else {
            f64::NEG_INFINITY
        }
    } else {
        // The worst distance over the last 5 % of the path, so that a run
        // oscillating through the optimum does not look converged.
        let tail = (path.len() / 20).max(1);
        path[path.len() - tail..]
            .iter()
            .map(|&(x, y)| p.distance(x, y))
            .fold(
                0.0,
                |m: f64, d| if d.is_nan() { f64::NAN } else { m.max(d) },
            )
    };
    if !p.optima.is_empty() && final_score > TARGET {
        steps_to_target = None;
    }
    Outcome {
        optimizer: cell.optimizer.to_string(),
        problem: p.name,
        noise: cell.noise,
        lr: cell.lr,
        path,
        steps_to_target,
        final_score,
    }
}

fn selected<'a>(
    asked: &'a [String],
    all: Vec<&'a str>,
    what: &str,
) -> Result<Vec<&'a str>, String> {
    if asked.is_empty() {
        return Ok(all);
    }
    for a in asked {
        if !all.contains(&a.as_str()) {
            return Err(format!(
                "optbench: no {what} called {a:?}; known: {}",
                all.join(", ")
            ));
        }
    }
    Ok(asked.iter().map(String::as_str).collect())
}

fn format_cell(o: Option<&Outcome>) -> String {
    match o {
        None => format!("{:^15}", "—"),
        Some(o) => {
            let steps = o.steps_to_target.map_or("—".to_string(), |s| s.to_string());
            format!("{:>9.2e} {:>5}", o.final_score, steps)
        }
    }
}

fn print_table(noise: Noise, problems: &[&Problem], optimizers: &[&str], best: &[Outcome]) {
    println!("\nnoise: {noise:?} — each cell: distance to the nearest optimum at the end (worst of the last 5% of steps; saddle: final f), steps after which it stays within {TARGET:e} (saddle: to escape, |y| ≥ 1); best lr of {LR_GRID:?}");
    print!("{:<10}", "optimizer");
    for p in problems {
        print!(" | {:^15}", p.name);
    }
    println!(" | best lr per function");
    for name in optimizers {
        let ran = |o: &&Outcome| o.noise == noise && o.optimizer == *name;
        if !best.iter().any(|o| ran(&o)) {
            continue;
        }
        print!("{name:<10}");
        let mut lrs = Vec::new();
        for p in problems {
            let o = best
                .iter()
                .find(|o| o.noise == noise && o.problem == p.name && o.optimizer == *name);
            print!(" | {}", format_cell(o));
            lrs.push(o.map_or("—".to_string(), |o| {
                if o.lr.is_nan() {
                    "·".into()
                } else {
                    format!("{:e}", o.lr)
                }
            }));
        }
        println!(" | {}", lrs.join(" "));
    }
}

/// Runs the benchmark and prints the tables.
pub fn run(args: &OptbenchArgs) -> ExitCode {
    let all_problems = problems();
    let mut known: Vec<&str> = OPTIMIZER_NAMES.to_vec();
    known.extend(["lbfgs", "lm"]);
    let names = match selected(&args.optimizers, known, "optimizer") {
        Ok(n) => n,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let chosen = match selected(
        &args.functions,
        all_problems.iter().map(|p| p.name).collect(),
        "function",
    ) {
        Ok(n) => n,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    if let Some(Err(e)) = args
        .plot
        .as_deref()
        .map(|p| crate::flags::check_output_file("--plot", p))
    {
        eprintln!("chainrule optbench: {e}");
        return ExitCode::from(2);
    }
    let chosen: Vec<&Problem> = all_problems
        .iter()
        .filter(|p| chosen.contains(&p.name))
        .collect();
    let mut cells = Vec::new();
    for (ni, &noise) in args.noise.iter().enumerate() {
        for (pi, p) in chosen.iter().enumerate() {
            for name in &names {
                // LM needs residuals and exact Jacobians; L-BFGS and LM have no lr grid.
                if *name == "lm" && (p.residuals.is_none() || noise != Noise::None) {
                    continue;
                }
                let grid: &[f64] = match *name {
                    "lm" => &[f64::NAN],
                    "lbfgs" => &[1.0],
                    _ => &LR_GRID,
                };
                for &lr in grid {
                    let seed =
                        args.seed ^ ((ni * 1000 + pi) as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
                    cells.push(Cell {
                        problem: p,
                        optimizer: name,
                        noise,
                        lr,
                        seed,
                    });
                }
            }
        }
    }
    let outcomes: Vec<Outcome> = cells.par_iter().map(|c| run_cell(c, args)).collect();
    let mut best: Vec<Outcome> = Vec::new();
    for o in outcomes {
        match best
            .iter_mut()
            .find(|b| b.noise == o.noise && b.problem == o.problem && b.optimizer == o.optimizer)
        {
            Some(b)
                if o.rank().0 < b.rank().0
                    || (o.rank().0 == b.rank().0 && o.rank().1 < b.rank().1) =>
            {
                *b = o
            }
            Some(_) => {}
            None => best.push(o),
        }
    }
    println!(
        "optbench: {} steps per run, {} runs",
        args.steps,
        cells.len()
    );
    for &noise in &args.noise {
        print_table(noise, &chosen, &names, &best);
    }
    if let Some(path) = &args.plot {
        let problems: Vec<Problem> = problems()
            .into_iter()
            .filter(|p| chosen.iter().any(|c| c.name == p.name))
            .collect();
        let clean: Vec<Outcome> = best
            .into_iter()
            .filter(|o| o.noise == Noise::None)
            .collect();
        let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        if let Err(e) = plot::draw(path, &problems, &clean, &names) {
            eprintln!("optbench: could not draw the plot: {e}");
            return ExitCode::FAILURE;
        }
        println!("\npaths drawn to {}", path.display());
    }
    ExitCode::SUCCESS
}
