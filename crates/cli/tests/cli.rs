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
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("'--label-smoothing") && stderr.contains("must be in [0, 1], got 1.5"),
        "{stderr}"
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

// ---- Where Fashion-MNIST is read from: --data and CHAINRULE_DATA ----

/// Runs chainrule with `CHAINRULE_DATA` set to `data` (or removed).
fn chainrule_with_data_env(args: &[&str], data: Option<&str>) -> std::process::Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_chainrule"));
    cmd.args(args);
    match data {
        Some(v) => cmd.env("CHAINRULE_DATA", v),
        None => cmd.env_remove("CHAINRULE_DATA"),
    };
    cmd.output().expect("run chainrule")
}

/// A fresh directory holding the embedded subset's files except `leave_out`.
fn subset_copy(name: &str, leave_out: Option<&str>) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("chainrule-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let subset =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/fashion-mnist-subset");
    for f in [
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
    ] {
        if Some(f) != leave_out {
            let gz = format!("{f}.gz");
            std::fs::copy(subset.join(&gz), dir.join(&gz)).unwrap();
        }
    }
    dir
}

const QUICK: [&str; 8] = [
    "--model",
    "mlp",
    "--limit",
    "600",
    "--epochs",
    "1",
    "--schedule",
    "none",
];

#[test]
fn an_unusable_data_directory_is_an_error_never_replaced_by_other_data() {
    let missing =
        std::env::temp_dir().join(format!("chainrule-cli-no-data-{}", std::process::id()));
    let missing = missing.to_str().unwrap();
    let partial = subset_copy("partial-data", Some("t10k-labels-idx1-ubyte"));
    let partial = partial.to_str().unwrap();
    let out_dir =
        std::env::temp_dir().join(format!("chainrule-cli-data-out-{}", std::process::id()));
    let out = ["--out", out_dir.to_str().unwrap()];
    // (arguments, CHAINRULE_DATA, what stderr must say)
    let cases: Vec<(Vec<&str>, Option<&str>, Vec<String>)> = vec![
        (
            [&["train", "--data", missing][..], &QUICK, &out].concat(),
            None,
            vec![format!("--data {missing}: {missing} does not exist")],
        ),
        (
            [&["train"][..], &QUICK, &out].concat(),
            Some(partial),
            vec![
                format!("CHAINRULE_DATA={partial}: {partial} has no t10k-labels-idx1-ubyte.gz (or t10k-labels-idx1-ubyte)"),
            ],
        ),
        (
            [&["train"][..], &QUICK, &out].concat(),
            Some(""),
            vec!["CHAINRULE_DATA: set but empty".into()],
        ),
        (
            vec!["compare", "--data", partial, "--epochs", "1", "--out", out[1]],
            None,
            vec![format!("chainrule compare: --data {partial}: {partial} has no t10k-labels")],
        ),
        (
            vec!["tune", "--epochs", "1", "--trials", "1"],
            Some(missing),
            vec![format!("chainrule tune: CHAINRULE_DATA={missing}: {missing} does not exist")],
        ),
        (
            vec!["bench", "mlp", "--data", missing],
            None,
            vec![format!("chainrule bench: --data {missing}: {missing} does not exist")],
        ),
    ];
    for (args, env, wants) in cases {
        let run = chainrule_with_data_env(&args, env);
        let (stdout, stderr) = (
            String::from_utf8_lossy(&run.stdout),
            String::from_utf8_lossy(&run.stderr),
        );
        assert_eq!(
            run.status.code(),
            Some(2),
            "{args:?} {env:?}\n{stdout}\n{stderr}"
        );
        for want in wants {
            assert!(stderr.contains(&want), "{args:?} {env:?}: {stderr}");
        }
        assert!(
            !stdout.contains("using "),
            "no data is used in place of the one asked for: {stdout}"
        );
    }
    std::fs::remove_dir_all(partial).ok();
}

