//! The op registry drives first- and second-order gradient checks over every
//! op, and fails if a public op (the compiler-checked table `registry::api`)
//! has no case.

use chainrule_ops::registry::{api, registry, OpCase};
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

/// Public ops without a registry case, each with the reason. The names are
/// the table's constants, so a stale entry does not compile.
const WITHOUT_CASE: &[(&str, &str)] = &[(
    api::dropout,
    "its mask is random (PyTorch's draws differ); it multiplies by a constant \
     mask (the `mul` case) and tests/nn_ops.rs checks its statistics",
)];

#[test]
fn every_public_op_has_a_registry_case() {
    // api::ALL is compiler-checked: each entry names a VarOps method, a Var
    // method or a free function that exists, and every VarOps method made
    // with `fallible!` must have an entry. Composite ops (silu, conv2d,
    // the losses) record other ops' nodes, so coverage is by the public
    // names each case declares it calls, not by recorded op names.
    assert!(
        api::ALL.len() >= 90,
        "the public-op table lost entries: {}",
        api::ALL.len()
    );
    let covered: BTreeSet<&str> = registry()
        .iter()
        .flat_map(|c| c.covers.iter().copied())
        .collect();
    let exempt: BTreeSet<&str> = WITHOUT_CASE.iter().map(|(name, _)| *name).collect();
    let missing: Vec<&str> = api::ALL
        .iter()
        .copied()
        .filter(|n| !covered.contains(n) && !exempt.contains(n))
        .collect();
    assert!(
        missing.is_empty(),
        "public ops without a registry case: {missing:?}"
    );
    let stale: Vec<&str> = exempt.intersection(&covered).copied().collect();
    assert!(
        stale.is_empty(),
        "exempt ops that now have a case: {stale:?}"
    );
}

#[test]
fn the_public_op_table_has_no_duplicates() {
    let names: BTreeSet<&str> = api::ALL.iter().copied().collect();
    assert_eq!(names.len(), api::ALL.len());
}
