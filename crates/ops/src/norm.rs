//! Normalization and regularization primitives: batch_norm, layer_norm and
//! dropout, composed from differentiable ops, so the gradient through the
//! batch mean and variance is exact (and twice differentiable).

use crate::VarOps;
use chainrule_tape::error::{Error, Result};
use chainrule_tape::shape::fmt_shape;
use chainrule_tape::{BackwardContext, Element, InputGrads, Op, Tensor, Var};
use rand::Rng;
use rayon::prelude::*;
use smallvec::smallvec;

/// What [`batch_norm`] returns.
pub struct BatchNormOutput<T: Element> {
    /// The normalized (and affinely transformed) output.
    pub output: Var<T>,
    /// In training mode: the batch mean per channel (for running averages).
    pub batch_mean: Option<Tensor<T>>,
    /// In training mode: the unbiased batch variance per channel (n/(n−1) ·
    /// biased), which PyTorch folds into `running_var`.
    pub batch_var: Option<Tensor<T>>,
}

/// Batch normalization over channel axis 1 of x [N, C, …]:
/// y = (x − μ)/√(σ² + ε)·γ + β. Training mode (`running = None`) uses the
/// batch's μ and biased σ² and returns them (σ² unbiased) for running
/// averages; eval mode uses the given running (mean, var) as constants.
#[track_caller]
pub fn batch_norm<T: Element>(
    x: &Var<T>,
    running: Option<(&Tensor<T>, &Tensor<T>)>,
    weight: Option<&Var<T>>,
    bias: Option<&Var<T>>,
    eps: T,
) -> Result<BatchNormOutput<T>> {
    let op = "batch_norm";
    let s = x.shape();
    if s.len() < 2 {
        return Err(Error::shape(
            op,
            format!("expected [N, C, …], got {}", fmt_shape(s)),
        ));
    }
    let c = s[1];
    let mut stat_shape = vec![1; s.len()];
    stat_shape[1] = c;
    let count: usize = s
        .iter()
        .enumerate()
        .filter(|&(i, _)| i != 1)
        .map(|(_, &d)| d)
        .product();
    let check = |t: &Tensor<T>, what: &str| -> Result<()> {
        if t.shape() != [c] {
            return Err(Error::shape(
                op,
                format!("{what} {} for {c} channels", fmt_shape(t.shape())),
            ));
        }
        Ok(())
    };
    let (normalized, batch_mean, batch_var) = match running {
        None => {
            if count < 2 {
                return Err(Error::argument(
                    op,
                    format!(
                        "training needs more than one value per channel, got input {}",
                        fmt_shape(s)
                    ),
                ));
            }
            let (y, mean, var) = normalize_batch(x, eps)?;
            let unbias = T::from_f64(count as f64 / (count - 1) as f64);
            (y, Some(mean), Some(var.map(|v| v * unbias)))
        }
        Some((rm, rv)) => {
            check(rm, "running_mean")?;
            check(rv, "running_var")?;
            let m = Var::constant(rm.reshape(&stat_shape));
            let inv = Var::constant(rv.map(|v| T::one() / (v + eps).sqrt()).reshape(&stat_shape));
            (x.try_sub(&m)?.try_mul(&inv)?, None, None)
        }
    };
    let mut out = normalized;
    if let Some(w) = weight {
        check(w.value(), "weight")?;
        out = out.try_mul(&w.try_reshape_to(&stat_shape)?)?;
    }
    if let Some(b) = bias {
        check(b.value(), "bias")?;
        out = out.try_add(&b.try_reshape_to(&stat_shape)?)?;
    }
    Ok(BatchNormOutput {
        output: out,
        batch_mean,
        batch_var,
    })
}

/// Per-channel statistics of x viewed as [N, C, S]: (mean, biased variance).
fn channel_stats<T: Element>(x: &Tensor<T>) -> (Vec<T>, Vec<T>) {
    let s = x.shape();
    let (n, c) = (s[0], s[1]);
    let inner: usize = s[2..].iter().product();
    let count = T::from_f64((n * inner) as f64);
    let data = x.data();
    (0..c)
        .into_par_iter()
        .map(|ch| {
            let block = |b: usize| &data[(b * c + ch) * inner..(b * c + ch + 1) * inner];
            let mean = (0..n)
                .map(|b| block(b).iter().copied().sum::<T>())
                .sum::<T>()
                / count;
            let var = (0..n)
                .map(|b| block(b).iter().map(|&v| (v - mean) * (v - mean)).sum::<T>())
                .sum::<T>()
                / count;
            (mean, var)
        })
        .unzip()
}

/// Applies `f(channel, value)` to every element of x viewed as [N, C, S], in parallel.
fn per_channel_map<T: Element>(
    x: &Tensor<T>,
    f: impl Fn(usize, usize, T) -> T + Sync,
) -> Tensor<T> {
    let s = x.shape();
    let c = s[1];
    let inner: usize = s[2..].iter().product::<usize>().max(1);
    let mut out = vec![T::zero(); x.numel()];
    out.par_chunks_mut(inner)
        .zip(x.data().par_chunks(inner))
        .enumerate()
        .for_each(|(block, (o, v))| {
            let ch = block % c;
            for (k, (o, &v)) in o.iter_mut().zip(v).enumerate() {
                *o = f(ch, block * inner + k, v);
            }
        });
    Tensor::from_vec(s, out)
}

