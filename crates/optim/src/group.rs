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

/// Checks a saved state fits these groups, then installs it.
pub(crate) fn restore<T: Element>(
    name: &str,
    groups: &mut [ParamGroup<T>],
    states: &mut Vec<ParamState<T>>,
    state: OptimizerState<T>,
) -> Result<()> {
    if state.optimizer != name {
        return Err(Error::argument(
            name.to_string(),
            format!("cannot load a {} state", state.optimizer),
        ));
    }
    let count: usize = groups.iter().map(|g| g.params.len()).sum();
    if state.groups.len() != groups.len() || state.params.len() != count {
        return Err(Error::argument(
            name.to_string(),
            format!(
                "state has {} groups and {} parameters, optimizer has {} and {}",
                state.groups.len(),
                state.params.len(),
                groups.len(),
                count
            ),
        ));
    }
    let shapes = groups
        .iter()
        .flat_map(|g| g.params.iter().map(|p| p.shape()));
    for (i, (ps, shape)) in state.params.iter().zip(shapes).enumerate() {
        if let Some((k, t)) = ps
            .buffers
            .iter()
            .find(|(_, t)| t.shape() != shape.as_slice())
        {
            return Err(Error::shape(
                name.to_string(),
                format!(
                    "parameter {i}: buffer {k} has shape {:?}, parameter {:?}",
                    t.shape(),
                    shape
                ),
            ));
        }
    }
    for (g, h) in groups.iter_mut().zip(state.groups) {
        g.hyper = h;
    }
    *states = state.params;
    Ok(())
}