#[test]
fn the_data_flag_wins_over_the_variable_and_is_named_on_the_first_line() {
    let dir = subset_copy("flag-data", None);
    let out_dir =
        std::env::temp_dir().join(format!("chainrule-cli-flag-out-{}", std::process::id()));
    let args = [
        &["train", "--data", dir.to_str().unwrap()][..],
        &QUICK,
        &["--out", out_dir.to_str().unwrap()],
    ]
    .concat();
    let run = chainrule_with_data_env(&args, Some("/nonexistent/chainrule-data"));
    let text = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert_eq!(
        text.lines().next().unwrap(),
        format!(
            "using Fashion-MNIST from {} (3000 training, 1000 test images)",
            dir.display()
        )
    );
    // --data and --subset contradict each other.
    let run = chainrule(&["train", "--subset", "--data", dir.to_str().unwrap()]);
    assert_eq!(run.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&run.stderr).contains("cannot be used with"));
    std::fs::remove_dir_all(&dir).ok();
    std::fs::remove_dir_all(&out_dir).ok();
}

// ---- Flag validation: every value checked before any work starts ----

/// Runs chainrule and checks it failed with exit code 2 before doing any
/// work (nothing on stdout: no data notice, no summary, no epoch), with a
/// message naming `flag` and `value` and no panic. Returns stderr.
fn rejected(args: &[&str], flag: &str, value: &str) -> String {
    let out = chainrule(args);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert_eq!(out.status.code(), Some(2), "{args:?}\n{stdout}\n{stderr}");
    assert!(stdout.is_empty(), "{args:?} did work first:\n{stdout}");
    assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    assert!(
        stderr.contains(flag) && stderr.contains(value),
        "{args:?}: the error names {flag} and {value}: {stderr}"
    );
    stderr
}

#[test]
fn train_rejects_out_of_range_values_before_any_work() {
    // (flag, value, what the message says): ranges are PyTorch's where it has one.
    let cases = [
        ("--dropout", "2", "must be in [0, 1], got 2"),
        ("--dropout", "-0.5", "must be in [0, 1], got -0.5"),
        ("--dropout", "nan", "must be in [0, 1], got NaN"),
        ("--clip", "-1", "must be finite and > 0, got -1"),
        ("--clip", "0", "must be finite and > 0, got 0"),
        ("--clip", "inf", "must be finite and > 0, got inf"),
        ("--limit", "0", "must be at least 1, got 0"),
        ("--limit", "5", "must be at least 12"),
        ("--epochs", "0", "must be at least 1, got 0"),
        ("--batch-size", "0", "must be at least 1, got 0"),
        ("--lr", "-0.1", "must be finite and ≥ 0, got -0.1"),
        ("--lr", "nan", "must be finite and ≥ 0, got NaN"),
        ("--label-smoothing", "-0.1", "must be in [0, 1], got -0.1"),
        ("--patience", "0", "must be at least 1, got 0"),
        ("--min-delta", "-1", "must be finite and ≥ 0, got -1"),
        ("--min-delta", "nan", "must be finite and ≥ 0, got NaN"),
        ("--seed", "-1", "-1"),
    ];
    for (flag, value, says) in cases {
        let arg = format!("{flag}={value}");
        let stderr = rejected(
            &["train", "--model", "mlp", "--subset", &arg],
            &format!("'{flag}"),
            value,
        );
        assert!(stderr.contains(says), "{arg}: {stderr}");
    }
}

