//! The [`Module`] trait: a forward pass on `Var`s, named parameters and
//! buffers, train/eval mode, and a one-line-per-layer summary.

use chainrule_tape::error::{or_panic, Result};
use chainrule_tape::{no_grad, Element, Graph, Parameter, Tensor, Var};
use std::sync::{Arc, RwLock};

/// A non-trainable tensor a module keeps between steps (BatchNorm's running
/// statistics). Clones are handles to the same buffer.
#[derive(Clone)]
pub struct Buffer<T: Element> {
    inner: Arc<RwLock<Tensor<T>>>,
}

impl<T: Element> Buffer<T> {
    /// A buffer holding `value`.
    pub fn new(value: Tensor<T>) -> Self {
        Buffer {
            inner: Arc::new(RwLock::new(value)),
        }
    }

    /// The current value (a cheap, storage-sharing clone).
    pub fn value(&self) -> Tensor<T> {
        self.inner.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Replaces the value.
    pub fn set(&self, value: Tensor<T>) {
        *self.inner.write().unwrap_or_else(|p| p.into_inner()) = value;
    }
}

/// Prefixes a child's names: `"features"` + `"0.weight"` → `"features.0.weight"`.
pub fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}.{name}")
    }
}

/// A layer or a model.
///
/// Implement [`Module::try_forward`] and [`Module::visit_parameters`] (and
/// the others where they apply); everything else is provided. A custom
/// model is any struct holding layers or [`Parameter`]s: its forward is
/// ordinary Rust, so loops, branches and a layer applied twice (shared
/// weights) need nothing special — see `examples/custom_module.rs`.
///
/// ```
/// use chainrule_nn::{Linear, Module, Relu, Sequential};
/// use chainrule_tape::{Graph, Tensor};
/// let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(0);
/// let model = Sequential::new()
///     .push(Linear::new(4, 8, &mut rng))
///     .push(Relu)
///     .push(Linear::new(8, 2, &mut rng));
/// assert_eq!(model.num_parameters(), 4 * 8 + 8 + 8 * 2 + 2);
/// let names: Vec<String> = model.named_parameters().into_iter().map(|(n, _)| n).collect();
/// assert_eq!(names, ["0.weight", "0.bias", "2.weight", "2.bias"]);
/// let g = Graph::new();
/// let y = model.forward(&g, &g.input(Tensor::<f32>::zeros([3, 4])));
/// assert_eq!(y.shape(), &[3, 2]);
/// ```
pub trait Module<T: Element> {
    /// The forward pass; errors name the op and the shapes.
    fn try_forward(&self, g: &Graph<T>, x: &Var<T>) -> Result<Var<T>>;

    /// Calls `f(name, parameter)` for each parameter, names prefixed by `prefix`.
    fn visit_parameters(&self, prefix: &str, f: &mut dyn FnMut(String, &Parameter<T>));

    /// Calls `f(name, buffer)` for each buffer (none by default).
    fn visit_buffers(&self, prefix: &str, f: &mut dyn FnMut(String, &Buffer<T>)) {
        let _ = (prefix, f);
    }

    /// Switches training mode on or off here and in every submodule.
    fn set_training(&mut self, training: bool) {
        let _ = training;
    }

    /// Restarts the random streams of stochastic layers (dropout) from
    /// `seed`, so a run resumed at an epoch boundary draws the same masks;
    /// containers pass a distinct derived seed to each child.
    fn reseed(&self, seed: u64) {
        let _ = seed;
    }

    /// The layer as PyTorch prints it, e.g. `Linear(784, 256)`; by default
    /// the type's name.
    fn describe(&self) -> String {
        let full = std::any::type_name::<Self>();
        let base = full.split('<').next().unwrap_or(full);
        base.rsplit("::").next().unwrap_or(base).to_string()
    }

    /// Named submodules, for the per-layer summary (none for a leaf layer).
    fn children(&self) -> Vec<(String, &dyn Module<T>)> {
        Vec::new()
    }

    /// The forward pass; panics with the op's message at the caller's line.
    #[track_caller]
    fn forward(&self, g: &Graph<T>, x: &Var<T>) -> Var<T> {
        or_panic(self.try_forward(g, x))
    }

