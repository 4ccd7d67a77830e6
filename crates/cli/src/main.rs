//! The `chainrule` command line.

use chainrule_cli::explain;
use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// mimalloc keeps freed pages for reuse. With the system allocator every
/// large tensor (an im2col buffer is tens of MB) is a fresh mmap whose pages
/// fault in on first touch: a third of a conv training step went to page
/// faults (perf), which mimalloc removes.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay`: position 15 of `mi_option_e` in mimalloc.h (the
/// same in mimalloc v2 and v3; libmimalloc-sys leaves it unnamed).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Tells mimalloc never to return freed memory to the OS (purge delay -1).
///
/// By default it purges pages freed for 10 ms. A training step frees its
/// tensors and allocates the same sizes again a few milliseconds later, so
/// purged pages came back as fresh transparent huge pages that the kernel
/// zeroes on first touch: 2,000–3,200 page faults per `bench mlp` epoch,
/// with `clear_page_erms` at 18% of its samples. Kept, there are 23, and
/// memory stays at its high-water mark, which a training loop reaches in
/// its first steps anyway.
fn keep_freed_pages() {
    // SAFETY: mi_option_set only writes an option value; it is not thread
    // safe, and this runs first in `main`, before any thread is spawned.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) };
}

mod bench;
mod experiments;
mod flags;
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
    Bench(bench::BenchArgs),
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
    keep_freed_pages();
    let cli = Cli::parse();
    match cli.command {
        Command::Train(args) => train_cmd::run(&args),
        Command::Bench(args) => bench::run(&args),
        Command::Gradcheck(args) => gradcheck_cmd::run(&args),
        Command::Explain(args) => explain::run(&args),
        Command::Optbench(args) => optbench::run(&args),
        Command::Compare(args) => experiments::compare(&args),
        Command::Tune(args) => experiments::tune(&args),
    }
}
