//! Optimizers chosen by name at run time (command-line flags, comparisons).

use crate::*;
use chainrule_tape::error::{Error, Result};
use chainrule_tape::{Element, Parameter};

/// Names accepted by [`optimizer_by_name`], in the lecture notes' order.
pub const OPTIMIZER_NAMES: &[&str] = &[
    "sgd",
    "momentum",
    "nesterov",
    "adagrad",
    "rmsprop",
    "adadelta",
    "adam",
    "amsgrad",
    "adamw",
    "adamax",
    "nadam",
    "radam",
    "rprop",
    "asgd",
    "lion",
    "quickprop",
];

/// The optimizer called `name` over `params` with PyTorch's defaults, and
/// learning rate `lr` if given. `momentum` and `nesterov` are SGD with
/// momentum 0.9 (and Nesterov's correction); `amsgrad` and `adamw` are Adam's
/// variants.
///
/// ```
/// use chainrule_optim::optimizer_by_name;
/// use chainrule_tape::{Parameter, Tensor};
/// let p = Parameter::new(Tensor::<f32>::zeros([3]));
/// let opt = optimizer_by_name("nesterov", vec![p], Some(0.05)).unwrap();
/// assert_eq!(opt.get(0, "momentum").unwrap(), 0.9);
/// assert!(optimizer_by_name::<f32>("adamm", vec![], None).is_err());
/// ```
pub fn optimizer_by_name<T: Element>(
    name: &str,
    params: Vec<Parameter<T>>,
    lr: Option<f64>,
) -> Result<Box<dyn Optimizer<T>>> {
    fn pick(lr: Option<f64>, default: f64) -> f64 {
        lr.unwrap_or(default)
    }
    let sgd = |momentum: f64, nesterov: bool| SgdConfig {
        lr: pick(lr, SgdConfig::default().lr),
        momentum,
        nesterov,
        ..Default::default()
    };
    let adam = |base: AdamConfig| AdamConfig {
        lr: pick(lr, base.lr),
        ..base
    };
    Ok(match name {
        "sgd" => Box::new(Sgd::new(params, sgd(0.0, false))?),
        "momentum" => Box::new(Sgd::new(params, sgd(0.9, false))?),
        "nesterov" => Box::new(Sgd::new(params, sgd(0.9, true))?),
        "adam" => Box::new(Adam::new(params, adam(AdamConfig::default()))?),
        "amsgrad" => Box::new(Adam::new(
            params,
            adam(AdamConfig {
                amsgrad: true,
                ..Default::default()
            }),
        )?),
        "adamw" => Box::new(Adam::new(params, adam(AdamConfig::adamw()))?),
        "adagrad" => {
            let d = AdagradConfig::default();
            Box::new(Adagrad::new(
                params,
                AdagradConfig {
                    lr: pick(lr, d.lr),
                    ..d
                },
            )?)
        }
        "rmsprop" => {
            let d = RmspropConfig::default();
            Box::new(Rmsprop::new(
                params,
                RmspropConfig {
                    lr: pick(lr, d.lr),
                    ..d
                },
            )?)
        }
        "adadelta" => {
            let d = AdadeltaConfig::default();
            Box::new(Adadelta::new(
                params,
                AdadeltaConfig {
                    lr: pick(lr, d.lr),
                    ..d
                },
            )?)
        }
        "adamax" => {
            let d = AdamaxConfig::default();
            Box::new(Adamax::new(
                params,
                AdamaxConfig {
                    lr: pick(lr, d.lr),
                    ..d
                },
            )?)
        }
        "nadam" => {
            let d = NadamConfig::default();
            Box::new(Nadam::new(
                params,
                NadamConfig {
                    lr: pick(lr, d.lr),
                    ..d
                },
            )?)
        }
        "radam" => {
            let d = RadamConfig::default();
            Box::new(Radam::new(
                params,
                RadamConfig {
                    lr: pick(lr, d.lr),
                    ..d
                },
            )?)
        }
        "rprop" => {
            let d = RpropConfig::default();
            Box::new(Rprop::new(
                params,
                RpropConfig {
                    lr: pick(lr, d.lr),
                    ..d
                },
            )?)
        }
        "asgd" => {
            let d = AsgdConfig::default();
            Box::new(Asgd::new(
                params,
                AsgdConfig {
                    lr: pick(lr, d.lr),
                    ..d
                },
            )?)
        }
        "lion" => {
            let d = LionConfig::default();
            Box::new(Lion::new(
                params,
                LionConfig {
                    lr: pick(lr, d.lr),
                    ..d
                },
            )?)
        }
        "quickprop" => {
            let d = QuickpropConfig::default();
            Box::new(Quickprop::new(
                params,
                QuickpropConfig {
                    lr: pick(lr, d.lr),
                    ..d
                },
            )?)
        }
        other => {
            return Err(Error::argument(
                "optimizer_by_name",
                format!(
                    "no optimizer called {other:?}; known: {}",
                    OPTIMIZER_NAMES.join(", ")
                ),
            ))
        }
    })
}
