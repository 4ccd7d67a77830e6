//! Parameter groups and the saved optimizer state.

use chainrule_tape::error::{Error, Result};
use chainrule_tape::{Element, Parameter, Tensor};
use std::collections::BTreeMap;

/// Parameters sharing one set of hyperparameters (`lr`, `momentum`, ...).
pub struct ParamGroup<T: Element> {
    /// The parameters.
    pub params: Vec<Parameter<T>>,
    hyper: BTreeMap<String, f64>,
}

impl<T: Element> ParamGroup<T> {
    pub(crate) fn new(params: Vec<Parameter<T>>, hyper: &[(&str, f64)]) -> Self {
        ParamGroup {
            params,
            hyper: hyper.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
        }
    }

    /// A hyperparameter by name.
    pub fn get(&self, key: &str) -> Option<f64> {
        self.hyper.get(key).copied()
    }

    pub(crate) fn set(&mut self, key: &str, value: f64) {
        self.hyper.insert(key.to_string(), value);
    }

    pub(crate) fn h(&self, key: &str) -> f64 {
        self.hyper[key]
    }

    /// The hyperparameter names.
    pub fn keys(&self) -> Vec<String> {
        self.hyper.keys().cloned().collect()
    }
}

/// One parameter's optimizer state: named buffers and a step count.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ParamState<T: Element> {
    /// Steps taken for this parameter.
    pub step: u64,
    /// Named buffers (`"momentum_buffer"`, `"exp_avg"`, `"exp_avg_sq"`...).
    pub buffers: BTreeMap<String, Tensor<T>>,
    /// Named scalars (`"mu_product"` for NAdam...).
    pub scalars: BTreeMap<String, f64>,
}

/// Everything an optimizer needs to resume exactly where it stopped.
#[derive(Clone, Debug, PartialEq)]
pub struct OptimizerState<T: Element> {
    /// The optimizer's name.
    pub optimizer: String,
    /// Each group's hyperparameters.
    pub groups: Vec<BTreeMap<String, f64>>,
    /// Per parameter, in group order then parameter order.
    pub params: Vec<ParamState<T>>,
}

/// Snapshot of `groups` and `states` as an [`OptimizerState`].
pub(crate) fn snapshot<T: Element>(
    name: &str,
    groups: &[ParamGroup<T>],
    states: &[ParamState<T>],
) -> OptimizerState<T> {
    OptimizerState {
        optimizer: name.to_string(),
        groups: groups.iter().map(|g| g.hyper.clone()).collect(),
        params: states.to_vec(),
    }
}

/// The state a parameter has once it has stepped, for validating a saved
/// state before restoring it: a parameter that never stepped has no
/// buffers and no scalars.
#[derive(Clone, Copy, Debug)]
pub struct StateLayout {
    /// Buffers every parameter that has stepped has.
    pub buffers: &'static [&'static str],
    /// Buffers it may have (created or left behind when a hyperparameter
    /// such as `momentum` or `amsgrad` changed during the run).
    pub optional: &'static [&'static str],
    /// Scalars every parameter that has stepped has.
    pub scalars: &'static [&'static str],
}

/// The most steps a saved state may count: the update formulas raise β to
/// the step count as an `i32` power.
pub const MAX_STEPS: u64 = i32::MAX as u64;

/// Checks a saved state fits these groups and `layout`, then installs it.
/// Nothing changes unless everything fits; the error names the group or
/// parameter, the hyperparameter or buffer, and what was expected.
pub(crate) fn restore<T: Element>(
    name: &str,
    layout: &StateLayout,
    groups: &mut [ParamGroup<T>],
    states: &mut Vec<ParamState<T>>,
    state: OptimizerState<T>,
) -> Result<()> {
    let err = |message: String| Error::argument(name.to_string(), message);
    if state.optimizer != name {
        return Err(err(format!("cannot load a {} state", state.optimizer)));
    }
    let count: usize = groups.iter().map(|g| g.params.len()).sum();
    if state.groups.len() != groups.len() || state.params.len() != count {
        return Err(err(format!(
            "state has {} groups and {} parameters, optimizer has {} and {}",
            state.groups.len(),
            state.params.len(),
            groups.len(),
            count
        )));
    }
    for (i, (saved, g)) in state.groups.iter().zip(groups.iter()).enumerate() {
        check_hyperparameters(i, saved, &g.hyper).map_err(err)?;
    }
    let shapes = groups
        .iter()
        .flat_map(|g| g.params.iter().map(|p| p.shape()));
    for (i, (ps, shape)) in state.params.iter().zip(shapes).enumerate() {
        check_param_state(ps, &shape, layout)
            .map_err(|m| Error::shape(name.to_string(), format!("parameter {i}: {m}")))?;
    }
    for (g, h) in groups.iter_mut().zip(state.groups) {
        g.hyper = h;
    }
    *states = state.params;
    Ok(())
}

/// A saved group's hyperparameters must be exactly the optimizer's names
/// (values may differ: schedules change them), and none may be NaN.
fn check_hyperparameters(
    group: usize,
    saved: &BTreeMap<String, f64>,
    current: &BTreeMap<String, f64>,
) -> std::result::Result<(), String> {
    let known = || current.keys().cloned().collect::<Vec<_>>().join(", ");
    if let Some(k) = current.keys().find(|k| !saved.contains_key(*k)) {
        return Err(format!(
            "group {group} lacks hyperparameter {k} (expected: {})",
            known()
        ));
    }
    if let Some(k) = saved.keys().find(|k| !current.contains_key(*k)) {
        return Err(format!(
            "group {group} has unknown hyperparameter {k} (expected: {})",
            known()
        ));
    }
    match saved.iter().find(|(_, v)| v.is_nan()) {
        Some((k, _)) => Err(format!("group {group}: hyperparameter {k} is NaN")),
        None => Ok(()),
    }
}

/// One parameter's saved state against its shape and the optimizer's layout.
fn check_param_state<T: Element>(
    ps: &ParamState<T>,
    shape: &[usize],
    layout: &StateLayout,
) -> std::result::Result<(), String> {
    if ps.step > MAX_STEPS {
        return Err(format!("step {} exceeds {MAX_STEPS}", ps.step));
    }
    if ps.step == 0 {
        if let Some(k) = ps.buffers.keys().chain(ps.scalars.keys()).next() {
            return Err(format!("has not stepped but has state {k}"));
        }
        return Ok(());
    }
    for k in layout.buffers {
        if !ps.buffers.contains_key(*k) {
            return Err(format!("lacks buffer {k} (step {})", ps.step));
        }
    }
    for (k, t) in &ps.buffers {
        if !layout.buffers.contains(&k.as_str()) && !layout.optional.contains(&k.as_str()) {
            let mut expected = layout.buffers.to_vec();
            expected.extend(layout.optional);
            return Err(format!(
                "unknown buffer {k} (expected: {})",
                expected.join(", ")
            ));
        }
        if t.shape() != shape {
            return Err(format!(
                "buffer {k} has shape {:?}, expected the parameter's {shape:?}",
                t.shape()
            ));
        }
    }
    let names: Vec<&str> = ps.scalars.keys().map(String::as_str).collect();
    let mut want = layout.scalars.to_vec();
    want.sort_unstable();
    if names != want {
        return Err(format!(
            "has scalars [{}], expected [{}]",
            names.join(", "),
            want.join(", ")
        ));
    }
    match ps.scalars.iter().find(|(_, v)| !v.is_finite()) {
        Some((k, v)) => Err(format!("scalar {k} is {v}, expected a finite value")),
        None => Ok(()),
    }
}
