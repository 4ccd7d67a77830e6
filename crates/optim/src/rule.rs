//! Shared machinery for optimizers whose update is elementwise: state
//! buffers taken out of the saved state, one rule applied per parameter,
//! buffers put back; and the `Optimizer` boilerplate as a macro.

use crate::effective_grad;
use crate::group::{ParamGroup, ParamState};
use chainrule_tape::{Element, Tensor};
use std::collections::BTreeMap;

/// Runs `rule(config, step, buffers, scalars, param, grad)` for every
/// parameter that has a gradient. `grad` already includes `maximize` and
/// `weight_decay·θ`, as `grad_terms(config)` = (maximize, L2 weight decay)
/// says. Buffers named in `buffers` start at `init(config, name)`.
pub(crate) fn step_each<T: Element, C>(
    groups: &[ParamGroup<T, C>],
    states: &mut [ParamState<T>],
    buffers: &[&str],
    grad_terms: impl Fn(&C) -> (bool, f64),
    init: impl Fn(&C, &str) -> f64,
    mut rule: impl FnMut(&C, u64, &mut [Vec<T>], &mut BTreeMap<String, f64>, &mut [T], &[T]),
) {
    let mut index = 0;
    for g in groups {
        let (maximize, wd) = grad_terms(&g.config);
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
                    None => vec![T::from_f64(init(&g.config, name)); grad.len()],
                })
                .collect();
            let scalars = &mut state.scalars;
            p.update(|value, _| {
                rule(
                    &g.config,
                    state.step,
                    &mut bufs,
                    scalars,
                    value.data_mut(),
                    &grad,
                )
            });
            for (name, b) in buffers.iter().zip(bufs) {
                state
                    .buffers
                    .insert(name.to_string(), Tensor::from_vec(p.shape(), b));
            }
        }
    }
}

/// Declares an optimizer struct (with the given doc comment) over groups
/// of `$cfg` (an [`crate::OptimizerConfig`]), its constructors and typed
/// accessors, and its [`crate::Optimizer`] impl, given an inherent
/// `fn step_impl(&mut self)` and the state layout `$layout`.
macro_rules! optimizer_impl {
    ($(#[$doc:meta])* $ty:ident, $cfg:ty, $layout:expr) => {
        $(#[$doc])*
        pub struct $ty<T: Element> {
            groups: Vec<$crate::ParamGroup<T, $cfg>>,
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
                    $crate::OptimizerConfig::validate(&config)?;
                    out.push($crate::ParamGroup { params, config });
                }
                let n = out.iter().map(|g| g.params.len()).sum();
                Ok($ty {
                    groups: out,
                    states: vec![$crate::ParamState::default(); n],
                })
            }

            /// The groups, with their typed settings.
            pub fn groups(&self) -> &[$crate::ParamGroup<T, $cfg>] {
                &self.groups
            }

            /// Replaces group `group`'s settings, if they are valid.
            pub fn set_config(
                &mut self,
                group: usize,
                config: $cfg,
            ) -> chainrule_tape::error::Result<()> {
                $crate::OptimizerConfig::validate(&config)?;
                let name = <$cfg as $crate::OptimizerConfig>::OPTIMIZER;
                let g = self
                    .groups
                    .get_mut(group)
                    .ok_or_else(|| $crate::no_group(name, group))?;
                g.config = config;
                Ok(())
            }
        }

        impl<T: Element> $crate::Optimizer<T> for $ty<T> {
            fn name(&self) -> &str {
                <$cfg as $crate::OptimizerConfig>::OPTIMIZER
            }
            fn num_groups(&self) -> usize {
                self.groups.len()
            }
            fn params(&self, group: usize) -> &[chainrule_tape::Parameter<T>] {
                self.groups.get(group).map_or(&[], |g| &g.params)
            }
            fn hyperparameters(
                &self,
                group: usize,
            ) -> chainrule_tape::error::Result<Vec<(&'static str, $crate::Hyper)>> {
                Ok($crate::OptimizerConfig::hyperparameters(
                    &$crate::group_config(&self.groups, group)?.config,
                ))
            }
            fn hyperparameter(
                &self,
                group: usize,
                key: &str,
            ) -> chainrule_tape::error::Result<$crate::Hyper> {
                $crate::OptimizerConfig::get(&$crate::group_config(&self.groups, group)?.config, key)
            }
            fn set_hyperparameter(
                &mut self,
                group: usize,
                key: &str,
                value: $crate::Hyper,
            ) -> chainrule_tape::error::Result<()> {
                let name = <$cfg as $crate::OptimizerConfig>::OPTIMIZER;
                let g = self
                    .groups
                    .get_mut(group)
                    .ok_or_else(|| $crate::no_group(name, group))?;
                $crate::OptimizerConfig::set(&mut g.config, key, value)
            }
            fn state(&self) -> $crate::OptimizerState<T> {
                $crate::group::snapshot(&self.groups, &self.states)
            }
            fn load_state(
                &mut self,
                state: $crate::OptimizerState<T>,
            ) -> chainrule_tape::error::Result<()> {
                const LAYOUT: $crate::StateLayout = $layout;
                $crate::group::restore(&LAYOUT, &mut self.groups, &mut self.states, state)
            }
            fn step(&mut self) -> chainrule_tape::error::Result<()> {
                self.step_impl();
                Ok(())
            }
        }
    };
}
pub(crate) use optimizer_impl;
