//! `chainrule gradcheck`: first- and second-order checks over the op registry.

use chainrule::ops::registry::{registry, OpCase};
use chainrule::tape::{
    try_gradcheck_with, try_gradgradcheck_with, GradcheckOptions, GradcheckReport,
};
use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::TestRunner;
use std::process::ExitCode;

/// Options of `chainrule gradcheck`.
#[derive(clap::Args)]
pub struct GradcheckArgs {
    /// Only cases whose name, or one of whose ops, is NAME.
    #[arg(long, value_name = "NAME")]
    op: Option<String>,
    /// Random cases per registry entry (≥ 1).
    #[arg(long, default_value_t = 20, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    cases: u32,
}

struct Row {
    name: &'static str,
    cases: u32,
    max_abs: f64,
    max_rel: f64,
    first: bool,
    second: bool,
    first_failure: Option<String>,
}

fn check(case: &OpCase, n: u32) -> Row {
    let mut runner = TestRunner::deterministic();
    let options = GradcheckOptions::default();
    let mut row = Row {
        name: case.name,
        cases: 0,
        max_abs: 0.0,
        max_rel: 0.0,
        first: true,
        second: true,
        first_failure: None,
    };
    let mut note = |r: &GradcheckReport, ok: &mut bool, failure: &mut Option<String>| {
        row.max_abs = row.max_abs.max(r.max_abs_error());
        row.max_rel = row.max_rel.max(r.max_rel_error());
        if !r.passed() {
            *ok = false;
            failure.get_or_insert_with(|| r.to_string());
        }
    };
    let (mut first, mut second, mut failure) = (true, true, None);
    for _ in 0..n {
        let inputs = match (case.strategy)().new_tree(&mut runner) {
            Ok(tree) => tree.current(),
            Err(e) => {
                failure = Some(format!("could not sample inputs: {e}"));
                first = false;
                break;
            }
        };
        note(
            &try_gradcheck_with(case.apply, &inputs, options),
            &mut first,
            &mut failure,
        );
        note(
            &try_gradgradcheck_with(case.apply, &inputs, options),
            &mut second,
            &mut failure,
        );
        row.cases += 1;
    }
    row.first = first;
    row.second = second;
    row.first_failure = failure;
    row
}

pub fn run(args: &GradcheckArgs) -> ExitCode {
    let selected: Vec<OpCase> = registry()
        .into_iter()
        .filter(|c| {
            args.op
                .as_deref()
                .is_none_or(|n| c.name == n || c.ops.contains(&n))
        })
        .collect();
    if selected.is_empty() {
        eprintln!(
            "chainrule gradcheck: no registry case matches --op {}",
            args.op.as_deref().unwrap_or("")
        );
        return ExitCode::from(2);
    }
    println!(
        "{:<40} {:>5} {:>12} {:>12} {:>7} {:>7}",
        "op", "cases", "max abs err", "max rel err", "1st", "2nd"
    );
    let mut failed = Vec::new();
    for case in &selected {
        let row = check(case, args.cases);
        let verdict = |ok: bool| if ok { "pass" } else { "FAIL" };
        println!(
            "{:<40} {:>5} {:>12.3e} {:>12.3e} {:>7} {:>7}",
            row.name,
            row.cases,
            row.max_abs,
            row.max_rel,
            verdict(row.first),
            verdict(row.second)
        );
        if let Some(f) = row.first_failure {
            failed.push((row.name, f));
        }
    }
    for (name, report) in &failed {
        eprintln!("\n{name}:\n{report}");
    }
    if failed.is_empty() {
        println!(
            "{} cases, all passed (eps 1e-6, atol 1e-5, rtol 1e-3)",
            selected.len()
        );
        ExitCode::SUCCESS
    } else {
        println!("{} of {} cases failed", failed.len(), selected.len());
        ExitCode::FAILURE
    }
}
