//! Transforms fitted on training data and applied to any data (so the test
//! set is scaled with the training set's statistics), and augmentation.
//!
//! | transform | fitted | applied |
//! |---|---|---|
//! | min-max | per-feature min, max | (x − min)/(max − min) |
//! | standardize | per-feature μ, σ | (x − μ)/σ |
//! | PCA whitening | μ, covariance C = UΛUᵀ | Λ^(−1/2)·Uᵀ(x − μ) |
//! | ZCA whitening | the same | U·Λ^(−1/2)·Uᵀ(x − μ) |
//!
//! Constant features (zero range or variance) map to 0. Whitening adds ε to
//! the eigenvalues (a floor for directions with almost no variance).

use crate::dataset::InMemory;
use nalgebra::{DMatrix, SymmetricEigen};
use rand::Rng;

/// A transform fitted on data.
pub trait Transform {
    /// Transforms a set in place (its example shape is unchanged).
    fn apply(&self, data: &mut InMemory);
}

fn columns(data: &InMemory) -> usize {
    data.example_len()
}

/// Per-feature min-max scaling to [0, 1].
pub struct MinMax {
    min: Vec<f32>,
    range: Vec<f32>,
}

impl MinMax {
    /// Fits the per-feature minimum and maximum.
    pub fn fit(data: &InMemory) -> Self {
        let d = columns(data);
        let mut min = vec![f32::INFINITY; d];
        let mut max = vec![f32::NEG_INFINITY; d];
        for row in data.features.chunks(d) {
            for (k, &v) in row.iter().enumerate() {
                min[k] = min[k].min(v);
                max[k] = max[k].max(v);
            }
        }
        let range = min.iter().zip(&max).map(|(a, b)| b - a).collect();
        MinMax { min, range }
    }
}

impl Transform for MinMax {
    fn apply(&self, data: &mut InMemory) {
        let d = self.min.len();
        for row in data.features.chunks_mut(d) {
            for (k, v) in row.iter_mut().enumerate() {
                *v = if self.range[k] > 0.0 {
                    (*v - self.min[k]) / self.range[k]
                } else {
                    0.0
                };
            }
        }
    }
}

fn mean_and_centered(data: &InMemory) -> (Vec<f64>, DMatrix<f64>) {
    let d = columns(data);
    let n = data.labels.len().max(1);
    let mut mean = vec![0.0; d];
    for row in data.features.chunks(d) {
        for (m, &v) in mean.iter_mut().zip(row) {
            *m += v as f64;
        }
    }
    mean.iter_mut().for_each(|m| *m /= n as f64);
    let centered = DMatrix::from_fn(n, d, |i, k| data.features[i * d + k] as f64 - mean[k]);
    (mean, centered)
}

/// Standardization to zero mean and unit variance, per feature ([`Standardize::fit`])
/// or with one mean and deviation for every feature ([`Standardize::fit_global`]).
pub struct Standardize {
    mean: Vec<f32>,
    std: Vec<f32>,
}

impl Standardize {
    /// Fits per-feature mean and (population) standard deviation.
    pub fn fit(data: &InMemory) -> Self {
        let d = columns(data);
        let n = data.labels.len().max(1) as f64;
        let mut mean = vec![0.0f64; d];
        let mut sq = vec![0.0f64; d];
        for row in data.features.chunks(d) {
            for (k, &v) in row.iter().enumerate() {
                mean[k] += v as f64;
                sq[k] += (v as f64) * (v as f64);
            }
        }
        let mean: Vec<f64> = mean.iter().map(|m| m / n).collect();
        let std = sq
            .iter()
            .zip(&mean)
            .map(|(s, m)| ((s / n - m * m).max(0.0)).sqrt() as f32)
            .collect();
        Standardize {
            mean: mean.iter().map(|&m| m as f32).collect(),
            std,
        }
    }

    /// Fits one mean μ and (population) standard deviation σ over every
    /// value of every example, x ← (x − μ)/σ — torchvision's `Normalize`
    /// for one-channel images. Images keep their spatial structure: a pixel
    /// means the same wherever it lies, so convolutions, crops and flips
    /// see consistent values (per-pixel scaling divides near-constant border
    /// pixels by a tiny σ and gives shifted pixels another pixel's scale).
    pub fn fit_global(data: &InMemory) -> Self {
        let d = columns(data);
        let count = data.features.len().max(1) as f64;
        let (sum, sq) = data.features.iter().fold((0.0f64, 0.0f64), |(s, q), &v| {
            (s + v as f64, q + v as f64 * v as f64)
        });
        let mean = sum / count;
        let std = (sq / count - mean * mean).max(0.0).sqrt();
        Standardize {
            mean: vec![mean as f32; d],
            std: vec![std as f32; d],
        }
    }

