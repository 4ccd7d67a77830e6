//! `Sequential`: layers applied in order, named "0", "1", … as in PyTorch.

use crate::module::{join, Buffer, Module};
use chainrule_tape::error::Result;
use chainrule_tape::{Element, Graph, Parameter, Var};

/// Layers applied one after another (`torch.nn.Sequential`).
pub struct Sequential<T: Element = f32> {
    layers: Vec<Box<dyn Module<T> + Send + Sync>>,
}

impl<T: Element> Default for Sequential<T> {
    fn default() -> Self {
        Sequential { layers: Vec::new() }
    }
}

impl<T: Element> Sequential<T> {
    /// An empty sequence.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a layer (builder style).
    pub fn push(mut self, layer: impl Module<T> + Send + Sync + 'static) -> Self {
        self.layers.push(Box::new(layer));
        self
    }

    /// The number of layers.
    pub fn len(&self) -> usize {
        self.layers.len()
    }

    /// Whether there are no layers.
    pub fn is_empty(&self) -> bool {
        self.layers.is_empty()
    }

    /// Layer `i`.
    pub fn layer(&self, i: usize) -> Option<&(dyn Module<T> + Send + Sync)> {
        self.layers.get(i).map(|b| &**b)
    }
}

impl<T: Element> Module<T> for Sequential<T> {
    fn try_forward(&self, g: &Graph<T>, x: &Var<T>) -> Result<Var<T>> {
        let mut h = x.clone();
        for layer in &self.layers {
            h = layer.try_forward(g, &h)?;
        }
        Ok(h)
    }
    fn visit_parameters(&self, prefix: &str, f: &mut dyn FnMut(String, &Parameter<T>)) {
        for (i, layer) in self.layers.iter().enumerate() {
            layer.visit_parameters(&join(prefix, &i.to_string()), f);
        }
    }
    fn visit_buffers(&self, prefix: &str, f: &mut dyn FnMut(String, &Buffer<T>)) {
        for (i, layer) in self.layers.iter().enumerate() {
            layer.visit_buffers(&join(prefix, &i.to_string()), f);
        }
    }
    fn set_training(&mut self, training: bool) {
        for layer in &mut self.layers {
            layer.set_training(training);
        }
    }
    fn describe(&self) -> String {
        format!("Sequential({} layers)", self.layers.len())
    }
    fn reseed(&self, seed: u64) {
        for (i, layer) in self.layers.iter().enumerate() {
            layer.reseed(seed ^ (i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        }
    }
    fn children(&self) -> Vec<(String, &dyn Module<T>)> {
        self.layers
            .iter()
            .enumerate()
            .map(|(i, l)| (i.to_string(), &**l as &dyn Module<T>))
            .collect()
    }
}
