//! Datasets and the loader covering the lecture notes' four regimes of
//! gradient descent: full batch, mini-batch (reshuffled each epoch),
//! stochastic (one random example at a time) and online/cyclic (one
//! example at a time in a fixed order).

use chainrule_ops::Indices;
use chainrule_tape::Tensor;
use rand::seq::SliceRandom;
use rand::Rng;

/// A labelled dataset of fixed-shape examples.
pub trait Dataset {
    /// Number of examples.
    fn len(&self) -> usize;
    /// Whether there are none.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Shape of one example (e.g. [1, 28, 28]).
    fn example_shape(&self) -> &[usize];
    /// Appends example `i`'s values to `x` and returns its label.
    fn write_example(&self, i: usize, x: &mut Vec<f32>) -> usize;
}

/// Examples held in memory: `features` is N × Π(example_shape), row-major.
#[derive(Clone, Debug)]
pub struct InMemory {
    /// All examples' values.
    pub features: Vec<f32>,
    /// Shape of one example.
    pub shape: Vec<usize>,
    /// One label per example.
    pub labels: Vec<usize>,
}

impl InMemory {
    /// Size of one example.
    pub fn example_len(&self) -> usize {
        self.shape.iter().product()
    }

    /// The first `n` examples.
    pub fn head(&self, n: usize) -> InMemory {
        let n = n.min(self.labels.len());
        InMemory {
            features: self.features[..n * self.example_len()].to_vec(),
            shape: self.shape.clone(),
            labels: self.labels[..n].to_vec(),
        }
    }

    /// Splits off the last `n` examples (e.g. a validation set): (rest, last n).
    pub fn split_last(&self, n: usize) -> (InMemory, InMemory) {
        let keep = self.labels.len().saturating_sub(n);
        let d = self.example_len();
        let part = |a: usize, b: usize| InMemory {
            features: self.features[a * d..b * d].to_vec(),
            shape: self.shape.clone(),
            labels: self.labels[a..b].to_vec(),
        };
        (part(0, keep), part(keep, self.labels.len()))
    }

    /// All examples as one tensor [N, shape…] and their labels.
    pub fn all(&self) -> Batch {
        let mut shape = vec![self.labels.len()];
        shape.extend(&self.shape);
        Batch {
            x: Tensor::from_vec(&shape, self.features.clone()),
            y: Indices::vector(self.labels.clone()),
        }
    }
}

impl Dataset for InMemory {
    fn len(&self) -> usize {
        self.labels.len()
    }
    fn example_shape(&self) -> &[usize] {
        &self.shape
    }
    fn write_example(&self, i: usize, x: &mut Vec<f32>) -> usize {
        let d = self.example_len();
        x.extend_from_slice(&self.features[i * d..(i + 1) * d]);
        self.labels[i]
    }
}

/// A batch: inputs `[B, shape…]` and class labels `[B]`.
#[derive(Clone, Debug)]
pub struct Batch {
    /// Inputs.
    pub x: Tensor<f32>,
    /// Labels.
    pub y: Indices,
}

/// How examples are grouped and ordered each epoch.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Regime {
    /// Batch gradient descent: the whole dataset as one batch.
    FullBatch,
    /// Mini-batches of this size, reshuffled every epoch.
    MiniBatch(usize),
    /// Stochastic gradient descent: one example at a time, in random order.
    Stochastic,
    /// Online/cyclic: one example at a time, always in dataset order.
    Online,
}

/// Iterates over a dataset in batches according to a [`Regime`].
pub struct DataLoader<'a, D: Dataset> {
    dataset: &'a D,
    /// The regime.
    pub regime: Regime,
    /// Drop a final batch smaller than the batch size (mini-batch regime).
    pub drop_last: bool,
}

impl<'a, D: Dataset> DataLoader<'a, D> {
    /// A loader over `dataset`.
    pub fn new(dataset: &'a D, regime: Regime) -> Self {
        DataLoader {
            dataset,
            regime,
            drop_last: false,
        }
    }

    /// The batches of one epoch; shuffled regimes draw the order from `rng`
    /// (the same seed gives the same epochs).
    pub fn epoch(&self, rng: &mut impl Rng) -> impl Iterator<Item = Batch> + '_ {
        let n = self.dataset.len();
        let mut order: Vec<usize> = (0..n).collect();
        let size = match self.regime {
            Regime::FullBatch => n.max(1),
            Regime::MiniBatch(b) => b.max(1),
            Regime::Stochastic | Regime::Online => 1,
        };
        if matches!(self.regime, Regime::MiniBatch(_) | Regime::Stochastic) {
            order.shuffle(rng);
        }
        let mut chunks: Vec<Vec<usize>> = order.chunks(size).map(|c| c.to_vec()).collect();
        if self.drop_last && chunks.last().is_some_and(|c| c.len() < size) {
            chunks.pop();
        }
        chunks.into_iter().map(move |idx| self.batch(&idx))
    }

    /// The batches in dataset order, whatever the regime's shuffling (for evaluation).
    pub fn in_order(&self) -> impl Iterator<Item = Batch> + '_ {
        let n = self.dataset.len();
        let size = match self.regime {
            Regime::FullBatch => n.max(1),
            Regime::MiniBatch(b) => b.max(1),
            Regime::Stochastic | Regime::Online => 1,
        };
        (0..n).step_by(size).map(move |start| {
            let idx: Vec<usize> = (start..(start + size).min(n)).collect();
            self.batch(&idx)
        })
    }

    /// Number of batches per epoch.
    pub fn batches_per_epoch(&self) -> usize {
        let n = self.dataset.len();
        match self.regime {
            Regime::FullBatch => usize::from(n > 0),
            Regime::Stochastic | Regime::Online => n,
            Regime::MiniBatch(b) => {
                let b = b.max(1);
                if self.drop_last {
                    n / b
                } else {
                    n.div_ceil(b)
                }
            }
        }
    }

    fn batch(&self, idx: &[usize]) -> Batch {
        let mut x =
            Vec::with_capacity(idx.len() * self.dataset.example_shape().iter().product::<usize>());
        let y: Vec<usize> = idx
            .iter()
            .map(|&i| self.dataset.write_example(i, &mut x))
            .collect();
        let mut shape = vec![idx.len()];
        shape.extend(self.dataset.example_shape());
        Batch {
            x: Tensor::from_vec(&shape, x),
            y: Indices::vector(y),
        }
    }
}