    /// The value a raw `x` of feature `k` maps to (0 for a constant feature).
    pub fn scaled(&self, k: usize, x: f32) -> f32 {
        if self.std[k] > 0.0 {
            (x - self.mean[k]) / self.std[k]
        } else {
            0.0
        }
    }
}

impl Transform for Standardize {
    fn apply(&self, data: &mut InMemory) {
        let d = self.mean.len();
        for row in data.features.chunks_mut(d) {
            for (k, v) in row.iter_mut().enumerate() {
                *v = self.scaled(k, *v);
            }
        }
    }
}

/// PCA or ZCA whitening: decorrelates features and scales them to unit
/// variance (the whitened training data has identity covariance).
pub struct Whitening {
    mean: Vec<f64>,
    /// The d×d matrix applied to x − μ.
    matrix: DMatrix<f64>,
}

impl Whitening {
    fn fit(data: &InMemory, eps: f64, zca: bool) -> Self {
        let (mean, xc) = mean_and_centered(data);
        let n = xc.nrows().max(2) as f64;
        let cov = (xc.transpose() * &xc) / n;
        let eig = SymmetricEigen::new(cov);
        let scale =
            DMatrix::from_diagonal(&eig.eigenvalues.map(|l| 1.0 / (l.max(0.0) + eps).sqrt()));
        let pca = &scale * eig.eigenvectors.transpose();
        let matrix = if zca { &eig.eigenvectors * pca } else { pca };
        Whitening { mean, matrix }
    }

    /// PCA whitening: Λ^(−1/2)·Uᵀ(x − μ), components in eigen-solver order.
    pub fn pca(data: &InMemory, eps: f64) -> Self {
        Self::fit(data, eps, false)
    }

    /// ZCA whitening: U·Λ^(−1/2)·Uᵀ(x − μ), the whitening closest to the input.
    pub fn zca(data: &InMemory, eps: f64) -> Self {
        Self::fit(data, eps, true)
    }
}

impl Transform for Whitening {
    fn apply(&self, data: &mut InMemory) {
        let d = self.mean.len();
        let n = data.labels.len();
        let xc = DMatrix::from_fn(d, n, |k, i| data.features[i * d + k] as f64 - self.mean[k]);
        let out = &self.matrix * xc;
        for i in 0..n {
            for k in 0..d {
                data.features[i * d + k] = out[(k, i)] as f32;
            }
        }
    }
}

/// Random crop: pads each [C, H, W] image by `pad` on every side with
/// `fill` (the background's value, after any scaling) and crops an H×W
/// window at a random offset (per image).
pub fn random_crop(x: &mut [f32], shape: &[usize], pad: usize, fill: f32, rng: &mut impl Rng) {
    let (c, h, w) = (shape[0], shape[1], shape[2]);
    let size = c * h * w;
    let mut out = vec![fill; size];
    for img in x.chunks_mut(size) {
        let dy = rng.gen_range(0..=2 * pad) as isize - pad as isize;
        let dx = rng.gen_range(0..=2 * pad) as isize - pad as isize;
        out.iter_mut().for_each(|v| *v = fill);
        for ch in 0..c {
            for y in 0..h {
                let sy = y as isize + dy;
                if sy < 0 || sy >= h as isize {
                    continue;
                }
                for xx in 0..w {
                    let sx = xx as isize + dx;
                    if sx >= 0 && sx < w as isize {
                        out[(ch * h + y) * w + xx] = img[(ch * h + sy as usize) * w + sx as usize];
                    }
                }
            }
        }
        img.copy_from_slice(&out);
    }
}

/// Mirrors each [C, H, W] image left-right with probability `p`.
pub fn random_horizontal_flip(x: &mut [f32], shape: &[usize], p: f64, rng: &mut impl Rng) {
    let w = shape[2];
    let size: usize = shape.iter().product();
    for img in x.chunks_mut(size) {
        if rng.gen::<f64>() < p {
            img.chunks_mut(w).for_each(|row| row.reverse());
        }
    }
}
