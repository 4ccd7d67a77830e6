//! The API documentation builds without a warning (issue 16): `cargo doc
//! --no-deps --workspace` with `RUSTDOCFLAGS="-D warnings"`, so a broken
//! intra-doc link (shape notation such as `[C]` read as a link), a link to a
//! private item or a bad code block fails the README's test command.
//!
//! The nested cargo builds into `doc-check` under the outer build's
//! `CARGO_TARGET_TMPDIR` (inside whatever target directory the outer run
//! uses), a target directory of its own, so it never waits for the lock the
//! outer `cargo test` holds, and later runs reuse its artifacts. `--locked`
//! keeps it from rewriting `Cargo.lock`; colours are off so every diagnostic
//! line starts with its level.

use std::path::PathBuf;
use std::process::Command;

#[test]
fn workspace_docs_build_without_warnings() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| env!("CARGO").into());
    let started = std::time::Instant::now();
    let out = Command::new(cargo)
        .args([
            "doc",
            "--no-deps",
            "--workspace",
            "--offline",
            "--locked",
            "--keep-going",
        ])
        .current_dir(&root)
        .env_remove("CARGO_BUILD_TARGET_DIR")
        .env_remove("CARGO_ENCODED_RUSTDOCFLAGS")
        .env(
            "CARGO_TARGET_DIR",
            PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("doc-check"),
        )
        .env("CARGO_TERM_COLOR", "never")
        .env("RUSTDOCFLAGS", "-D warnings")
        .output()
        .expect("cargo runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Each diagnostic's first line and its location, cargo's own warnings too.
    let diagnostics: Vec<&str> = stderr
        .lines()
        .filter(|line| {
            line.starts_with("warning") || line.starts_with("error") || line.contains("--> ")
        })
        .collect();
    assert!(
        out.status.success() && diagnostics.is_empty(),
        "`cargo doc --no-deps --workspace` with RUSTDOCFLAGS=\"-D warnings\" reports:\n{}\n\n\
         (shape notation in doc comments goes in code, `[C]`, or escaped, \\[C\\])\n\n\
         full output:\n{stderr}",
        diagnostics.join("\n")
    );
    eprintln!(
        "workspace documented in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}
