//! Checks of command-line values, shared by the subcommands.
//!
//! The value parsers run inside clap, before any work starts: a value
//! outside its flag's range is reported as
//! `invalid value '2' for '--dropout <P>': must be in [0, 1] …` with
//! clap's usage exit code, 2. Ranges are PyTorch's where it has one.

use std::path::Path;

/// Parses a number, naming what was expected if it is not one.
fn number(s: &str) -> Result<f64, String> {
    s.trim()
        .parse()
        .map_err(|_| format!("expected a number, got {s:?}"))
}

/// A probability in [0, 1] (dropout, label smoothing): PyTorch's range.
pub fn probability(s: &str) -> Result<f64, String> {
    let v = number(s)?;
    if (0.0..=1.0).contains(&v) {
        Ok(v)
    } else {
        Err(format!("must be in [0, 1], got {v}"))
    }
}

/// A finite number > 0 (a gradient-norm limit, a log-scale range bound).
pub fn positive(s: &str) -> Result<f64, String> {
    let v = number(s)?;
    if v.is_finite() && v > 0.0 {
        Ok(v)
    } else {
        Err(format!("must be finite and > 0, got {v}"))
    }
}

/// A finite number ≥ 0 (a learning rate, as PyTorch's optimizers accept;
/// a minimum improvement; a noise level).
pub fn non_negative(s: &str) -> Result<f64, String> {
    let v = number(s)?;
    if v.is_finite() && v >= 0.0 {
        Ok(v)
    } else {
        Err(format!("must be finite and ≥ 0, got {v}"))
    }
}

/// A whole number ≥ 1 (epochs, batch size, patience, trials, steps).
pub fn at_least_one(s: &str) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        Ok(n) => Err(format!("must be at least 1, got {n}")),
        Err(_) => Err(format!("expected a whole number ≥ 1, got {s:?}")),
    }
}

/// A whole number in `lo..=hi`, for counts that size work or threads
/// (`tune --trials`, `--parallel`): bounded so that a typo cannot ask for
/// a trillion runs or a million threads.
pub fn whole_in(s: &str, lo: usize, hi: usize) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(n) if (lo..=hi).contains(&n) => Ok(n),
        Ok(n) => Err(format!("must be from {lo} to {hi}, got {n}")),
        Err(_) => Err(format!(
            "expected a whole number from {lo} to {hi}, got {s:?}"
        )),
    }
}

/// The fewest training images `--limit` may keep: `fashion_splits` holds
/// out every twelfth image for validation, so fewer would leave none, and a
/// run would train or validate on nothing.
pub const MIN_LIMIT: usize = 12;

/// A `--limit`: at least [`MIN_LIMIT`] images.
pub fn limit(s: &str) -> Result<usize, String> {
    let n = at_least_one(s)?;
    if n >= MIN_LIMIT {
        Ok(n)
    } else {
        Err(format!(
            "must be at least {MIN_LIMIT} (1 in 12 images is held out for validation), got {n}"
        ))
    }
}

/// Creates the output directory `dir` of `flag` if needed and checks that
/// a file can be written in it, so a bad path fails before any training
/// rather than after the first epoch. The probe file is named as the
/// atomic writes' temporary files are and removed at once.
pub fn check_output_dir(flag: &str, dir: &Path) -> Result<(), String> {
    std::fs::create_dir_all(dir)
        .map_err(|e| format!("{flag} {}: cannot create the directory: {e}", dir.display()))?;
    let probe = chainrule::nn::state::temp_path(&dir.join("write-check"));
    std::fs::write(&probe, b"")
        .map_err(|e| format!("{flag} {}: cannot write there: {e}", dir.display()))?;
    std::fs::remove_file(&probe)
        .map_err(|e| format!("{flag} {}: {}: {e}", dir.display(), probe.display()))
}

/// Checks that the file `path` of `flag` could be created: its directory
/// (made if missing) is writable and `path` is not a directory.
pub fn check_output_file(flag: &str, path: &Path) -> Result<(), String> {
    if path.is_dir() {
        return Err(format!("{flag} {}: is a directory", path.display()));
    }
    match path.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(parent) => check_output_dir(flag, parent),
        None => check_output_dir(flag, Path::new(".")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_accept_their_bounds_and_reject_nan() {
        assert_eq!(probability("0"), Ok(0.0));
        assert_eq!(probability("1"), Ok(1.0));
        assert!(probability("nan").is_err());
        assert!(probability("-0.5").is_err());
        assert!(positive("0").is_err());
        assert!(positive("inf").is_err());
        assert_eq!(non_negative("0"), Ok(0.0));
        assert!(non_negative("-1e-3").is_err());
        assert_eq!(at_least_one("1"), Ok(1));
        assert!(at_least_one("0").is_err());
        assert!(at_least_one("-3").is_err());
        assert_eq!(limit("12"), Ok(12));
        assert!(limit("11").unwrap_err().contains("at least 12"));
    }
}
