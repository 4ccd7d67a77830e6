//! The `chainrule` command line.

use clap::{Parser, Subcommand};

/// mimalloc keeps freed pages for reuse. With the system allocator every
/// large tensor (an im2col buffer is tens of MB) is a fresh mmap whose pages
/// fault in on first touch: a third of a conv training step went to page
/// faults (perf), which mimalloc removes.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use std::process::ExitCode;

mod bench;
mod experiments;
mod explain;
mod gradcheck_cmd;
mod optbench;
mod train_cmd;

/// chainrule: define-by-run deep learning with higher-order autodiff.
#[derive(Parser)]
#[command(name = "chainrule", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train a CNN (or MLP) on Fashion-MNIST: progress, validation, checkpoints, test accuracy, confusion matrix, plots.
    Train(train_cmd::TrainArgs),
    /// Run a benchmark workload and print one JSON line.
    Bench {
        /// Which workload.
        workload: bench::Workload,
    },
    /// Run gradcheck and gradgradcheck over the op registry on random cases.
    Gradcheck(gradcheck_cmd::GradcheckArgs),
    /// Train the same model from the same initial weights with several optimizers; one chart, one table.
    Compare(experiments::CompareArgs),
    /// Random or grid search over learning rate, batch size and weight decay, trials in parallel.
    Tune(experiments::TuneArgs),
    /// Every optimizer on 2-D test functions (with gradient noise): a table, and paths drawn with --plot.
    Optbench(optbench::OptbenchArgs),
    /// Differentiate an expression step by step: forward values, the chain rule, gradients, Hessian.
    Explain(explain::ExplainArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Train(args) => train_cmd::run(&args),
        Command::Bench { workload } => bench::run(workload),
        Command::Gradcheck(args) => gradcheck_cmd::run(&args),
        Command::Explain(args) => explain::run(&args),
        Command::Optbench(args) => optbench::run(&args),
        Command::Compare(args) => experiments::compare(&args),
        Command::Tune(args) => experiments::tune(&args),
    }
}
