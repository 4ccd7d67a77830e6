//! The library without the application (issue 16): a scratch project that
//! depends on the `chainrule` package by path resolves none of the program's
//! dependencies (`cargo tree`) and builds on its own (`cargo check` of a
//! `main.rs` that uses the prelude).
//!
//! The scratch project lives in a temporary directory with its own
//! `[workspace]` and a copy of this workspace's `Cargo.lock` (so it resolves
//! the same versions, offline). Its build goes to `packaging-check` in `CARGO_TARGET_TMPDIR`: a
//! target directory of its own, so the nested cargo never waits for the lock
//! the outer `cargo test` holds, and later runs reuse its
//! artifacts.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::{Command, Output};

/// The program's dependencies (crates/cli and crates/train): none may reach a
/// project that depends on the library alone.
const APPLICATION_ONLY: &[&str] = &[
    "clap",
    "plotters",
    "indicatif",
    "mimalloc",
    "libmimalloc-sys",
    "contour",
    "proptest",
];

/// The library's crates, which the scratch project must resolve.
const LIBRARY: &[&str] = &[
    "chainrule",
    "chainrule-tape",
    "chainrule-ops",
    "chainrule-nn",
    "chainrule-optim",
    "chainrule-data",
];

/// A user's program: a graph, a backward pass, a gradient read back.
const MAIN_RS: &str = r#"use chainrule::prelude::*;

fn main() {
    let g = Graph::new();
    let x = g.leaf(Tensor::from_vec([2], vec![0.5f64, -1.0]));
    let loss = (&x * &x).tanh().sum_all();
    loss.backward();
    println!("{:?}", x.grad().unwrap().data());
}
"#;

/// The workspace root (the root package's manifest directory).
fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The cargo running this test (cargo sets `CARGO` for the tests it runs).
fn cargo() -> Command {
    let path = std::env::var_os("CARGO").unwrap_or_else(|| env!("CARGO").into());
    let mut cmd = Command::new(path);
    // Settings of the outer build that must not leak into the nested one.
    cmd.env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_BUILD_TARGET_DIR")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTDOCFLAGS")
        .env("CARGO_TERM_COLOR", "never");
    cmd
}

/// The nested build's own target directory, inside the outer run's target
/// directory (`CARGO_TARGET_TMPDIR`), so it never waits for the outer lock
/// and later runs reuse its artifacts.
fn packaging_target_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("packaging-check")
}

/// A scratch project in a temporary directory, removed on drop.
struct Scratch {
    dir: PathBuf,
}

impl Scratch {
    /// Writes `Cargo.toml` (its own workspace, `chainrule` by path with
    /// `features`), `src/main.rs` and a copy of the workspace's `Cargo.lock`.
    fn new(name: &str) -> Scratch {
        let dir =
            std::env::temp_dir().join(format!("chainrule-packaging-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("src")).unwrap();
        let root = workspace_root();
        let root = root.to_str().expect("workspace path is UTF-8");
        let manifest = format!(
            "[package]\n\
             name = \"packaging-scratch\"\n\
             version = \"0.0.0\"\n\
             edition = \"2021\"\n\
             publish = false\n\
             \n\
             [dependencies]\n\
             chainrule = {{ path = {root:?} }}\n\
             \n\
             # Not a member of the chainrule workspace it may sit under.\n\
             [workspace]\n"
        );
        std::fs::write(dir.join("Cargo.toml"), manifest).unwrap();
        std::fs::write(dir.join("src/main.rs"), MAIN_RS).unwrap();
        std::fs::copy(workspace_root().join("Cargo.lock"), dir.join("Cargo.lock")).unwrap();
        Scratch { dir }
    }

    /// Runs cargo with `args` in the scratch project.
    fn cargo(&self, args: &[&str]) -> Output {
        cargo()
            .args(args)
            .current_dir(&self.dir)
            .env("CARGO_TARGET_DIR", packaging_target_dir())
            .output()
            .expect("cargo runs")
    }

    /// The package names of `cargo tree -e normal` (default features plus
    /// `features`), after checking that it succeeded.
    fn tree(&self, features: &[&str]) -> BTreeSet<String> {
        let mut args = vec![
            "tree",
            "-e",
            "normal",
            "--offline",
            "--prefix",
            "none",
            "--format",
            "{p}",
        ];
        let joined = features.join(",");
        if !features.is_empty() {
            args.extend(["--features", &joined]);
        }
        let out = self.cargo(&args);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "cargo tree failed in {}:\n{}\n{stdout}",
            self.dir.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
            .lines()
            .filter_map(|line| line.split_whitespace().next())
            .map(str::to_owned)
            .collect()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Asserts that `packages` holds every name of `present` and none of `absent`.
fn assert_packages(packages: &BTreeSet<String>, present: &[&str], absent: &[&str], what: &str) {
    let leaked: Vec<&str> = absent
        .iter()
        .copied()
        .filter(|name| packages.contains(*name))
        .collect();
    assert!(
        leaked.is_empty(),
        "{what} pulls the application's dependencies {leaked:?}; \
         its dependency tree: {packages:?}"
    );
    let missing: Vec<&str> = present
        .iter()
        .copied()
        .filter(|name| !packages.contains(*name))
        .collect();
    assert!(
        missing.is_empty(),
        "{what} does not resolve {missing:?}; its dependency tree: {packages:?}"
    );
}

/// `cargo tree` of a project depending on `chainrule`: the library's crates,
/// none of the program's; with the `train` feature, `chainrule-train` too, and
/// still no command line, allocator, contour lines or proptest.
#[test]
fn library_alone_pulls_no_application_dependencies() {
    let scratch = Scratch::new("tree");
    let library = scratch.tree(&[]);
    assert_packages(&library, LIBRARY, APPLICATION_ONLY, "`chainrule`");
    assert!(
        !library.contains("chainrule-train") && !library.contains("chainrule-cli"),
        "`chainrule` without features pulls the training helper or the program: {library:?}"
    );

    let with_train = scratch.tree(&["chainrule/train"]);
    let mut present = LIBRARY.to_vec();
    present.push("chainrule-train");
    let absent = [
        "clap",
        "mimalloc",
        "libmimalloc-sys",
        "contour",
        "proptest",
        "chainrule-cli",
    ];
    assert_packages(&with_train, &present, &absent, "`chainrule` with `train`");
}

/// The library builds on its own: `cargo check` of a program that uses the
/// prelude (a graph, backward, a gradient).
#[test]
fn library_alone_builds() {
    let scratch = Scratch::new("check");
    let started = std::time::Instant::now();
    let out = scratch.cargo(&["check", "--offline", "--quiet"]);
    assert!(
        out.status.success(),
        "a project depending on `chainrule` alone does not build:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!(
        "scratch project checked in {:.1} s ({})",
        started.elapsed().as_secs_f64(),
        packaging_target_dir().display()
    );
}
