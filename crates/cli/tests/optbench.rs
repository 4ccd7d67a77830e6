//! `chainrule optbench`: the table's figures and the plot.

use std::process::Command;

fn chainrule(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_chainrule"))
        .args(args)
        .output()
        .expect("run chainrule")
}

/// The (score, steps) cell of `optimizer` in the `column`-th function column.
fn cell(text: &str, optimizer: &str, column: usize) -> (f64, Option<usize>) {
    let row = text
        .lines()
        .find(|l| {
            l.starts_with(&format!("{optimizer:<10}|")) || l.starts_with(&format!("{optimizer} "))
        })
        .unwrap_or_else(|| panic!("no row for {optimizer} in\n{text}"));
    let fields: Vec<&str> = row.split('|').map(str::trim).collect();
    let mut parts = fields[column + 1].split_whitespace();
    let score = parts.next().unwrap().parse().unwrap();
    let steps = parts.next().unwrap().parse().ok();
    (score, steps)
}

#[test]
fn optbench_solves_booth_and_escapes_the_saddle_and_draws_the_paths() {
    let dir = std::env::temp_dir().join(format!("chainrule-optbench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let png = dir.join("paths.png");
    let out = chainrule(&[
        "optbench",
        "--optimizers",
        "sgd,adam,lbfgs,lm",
        "--functions",
        "booth,saddle",
        "--noise",
        "none",
        "--steps",
        "400",
        "--plot",
        png.to_str().unwrap(),
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Booth is a convex quadratic (Hessian eigenvalues 2 and 18): gradient
    // descent with lr 0.1 contracts by ≥ 0.8 per step, so 400 steps reach
    // far below 1e-4; LM's first damped Gauss-Newton step on a linear
    // least-squares problem lands almost exactly, so it needs a few steps.
    for name in ["sgd", "adam", "lbfgs"] {
        let (distance, steps) = cell(&text, name, 0);
        assert!(
            distance <= 1e-4 && steps.is_some(),
            "{name}: {distance} {steps:?}\n{text}"
        );
    }
    let (distance, steps) = cell(&text, "lm", 0);
    assert!(
        distance < 1e-8 && steps.unwrap() <= 3,
        "lm: {distance} {steps:?}\n{text}"
    );
    // From (1, 1e-3) every method must leave the ridge of x² − y² (|y| ≥ 1),
    // and f falls below −1 once it has.
    for name in ["sgd", "adam", "lbfgs"] {
        let (f, steps) = cell(&text, name, 1);
        assert!(f < -1.0 && steps.is_some(), "{name}: {f} {steps:?}\n{text}");
    }
    let bytes = std::fs::read(&png).unwrap();
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "a PNG file");
    assert!(bytes.len() > 10_000, "a drawn plot, not an empty canvas");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn optbench_rejects_unknown_names_with_exit_code_two() {
    let out = chainrule(&["optbench", "--optimizers", "adamm"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no optimizer called \"adamm\""));
}
