//! BatchNorm1d/2d, LayerNorm and Dropout layers.

use crate::module::{join, Buffer, Module};
use chainrule_ops as ops;
use chainrule_tape::error::{or_panic, Error, Result};
use chainrule_tape::shape::fmt_shape;
use chainrule_tape::{Element, Graph, Parameter, Tensor, Var};
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::sync::Mutex;

/// Batch normalization over channel axis 1 (`torch.nn.BatchNorm1d` for
/// [N, C] or [N, C, L], `BatchNorm2d` for [N, C, H, W]).
///
/// Training mode normalizes with the batch's mean and biased variance and
/// updates the running statistics as PyTorch does:
/// running ← (1 − momentum)·running + momentum·batch, with the *unbiased*
/// batch variance (or, with `momentum = None`, the cumulative average over
/// `num_batches_tracked`). Eval mode uses the running statistics.
pub struct BatchNorm<T: Element = f32> {
    /// γ `[C]`, if affine.
    pub weight: Option<Parameter<T>>,
    /// β `[C]`, if affine.
    pub bias: Option<Parameter<T>>,
    /// Running mean `[C]` (if tracked).
    pub running_mean: Option<Buffer<T>>,
    /// Running (unbiased) variance `[C]` (if tracked).
    pub running_var: Option<Buffer<T>>,
    /// Number of training batches seen (if tracked).
    pub num_batches_tracked: Option<Buffer<T>>,
    /// Averaging factor (0.1); None for a cumulative moving average.
    pub momentum: Option<f64>,
    /// ε added to the variance (1e-5).
    pub eps: f64,
    /// Input rank this layer accepts: 2 or 3 (BatchNorm1d) or 4 (BatchNorm2d).
    ranks: &'static [usize],
    kind: &'static str,
    training: bool,
}

/// Settings of [`BatchNorm`] (PyTorch's defaults).
#[derive(Clone, Copy, Debug)]
pub struct BatchNormOptions {
    /// ε (1e-5).
    pub eps: f64,
    /// Running-average factor (Some(0.1)); None: cumulative average.
    pub momentum: Option<f64>,
    /// Learn γ and β (true).
    pub affine: bool,
    /// Keep running statistics (true); without them eval mode uses batch statistics too.
    pub track_running_stats: bool,
}

impl Default for BatchNormOptions {
    fn default() -> Self {
        BatchNormOptions {
            eps: 1e-5,
            momentum: Some(0.1),
            affine: true,
            track_running_stats: true,
        }
    }
}

/// Rejects zero channels, an ε that is not finite and positive, and a
/// momentum outside [0, 1] (NaN included): each would only show up later as
/// NaN or infinite activations or running statistics.
fn check_batch_norm(kind: &'static str, channels: usize, o: &BatchNormOptions) -> Result<()> {
    let problem = if channels == 0 {
        Some("num_features must be at least 1, got 0".to_string())
    } else if !(o.eps.is_finite() && o.eps > 0.0) {
        Some(format!("eps must be finite and > 0, got {}", o.eps))
    } else {
        o.momentum
            .filter(|m| !(0.0..=1.0).contains(m))
            .map(|m| format!("momentum must be in [0, 1], got {m}"))
    };
    problem.map_or(Ok(()), |message| Err(Error::argument(kind, message)))
}

impl<T: Element> BatchNorm<T> {
    fn build(
        channels: usize,
        o: BatchNormOptions,
        ranks: &'static [usize],
        kind: &'static str,
    ) -> Self {
        let affine = |v: f64| {
            o.affine
                .then(|| Parameter::new(Tensor::full([channels], T::from_f64(v))))
        };
        let buffer = |v: Tensor<T>| o.track_running_stats.then(|| Buffer::new(v));
        BatchNorm {
            weight: affine(1.0),
            bias: affine(0.0),
            running_mean: buffer(Tensor::zeros([channels])),
            running_var: buffer(Tensor::ones([channels])),
            num_batches_tracked: buffer(Tensor::scalar(T::zero())),
            momentum: o.momentum,
            eps: o.eps,
            ranks,
            kind,
            training: true,
        }
    }

    /// BatchNorm1d over [N, C] or [N, C, L].
    ///
    /// # Panics
    ///
    /// On the settings [`BatchNorm::try_new_1d`] rejects.
    #[track_caller]
    pub fn new_1d(channels: usize, options: BatchNormOptions) -> Self {
        or_panic(Self::try_new_1d(channels, options))
    }

