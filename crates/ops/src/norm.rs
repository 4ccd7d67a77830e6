//! Normalization and regularization primitives: batch_norm, layer_norm and
//! dropout, composed from differentiable ops, so the gradient through the
//! batch mean and variance is exact (and twice differentiable).

use crate::VarOps;
use chainrule_tape::error::{Error, Result};
use chainrule_tape::kernels::fold_lanes;
use chainrule_tape::shape::fmt_shape;
use chainrule_tape::{BackwardContext, Element, InputGrads, Op, Tensor, Var};
use rand::Rng;
use rayon::prelude::*;
use smallvec::smallvec;
use std::mem::MaybeUninit;

#[cfg(feature = "strategies")]
use crate::registry::{case, fixed, OpCase, ANY};

/// Batch normalization over channel axis 1 of x [N, C, …], as
/// `torch.nn.functional.batch_norm(input, running_mean, running_var,
/// weight, bias, training, momentum, eps)` (PyTorch's defaults: momentum
/// 0.1, eps 1e-5): y = (x − μ)/√(σ² + ε)·γ + β.
///
/// With `training`, μ and σ² are the batch's mean and biased variance per
/// channel, and running statistics, if given, are updated in place:
/// running_mean ← (1 − momentum)·running_mean + momentum·μ and
/// running_var ← (1 − momentum)·running_var + momentum·σ²·n/(n − 1) (the
/// unbiased batch variance, n values per channel). Without `training`, μ
/// and σ² are the running statistics (both required), taken as constants.
/// The statistics are updated only when the whole call succeeds.
#[allow(clippy::too_many_arguments)]
#[track_caller]
pub fn try_batch_norm<T: Element>(
    x: &Var<T>,
    running_mean: Option<&mut Tensor<T>>,
    running_var: Option<&mut Tensor<T>>,
    weight: Option<&Var<T>>,
    bias: Option<&Var<T>>,
    training: bool,
    momentum: T,
    eps: T,
) -> Result<Var<T>> {
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
    let running = match (running_mean, running_var) {
        (Some(m), Some(v)) => {
            check(m, "running_mean")?;
            check(v, "running_var")?;
            Some((m, v))
        }
        (None, None) => None,
        _ => {
            return Err(Error::argument(
                op,
                "running_mean and running_var must be given together",
            ))
        }
    };
    if let Some(w) = weight {
        check(w.value(), "weight")?;
    }
    if let Some(b) = bias {
        check(b.value(), "bias")?;
    }
    let normalized = if training {
        if count < 2 {
            return Err(Error::argument(
                op,
                format!(
                    "training needs more than one value per channel, got input {}",
                    fmt_shape(s)
                ),
            ));
        }
        let affine = weight.zip(bias);
        let (y, mean, var) = normalize_batch(x, affine, eps)?;
        if let Some((rm, rv)) = running {
            let unbias = T::from_f64(count as f64 / (count - 1) as f64);
            let blend = |old: &mut Tensor<T>, new: &Tensor<T>, scale: T| {
                for (o, &n) in old.data_mut().iter_mut().zip(new.data()) {
                    *o = (T::one() - momentum) * *o + momentum * (n * scale);
                }
            };
            blend(rm, &mean, T::one());
            blend(rv, &var, unbias);
        }
        if affine.is_some() {
            return Ok(y);
        }
        y
    } else {
        let Some((rm, rv)) = running else {
            return Err(Error::argument(
                op,
                "running_mean and running_var are required when training is false",
            ));
        };
        let m = Var::constant(rm.reshape(&stat_shape));
        let inv = Var::constant(rv.map(|v| T::one() / (v + eps).sqrt()).reshape(&stat_shape));
        x.try_sub(&m)?.try_mul(&inv)?
    };
    let mut out = normalized;
    if let Some(w) = weight {
        out = out.try_mul(&w.try_reshape_to(&stat_shape)?)?;
    }
    if let Some(b) = bias {
        out = out.try_add(&b.try_reshape_to(&stat_shape)?)?;
    }
    Ok(out)
}

panicking_twin!(
    /// Batch normalization as [`try_batch_norm`].
    batch_norm / try_batch_norm[T: Element](
        x: &Var<T>,
        running_mean: Option<&mut Tensor<T>>,
        running_var: Option<&mut Tensor<T>>,
        weight: Option<&Var<T>>,
        bias: Option<&Var<T>>,
        training: bool,
        momentum: T,
        eps: T,
    ) -> Var<T>
);

