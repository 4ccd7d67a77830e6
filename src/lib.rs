#![warn(missing_docs)]
//! # chainrule
//!
//! A define-by-run deep-learning framework with higher-order reverse-mode
//! automatic differentiation. This crate re-exports the workspace's crates;
//! `use chainrule::prelude::*` brings in what user code needs.

pub use chainrule_data as data;
pub use chainrule_nn as nn;
pub use chainrule_ops as ops;
pub use chainrule_optim as optim;
pub use chainrule_tape as tape;

/// The training helper (`Trainer`, checkpoints, metrics, plots): the
/// `chainrule-train` crate, with the `train` feature.
#[cfg(feature = "train")]
pub use chainrule_train as training;

/// The names most programs use.
pub mod prelude {
    pub use chainrule_nn::{Module, Sequential};
    pub use chainrule_ops::loss::{self, ClassLossOptions, Reduction};
    pub use chainrule_ops::{
        adaptive_avg_pool2d, argmax, argmin, avg_pool2d, batch_norm, concat, conv1d, conv2d,
        conv_transpose2d, dropout, layer_norm, max_pool2d, one_hot, stack, topk_indices, where_,
        Compare, Gelu, Indices, VarOps, Window,
    };
    pub use chainrule_optim::{
        Adadelta, AdadeltaConfig, Adagrad, AdagradConfig, Adam, AdamConfig, Adamax, AdamaxConfig,
        Optimizer, Rmsprop, RmspropConfig, Sgd, SgdConfig,
    };
    pub use chainrule_tape::{
        grad, gradcheck, gradgradcheck, no_grad, try_grad, BackwardContext, BackwardOptions,
        CustomOp, Element, Error, ErrorKind, GradOptions, Graph, InputGrads, Parameter, Tensor,
        Var,
    };
}

/// The README's examples, compiled and run as doctests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