    /// BatchNorm2d over [N, C, H, W].
    ///
    /// # Panics
    ///
    /// On the settings [`BatchNorm::try_new_2d`] rejects.
    #[track_caller]
    pub fn new_2d(channels: usize, options: BatchNormOptions) -> Self {
        or_panic(Self::try_new_2d(channels, options))
    }

    /// BatchNorm1d, or an argument error if `channels` is 0, ε is not
    /// finite and > 0, or the momentum is not in [0, 1].
    pub fn try_new_1d(channels: usize, options: BatchNormOptions) -> Result<Self> {
        check_batch_norm("BatchNorm1d", channels, &options)?;
        Ok(Self::build(channels, options, &[2, 3], "BatchNorm1d"))
    }

    /// BatchNorm2d, or an argument error as [`BatchNorm::try_new_1d`].
    pub fn try_new_2d(channels: usize, options: BatchNormOptions) -> Result<Self> {
        check_batch_norm("BatchNorm2d", channels, &options)?;
        Ok(Self::build(channels, options, &[4], "BatchNorm2d"))
    }
}

impl<T: Element> Module<T> for BatchNorm<T> {
    fn try_forward(&self, g: &Graph<T>, x: &Var<T>) -> Result<Var<T>> {
        if !self.ranks.contains(&x.shape().len()) {
            return Err(Error::shape(
                self.kind,
                format!(
                    "expected an input of rank {:?}, got {}",
                    self.ranks,
                    fmt_shape(x.shape())
                ),
            ));
        }
        let w = self.weight.as_ref().map(|p| g.param(p));
        let b = self.bias.as_ref().map(|p| g.param(p));
        let eps = T::from_f64(self.eps);
        // As PyTorch's _BatchNorm: batch statistics in training or when none
        // are tracked; the tracked running statistics are passed (and, in
        // training, updated by ops::batch_norm) whenever they exist.
        let tracked = self.running_mean.as_ref().zip(self.running_var.as_ref());
        let use_batch = self.training || tracked.is_none();
        let mut batches = None;
        let mut factor = self.momentum.unwrap_or(0.0);
        if self.training {
            if let Some(nb) = &self.num_batches_tracked {
                let n = nb.value().item() + T::one();
                // momentum = None: the cumulative average, factor 1/n.
                factor = self.momentum.unwrap_or(1.0 / n.as_f64());
                batches = Some((nb, n));
            }
        }
        let (mut rm, mut rv) = (
            tracked.map(|(m, _)| m.value()),
            tracked.map(|(_, v)| v.value()),
        );
        let out = ops::try_batch_norm(
            x,
            rm.as_mut(),
            rv.as_mut(),
            w.as_ref(),
            b.as_ref(),
            use_batch,
            T::from_f64(factor),
            eps,
        )?;
        if let (true, Some((m, v)), Some(rm), Some(rv)) = (self.training, tracked, rm, rv) {
            m.set(rm);
            v.set(rv);
            if let Some((nb, n)) = batches {
                nb.set(Tensor::scalar(n));
            }
        }
        Ok(out)
    }
    fn visit_parameters(&self, prefix: &str, f: &mut dyn FnMut(String, &Parameter<T>)) {
        if let (Some(w), Some(b)) = (&self.weight, &self.bias) {
            f(join(prefix, "weight"), w);
            f(join(prefix, "bias"), b);
        }
    }
    fn visit_buffers(&self, prefix: &str, f: &mut dyn FnMut(String, &Buffer<T>)) {
        for (name, b) in [
            ("running_mean", &self.running_mean),
            ("running_var", &self.running_var),
            ("num_batches_tracked", &self.num_batches_tracked),
        ] {
            if let Some(b) = b {
                f(join(prefix, name), b);
            }
        }
    }
    fn set_training(&mut self, training: bool) {
        self.training = training;
    }
    fn describe(&self) -> String {
        let c = self
            .running_mean
            .as_ref()
            .map(|b| b.value().numel())
            .or(self.weight.as_ref().map(|w| w.numel()))
            .unwrap_or(0);
        format!(
            "{}({c}, eps={}, momentum={:?})",
            self.kind, self.eps, self.momentum
        )
    }
}