/// batch_norm's cases: training (batch statistics, the fused op) and
/// evaluation (fixed running statistics).
#[cfg(feature = "strategies")]
fn batch_norm_cases() -> Vec<OpCase> {
    vec![
        case!(
            "batch_norm_train" for [batch_norm],
            ["batch_normalize"],
            fixed(vec![(vec![4, 3, 2, 2], ANY), (vec![3], ANY), (vec![3], ANY)]),
            |v| try_batch_norm(&v[0], None, None, Some(&v[1]), Some(&v[2]), true, 0.1, 1e-5)
        ),
        case!(
            "batch_norm_eval" for [batch_norm],
            ["sub", "mul"],
            fixed(vec![(vec![4, 3, 2], ANY), (vec![3], ANY), (vec![3], ANY)]),
            |v| {
                let mut mean = Tensor::from_vec([3], vec![0.1, -0.2, 0.3]).cast();
                let mut var = Tensor::from_vec([3], vec![1.5, 0.7, 2.0]).cast();
                let (m, s) = (Some(&mut mean), Some(&mut var));
                try_batch_norm(&v[0], m, s, Some(&v[1]), Some(&v[2]), false, 0.1, 1e-5)
            }
        ),
    ]
}

/// Σ of `f(i)` for i in 0..len (len ≥ 1), in the shared eight-lane order.
#[inline(always)]
fn lane_sum<T: Element>(len: usize, f: impl Fn(usize) -> T) -> T {
    fold_lanes(len, f, |a, b| a + b)
}

/// Per-channel sums over x viewed as [N, C, S]: for each channel, Σ over
/// the batch of `block_sum(block_index)`, each block one (sample, channel) run
/// of S elements. Channels run in parallel.
fn per_channel_sums<R: Send + Sync + Copy + std::ops::Add<Output = R>>(
    shape: &[usize],
    zero: R,
    block_sum: impl Fn(usize) -> R + Sync,
) -> Vec<R> {
    let (n, c) = (shape[0], shape[1]);
    (0..c)
        .into_par_iter()
        .map(|ch| (0..n).fold(zero, |acc, b| acc + block_sum(b * c + ch)))
        .collect()
}

/// Per-channel statistics of x viewed as [N, C, S]: (mean, biased variance),
/// two passes (the mean first, then squared deviations from it).
fn channel_stats<T: Element>(x: &Tensor<T>) -> (Vec<T>, Vec<T>) {
    let s = x.shape();
    let inner: usize = s[2..].iter().product();
    let count = T::from_f64((s[0] * inner) as f64);
    let data = x.data();
    let block = |b: usize| &data[b * inner..(b + 1) * inner];
    let mean: Vec<T> = per_channel_sums::<T>(s, T::zero(), |b| {
        let v = block(b);
        lane_sum(inner, |i| v[i])
    })
    .into_iter()
    .map(|m| m / count)
    .collect();
    let c = s[1];
    let var = per_channel_sums::<T>(s, T::zero(), |b| {
        let (v, m) = (block(b), mean[b % c]);
        lane_sum(inner, |i| (v[i] - m) * (v[i] - m))
    })
    .into_iter()
    .map(|v| v / count)
    .collect();
    (mean, var)
}

/// A pair of sums, added componentwise.
#[derive(Clone, Copy)]
struct Pair<T>(T, T);
impl<T: Element> std::ops::Add for Pair<T> {
    type Output = Self;
    fn add(self, o: Self) -> Self {
        Pair(self.0 + o.0, self.1 + o.1)
    }
}

/// A new tensor of x's `shape` viewed as [N, C, S], built one (sample,
/// channel) block of S elements at a time, blocks in parallel:
/// `fill(channel, block, out)` must write all of `out`, which is block
/// `block` (elements block·S..(block + 1)·S). Callers write plain slice loops
/// with per-channel constants hoisted, which the compiler vectorises.
fn per_channel_blocks<T: Element>(
    shape: &[usize],
    fill: impl Fn(usize, usize, &mut [MaybeUninit<T>]) -> usize + Sync,
) -> Tensor<T> {
    let c = shape[1];
    let inner: usize = shape[2..].iter().product::<usize>().max(1);
    let total: usize = shape.iter().product();
    let mut out: Vec<T> = Vec::with_capacity(total);
    out.spare_capacity_mut()[..total]
        .par_chunks_mut(inner)
        .enumerate()
        .for_each(|(block, o)| {
            let written = fill(block % c, block, o);
            assert_eq!(
                written,
                o.len(),
                "batch_norm block {block} left elements unwritten"
            );
        });
    // SAFETY: invariant: the first `total` slots are initialised. The chunks
    // of `inner` (≥ 1) cover all `total` slots, and the assert above checks
    // that each `fill` wrote its whole block (both callers zip the block
    // with an `inner`-long source slice, which panics if short, and return
    // the zip's length).
    unsafe { out.set_len(total) };
    Tensor::from_vec(shape, out)
}

