//! The op registry drives first- and second-order gradient checks over every
//! op, and a source scan fails the build's tests if an op has no entry.

use chainrule_ops::registry::{registry, OpCase};
use chainrule_tape::{try_gradcheck_with, try_gradgradcheck_with, GradcheckOptions, Graph};
use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::{Config, TestRunner};
use std::collections::BTreeSet;

/// Random cases per op. Each case runs gradcheck and gradgradcheck in f64.
const CASES_PER_OP: u32 = 24;

fn check_case(case: &OpCase) {
    let mut runner = TestRunner::new(Config {
        cases: CASES_PER_OP,
        failure_persistence: None,
        ..Config::default()
    });
    // PyTorch's default tolerances (eps 1e-6, atol 1e-5, rtol 1e-3): central
    // differences in f64 have truncation error O(eps²·f''') ≈ 1e-12 and
    // rounding error O(1e-16/eps) ≈ 1e-10, far inside atol for our domains.
    let options = GradcheckOptions::default();
    let result = runner.run(&(case.strategy)(), |inputs| {
        let first = try_gradcheck_with(case.apply, &inputs, options);
        proptest::prop_assert!(
            first.passed(),
            "{}: {:?}\n{}",
            case.name,
            shapes(&inputs),
            first
        );
        let second = try_gradgradcheck_with(case.apply, &inputs, options);
        proptest::prop_assert!(
            second.passed(),
            "{}: {:?}\n{}",
            case.name,
            shapes(&inputs),
            second
        );
        Ok(())
    });
    if let Err(e) = result {
        panic!("{}: {}", case.name, e);
    }
}

fn shapes(inputs: &[chainrule_tape::Tensor<f64>]) -> Vec<Vec<usize>> {
    inputs.iter().map(|t| t.shape().to_vec()).collect()
}

#[test]
fn every_registered_op_passes_gradcheck_and_gradgradcheck() {
    for case in registry() {
        check_case(&case);
    }
}

#[test]
fn registry_case_names_are_unique() {
    let cases = registry();
    let names: BTreeSet<_> = cases.iter().map(|c| c.name).collect();
    assert_eq!(names.len(), cases.len());
}

#[test]
fn each_case_records_the_ops_it_claims() {
    // Some samples legitimately skip an op (broadcast_to between equal shapes
    // records nothing), so each claimed op must appear in one of 20 samples.
    let mut runner = TestRunner::deterministic();
    for case in registry() {
        let mut recorded = BTreeSet::new();
        for _ in 0..20 {
            let inputs = (case.strategy)().new_tree(&mut runner).unwrap().current();
            let g = Graph::<f64>::new();
            let leaves: Vec<_> = inputs.iter().map(|t| g.leaf(t.clone())).collect();
            let _out = (case.apply)(&leaves).unwrap();
            recorded.extend(g.recorded_ops());
        }
        for op in case.ops {
            assert!(
                recorded.contains(*op),
                "case {} claims op {op} but recorded {recorded:?}",
                case.name
            );
        }
    }
}

/// Op names declared in source: `fn name(&self) -> &str { "..." }` bodies and
/// `unary_op!(..., Name, "label", ...)` invocations.
fn declared_op_names() -> BTreeSet<String> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files: Vec<_> = std::fs::read_dir(root.join("src"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.push(root.join("../tape/src/arith.rs"));
    let mut names = BTreeSet::new();
    for path in files {
        let src = std::fs::read_to_string(&path).unwrap();
        let mut rest = src.as_str();
        while let Some(i) = rest.find("fn name(&self) -> &str {") {
            rest = &rest[i..];
            let end = rest.find("\n    }").unwrap();
            names.extend(literals(&rest[..end]));
            rest = &rest[end..];
        }
        for line in src.lines() {
            let t = line.trim_start();
            if t.contains(", \"") && t.contains("|cx|") {
                names.extend(literals(t).into_iter().take(1));
            }
        }
    }
    names
}

fn literals(s: &str) -> Vec<String> {
    s.split('"')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

#[test]
fn every_op_has_a_registry_entry() {
    let declared = declared_op_names();
    assert!(
        declared.len() >= 29,
        "source scan found too few ops: {declared:?}"
    );
    let covered: BTreeSet<String> = registry()
        .iter()
        .flat_map(|c| c.ops.iter().map(|s| s.to_string()))
        .collect();
    let missing: Vec<_> = declared.difference(&covered).collect();
    assert!(
        missing.is_empty(),
        "ops without a registry entry: {missing:?}"
    );
}