/// Layer normalization over the trailing `normalized_shape`
/// (`torch.nn.LayerNorm`), γ = 1 and β = 0 initially.
pub struct LayerNorm<T: Element = f32> {
    /// γ, shaped like the normalized dimensions.
    pub weight: Option<Parameter<T>>,
    /// β, shaped like the normalized dimensions.
    pub bias: Option<Parameter<T>>,
    /// The normalized trailing shape.
    pub normalized_shape: Vec<usize>,
    /// ε (1e-5).
    pub eps: f64,
}

impl<T: Element> LayerNorm<T> {
    /// An affine layer norm over `normalized_shape`.
    pub fn new(normalized_shape: &[usize]) -> Self {
        LayerNorm {
            weight: Some(Parameter::new(Tensor::ones(normalized_shape))),
            bias: Some(Parameter::new(Tensor::zeros(normalized_shape))),
            normalized_shape: normalized_shape.to_vec(),
            eps: 1e-5,
        }
    }
}

impl<T: Element> Module<T> for LayerNorm<T> {
    fn try_forward(&self, g: &Graph<T>, x: &Var<T>) -> Result<Var<T>> {
        let k = self.normalized_shape.len();
        if x.shape().len() < k || x.shape()[x.shape().len() - k..] != self.normalized_shape[..] {
            return Err(Error::shape(
                "LayerNorm",
                format!(
                    "input {} does not end in {}",
                    fmt_shape(x.shape()),
                    fmt_shape(&self.normalized_shape)
                ),
            ));
        }
        let w = self.weight.as_ref().map(|p| g.param(p));
        let b = self.bias.as_ref().map(|p| g.param(p));
        ops::try_layer_norm(x, k, w.as_ref(), b.as_ref(), T::from_f64(self.eps))
    }
    fn visit_parameters(&self, prefix: &str, f: &mut dyn FnMut(String, &Parameter<T>)) {
        if let (Some(w), Some(b)) = (&self.weight, &self.bias) {
            f(join(prefix, "weight"), w);
            f(join(prefix, "bias"), b);
        }
    }
    fn describe(&self) -> String {
        format!("LayerNorm({:?}, eps={})", self.normalized_shape, self.eps)
    }
}

/// Inverted dropout (`torch.nn.Dropout`): zeroes elements with probability
/// p in training mode and scales the rest by 1/(1 − p); the identity in eval
/// mode. It owns a seeded RNG, so a run repeats exactly.
pub struct Dropout {
    /// Drop probability.
    pub p: f64,
    rng: Mutex<StdRng>,
    training: bool,
}

impl Dropout {
    /// Dropout with probability `p`, its masks drawn from a generator seeded with `seed`.
    ///
    /// # Panics
    ///
    /// If `p` is not in [0, 1] (NaN included); [`Dropout::try_new`] returns the error instead.
    #[track_caller]
    pub fn new(p: f64, seed: u64) -> Self {
        or_panic(Self::try_new(p, seed))
    }

    /// Dropout with probability `p`, or an argument error naming `Dropout`
    /// and `p` if `p` is not in [0, 1] (PyTorch's range; NaN is rejected).
    pub fn try_new(p: f64, seed: u64) -> Result<Self> {
        if !(0.0..=1.0).contains(&p) {
            return Err(Error::argument(
                "Dropout",
                format!("p must be in [0, 1], got {p}"),
            ));
        }
        Ok(Dropout {
            p,
            rng: Mutex::new(StdRng::seed_from_u64(seed)),
            training: true,
        })
    }
}

impl<T: Element> Module<T> for Dropout {
    fn try_forward(&self, _g: &Graph<T>, x: &Var<T>) -> Result<Var<T>> {
        let mut rng = self.rng.lock().unwrap_or_else(|p| p.into_inner());
        ops::try_dropout(x, self.p, self.training, &mut *rng)
    }
    fn visit_parameters(&self, _prefix: &str, _f: &mut dyn FnMut(String, &Parameter<T>)) {}
    fn set_training(&mut self, training: bool) {
        self.training = training;
    }
    fn describe(&self) -> String {
        format!("Dropout(p={})", self.p)
    }
    fn reseed(&self, seed: u64) {
        *self.rng.lock().unwrap_or_else(|p| p.into_inner()) = StdRng::seed_from_u64(seed);
    }
}
