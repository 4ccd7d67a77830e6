#![deny(missing_docs)]
//! # chainrule
//!
//! A define-by-run deep-learning framework with higher-order reverse-mode
//! automatic differentiation. `use chainrule::prelude::*` brings in what user
//! code needs.
//!
//! ```
//! use chainrule::prelude::*;
//!
//! // Build the graph by running the code: y = tanh(w·x + b).
//! let g = Graph::new();
//! let x = g.leaf(Tensor::scalar(0.5f64));
//! let w = g.leaf(Tensor::scalar(-1.5f64));
//! let b = g.leaf(Tensor::scalar(0.2f64));
//! let y = (&w * &x + &b).tanh();
//!
//! // First derivatives, kept in the graph, then differentiated again.
//! let [dy_dw] = grad(&y, [&w], true);
//! let [d2y_dw2] = grad(&dy_dw, [&w], false);
//! // dy/dw = x·(1 − y²); d²y/dw² = −2·x²·y·(1 − y²).
//! let (yv, xv) = (y.item(), 0.5);
//! assert!((dy_dw.item() - xv * (1.0 - yv * yv)).abs() < 1e-12);
//! assert!((d2y_dw2.item() + 2.0 * xv * xv * yv * (1.0 - yv * yv)).abs() < 1e-12);
//! ```
//!
//! ## The crates
//!
//! This package is a facade: each module below re-exports one crate of the
//! workspace, so a project depends on `chainrule` alone.
//!
//! | module | crate | what |
//! |---|---|---|
//! | [`tape`] | `chainrule-tape` | tensors, the graph, the reverse-mode engine, `grad`, gradcheck, custom ops |
//! | [`ops`] | `chainrule-ops` | every differentiable op beyond arithmetic, as methods through `VarOps` |
//! | [`nn`] | `chainrule-nn` | the `Module` trait, layers, initializers, safetensors state dicts |
//! | [`optim`] | `chainrule-optim` | optimizers, learning-rate schedules, gradient clipping |
//! | [`data`] | `chainrule-data` | IDX and Fashion-MNIST reading, datasets, loaders, transforms |
//! | `training` | `chainrule-train` | the `Trainer` loop helper, checkpoints, metrics, plots: only with the `train` feature |
//!
//! The library pulls in none of the program's dependencies (no clap,
//! plotters, indicatif, mimalloc, contour or proptest; the `train` feature
//! adds plotters and indicatif for the training helper's plots and progress
//! bar). The `chainrule` program (`train`, `bench`, `gradcheck`, `explain`,
//! …) is the separate `chainrule-cli` package in `crates/cli`.

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
        conv_transpose2d, dropout, layer_norm, max_pool2d, one_hot, stack, topk_indices,
        try_adaptive_avg_pool2d, try_argmax, try_argmin, try_avg_pool2d, try_batch_norm,
        try_concat, try_conv1d, try_conv2d, try_conv_transpose2d, try_dropout, try_layer_norm,
        try_max_pool2d, try_one_hot, try_stack, try_topk_indices, try_where_, where_, Compare,
        Conv1dOptions, Conv2dOptions, ConvTranspose2dOptions, GeluApproximation, Indices,
        Pool2dOptions, Size2, Transpose, VarOps, Window,
    };
    pub use chainrule_optim::{
        clip_grad_norm, clip_grad_value, Adadelta, AdadeltaConfig, Adagrad, AdagradConfig, Adam,
        AdamConfig, Adamax, AdamaxConfig, Asgd, AsgdConfig, ChainedLr, ClipGradNormOptions,
        ConstantLr, CosineAnnealingLr, CosineAnnealingWarmRestarts, CyclicLr, ExponentialLr, Hyper,
        LambdaLr, Lbfgs, LbfgsConfig, LineSearchFn, LinearLr, MultiStepLr, MultiplicativeLr, Nadam,
        NadamConfig, OneCycleLr, Optimizer, OptimizerConfig, PlateauConfig, PolynomialLr, Radam,
        RadamConfig, ReduceLrOnPlateau, Rmsprop, RmspropConfig, Rprop, RpropConfig, Schedule,
        Scheduler, SequentialLr, Sgd, SgdConfig, StepLr,
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
