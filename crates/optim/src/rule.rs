//! Shared machinery for optimizers whose update is elementwise: state
//! buffers taken out of the saved state, one rule applied per parameter,
//! buffers put back; and the `Optimizer` boilerplate as a macro.

use crate::effective_grad;
use crate::group::{ParamGroup, ParamState};
use chainrule_tape::{Element, Tensor};

/// Runs `rule(group, step, buffers, scalars, param, grad)` for every parameter that
/// has a gradient. `grad` already includes `maximize` and (if `l2_decay`)
/// `weight_decay·θ`. Buffers named in `buffers` start at `init(group, name)`.
pub(crate) fn step_each<T: Element>(
    groups: &[ParamGroup<T>],
    states: &mut [ParamState<T>],
    buffers: &[&str],
    l2_decay: bool,
    init: impl Fn(&ParamGroup<T>, &str) -> f64,
    mut rule: impl FnMut(
        &ParamGroup<T>,
        u64,
        &mut [Vec<T>],
        &mut std::collections::BTreeMap<String, f64>,
        &mut [T],
        &[T],
    ),
) {
    let mut index = 0;
    for g in groups {
        let maximize = g.get("maximize").is_some_and(|m| m != 0.0);
        let wd = if l2_decay {
            g.get("weight_decay").unwrap_or(0.0)
        } else {
            0.0
        };
        for p in &g.params {
            let state = &mut states[index];
            index += 1;
            let Some(grad) = effective_grad(p, maximize, wd) else {
                continue;
            };
            state.step += 1;
            let mut bufs: Vec<Vec<T>> = buffers
                .iter()
                .map(|name| match state.buffers.remove(*name) {
                    Some(t) => t.to_vec(),
                    None => vec![T::from_f64(init(g, name)); grad.len()],
                })
                .collect();
            let scalars = &mut state.scalars;
            p.update(|value, _| rule(g, state.step, &mut bufs, scalars, value.data_mut(), &grad));
            for (name, b) in buffers.iter().zip(bufs) {
                state
                    .buffers
                    .insert(name.to_string(), Tensor::from_vec(p.shape(), b));
            }
        }
    }
}

/// An optimizer's per-group settings: how to check them and how they appear
/// as named hyperparameters (booleans as 0/1).
pub trait OptimizerConfig: Copy {
    /// The optimizer's name, for errors.
    const NAME: &'static str;
    /// What a parameter's saved state holds once it has stepped (checked
    /// by `load_state` before anything is restored).
    const STATE: crate::group::StateLayout;
    /// Rejects invalid settings (negative rates, betas outside [0, 1)...).
    fn validate(&self) -> chainrule_tape::error::Result<()>;
    /// The settings as (name, value) pairs.
    fn hyperparameters(&self) -> Vec<(&'static str, f64)>;
}

/// Errors on the first of `values` that is negative or NaN.
pub(crate) fn check_non_negative(
    name: &'static str,
    values: &[(&str, f64)],
) -> chainrule_tape::error::Result<()> {
    match values.iter().find(|(_, v)| !crate::non_negative(*v)) {
        Some((k, v)) => Err(chainrule_tape::error::Error::argument(
            name,
            format!("invalid {k} {v}"),
        )),
        None => Ok(()),
    }
}

/// Errors unless both betas lie in [0, 1).
pub(crate) fn check_betas(
    name: &'static str,
    b1: f64,
    b2: f64,
) -> chainrule_tape::error::Result<()> {
    if (0.0..1.0).contains(&b1) && (0.0..1.0).contains(&b2) {
        Ok(())
    } else {
        Err(chainrule_tape::error::Error::argument(
            name,
            format!("betas must lie in [0, 1), got ({b1}, {b2})"),
        ))
    }
}

/// Declares an optimizer struct (with the given doc comment), its `new` /
/// `with_groups` constructors and its [`crate::Optimizer`] impl, given an
/// inherent `fn step_impl(&mut self)` and a `$cfg: OptimizerConfig`.
macro_rules! optimizer_impl {
    ($(#[$doc:meta])* $ty:ident, $cfg:ty, $name:expr) => {
        $(#[$doc])*
        pub struct $ty<T: Element> {
            groups: Vec<$crate::ParamGroup<T>>,
            states: Vec<$crate::ParamState<T>>,
        }

        impl<T: Element> $ty<T> {
            /// The optimizer over one group of parameters.
            pub fn new(
                params: Vec<chainrule_tape::Parameter<T>>,
                config: $cfg,
            ) -> chainrule_tape::error::Result<Self> {
                Self::with_groups(vec![(params, config)])
            }

            /// The optimizer over several groups, each with its own settings.
            pub fn with_groups(
                groups: Vec<(Vec<chainrule_tape::Parameter<T>>, $cfg)>,
            ) -> chainrule_tape::error::Result<Self> {
                let mut out = Vec::with_capacity(groups.len());
                for (params, config) in groups {
                    $crate::rule::OptimizerConfig::validate(&config)?;
                    out.push($crate::ParamGroup::new(
                        params,
                        &$crate::rule::OptimizerConfig::hyperparameters(&config),
                    ));
                }
                let n = out.iter().map(|g| g.params.len()).sum();
                Ok($ty {
                    groups: out,
                    states: vec![$crate::ParamState::default(); n],
                })
            }
        }

        impl<T: Element> $crate::Optimizer<T> for $ty<T> {
            fn name(&self) -> &str {
                $name
            }
            fn groups(&self) -> &[$crate::ParamGroup<T>] {
                &self.groups
            }
            fn groups_mut(&mut self) -> &mut [$crate::ParamGroup<T>] {
                &mut self.groups
            }
            fn state(&self) -> $crate::OptimizerState<T> {
                $crate::group::snapshot($name, &self.groups, &self.states)
            }
            fn load_state(
                &mut self,
                state: $crate::OptimizerState<T>,
            ) -> chainrule_tape::error::Result<()> {
                $crate::group::restore(
                    $name,
                    &<$cfg as $crate::rule::OptimizerConfig>::STATE,
                    &mut self.groups,
                    &mut self.states,
                    state,
                )
            }
            fn step(&mut self) -> chainrule_tape::error::Result<()> {
                self.step_impl();
                Ok(())
            }
        }
    };
}
pub(crate) use optimizer_impl;
