//! The `chainrule` binary: gradcheck table and exit codes, bench JSON, train.

use std::process::Command;

fn chainrule(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_chainrule"))
        .args(args)
        .output()
        .expect("run chainrule")
}

#[test]
fn gradcheck_prints_one_row_per_case_and_exits_zero() {
    let out = chainrule(&["gradcheck", "--op", "matmul", "--cases", "3"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: Vec<&str> = text.lines().filter(|l| l.starts_with("matmul")).collect();
    assert_eq!(rows.len(), 4, "{text}"); // matmul, batched, matrix-vector, transposed
    assert!(
        rows.iter()
            .all(|r| r.split_whitespace().rev().take(2).all(|v| v == "pass")),
        "{text}"
    );
    assert!(text.contains("4 cases, all passed"), "{text}");
}

#[test]
fn gradcheck_with_an_unknown_op_exits_two() {
    let out = chainrule(&["gradcheck", "--op", "no_such_op"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no registry case matches"));
}

#[test]
fn bench_tiny_prints_one_json_line_with_the_reference_values() {
    let out = chainrule(&["bench", "tiny"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.lines().count(), 1, "{text}");
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["workload"], "tiny");
    assert_eq!(v["ops"], 100_000);
    for key in ["total_sec", "ns_per_op", "peak_rss_mib"] {
        assert!(v[key].as_f64().unwrap() > 0.0, "{key}");
    }
    // PyTorch, candle and burn all give these to 6 digits (f32 arithmetic).
    let close = |k: &str, want: f64| (v["values"][k].as_f64().unwrap() - want).abs() < 5e-6;
    assert!(
        close("x", 0.343947) && close("a_grad", 0.933878) && close("b_grad", 0.357591),
        "{text}"
    );
}

#[test]
fn train_fits_the_sine_curve() {
    let out = chainrule(&["train", "--epochs", "1500"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let last = text.lines().last().unwrap();
    let mse: f64 = last.trim_start_matches("final mse ").parse().unwrap();
    // From 1500 full-batch steps at lr 0.1 the fit reaches ~1e-3 (the initial mse is ~0.5).
    assert!(mse < 0.01, "{text}");
}

#[test]
fn a_diverging_run_fails_with_advice() {
    let out = chainrule(&["train", "--epochs", "50", "--lr", "1000"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("smaller --lr"));
}