#[test]
fn compare_tune_gradcheck_and_optbench_reject_out_of_range_values() {
    let cases: [(&[&str], &str, &str); 13] = [
        (&["compare", "--subset", "--epochs=0"], "'--epochs", "0"),
        // Bounded so a typo cannot ask for 10¹² runs or 10⁶ threads.
        (
            &["tune", "--subset", "--trials=1000000000000"],
            "'--trials",
            "1000000000000",
        ),
        (
            &["tune", "--subset", "--parallel=1000000"],
            "'--parallel",
            "1000000",
        ),
        (
            &["compare", "--subset", "--batch-size=0"],
            "'--batch-size",
            "0",
        ),
        (&["compare", "--subset", "--limit=0"], "'--limit", "0"),
        (&["compare", "--subset", "--lr=-1"], "'--lr", "-1"),
        (&["tune", "--subset", "--parallel=0"], "'--parallel", "0"),
        (&["tune", "--subset", "--trials=0"], "'--trials", "0"),
        (
            &["tune", "--subset", "--lr-range=0,1e-2"],
            "'--lr-range",
            "0",
        ),
        (
            &["tune", "--subset", "--batch-sizes=64,0"],
            "'--batch-sizes",
            "0",
        ),
        (&["gradcheck", "--cases=0"], "'--cases", "0"),
        (&["optbench", "--steps=0"], "'--steps", "0"),
        (
            &["optbench", "--additive-sigma=nan"],
            "'--additive-sigma",
            "nan",
        ),
    ];
    for (args, flag, value) in cases {
        rejected(args, flag, value);
    }
    // A range given high,low names the flag and both values.
    let stderr = rejected(
        &["tune", "--subset", "--lr-range=1e-2,1e-4"],
        "--lr-range",
        "[0.01, 0.0001]",
    );
    assert!(stderr.contains("low ≤ high"), "{stderr}");
}

