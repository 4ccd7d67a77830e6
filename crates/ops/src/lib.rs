//! placeholder
pub trait VarOps {}
