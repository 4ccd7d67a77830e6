//! What `bench` reports about the machine beside every figure: the CPU, the
//! SIMD features it has, the GEMM kernel matrixmultiply picks on it, the
//! thread count and the load average before the run.

use serde_json::{json, Value};

/// The CPU's model name (the first `model name` line of /proc/cpuinfo), or
/// `"unknown"` where there is none (other systems, most ARM kernels).
pub fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, name)| name.trim().to_string())
        })
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "unknown".to_string())
}

/// Whether the running x86 CPU has `feature` (one of avx512f, avx2, fma, avx).
#[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
fn x86_has(feature: &str) -> bool {
    match feature {
        "avx512f" => is_x86_feature_detected!("avx512f"),
        "avx2" => is_x86_feature_detected!("avx2"),
        "fma" => is_x86_feature_detected!("fma"),
        "avx" => is_x86_feature_detected!("avx"),
        _ => false,
    }
}

/// The SIMD features detected at run time among avx512f, avx2 and fma,
/// joined by `+` (`"avx512f+avx2+fma"`); `"portable"` when there is none of
/// them or the CPU is not x86.
pub fn simd_features() -> String {
    #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
    {
        let found: Vec<&str> = ["avx512f", "avx2", "fma"]
            .into_iter()
            .filter(|f| x86_has(f))
            .collect();
        if !found.is_empty() {
            return found.join("+");
        }
    }
    "portable".to_string()
}

/// Whether matrixmultiply may use `feature`: its `allow_feature` reads
/// `MMTEST_FEATURE` at compile time; unset or empty allows every feature,
/// otherwise only the comma-separated names listed (exact words).
///
/// `option_env!` here reads the variable when this crate is compiled, which
/// is the same cargo invocation (cargo rebuilds both when it changes).
fn matrixmultiply_allows(feature: &str) -> bool {
    match option_env!("MMTEST_FEATURE") {
        None | Some("") => true,
        Some(list) => list.split(',').any(|f| f == feature),
    }
}

/// The f32/f64 GEMM kernel matrixmultiply 0.3.11 selects on this CPU, by its
/// own rule (`sgemm_kernel::detect`, the same in `dgemm_kernel`), with its
/// default `avx512` feature and a compiler ≥ 1.89: on x86 `avx512f` →
/// `"matrixmultiply avx512"`, else `fma` and `avx2` → `"matrixmultiply
/// fma-avx2"`, else `avx` → `"matrixmultiply avx"`; on aarch64 `neon` →
/// `"matrixmultiply neon"`; otherwise `"matrixmultiply fallback"`. Each
/// feature counts only if the CPU has it and `MMTEST_FEATURE` allows it.
pub fn gemm_path() -> &'static str {
    #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
    {
        let usable = |f: &str| matrixmultiply_allows(f) && x86_has(f);
        if usable("avx512f") {
            return "matrixmultiply avx512";
        }
        if usable("fma") && usable("avx2") {
            return "matrixmultiply fma-avx2";
        }
        if usable("avx") {
            return "matrixmultiply avx";
        }
    }
    #[cfg(target_arch = "aarch64")]
    {
        if matrixmultiply_allows("neon") && std::arch::is_aarch64_feature_detected!("neon") {
            return "matrixmultiply neon";
        }
    }
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    {
        return "matrixmultiply simd128";
    }
    #[allow(unreachable_code)]
    "matrixmultiply fallback"
}

/// The 1-minute load average (the first field of /proc/loadavg), or `None`
/// where it cannot be read.
pub fn load_avg() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Adds `cpu`, `simd`, `gemm_path`, `threads` (rayon's) and `load_avg`
/// (`load`, read before the run; null if unknown) to the JSON object `line`.
pub fn annotate(line: &mut Value, load: Option<f64>) {
    if let Value::Object(fields) = line {
        fields.insert("cpu".into(), json!(cpu_model()));
        fields.insert("simd".into(), json!(simd_features()));
        fields.insert("gemm_path".into(), json!(gemm_path()));
        fields.insert("threads".into(), json!(rayon::current_num_threads()));
        fields.insert("load_avg".into(), json!(load));
    }
}