#[test]
fn an_unwritable_out_fails_before_training() {
    let base = std::env::temp_dir().join(format!("chainrule-cli-bad-out-{}", std::process::id()));
    std::fs::create_dir_all(&base).unwrap();
    let file = base.join("a-file");
    std::fs::write(&file, b"not a directory").unwrap();
    let under_file = file.join("run");
    let under_file = under_file.to_str().unwrap();
    let out = chainrule(&[
        "train", "--model", "mlp", "--subset", "--limit", "600", "--epochs", "1", "--out",
        under_file,
    ]);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(2), "{stdout}\n{stderr}");
    assert!(
        stderr.contains(&format!("--out {under_file}: cannot create the directory")),
        "{stderr}"
    );
    assert!(!stdout.contains("epoch"), "nothing trained first: {stdout}");
    let out = chainrule(&[
        "compare", "--subset", "--limit", "600", "--epochs", "1", "--out", under_file,
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--out"));
    assert!(!String::from_utf8_lossy(&out.stdout).contains("test accuracy"));
    let plot = file.join("paths.png");
    let out = chainrule(&["optbench", "--plot", plot.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--plot"));
    assert!(out.stdout.is_empty());
    std::fs::remove_dir_all(&base).ok();
}

#[test]
fn resume_redraws_an_empty_curves_png_and_leaves_no_temporary_files() {
    let dir = std::env::temp_dir().join(format!("chainrule-cli-redraw-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let args = [
        "train",
        "--model",
        "mlp",
        "--subset",
        "--limit",
        "600",
        "--epochs",
        "1",
        "--schedule",
        "none",
        "--out",
    ];
    let dir_arg = dir.to_str().unwrap();
    let out = chainrule(&[&args[..], &[dir_arg]].concat());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let png = std::fs::read(dir.join("curves.png")).unwrap();
    assert_eq!(&png[..4], b"\x89PNG");
    // What a kill during plotting used to leave: an empty curves.png (and
    // here no metrics.csv either).
    std::fs::write(dir.join("curves.png"), b"").unwrap();
    std::fs::remove_file(dir.join("metrics.csv")).unwrap();
    // Resuming a finished run trains no more epochs, and still redraws.
    let out = chainrule(&[&args[..], &[dir_arg, "--resume"]].concat());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(std::fs::read(dir.join("curves.png")).unwrap(), png);
    let csv = std::fs::read_to_string(dir.join("metrics.csv")).unwrap();
    assert_eq!(csv.lines().count(), 2, "a header and epoch 1: {csv}");
    assert!(csv.lines().nth(1).unwrap().starts_with("1,"), "{csv}");
    let leftovers: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_data_directory_with_too_few_training_images_is_an_error() {
    // Five valid images: too few to hold out a validation set (every twelfth).
    let dir = subset_copy("tiny-data", None);
    let idx = |dims: &[u32], data: &[u8]| {
        let mut out = vec![0, 0, 8, dims.len() as u8];
        dims.iter().for_each(|d| out.extend(d.to_be_bytes()));
        out.extend_from_slice(data);
        out
    };
    std::fs::remove_file(dir.join("train-images-idx3-ubyte.gz")).unwrap();
    std::fs::remove_file(dir.join("train-labels-idx1-ubyte.gz")).unwrap();
    std::fs::write(
        dir.join("train-images-idx3-ubyte"),
        idx(&[5, 28, 28], &[9; 5 * 784]),
    )
    .unwrap();
    std::fs::write(
        dir.join("train-labels-idx1-ubyte"),
        idx(&[5], &[0, 1, 2, 3, 4]),
    )
    .unwrap();
    let out_dir =
        std::env::temp_dir().join(format!("chainrule-cli-tiny-out-{}", std::process::id()));
    let run = chainrule_with_data_env(
        &[
            "train",
            "--model",
            "mlp",
            "--epochs",
            "1",
            "--data",
            dir.to_str().unwrap(),
            "--out",
            out_dir.to_str().unwrap(),
        ],
        None,
    );
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "{}: 5 training images; at least 12 are needed",
            dir.display()
        )),
        "{stderr}"
    );
    std::fs::remove_dir_all(&dir).ok();
    std::fs::remove_dir_all(&out_dir).ok();
}

#[test]
fn resume_checks_the_runs_settings_and_the_checkpoints_checksum() {
    let dir = std::env::temp_dir().join(format!("chainrule-cli-resume-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let train = |extra: &[&str]| {
        let mut args = vec![
            "train", "--model", "mlp", "--subset", "--limit", "600", "--out",
        ];
        args.push(dir.to_str().unwrap());
        args.extend(extra);
        let out = chainrule(&args);
        let text = format!(
            "{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.code(), text)
    };
    let (code, text) = train(&["--epochs", "1"]);
    assert_eq!(code, Some(0), "{text}");
    // Another learning rate: never, not even with --force.
    for force in [&[][..], &["--force"][..]] {
        let mut args = vec!["--epochs", "1", "--lr", "0.01", "--resume"];
        args.extend(force);
        let (code, text) = train(&args);
        assert_eq!(code, Some(2), "{text}");
        assert!(
            text.contains(
                "--lr: the checkpoint has 0.001, this run has 0.01 (cannot be overridden"
            ),
            "{text}"
        );
    }
    // More epochs: only with --force, and then it continues.
    let (code, text) = train(&["--epochs", "2", "--resume"]);
    assert_eq!(code, Some(2), "{text}");
    assert!(
        text.contains("--epochs: the checkpoint has 1, this run has 2")
            && text.contains("pass --force"),
        "{text}"
    );
    let (code, text) = train(&["--epochs", "2", "--resume", "--force"]);
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains("--force: --epochs continues with 2 (the checkpoint has 1)")
            && text.contains("after epoch 1")
            && text.contains("epoch   2/2"),
        "{text}"
    );
    // --force alone is a usage error.
    let (code, _) = train(&["--epochs", "2", "--force"]);
    assert_eq!(code, Some(2));
    // A hand-edited checkpoint (Adam's β1 0.9 -> 0.1) is refused.
    let ck = dir.join("checkpoint.safetensors");
    let mut bytes = std::fs::read(&ck).unwrap();
    let from = br#"\"betas.0\":0.9,"#;
    let at = (0..bytes.len() - from.len())
        .find(|&i| &bytes[i..i + from.len()] == from)
        .unwrap();
    bytes[at + from.len() - 2] = b'1';
    std::fs::write(&ck, bytes).unwrap();
    let (code, text) = train(&["--epochs", "2", "--resume"]);
    assert_eq!(code, Some(2), "{text}");
    assert!(
        text.contains(&format!(
            "{}: checksum mismatch: the file was altered or damaged",
            ck.display()
        )),
        "{text}"
    );
    std::fs::remove_dir_all(&dir).ok();
}
