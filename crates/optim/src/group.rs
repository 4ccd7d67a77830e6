//! Parameter groups and the saved optimizer state.

use crate::hyper::{Hyper, OptimizerConfig};
use chainrule_tape::error::{Error, Result};
use chainrule_tape::{Element, Parameter, Tensor};
use std::collections::BTreeMap;

/// Parameters sharing one set of hyperparameters (one of PyTorch's
/// `param_groups`), with their settings as the optimizer's typed config.
pub struct ParamGroup<T: Element, C> {
    /// The parameters.
    pub params: Vec<Parameter<T>>,
    /// The group's settings.
    pub config: C,
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
    /// Each group's hyperparameters as numbers, by [`flatten_hyperparameters`]'s
    /// rule (a bool as 0 or 1, a pair `betas` as `betas.0` and `betas.1`).
    pub groups: Vec<BTreeMap<String, f64>>,
    /// Per parameter, in group order then parameter order.
    pub params: Vec<ParamState<T>>,
}

/// Snapshot of `groups` and `states` as an [`OptimizerState`].
pub(crate) fn snapshot<T: Element, C: OptimizerConfig>(
    groups: &[ParamGroup<T, C>],
    states: &[ParamState<T>],
) -> OptimizerState<T> {
    OptimizerState {
        optimizer: C::OPTIMIZER.to_string(),
        groups: groups
            .iter()
            .map(|g| flatten_hyperparameters(&g.config.hyperparameters()))
            .collect(),
        params: states.to_vec(),
    }
}

/// Hyperparameters as a map of numbers, the form saved states and
/// checkpoints store: a number under its name, a bool as 0 or 1, a pair
/// `betas` as `betas.0` and `betas.1`.
pub fn flatten_hyperparameters(list: &[(&str, Hyper)]) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for &(name, value) in list {
        match value {
            Hyper::F64(v) => {
                out.insert(name.to_string(), v);
            }
            Hyper::Bool(b) => {
                out.insert(name.to_string(), if b { 1.0 } else { 0.0 });
            }
            Hyper::Pair(a, b) => {
                out.insert(format!("{name}.0"), a);
                out.insert(format!("{name}.1"), b);
            }
        }
    }
    out
}

/// Names of pairs in states saved before pairs existed (`beta1`, `beta2`).
const LEGACY_PAIRS: &[(&str, [&str; 2])] = &[
    ("betas", ["beta1", "beta2"]),
    ("etas", ["eta_minus", "eta_plus"]),
    ("step_sizes", ["step_size_min", "step_size_max"]),
];

/// The value of a hyperparameter a state saved by an older version lacks:
/// Adam's `decoupled_weight_decay` was its name (`"AdamW"`).
fn legacy_default(saved_optimizer: &str, key: &str) -> Option<Hyper> {
    match (saved_optimizer, key) {
        ("Adam", "decoupled_weight_decay") => Some(Hyper::Bool(false)),
        ("AdamW", "decoupled_weight_decay") => Some(Hyper::Bool(true)),
        _ => None,
    }
}

/// Whether a state saved as `saved` may be loaded by optimizer `name`
/// (the same name, or AdamW's state from before AdamW was Adam's flag).
pub(crate) fn same_optimizer(saved: &str, name: &str) -> bool {
    saved == name || (saved == "AdamW" && name == "Adam")
}

/// Group `group`'s config from its saved numbers: every hyperparameter
/// present (or one of its legacy names), none unknown or NaN, bools 0 or
/// 1, and the result valid.
fn unflatten<C: OptimizerConfig>(
    group: usize,
    saved_optimizer: &str,
    saved: &BTreeMap<String, f64>,
) -> std::result::Result<C, String> {
    let defaults = C::default().hyperparameters();
    let expected = || {
        let flat = flatten_hyperparameters(&defaults);
        flat.keys().cloned().collect::<Vec<_>>().join(", ")
    };
    let mut used: Vec<&str> = Vec::new();
    let mut take = |key: &str, legacy: Option<&'static str>| -> std::result::Result<f64, String> {
        let (k, v) = match (
            saved.get_key_value(key),
            legacy.and_then(|l| saved.get_key_value(l)),
        ) {
            (Some((k, v)), _) | (None, Some((k, v))) => (k, *v),
            (None, None) => {
                return Err(format!(
                    "group {group} lacks hyperparameter {key} (expected: {})",
                    expected()
                ))
            }
        };
        if v.is_nan() {
            return Err(format!("group {group}: hyperparameter {k} is NaN"));
        }
        used.push(k.as_str());
        Ok(v)
    };
    let mut config = C::default();
    for (name, default) in &defaults {
        let value = match default {
            Hyper::F64(_) => Hyper::F64(take(name, None)?),
            Hyper::Bool(_) => match legacy_default(saved_optimizer, name) {
                Some(old) if !saved.contains_key(*name) => old,
                _ => match take(name, None)? {
                    0.0 => Hyper::Bool(false),
                    1.0 => Hyper::Bool(true),
                    v => {
                        return Err(format!(
                            "group {group}: hyperparameter {name} is {v}, expected 0 or 1"
                        ))
                    }
                },
            },
            Hyper::Pair(..) => {
                let legacy = LEGACY_PAIRS
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, l)| *l);
                let a = take(&format!("{name}.0"), legacy.map(|l| l[0]))?;
                let b = take(&format!("{name}.1"), legacy.map(|l| l[1]))?;
                Hyper::Pair(a, b)
            }
        };
        config.assign(name, value).map_err(|e| e.message.clone())?;
    }
    if let Some(k) = saved.keys().find(|k| !used.contains(&k.as_str())) {
        return Err(format!(
            "group {group} has unknown hyperparameter {k} (expected: {})",
            expected()
        ));
    }
    config
        .validate()
        .map_err(|e| format!("group {group}: {}", e.message))?;
    Ok(config)
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
pub(crate) fn restore<T: Element, C: OptimizerConfig>(
    layout: &StateLayout,
    groups: &mut [ParamGroup<T, C>],
    states: &mut Vec<ParamState<T>>,
    state: OptimizerState<T>,
) -> Result<()> {
    let name = C::OPTIMIZER;
    let err = |message: String| Error::argument(name, message);
    if !same_optimizer(&state.optimizer, name) {
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
    let configs = state
        .groups
        .iter()
        .enumerate()
        .map(|(i, saved)| unflatten::<C>(i, &state.optimizer, saved))
        .collect::<std::result::Result<Vec<C>, String>>()
        .map_err(err)?;
    let shapes = groups
        .iter()
        .flat_map(|g| g.params.iter().map(|p| p.shape()));
    for (i, (ps, shape)) in state.params.iter().zip(shapes).enumerate() {
        check_param_state(ps, &shape, layout)
            .map_err(|m| Error::shape(name, format!("parameter {i}: {m}")))?;
    }
    for (g, c) in groups.iter_mut().zip(configs) {
        g.config = c;
    }
    *states = state.params;
    Ok(())
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
