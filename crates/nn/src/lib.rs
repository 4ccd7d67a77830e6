#![deny(missing_docs)]
//! # chainrule-nn
//!
//! Modules as in `torch.nn`: the [`Module`] trait (forward on `Var`s, named
//! parameters and buffers, train/eval, summary), layers with PyTorch's
//! default initialisation, [`init`] (every initializer of the lecture notes,
//! explicit RNG), [`regularize`] (L1/L2 penalties, max-norm), and
//! [`state`] (state dicts to and from safetensors files, interoperable
//! with PyTorch).

mod activation;
pub mod init;
mod layers;
mod module;
mod norm;
pub mod regularize;
mod sequential;
pub mod state;

pub use activation::*;
pub use layers::{
    AdaptiveAvgPool2d, AvgPool2d, Conv1d, Conv2d, ConvOptions, ConvTranspose2d, Embedding, Flatten,
    Linear, MaxPool2d,
};
pub use module::{join, Buffer, Module};
pub use norm::{BatchNorm, BatchNormOptions, Dropout, LayerNorm};
pub use sequential::Sequential;
