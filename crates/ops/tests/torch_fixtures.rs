//! Forward values and input gradients match PyTorch (float64 fixtures written
//! by tools/torch_reference/make_fixtures.py) for every registry case.

use chainrule_ops::registry::{find, registry};
use chainrule_tape::{try_grad, GradOptions, Graph, Tensor, Var};
use serde::Deserialize;
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

#[derive(Deserialize)]
struct Json {
    shape: Vec<usize>,
    data: Vec<f64>,
}

impl Json {
    fn tensor(&self) -> Tensor<f64> {
        Tensor::from_vec(&self.shape, self.data.clone())
    }
}

fn load() -> Fixture {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/fixtures/torch/ops_core.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).expect("fixture file"))
        .expect("fixture JSON")
}

/// 1e-10 relative, as the issue asks. Both sides evaluate the same formulas
/// in f64, so they differ only by rounding order (a few ulps, ~1e-15
/// relative); the 1e-13 absolute floor covers results that are exactly or
/// nearly zero, where a relative bound is meaningless.
fn assert_close(what: &str, got: &Tensor<f64>, want: &Json) {
    assert_eq!(got.shape(), want.shape.as_slice(), "{what}: shape");
    for (i, (&g, &w)) in got.data().iter().zip(&want.data).enumerate() {
        assert!(
            (g - w).abs() <= 1e-10 * w.abs() + 1e-13,
            "{what}[{i}]: chainrule {g:e}, torch {w:e}"
        );
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
        let g = Graph::<f64>::new();
        let leaves: Vec<Var<f64>> = case.inputs.iter().map(|j| g.leaf(j.tensor())).collect();
        let out = (op.apply)(&leaves).unwrap();
        assert_close(&format!("{} output", case.name), out.value(), &case.output);
        let upstream = Var::constant(case.upstream.tensor());
        let refs: Vec<&Var<f64>> = leaves.iter().collect();
        let grads = try_grad(&[&out], &[Some(&upstream)], &refs, GradOptions::default()).unwrap();
        for (i, (got, want)) in grads.iter().zip(&case.grads).enumerate() {
            match want {
                Some(w) => assert_close(&format!("{} grad {i}", case.name), got.value(), w),
                None => assert!(
                    got.value().data().iter().all(|&v| v == 0.0),
                    "{} grad {i} should be zero",
                    case.name
                ),
            }
        }
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