/// x̂ = (x − μ)/√(σ² + ε) with per-channel batch statistics (axis 1), and
/// optionally the affine y = x̂·γ + β, as one op (inputs x, or x, γ, β):
/// ∂/∂β = ΣG, ∂/∂γ = Σ G·x̂, ∂/∂x = σ⁻¹·(G' − mean(G') − x̂·mean(G'·x̂))
/// with G' = γ·G (G without the affine); sums and means over all axes but 1.
/// Without create_graph this runs as two fused passes (both per-channel sums,
/// then ∂x), recomputing x̂ from x and the saved statistics; with it, the
/// same formulas are built from differentiable ops (μ and σ⁻¹ recomputed
/// from x), so second derivatives are exact.
pub struct BatchNormalize<T: Element> {
    /// ε.
    pub eps: T,
    /// μ per channel, from the forward pass.
    pub mean: Vec<T>,
    /// 1/√(σ² + ε) per channel, from the forward pass.
    pub inv_std: Vec<T>,
    /// Inputs 1 and 2 are γ and β (each `[C]`).
    pub affine: bool,
}

impl<T: Element> Op<T> for BatchNormalize<T> {
    fn name(&self) -> &str {
        "batch_normalize"
    }
    fn formula(&self, input: usize) -> Option<String> {
        Some(
            match input {
                0 if self.affine => "σ⁻¹·(γG − mean(γG) − x̂·mean(γG·x̂))",
                0 => "σ⁻¹·(G − mean(G) − x̂·mean(G·x̂))",
                1 => "Σ G·x̂",
                _ => "Σ G",
            }
            .into(),
        )
    }
    fn describe(&self) -> String {
        format!(
            "batch_normalize(eps={:?}, affine={})",
            self.eps, self.affine
        )
    }
    fn backward(&self, cx: &BackwardContext<'_, T>) -> Result<InputGrads<T>> {
        let x = cx.input(0);
        let rank = x.shape().len();
        let c = x.shape()[1];
        let axes: Vec<isize> = std::iter::once(0).chain(2..rank as isize).collect();
        let mut stat_shape = vec![1; rank];
        stat_shape[1] = c;
        let mut out: InputGrads<T> = smallvec![None; if self.affine { 3 } else { 1 }];
        if cx.create_graph {
            let mean = x.try_mean(&axes, true)?;
            let centered = x.try_sub(&mean)?;
            let inv_std = centered
                .try_square()?
                .try_mean(&axes, true)?
                .add_scalar(self.eps)
                .try_powf(T::from_f64(-0.5))?;
            let recomputed;
            let (xh, g) = if self.affine {
                recomputed = centered.try_mul(&inv_std)?;
                if cx.needs(1) {
                    out[1] = Some(cx.grad.try_mul(&recomputed)?.try_sum(&axes, false)?);
                }
                if cx.needs(2) {
                    out[2] = Some(cx.grad.try_sum(&axes, false)?);
                }
                let gamma = cx.input(1).try_reshape_to(&stat_shape)?;
                (&recomputed, cx.grad.try_mul(&gamma)?)
            } else {
                (cx.output, cx.grad.clone())
            };
            if cx.needs(0) {
                let inner = g
                    .try_sub(&g.try_mean(&axes, true)?)?
                    .try_sub(&xh.try_mul(&g.try_mul(xh)?.try_mean(&axes, true)?)?)?;
                out[0] = Some(inner.try_mul(&inv_std)?);
            }
            return Ok(out);
        }
        let g = cx.grad.value();
        let s = g.shape();
        let inner: usize = s[2..].iter().product();
        let count = T::from_f64((s[0] * inner) as f64);
        let (gd, xd) = (g.data(), x.value().data());
        let (mean, inv) = (&self.mean, &self.inv_std);
        // One pass for both per-channel sums, ΣG and ΣG·x̂, then one for ∂x.
        let sums = per_channel_sums::<Pair<T>>(s, Pair(T::zero(), T::zero()), |b| {
            let (gb, xb) = (
                &gd[b * inner..(b + 1) * inner],
                &xd[b * inner..(b + 1) * inner],
            );
            let (m, k) = (mean[b % c], inv[b % c]);
            Pair(
                lane_sum(inner, |i| gb[i]),
                lane_sum(inner, |i| gb[i] * ((xb[i] - m) * k)),
            )
        });
        let gamma: Vec<T> = if self.affine {
            cx.input(1).value().data().to_vec()
        } else {
            vec![T::one(); c]
        };
        if cx.needs(0) {
            // mean(γG) = γ·mean(G) and mean(γG·x̂) = γ·mean(G·x̂) per channel.
            let mg: Vec<T> = sums.iter().map(|p| p.0 / count).collect();
            let mgx: Vec<T> = sums.iter().map(|p| p.1 / count).collect();
            // ∂x = A·G + B·(x − μ) + C per channel, with A = σ⁻¹γ,
            // B = −σ⁻²γ·mean(G·x̂) and C = −σ⁻¹γ·mean(G).
            let dx = per_channel_blocks(s, |ch, b, out| {
                let range = b * inner..(b + 1) * inner;
                let (gb, xb) = (&gd[range.clone()], &xd[range]);
                let a = inv[ch] * gamma[ch];
                let (bb, cc, m) = (-a * inv[ch] * mgx[ch], -a * mg[ch], mean[ch]);
                for ((o, &g), &x) in out.iter_mut().zip(gb).zip(xb) {
                    o.write(a * g + bb * (x - m) + cc);
                }
                out.len().min(gb.len()).min(xb.len())
            });
            out[0] = Some(Var::constant(dx));
        }
        if self.affine {
            if cx.needs(1) {
                let dg = sums.iter().map(|p| p.1).collect();
                out[1] = Some(Var::constant(Tensor::from_vec([c], dg)));
            }
            if cx.needs(2) {
                let db = sums.iter().map(|p| p.0).collect();
                out[2] = Some(Var::constant(Tensor::from_vec([c], db)));
            }
        }
        Ok(out)
    }
}

