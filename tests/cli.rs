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
    // The filter also selects the cases built on matmul (convolutions, pooling).
    let all: Vec<&str> = text.lines().filter(|l| l.ends_with("pass")).collect();
    assert!(all.len() > 4, "{text}");
    assert!(
        text.contains(&format!("{} cases, all passed", all.len())),
        "{text}"
    );
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
fn train_on_the_subset_reports_test_accuracy_and_writes_its_files() {
    let dir = std::env::temp_dir().join(format!("chainrule-cli-train-{}", std::process::id()));
    let out = chainrule(&[
        "train",
        "--model",
        "mlp",
        "--subset",
        "--limit",
        "1200",
        "--epochs",
        "2",
        "--out",
        dir.to_str().unwrap(),
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.lines().next().unwrap().contains("subset"),
        "the notice comes first: {text}"
    );
    let last = text.lines().last().unwrap();
    let acc: f64 = last
        .strip_prefix("test accuracy ")
        .expect(last)
        .parse()
        .unwrap();
    // 1,100 training images, 2 epochs: about 0.75 (chance is 0.1).
    assert!(acc > 0.6, "{text}");
    assert!(
        text.contains("confusion matrix on the 1000 test images"),
        "{text}"
    );
    for f in [
        "model.safetensors",
        "checkpoint.safetensors",
        "metrics.csv",
        "curves.png",
    ] {
        assert!(dir.join(f).is_file(), "{f} missing");
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_diverging_run_fails_with_advice() {
    let dir = std::env::temp_dir().join(format!("chainrule-cli-diverge-{}", std::process::id()));
    let out = chainrule(&[
        "train",
        "--model",
        "mlp",
        "--subset",
        "--limit",
        "600",
        "--epochs",
        "1",
        "--optimizer",
        "sgd",
        "--lr",
        "1e9",
        "--schedule",
        "none",
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("smaller --lr"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A label smoothing outside [0, 1] is an error naming the option, not a panic.
    let out = chainrule(&[
        "train",
        "--model",
        "mlp",
        "--subset",
        "--limit",
        "300",
        "--epochs",
        "1",
        "--label-smoothing",
        "1.5",
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("label_smoothing must be in [0, 1], got 1.5"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = chainrule(&["train", "--optimizer", "adamm", "--subset"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no optimizer called \"adamm\""));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn compare_and_tune_run_on_the_subset() {
    let dir = std::env::temp_dir().join(format!("chainrule-cli-compare-{}", std::process::id()));
    let out = chainrule(&[
        "compare",
        "--subset",
        "--limit",
        "600",
        "--epochs",
        "1",
        "--optimizers",
        "sgd,adam",
        "--out",
        dir.to_str().unwrap(),
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("sgd ") || l.starts_with("adam "))
        .collect();
    assert_eq!(
        rows.len(),
        4,
        "a progress line and a table row each: {text}"
    );
    assert_eq!(
        &std::fs::read(dir.join("compare.png")).unwrap()[..4],
        b"\x89PNG"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("compare.csv"))
            .unwrap()
            .lines()
            .count(),
        3
    );
    let out = chainrule(&[
        "tune", "--subset", "--limit", "600", "--epochs", "1", "--trials", "3", "--top", "3",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    let ranks: Vec<f64> = text
        .lines()
        .filter(|l| l.trim_start().starts_with(|c: char| c.is_ascii_digit()))
        .map(|l| l.split_whitespace().nth(4).unwrap().parse().unwrap())
        .collect();
    assert_eq!(ranks.len(), 3, "{text}");
    assert!(
        ranks.windows(2).all(|w| w[0] >= w[1]),
        "sorted by validation accuracy: {text}"
    );
    std::fs::remove_dir_all(&dir).ok();
}
