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
/// use chainrule_optim::{optimizer_by_name, Hyper};
/// use chainrule_tape::{Parameter, Tensor};
/// let p = Parameter::new(Tensor::<f32>::zeros([3]));
/// let opt = optimizer_by_name("nesterov", vec![p], Some(0.05)).unwrap();
/// assert_eq!(opt.hyperparameter(0, "momentum").unwrap(), Hyper::F64(0.9));
/// assert!(optimizer_by_name::<f32>("adamm", vec![], None).is_err());
/// ```
pub fn optimizer_by_name<T: Element>(
    name: &str,
    params: Vec<Parameter<T>>,
    lr: Option<f64>,
) -> Result<Box<dyn Optimizer<T>>> {
    let p = params;
    match name {
        "sgd" => boxed(Sgd::new, p, SgdConfig::default(), lr),
        "momentum" => boxed(Sgd::new, p, sgd_momentum(false), lr),
        "nesterov" => boxed(Sgd::new, p, sgd_momentum(true), lr),
        "adagrad" => boxed(Adagrad::new, p, AdagradConfig::default(), lr),
        "rmsprop" => boxed(Rmsprop::new, p, RmspropConfig::default(), lr),
        "adadelta" => boxed(Adadelta::new, p, AdadeltaConfig::default(), lr),
        "adam" => boxed(Adam::new, p, AdamConfig::default(), lr),
        "amsgrad" => {
            let amsgrad = AdamConfig {
                amsgrad: true,
                ..Default::default()
            };
            boxed(Adam::new, p, amsgrad, lr)
        }
        "adamw" => boxed(Adam::new, p, AdamConfig::adamw(), lr),
        "adamax" => boxed(Adamax::new, p, AdamaxConfig::default(), lr),
        "nadam" => boxed(Nadam::new, p, NadamConfig::default(), lr),
        "radam" => boxed(Radam::new, p, RadamConfig::default(), lr),
        "rprop" => boxed(Rprop::new, p, RpropConfig::default(), lr),
        "asgd" => boxed(Asgd::new, p, AsgdConfig::default(), lr),
        "lion" => boxed(Lion::new, p, LionConfig::default(), lr),
        "quickprop" => boxed(Quickprop::new, p, QuickpropConfig::default(), lr),
        other => Err(Error::argument(
            "optimizer_by_name",
            format!(
                "no optimizer called {other:?}; known: {}",
                OPTIMIZER_NAMES.join(", ")
            ),
        )),
    }
}

/// SGD with momentum 0.9 (and Nesterov's correction if asked).
fn sgd_momentum(nesterov: bool) -> SgdConfig {
    SgdConfig {
        momentum: 0.9,
        nesterov,
        ..Default::default()
    }
}

/// `new(params, config)` with the learning rate `lr` if given, boxed.
fn boxed<T: Element, C: OptimizerConfig, O: Optimizer<T> + 'static>(
    new: fn(Vec<Parameter<T>>, C) -> Result<O>,
    params: Vec<Parameter<T>>,
    mut config: C,
    lr: Option<f64>,
) -> Result<Box<dyn Optimizer<T>>> {
    if let Some(lr) = lr {
        config.set("lr", Hyper::F64(lr))?;
    }
    Ok(Box::new(new(params, config)?))
}
