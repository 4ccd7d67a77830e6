//! The bounded fuzz pass of the README's test command: every fuzz target
//! (`chainrule_cli::fuzzing`) runs over its committed seeds (`fuzz/seeds/T`),
//! every crash ever found (`fuzz/regressions/T`, replayed as regression
//! tests), and a fixed number of seeded mutations of them, so the pass is
//! deterministic and takes seconds. The coverage-guided long runs are
//! `cargo fuzz run T` (docs/RELIABILITY.md).

use chainrule_cli::fuzzing;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

/// The files of `fuzz/<kind>/<target>/`, sorted by name.
fn inputs(kind: &str, target: &str) -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join("fuzz")
        .join(kind)
        .join(target);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut paths: Vec<_> = entries.map(|e| e.unwrap().path()).collect();
    paths.sort();
    paths.iter().map(|p| std::fs::read(p).unwrap()).collect()
}

/// One mutation as libFuzzer's simplest ones: flip a bit, set a byte to an
/// interesting value, insert or delete a byte, or splice in another input.
fn mutate(rng: &mut StdRng, data: &mut Vec<u8>, other: &[u8]) {
    const INTERESTING: [u8; 8] = [0, 1, 2, 0x7f, 0x80, 0xfe, 0xff, 8];
    match rng.gen_range(0..5) {
        0 if !data.is_empty() => {
            let i = rng.gen_range(0..data.len());
            data[i] ^= 1 << rng.gen_range(0..8);
        }
        1 if !data.is_empty() => {
            let i = rng.gen_range(0..data.len());
            data[i] = INTERESTING[rng.gen_range(0..INTERESTING.len())];
        }
        2 => {
            let i = rng.gen_range(0..=data.len());
            data.insert(i, rng.gen());
        }
        3 if !data.is_empty() => {
            data.remove(rng.gen_range(0..data.len()));
        }
        _ if !other.is_empty() => {
            let (a, b) = (rng.gen_range(0..other.len()), rng.gen_range(0..other.len()));
            let at = rng.gen_range(0..=data.len());
            let piece = &other[a.min(b)..a.max(b)];
            data.splice(at..at, piece.iter().copied());
        }
        _ => data.push(rng.gen()),
    }
}

/// Runs `target` on one input; a panic fails the test naming the input.
fn check(name: &str, target: fn(&[u8]), data: &[u8]) {
    if catch_unwind(AssertUnwindSafe(|| target(data))).is_err() {
        panic!(
            "fuzz target {name} panicked on {} bytes: {:02x?}",
            data.len(),
            data
        );
    }
}

/// Seeds, regressions, then `rounds` seeded mutations (stacks of 1–4).
fn bounded_pass(name: &str, target: fn(&[u8]), rounds: usize) {
    let seeds = inputs("seeds", name);
    assert!(!seeds.is_empty(), "fuzz/seeds/{name} has no seed");
    for data in seeds.iter().chain(&inputs("regressions", name)) {
        check(name, target, data);
    }
    let mut rng = StdRng::seed_from_u64(0x5eed);
    for _ in 0..rounds {
        let mut data = seeds[rng.gen_range(0..seeds.len())].clone();
        let other = &seeds[rng.gen_range(0..seeds.len())];
        for _ in 0..rng.gen_range(1..=4) {
            mutate(&mut rng, &mut data, other);
        }
        check(name, target, &data);
    }
}

#[test]
fn shapes_target_survives_its_bounded_pass() {
    bounded_pass("shapes", fuzzing::shapes::run, 20_000);
}

#[test]
fn idx_target_survives_its_bounded_pass() {
    bounded_pass("idx", fuzzing::idx::run, 20_000);
}

#[test]
fn explain_target_survives_its_bounded_pass() {
    bounded_pass("explain", fuzzing::text::run, 3_000);
}

#[test]
fn checkpoint_target_survives_its_bounded_pass() {
    bounded_pass("checkpoint", fuzzing::checkpoint::run, 1_500);
}