/// Training-mode normalization, with the affine γ, β when both are given:
/// (output, batch mean, biased batch variance).
fn normalize_batch<T: Element>(
    x: &Var<T>,
    affine: Option<(&Var<T>, &Var<T>)>,
    eps: T,
) -> Result<(Var<T>, Tensor<T>, Tensor<T>)> {
    let (mean, var) = channel_stats(x.value());
    let inv_std: Vec<T> = var.iter().map(|&v| T::one() / (v + eps).sqrt()).collect();
    let c = mean.len();
    // y = (x − μ)·a + c per channel: a = σ⁻¹γ, c = β (a = σ⁻¹, c = 0 without the affine).
    let coef: Vec<(T, T)> = match affine {
        Some((w, b)) => (0..c)
            .map(|ch| (inv_std[ch] * w.value().data()[ch], b.value().data()[ch]))
            .collect(),
        None => inv_std.iter().map(|&k| (k, T::zero())).collect(),
    };
    let inner: usize = x.shape()[2..].iter().product::<usize>().max(1);
    let xd = x.value().data();
    let y = per_channel_blocks(x.shape(), |ch, b, out| {
        let ((a, shift), m) = (coef[ch], mean[ch]);
        let src = &xd[b * inner..(b + 1) * inner];
        for (o, &v) in out.iter_mut().zip(src) {
            o.write((v - m) * a + shift);
        }
        out.len().min(src.len())
    });
    let inputs = match affine {
        Some((w, b)) => vec![x, w, b],
        None => vec![x],
    };
    let mean_t = Tensor::from_vec([c], mean.clone());
    let out = Var::from_op(
        BatchNormalize {
            eps,
            mean,
            inv_std,
            affine: affine.is_some(),
        },
        &inputs,
        y,
    )?;
    Ok((out, mean_t, Tensor::from_vec([c], var)))
}

/// Layer normalization over the last `normalized_dims` dimensions:
/// y = (x − μ)/√(σ² + ε)·γ + β with γ, β shaped like those dimensions.
#[track_caller]
pub fn try_layer_norm<T: Element>(
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

panicking_twin!(
    /// Layer normalization as [`try_layer_norm`].
    layer_norm / try_layer_norm[T: Element](
        x: &Var<T>,
        normalized_dims: usize,
        weight: Option<&Var<T>>,
        bias: Option<&Var<T>>,
        eps: T,
    ) -> Var<T>
);

#[cfg(feature = "strategies")]
fn layer_norm_cases() -> Vec<OpCase> {
    vec![case!(
        "layer_norm" for [layer_norm],
        ["sum", "sqrt"],
        fixed(vec![(vec![3, 2, 4], ANY), (vec![2, 4], ANY), (vec![2, 4], ANY)]),
        |v| try_layer_norm(&v[0], 2, Some(&v[1]), Some(&v[2]), 1e-5)
    )]
}

/// Inverted dropout: in training, each element is zeroed with probability p
/// and the survivors scaled by 1/(1 − p), so the expectation is unchanged;
/// the identity otherwise. The mask comes from `rng`, so runs repeat exactly.
#[track_caller]
pub fn try_dropout<T: Element>(
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

panicking_twin!(
    /// Dropout as [`try_dropout`].
    dropout / try_dropout[T: Element](x: &Var<T>, p: f64, training: bool, rng: &mut impl Rng) -> Var<T>
);

/// This family's registry cases (dropout has none: its mask is random; it
/// is a `mul` by a constant, and tests/nn_ops.rs checks its statistics).
#[cfg(feature = "strategies")]
pub(crate) fn cases() -> Vec<OpCase> {
    [batch_norm_cases(), layer_norm_cases()].concat()
}
