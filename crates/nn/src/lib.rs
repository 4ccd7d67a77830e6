#![deny(missing_docs)]
//! # chainrule-nn
//!
//! Modules as in `torch.nn`: the [`Module`] trait (forward on `Var`s, named
//! parameters and buffers, train/eval, summary), layers with PyTorch's
//! default initialisation, [`init`] (every initializer of the lecture notes,
//! explicit RNG), [`regularize`] (L1/L2 penalties, max-norm), and
//! [`state`] (state dicts to and from safetensors files, interoperable
//! with PyTorch).
//!
//! ```
//! use chainrule_nn::{Linear, Module, Relu, Sequential};
//! use chainrule_ops::VarOps;
//! use chainrule_tape::{Graph, Tensor};
//! use rand::SeedableRng;
//!
//! let mut rng = rand::rngs::StdRng::seed_from_u64(0);
//! let model = Sequential::new()
//!     .push(Linear::new(3, 4, &mut rng))
//!     .push(Relu)
//!     .push(Linear::new(4, 2, &mut rng));
//! // Parameters are named by position, as in a PyTorch state dict.
//! let names: Vec<String> = model.named_parameters().into_iter().map(|(n, _)| n).collect();
//! assert_eq!(names, ["0.weight", "0.bias", "2.weight", "2.bias"]);
//!
//! // One step's graph: forward a batch of 5, backward fills every parameter's grad.
//! let g = Graph::new();
//! let y = model.forward(&g, &g.input(Tensor::from_vec([5, 3], vec![0.1f32; 15])));
//! assert_eq!(y.shape(), &[5, 2]);
//! y.mean_all().backward();
//! assert!(model.parameters().iter().all(|p| p.grad().is_some()));
//! ```

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