    /// `(name, parameter)` pairs in definition order (`"features.0.weight"` style).
    fn named_parameters(&self) -> Vec<(String, Parameter<T>)> {
        let mut out = Vec::new();
        self.visit_parameters("", &mut |n, p| out.push((n, p.clone())));
        out
    }

    /// The parameters, for an optimizer.
    fn parameters(&self) -> Vec<Parameter<T>> {
        self.named_parameters()
            .into_iter()
            .map(|(_, p)| p)
            .collect()
    }

    /// `(name, buffer)` pairs.
    fn named_buffers(&self) -> Vec<(String, Buffer<T>)> {
        let mut out = Vec::new();
        self.visit_buffers("", &mut |n, b| out.push((n, b.clone())));
        out
    }

    /// Total number of trainable scalars.
    fn num_parameters(&self) -> usize {
        self.parameters().iter().map(|p| p.numel()).sum()
    }

    /// Training mode (dropout active, batch statistics), as `module.train()`.
    fn train(&mut self) {
        self.set_training(true);
    }

    /// Evaluation mode (dropout off, running statistics), as `module.eval()`.
    fn eval(&mut self) {
        self.set_training(false);
    }

    /// One line per layer: name, output shape for an input of `input_shape`
    /// (a forward pass on zeros, without gradients), and parameter count.
    fn summary(&self, input_shape: &[usize]) -> Result<String> {
        let mut rows = vec![(
            "layer".to_string(),
            "output shape".to_string(),
            "parameters".to_string(),
        )];
        let g = Graph::new();
        let x = Var::constant(Tensor::zeros(input_shape));
        no_grad(|| summarize(self, &g, &x, "", &mut rows))?;
        let total = self.num_parameters();
        let w0 = rows.iter().map(|r| r.0.chars().count()).max().unwrap_or(0);
        let w1 = rows.iter().map(|r| r.1.len()).max().unwrap_or(0);
        let mut out = String::new();
        for (a, b, c) in &rows {
            out.push_str(&format!("{a:<w0$}  {b:<w1$}  {c:>10}\n"));
        }
        out.push_str(&format!("total parameters: {total}\n"));
        Ok(out)
    }
}

/// Runs `m` on `x`, recording a row per leaf layer (children in order when
/// `m` is a container whose forward applies them in sequence).
fn summarize<T: Element>(
    m: &(impl Module<T> + ?Sized),
    g: &Graph<T>,
    x: &Var<T>,
    prefix: &str,
    rows: &mut Vec<(String, String, String)>,
) -> Result<Var<T>> {
    let children = m.children();
    if children.is_empty() {
        let y = m.try_forward(g, x)?;
        let mut count = 0;
        m.visit_parameters("", &mut |_, p| count += p.numel());
        let name = if prefix.is_empty() {
            m.describe()
        } else {
            format!("{prefix}: {}", m.describe())
        };
        rows.push((name, format!("{:?}", y.shape()), count.to_string()));
        return Ok(y);
    }
    let mut h = x.clone();
    for (name, child) in children {
        h = summarize(child, g, &h, &join(prefix, &name), rows)?;
    }
    Ok(h)
}

impl<T: Element, M: Module<T> + ?Sized> Module<T> for Box<M> {
    fn try_forward(&self, g: &Graph<T>, x: &Var<T>) -> Result<Var<T>> {
        (**self).try_forward(g, x)
    }
    fn visit_parameters(&self, prefix: &str, f: &mut dyn FnMut(String, &Parameter<T>)) {
        (**self).visit_parameters(prefix, f)
    }
    fn visit_buffers(&self, prefix: &str, f: &mut dyn FnMut(String, &Buffer<T>)) {
        (**self).visit_buffers(prefix, f)
    }
    fn set_training(&mut self, training: bool) {
        (**self).set_training(training)
    }
    fn describe(&self) -> String {
        (**self).describe()
    }
    fn reseed(&self, seed: u64) {
        (**self).reseed(seed)
    }
    fn children(&self) -> Vec<(String, &dyn Module<T>)> {
        (**self).children()
    }
}
