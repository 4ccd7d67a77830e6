#![deny(missing_docs)]
//! # chainrule-tape
//!
//! Tensors, the define-by-run graph (a `slotmap` arena), the reverse-mode
//! engine (iterative, higher order), parameters, and gradient checking.
//!
//! The flow of one step: ops compute their value eagerly and record a node
//! ([`Var::from_op`]); [`Var::backward`] walks the nodes from the newest to
//! the oldest, calling each op's backward (written in differentiable ops, so
//! [`grad`] with `create_graph` can go again), and frees what it walked.
//!
//! ```
//! use chainrule_tape::{gradcheck, Graph, Tensor};
//!
//! // y = x³ + 2x, elementwise; backward fills x's gradient 3x² + 2.
//! let g = Graph::new();
//! let x = g.leaf(Tensor::from_vec([3], vec![-1.0f64, 0.5, 2.0]));
//! let y = &(&(&x * &x) * &x) + &(&x * 2.0);
//! y.sum_to(&[]).backward();
//! assert_eq!(x.grad().unwrap().data(), &[5.0, 2.75, 14.0]);
//!
//! // The same derivative, checked against central finite differences.
//! let report = gradcheck(|v| (&(&(&v[0] * &v[0]) * &v[0]) + &(&v[0] * 2.0)).sum_to(&[]),
//!                        &[Tensor::from_vec([3], vec![-1.0, 0.5, 2.0])]);
//! assert!(report.passed(), "{report}");
//! ```

pub mod anomaly;
pub mod arith;
mod backward;
pub mod custom;
pub mod element;
pub mod error;
pub mod functional;
pub mod gradcheck;
mod graph;
pub mod inspect;
pub mod kernels;
mod mode;
pub mod op;
mod overloads;
mod param;
pub mod shape;
mod tensor;
pub mod tensor_ops;
mod var;

pub use anomaly::{detect_anomaly, is_anomaly_enabled, set_detect_anomaly, AnomalyGuard};
pub use backward::{grad, try_grad, BackwardOptions, GradOptions};
pub use custom::{apply_custom, CustomOp};
pub use element::Element;
pub use error::{Error, ErrorKind, Result};
pub use functional::{hessian, hvp, jacobian, jvp, vjp};
pub use gradcheck::{
    gradcheck, gradcheck_with, gradgradcheck, gradgradcheck_with, try_gradcheck_with,
    try_gradgradcheck_with, GradcheckOptions, GradcheckReport,
};
pub use graph::{Graph, NodeKey};
pub use inspect::{BackwardTrace, Contribution, TraceStep};
pub use mode::{is_grad_enabled, no_grad, set_grad_enabled, GradModeGuard};
pub use op::{BackwardContext, InputGrads, Op};
pub use param::Parameter;
pub use shape::Shape;
pub use tensor::Tensor;
pub use var::{HookHandle, Var};
