//! `chainrule bench`: the machine fields of every JSON line, and the
//! errors of `cnn-train` (its 200 steps are too slow for a test).

use std::process::{Command, Output};

fn chainrule(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_chainrule"))
        .args(args)
        .env_remove("CHAINRULE_DATA")
        .output()
        .expect("run chainrule")
}

/// The kernel matrixmultiply 0.3.11 picks here, by its rule written out
/// independently of the binary's (x86 only; `MMTEST_FEATURE` unset, as the
/// tests are built).
#[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
fn expected_gemm_path() -> &'static str {
    if is_x86_feature_detected!("avx512f") {
        "matrixmultiply avx512"
    } else if is_x86_feature_detected!("fma") && is_x86_feature_detected!("avx2") {
        "matrixmultiply fma-avx2"
    } else if is_x86_feature_detected!("avx") {
        "matrixmultiply avx"
    } else {
        "matrixmultiply fallback"
    }
}

#[test]
fn bench_tiny_reports_cpu_simd_gemm_path_threads_and_load() {
    let out = chainrule(&["bench", "tiny"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert_eq!(text.lines().count(), 1, "{text}");
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["workload"], "tiny", "{text}");
    let cpu = v["cpu"].as_str().expect("cpu is a string");
    assert!(!cpu.is_empty(), "{text}");
    if let Some(name) = std::fs::read_to_string("/proc/cpuinfo").ok().and_then(|t| {
        t.lines()
            .find(|l| l.starts_with("model name"))
            .map(String::from)
    }) {
        assert!(name.contains(cpu), "{name} vs {text}");
    }
    let simd = v["simd"].as_str().expect("simd is a string");
    #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
    {
        let features = [
            ("avx512f", is_x86_feature_detected!("avx512f")),
            ("avx2", is_x86_feature_detected!("avx2")),
            ("fma", is_x86_feature_detected!("fma")),
        ];
        for (f, detected) in features {
            assert_eq!(simd.split('+').any(|s| s == f), detected, "{f}: {text}");
        }
        assert_eq!(v["gemm_path"], expected_gemm_path(), "{text}");
    }
    assert!(!simd.is_empty(), "{text}");
    assert!(v["gemm_path"]
        .as_str()
        .unwrap()
        .starts_with("matrixmultiply "));
    assert!(
        v["threads"].as_u64().expect("threads is a count") >= 1,
        "{text}"
    );
    // A number where /proc/loadavg exists, else null.
    let has_loadavg = std::path::Path::new("/proc/loadavg").exists();
    assert_eq!(v["load_avg"].as_f64().is_some(), has_loadavg, "{text}");
    assert!(v["load_avg"].is_null() || v["load_avg"].as_f64().unwrap() >= 0.0);
}

#[test]
fn bench_cnn_train_with_a_missing_data_directory_exits_two_naming_it() {
    let out = chainrule(&["bench", "cnn-train", "--data", "/nonexistent"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("chainrule bench: --data /nonexistent: /nonexistent does not exist"),
        "{stderr}"
    );
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn bench_steps_is_refused_for_workloads_without_steps_and_zero_steps() {
    let out = chainrule(&["bench", "tiny", "--steps", "3"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--steps applies only to cnn and cnn-train"),
        "{stderr}"
    );
    let out = chainrule(&["bench", "cnn-train", "--steps", "0"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--steps"));
}
