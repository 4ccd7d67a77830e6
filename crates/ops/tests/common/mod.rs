//! Shared by the tests that read PyTorch fixtures (`tests/fixtures/torch/`).

use chainrule_tape::Tensor;
use serde::Deserialize;

/// A tensor as the fixture scripts write it: its shape and row-major data.
#[derive(Deserialize)]
pub struct Json {
    pub shape: Vec<usize>,
    pub data: Vec<f64>,
}

impl Json {
    /// The fixture's values as an f64 tensor.
    pub fn tensor(&self) -> Tensor<f64> {
        Tensor::from_vec(&self.shape, self.data.clone())
    }
}