/// x̂ = (x − μ)/√(σ² + ε) with per-channel batch statistics (axis 1), one op:
/// ∂/∂x = σ⁻¹·(G − mean(G) − x̂·mean(G·x̂)), the means over all axes but 1.
/// Without create_graph that formula runs as one fused pass; with it, the
/// same formula is built from differentiable ops (σ⁻¹ recomputed from x,
/// x̂ being this op's output), so second derivatives are exact.
pub struct BatchNormalize<T: Element> {
    /// ε.
    pub eps: T,
    /// 1/√(σ² + ε) per channel, from the forward pass.
    pub inv_std: Vec<T>,
}

impl<T: Element> Op<T> for BatchNormalize<T> {
    fn name(&self) -> &str {
        "batch_normalize"
    }
    fn formula(&self, _input: usize) -> Option<String> {
        Some("σ⁻¹·(G − mean(G) − x̂·mean(G·x̂))".into())
    }
    fn backward(&self, cx: &BackwardContext<'_, T>) -> Result<InputGrads<T>> {
        let x = cx.input(0);
        let rank = x.shape().len();
        let axes: Vec<isize> = std::iter::once(0).chain(2..rank as isize).collect();
        if cx.create_graph {
            let mean = x.try_mean(&axes, true)?;
            let centered = x.try_sub(&mean)?;
            let inv_std = centered
                .try_square()?
                .try_mean(&axes, true)?
                .add_scalar(self.eps)
                .try_powf(T::from_f64(-0.5))?;
            let xh = cx.output;
            let g = cx.grad;
            let inner = g
                .try_sub(&g.try_mean(&axes, true)?)?
                .try_sub(&xh.try_mul(&g.try_mul(xh)?.try_mean(&axes, true)?)?)?;
            return Ok(smallvec![Some(inner.try_mul(&inv_std)?)]);
        }
        let g = cx.grad.value();
        let xh = cx.output.value();
        let gx = per_channel_map(g, |_, k, v| v * xh.data()[k]);
        let (mg, _) = channel_stats(g);
        let (mgx, _) = channel_stats(&gx);
        let inv = &self.inv_std;
        let dx = per_channel_map(g, |ch, k, v| {
            inv[ch] * (v - mg[ch] - xh.data()[k] * mgx[ch])
        });
        Ok(smallvec![Some(Var::constant(dx))])
    }
}

/// Training-mode normalization: (x̂, batch mean, biased batch variance).
fn normalize_batch<T: Element>(x: &Var<T>, eps: T) -> Result<(Var<T>, Tensor<T>, Tensor<T>)> {
    let (mean, var) = channel_stats(x.value());
    let inv_std: Vec<T> = var.iter().map(|&v| T::one() / (v + eps).sqrt()).collect();
    let y = per_channel_map(x.value(), |ch, _, v| (v - mean[ch]) * inv_std[ch]);
    let c = mean.len();
    let out = Var::from_op(BatchNormalize { eps, inv_std }, &[x], y)?;
    Ok((out, Tensor::from_vec([c], mean), Tensor::from_vec([c], var)))
}

/// Layer normalization over the last `normalized_dims` dimensions:
/// y = (x − μ)/√(σ² + ε)·γ + β with γ, β shaped like those dimensions.
#[track_caller]
pub fn layer_norm<T: Element>(
    x: &Var<T>,
    normalized_dims: usize,
    weight: Option<&Var<T>>,
    bias: Option<&Var<T>>,
    eps: T,
) -> Result<Var<T>> {
    let op = "layer_norm";
    let s = x.shape();
    if normalized_dims == 0 || normalized_dims > s.len() {
        return Err(Error::argument(
            op,
            format!(
                "cannot normalize the last {normalized_dims} dimensions of {}",
                fmt_shape(s)
            ),
        ));
    }
    let tail = &s[s.len() - normalized_dims..];
    let axes: Vec<isize> = (1..=normalized_dims as isize).map(|k| -k).collect();
    let mean = x.try_mean(&axes, true)?;
    let centered = x.try_sub(&mean)?;
    let var = centered.try_square()?.try_mean(&axes, true)?;
    let mut out = centered.try_div(&var.add_scalar(eps).try_sqrt()?)?;
    for (p, what) in [(weight, "weight"), (bias, "bias")] {
        if let Some(p) = p {
            if p.shape() != tail {
                return Err(Error::shape(
                    op,
                    format!(
                        "{what} {} for normalized shape {}",
                        fmt_shape(p.shape()),
                        fmt_shape(tail)
                    ),
                ));
            }
        }
    }
    if let Some(w) = weight {
        out = out.try_mul(w)?;
    }
    if let Some(b) = bias {
        out = out.try_add(b)?;
    }
    Ok(out)
}

/// Inverted dropout: in training, each element is zeroed with probability p
/// and the survivors scaled by 1/(1 − p), so the expectation is unchanged;
/// the identity otherwise. The mask comes from `rng`, so runs repeat exactly.
#[track_caller]
pub fn dropout<T: Element>(
    x: &Var<T>,
    p: f64,
    training: bool,
    rng: &mut impl Rng,
) -> Result<Var<T>> {
    if !(0.0..=1.0).contains(&p) {
        return Err(Error::argument(
            "dropout",
            format!("p must be in [0, 1], got {p}"),
        ));
    }
    if !training || p == 0.0 {
        return Ok(x.clone());
    }
    let scale = if p == 1.0 {
        T::zero()
    } else {
        T::from_f64(1.0 / (1.0 - p))
    };
    let mask: Vec<T> = (0..x.numel())
        .map(|_| {
            if rng.gen::<f64>() >= p {
                scale
            } else {
                T::zero()
            }
        })
        .collect();
    x.try_mul(&Var::constant(Tensor::from_vec(x.shape(), mask)))
}
