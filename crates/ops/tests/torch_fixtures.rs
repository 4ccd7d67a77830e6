//! Forward values and input gradients match PyTorch (float64 fixtures written
//! by tools/torch_reference/make_fixtures.py) for every registry case.

use chainrule_ops::registry::{find, registry};
use chainrule_tape::{try_grad, Element, GradOptions, Graph, Tensor, Var};
use serde::Deserialize;

mod common;
use common::Json;
use std::collections::BTreeSet;

#[derive(Deserialize)]
struct Fixture {
    torch: String,
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    name: String,
    inputs: Vec<Json>,
    upstream: Json,
    output: Json,
    grads: Vec<Option<Json>>,
}

fn load_file(name: &str) -> Fixture {
    let path = format!(
        "{}/../../tests/fixtures/torch/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(&path).expect("fixture file"))
        .expect("fixture JSON")
}

/// The core op fixtures (make_fixtures.py) and the nn op set's (make_nn_fixtures.py).
fn load() -> Fixture {
    let mut core = load_file("ops_core.json");
    let nn = load_file("ops_nn.json");
    assert_eq!(
        core.torch, nn.torch,
        "both fixture files from one torch version"
    );
    core.cases.extend(nn.cases);
    core
}

/// Compares elementwise: |got − want| ≤ rtol·|want| + atol.
fn assert_close<T: Element>(what: &str, got: &Tensor<T>, want: &Json, rtol: f64, atol: f64) {
    assert_eq!(got.shape(), want.shape.as_slice(), "{what}: shape");
    for (i, (&g, &w)) in got.data().iter().zip(&want.data).enumerate() {
        let g = g.as_f64();
        assert!(
            (g - w).abs() <= rtol * w.abs() + atol,
            "{what}[{i}]: chainrule {g:e}, torch {w:e}"
        );
    }
}

/// Runs one case in precision T and compares output and input gradients.
fn check_case<T: Element>(
    case: &Case,
    apply: fn(&[Var<T>]) -> chainrule_tape::error::Result<Var<T>>,
    rtol: f64,
    atol: f64,
) {
    let g = Graph::<T>::new();
    let leaves: Vec<Var<T>> = case
        .inputs
        .iter()
        .map(|j| g.leaf(j.tensor().cast()))
        .collect();
    let out = apply(&leaves).unwrap();
    assert_close(
        &format!("{} output", case.name),
        out.value(),
        &case.output,
        rtol,
        atol,
    );
    let upstream = Var::constant(case.upstream.tensor().cast());
    let refs: Vec<&Var<T>> = leaves.iter().collect();
    let grads = try_grad(&[&out], &[Some(&upstream)], &refs, GradOptions::default()).unwrap();
    for (i, (got, want)) in grads.iter().zip(&case.grads).enumerate() {
        match want {
            Some(w) => assert_close(
                &format!("{} grad {i}", case.name),
                got.value(),
                w,
                rtol,
                atol,
            ),
            None => assert!(
                got.value().data().iter().all(|&v| v == T::zero()),
                "{} grad {i} should be zero",
                case.name
            ),
        }
    }
}

#[test]
fn every_op_matches_pytorch_values_and_gradients() {
    let fixture = load();
    assert!(
        fixture.torch.starts_with('2'),
        "fixtures come from torch 2.x, got {}",
        fixture.torch
    );
    for case in &fixture.cases {
        let op = find(&case.name)
            .unwrap_or_else(|| panic!("fixture {} has no registry case", case.name));
        // f64: 1e-10 relative (the issues ask 1e-10 for the core ops and 1e-9
        // for the nn set). Both sides evaluate the same formulas, so they
        // differ by rounding order only (~1e-15 relative); the 1e-13 absolute
        // floor covers results that are exactly or nearly zero.
        check_case::<f64>(case, op.apply, 1e-10, 1e-13);
    }
}

#[test]
fn every_op_matches_pytorch_in_f32_to_1e_4() {
    // f32 rounding (2^-24 ≈ 6e-8 per operation) accumulated over at most a
    // few hundred operations per value, against the f64 reference: 1e-4
    // relative as the issue asks, with a 1e-5 absolute floor for values near
    // zero (differences of O(1) quantities that cancel).
    for case in &load().cases {
        let op = find(&case.name).expect("checked by the f64 test");
        check_case::<f32>(case, op.apply32, 1e-4, 1e-5);
    }
}

#[test]
fn every_registry_case_has_a_pytorch_fixture() {
    let fixture = load();
    let covered: BTreeSet<&str> = fixture.cases.iter().map(|c| c.name.as_str()).collect();
    let missing: Vec<&str> = registry()
        .iter()
        .map(|c| c.name)
        .filter(|n| !covered.contains(n))
        .collect();
    assert!(
        missing.is_empty(),
        "registry cases without a PyTorch fixture: {missing:?}"
    );
}
