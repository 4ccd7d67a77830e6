//! Loss functions, as `torch.nn.functional`, each with reduction
//! `none | mean | sum`. Cross-entropy from logits with class indices is one
//! fused op (a stable log-softmax inside); the others compose ops, so their
//! gradients are the chain rule through those. Each loss's registry cases
//! follow it.

use crate::activations::{clamp, softplus};
use crate::indexing::{gather, try_where_, Indices};
use crate::softmax::{log_softmax, softmax};
use crate::VarOps;
use chainrule_tape::error::{Error, Result};
use chainrule_tape::shape::fmt_shape;
use chainrule_tape::{BackwardContext, Element, InputGrads, Op, Tensor, Var};
use smallvec::smallvec;

#[cfg(feature = "strategies")]
use crate::registry::{
    case, fixed, grid, pattern_indices, unary_fixed, Domain, OpCase, ANY, POSITIVE,
};

/// How per-element losses are combined.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum Reduction {
    /// One loss per element (or per sample).
    None,
    /// The mean (weighted mean where class weights apply) — PyTorch's default.
    #[default]
    Mean,
    /// The sum.
    Sum,
    /// Sum divided by the batch size (`kl_div`'s mathematically correct mean).
    BatchMean,
}

fn reduce<T: Element>(op: &'static str, l: Var<T>, r: Reduction) -> Result<Var<T>> {
    match r {
        Reduction::None => Ok(l),
        Reduction::Sum => l.try_sum_all(),
        Reduction::Mean => l.try_mean_all(),
        Reduction::BatchMean => {
            let n = l.shape().first().copied().unwrap_or(1).max(1);
            if op != "kl_div" {
                return Err(Error::argument(op, "batchmean is only for kl_div"));
            }
            Ok(l.try_sum_all()?
                .mul_scalar(T::one() / T::from_f64(n as f64)))
        }
    }
}

/// Reduces per-row class losses; the mean divides by `denom`, the sum of
/// the counted rows' class weights (PyTorch's weighted mean).
fn reduce_weighted<T: Element>(
    op: &'static str,
    per_row: Var<T>,
    rest: &[usize],
    r: Reduction,
    denom: f64,
) -> Result<Var<T>> {
    match r {
        Reduction::None => per_row.try_reshape_to(rest),
        Reduction::Sum => per_row.try_sum_all(),
        Reduction::Mean => Ok(per_row.try_sum_all()?.mul_scalar(T::from_f64(1.0 / denom))),
        Reduction::BatchMean => Err(Error::argument(op, "batchmean is only for kl_div")),
    }
}

/// Probabilities away from 0 and 1, where ln is steep.
#[cfg(feature = "strategies")]
const PROB: Domain = Domain::Range(0.05, 0.95);

/// Class targets for n rows of c classes.
#[cfg(feature = "strategies")]
fn targets(n: usize, c: usize) -> Indices {
    pattern_indices(&[n], c)
}

/// Class-loss options with weights given as f64.
#[cfg(feature = "strategies")]
fn options<T: Element>(
    weight: Option<Vec<f64>>,
    ignore: Option<usize>,
    smoothing: f64,
    r: Reduction,
) -> ClassLossOptions<T> {
    ClassLossOptions {
        weight: weight
            .map(|w| Tensor::from_vec([w.len()], w.into_iter().map(T::from_f64).collect())),
        ignore_index: ignore,
        label_smoothing: smoothing,
        reduction: r,
    }
}

fn same_shape<T: Element>(op: &'static str, a: &Var<T>, b: &Var<T>) -> Result<()> {
    if a.shape() != b.shape() {
        return Err(Error::shape(
            op,
            format!(
                "input {} and target {} differ",
                fmt_shape(a.shape()),
                fmt_shape(b.shape())
            ),
        ));
    }
    Ok(())
}

/// Mean squared error: (x − y)².
#[track_caller]
pub fn try_mse_loss<T: Element>(x: &Var<T>, y: &Var<T>, r: Reduction) -> Result<Var<T>> {
    same_shape("mse_loss", x, y)?;
    reduce("mse_loss", x.try_sub(y)?.try_square()?, r)
}

panicking_twin!(
    /// As [`try_mse_loss`].
    mse_loss / try_mse_loss[T: Element](x: &Var<T>, y: &Var<T>, r: Reduction) -> Var<T>
);

#[cfg(feature = "strategies")]
fn mse_loss_cases() -> Vec<OpCase> {
    vec![case!(
        "mse_loss" for [mse_loss],
        ["sub", "pow_scalar"],
        fixed(vec![(vec![3, 4], ANY), (vec![3, 4], ANY)]),
        |v| try_mse_loss(&v[0], &v[1], Reduction::Mean)
    )]
}

/// Mean absolute error: |x − y| (gradient 0 where x = y, as PyTorch).
#[track_caller]
pub fn try_l1_loss<T: Element>(x: &Var<T>, y: &Var<T>, r: Reduction) -> Result<Var<T>> {
    same_shape("l1_loss", x, y)?;
    reduce("l1_loss", x.try_sub(y)?.try_abs()?, r)
}

panicking_twin!(
    /// As [`try_l1_loss`].
    l1_loss / try_l1_loss[T: Element](x: &Var<T>, y: &Var<T>, r: Reduction) -> Var<T>
);

/// l1_loss's case: x > 0 > y, away from |x − y|'s kink.
#[cfg(feature = "strategies")]
fn l1_loss_cases() -> Vec<OpCase> {
    vec![case!(
        "l1_loss_sum" for [l1_loss],
        ["abs"],
        fixed(vec![
            (vec![3, 4], Domain::Range(0.2, 2.0)),
            (vec![3, 4], Domain::Range(-2.0, -0.1))
        ]),
        |v| try_l1_loss(&v[0], &v[1], Reduction::Sum)
    )]
}

/// Quadratic inside |d| < width, linear outside: `scale_quadratic·½d²` vs `|d| − ½·width·…`.
fn piecewise<T: Element>(d: &Var<T>, width: T, huber: bool) -> Result<Var<T>> {
    let a = d.try_abs()?;
    let inside = a
        .value()
        .map(|v| if v < width { T::one() } else { T::zero() });
    let half = T::from_f64(0.5);
    let (quad, lin) = if huber {
        // ½d² | δ(|d| − ½δ)
        (
            d.try_square()?.mul_scalar(half),
            a.add_scalar(-half * width).mul_scalar(width),
        )
    } else {
        // ½d²/β | |d| − ½β
        (
            d.try_square()?.mul_scalar(half / width),
            a.add_scalar(-half * width),
        )
    };
    try_where_(&inside, &quad, &lin)
}

/// Smooth L1: ½d²/β where |d| < β, else |d| − ½β (β = 1 by default; β = 0 is L1).
#[track_caller]
pub fn try_smooth_l1_loss<T: Element>(
    x: &Var<T>,
    y: &Var<T>,
    beta: T,
    r: Reduction,
) -> Result<Var<T>> {
    same_shape("smooth_l1_loss", x, y)?;
    if beta < T::zero() {
        return Err(Error::argument(
            "smooth_l1_loss",
            format!("beta must be ≥ 0, got {beta}"),
        ));
    }
    let d = x.try_sub(y)?;
    let l = if beta == T::zero() {
        d.try_abs()?
    } else {
        piecewise(&d, beta, false)?
    };
    reduce("smooth_l1_loss", l, r)
}

panicking_twin!(
    /// As [`try_smooth_l1_loss`].
    smooth_l1_loss / try_smooth_l1_loss[T: Element](x: &Var<T>, y: &Var<T>, beta: T, r: Reduction) -> Var<T>
);

/// smooth_l1_loss's case: grids 0.05 apart, so |x − y| never meets β = 1.
#[cfg(feature = "strategies")]
fn smooth_l1_loss_cases() -> Vec<OpCase> {
    vec![case!(
        "smooth_l1_loss" for [smooth_l1_loss],
        ["where"],
        grid(vec![(vec![3, 4], 0.0), (vec![3, 4], 0.05)]),
        |v| try_smooth_l1_loss(&v[0], &v[1], 1.0, Reduction::Mean)
    )]
}

/// Huber: ½d² where |d| < δ, else δ(|d| − ½δ) (δ = 1 by default).
#[track_caller]
pub fn try_huber_loss<T: Element>(
    x: &Var<T>,
    y: &Var<T>,
    delta: T,
    r: Reduction,
) -> Result<Var<T>> {
    same_shape("huber_loss", x, y)?;
    if delta.is_nan() || delta <= T::zero() {
        return Err(Error::argument(
            "huber_loss",
            format!("delta must be > 0, got {delta}"),
        ));
    }
    reduce("huber_loss", piecewise(&x.try_sub(y)?, delta, true)?, r)
}

panicking_twin!(
    /// As [`try_huber_loss`].
    huber_loss / try_huber_loss[T: Element](x: &Var<T>, y: &Var<T>, delta: T, r: Reduction) -> Var<T>
);

/// huber_loss's case: grids 0.05 apart, so |x − y| never meets δ = 0.8.
#[cfg(feature = "strategies")]
fn huber_loss_cases() -> Vec<OpCase> {
    vec![case!(
        "huber_loss_none" for [huber_loss],
        ["where"],
        grid(vec![(vec![3, 4], 0.0), (vec![3, 4], 0.05)]),
        |v| try_huber_loss(&v[0], &v[1], 0.8, Reduction::None)
    )]
}

/// Binary cross-entropy on probabilities p ∈ [0, 1]:
/// −w·(y·ln p + (1 − y)·ln(1 − p)), each log clamped at −100 as PyTorch does
/// (so p = 0 or 1 gives a finite loss).
#[track_caller]
pub fn try_binary_cross_entropy<T: Element>(
    p: &Var<T>,
    y: &Var<T>,
    weight: Option<&Tensor<T>>,
    r: Reduction,
) -> Result<Var<T>> {
    same_shape("binary_cross_entropy", p, y)?;
    if p.value()
        .data()
        .iter()
        .any(|&v| !(v >= T::zero() && v <= T::one()))
    {
        return Err(Error::argument(
            "binary_cross_entropy",
            "inputs must be probabilities in [0, 1] (use binary_cross_entropy_with_logits for logits)",
        ));
    }
    let floor = T::from_f64(-100.0);
    let log_p = clamp(&p.try_log()?, floor, T::infinity(), true)?;
    let log_q = clamp(
        &p.rsub_scalar(T::one()).try_log()?,
        floor,
        T::infinity(),
        true,
    )?;
    let mut l = y
        .try_mul(&log_p)?
        .try_add(&y.rsub_scalar(T::one()).try_mul(&log_q)?)?
        .neg();
    if let Some(w) = weight {
        l = l.try_mul(&Var::constant(w.clone()))?;
    }
    reduce("binary_cross_entropy", l, r)
}

panicking_twin!(
    /// As [`try_binary_cross_entropy`].
    binary_cross_entropy / try_binary_cross_entropy[T: Element](p: &Var<T>, y: &Var<T>, weight: Option<&Tensor<T>>, r: Reduction) -> Var<T>
);

#[cfg(feature = "strategies")]
fn binary_cross_entropy_cases() -> Vec<OpCase> {
    vec![
        case!(
            "binary_cross_entropy" for [binary_cross_entropy],
            ["log", "clamp"],
            fixed(vec![(vec![3, 4], PROB), (vec![3, 4], Domain::Range(0.0, 1.0))]),
            |v| try_binary_cross_entropy(&v[0], &v[1], None, Reduction::Mean)
        ),
        case!(
            "binary_cross_entropy_weighted" for [binary_cross_entropy],
            ["log", "clamp"],
            fixed(vec![(vec![3, 4], PROB), (vec![3, 4], Domain::Range(0.0, 1.0))]),
            |v| {
                let w = Tensor::from_fn([4], |k| 0.5 + 0.25 * k as f64);
                try_binary_cross_entropy(&v[0], &v[1], Some(&w.cast()), Reduction::Sum)
            }
        ),
    ]
}

/// Binary cross-entropy on logits, stably:
/// (1 − y)·x + (1 + (pw − 1)·y)·softplus(−x), times `weight`; `pos_weight`
/// (pw) weighs positives and broadcasts over the last (class) dimension.
#[track_caller]
pub fn try_binary_cross_entropy_with_logits<T: Element>(
    x: &Var<T>,
    y: &Var<T>,
    weight: Option<&Tensor<T>>,
    pos_weight: Option<&Tensor<T>>,
    r: Reduction,
) -> Result<Var<T>> {
    same_shape("binary_cross_entropy_with_logits", x, y)?;
    let sp = softplus(&x.neg(), T::one(), T::infinity())?;
    let lw = match pos_weight {
        Some(pw) => Var::constant(pw.map(|v| v - T::one()))
            .try_mul(y)?
            .add_scalar(T::one()),
        None => Var::constant(Tensor::scalar(T::one())),
    };
    let mut l = y
        .rsub_scalar(T::one())
        .try_mul(x)?
        .try_add(&lw.try_mul(&sp)?)?;
    if let Some(w) = weight {
        l = l.try_mul(&Var::constant(w.clone()))?;
    }
    reduce("binary_cross_entropy_with_logits", l, r)
}

panicking_twin!(
    /// As [`try_binary_cross_entropy_with_logits`].
    binary_cross_entropy_with_logits / try_binary_cross_entropy_with_logits[T: Element](x: &Var<T>, y: &Var<T>, weight: Option<&Tensor<T>>, pos_weight: Option<&Tensor<T>>, r: Reduction) -> Var<T>
);

#[cfg(feature = "strategies")]
fn binary_cross_entropy_with_logits_cases() -> Vec<OpCase> {
    vec![case!(
        "bce_with_logits_pos_weight" for [binary_cross_entropy_with_logits],
        ["softplus"],
        fixed(vec![
            (vec![3, 4], Domain::Range(-4.0, 4.0)),
            (vec![3, 4], Domain::Range(0.0, 1.0))
        ]),
        |v| {
            let pw = Tensor::from_fn([4], |k| 0.5 + 0.5 * k as f64);
            try_binary_cross_entropy_with_logits(
                &v[0],
                &v[1],
                None,
                Some(&pw.cast()),
                Reduction::Mean,
            )
        }
    )]
}

/// Options of [`cross_entropy`] and [`nll_loss`] (PyTorch's defaults).
#[derive(Clone, Debug, Default)]
pub struct ClassLossOptions<T: Element> {
    /// Per-class weights (length C).
    pub weight: Option<Tensor<T>>,
    /// Targets equal to this contribute nothing (and do not count in the mean).
    pub ignore_index: Option<usize>,
    /// ε: the target becomes (1 − ε)·onehot + ε/C.
    pub label_smoothing: f64,
    /// Reduction (mean).
    pub reduction: Reduction,
}

/// Moves the class axis (1) last and flattens: [N, C, d…] → [N·d…, C].
fn rows<T: Element>(op: &'static str, x: &Var<T>) -> Result<(Var<T>, Vec<usize>)> {
    let s = x.shape();
    match s.len() {
        1 => Ok((x.try_reshape_to(&[1, s[0]])?, vec![])),
        2 => Ok((x.clone(), vec![s[0]])),
        0 => Err(Error::shape(op, "input must have a class dimension")),
        r => {
            let mut perm: Vec<usize> = vec![0];
            perm.extend(2..r);
            perm.push(1);
            let mut rest = vec![s[0]];
            rest.extend_from_slice(&s[2..]);
            let moved = x.try_permute(&perm)?;
            Ok((moved.try_reshape_to(&[rest.iter().product(), s[1]])?, rest))
        }
    }
}

/// Per-row cross-entropy Σ_c T_ic·(lse_i − x_ic) for a constant target
/// matrix T (weighted, smoothed one-hot). ∂/∂x_ic = g_i·(softmax_ic·Σ_c T_ic − T_ic).
pub struct CrossEntropyRows<T: Element> {
    /// The weighted target matrix, [rows, C].
    pub target: Tensor<T>,
}
impl<T: Element> Op<T> for CrossEntropyRows<T> {
    fn name(&self) -> &str {
        "cross_entropy"
    }
    fn formula(&self, _input: usize) -> Option<String> {
        Some("g·(softmax(x)·ΣT − T)".into())
    }
    fn backward(&self, cx: &BackwardContext<'_, T>) -> Result<InputGrads<T>> {
        let x = cx.input(0);
        let n = x.shape()[0];
        let t_sum = Var::constant(self.target.sum_axes(&[1], true));
        let g = cx.grad.try_reshape_to(&[n, 1])?;
        let p = softmax(x, 1)?;
        let dx = p
            .try_mul(&g.try_mul(&t_sum)?)?
            .try_sub(&g.try_mul(&Var::constant(self.target.clone()))?)?;
        Ok(smallvec![Some(dx)])
    }
}

fn check_targets(
    op: &'static str,
    rows: usize,
    classes: usize,
    target: &Indices,
    ignore: Option<usize>,
) -> Result<()> {
    if target.len() != rows {
        return Err(Error::shape(
            op,
            format!("{} targets for {rows} rows of logits", target.len()),
        ));
    }
    if let Some(&bad) = target
        .data
        .iter()
        .find(|&&t| t >= classes && Some(t) != ignore)
    {
        return Err(Error::argument(
            op,
            format!("target class {bad} is out of range for {classes} classes"),
        ));
    }
    Ok(())
}

fn class_weights<T: Element>(
    op: &'static str,
    w: &Option<Tensor<T>>,
    classes: usize,
) -> Result<Vec<f64>> {
    match w {
        None => Ok(vec![1.0; classes]),
        Some(w) if w.numel() == classes => Ok(w.data().iter().map(|v| v.as_f64()).collect()),
        Some(w) => Err(Error::shape(
            op,
            format!("weight {} for {classes} classes", fmt_shape(w.shape())),
        )),
    }
}

/// Cross-entropy from logits `[N, C]` (or `[C]`, or `[N, C, d…]`) with class-index
/// targets, fused: loss_i = Σ_c T_ic·(logsumexp(x_i) − x_ic) with
/// T_i = w_{y_i}(1 − ε)·onehot(y_i) + ε/C·w. The mean divides by Σ w_{y_i}
/// over targets that are not ignored, as PyTorch.
#[track_caller]
pub fn try_cross_entropy<T: Element>(
    logits: &Var<T>,
    target: &Indices,
    o: &ClassLossOptions<T>,
) -> Result<Var<T>> {
    let op = "cross_entropy";
    let (x, rest) = rows(op, logits)?;
    let (n, c) = (x.shape()[0], x.shape()[1]);
    check_targets(op, n, c, target, o.ignore_index)?;
    if !(0.0..=1.0).contains(&o.label_smoothing) {
        return Err(Error::argument(
            op,
            format!(
                "label_smoothing must be in [0, 1], got {}",
                o.label_smoothing
            ),
        ));
    }
    let w = class_weights(op, &o.weight, c)?;
    let eps = o.label_smoothing;
    let mut t = vec![T::zero(); n * c];
    let mut denom = 0.0;
    for (i, &y) in target.data.iter().enumerate() {
        if Some(y) == o.ignore_index {
            continue;
        }
        denom += w[y];
        for (k, wk) in w.iter().enumerate() {
            t[i * c + k] = T::from_f64(eps / c as f64 * wk);
        }
        t[i * c + y] = t[i * c + y] + T::from_f64((1.0 - eps) * w[y]);
    }
    let target_matrix = Tensor::from_vec([n, c], t);
    // Forward: stable log-softmax per row, then the weighted sum.
    let logp = x.value().clone();
    let mut losses = Vec::with_capacity(n);
    for i in 0..n {
        let row = &logp.data()[i * c..(i + 1) * c];
        let m = row.iter().copied().fold(T::neg_infinity(), T::max);
        let lse = m + row.iter().map(|&v| (v - m).exp()).sum::<T>().ln();
        let ti = &target_matrix.data()[i * c..(i + 1) * c];
        losses.push(
            ti.iter()
                .zip(row)
                .filter(|(&tk, _)| tk != T::zero())
                .map(|(&tk, &v)| tk * (lse - v))
                .sum::<T>(),
        );
    }
    let per_row = Var::from_op(
        CrossEntropyRows {
            target: target_matrix,
        },
        &[&x],
        Tensor::from_vec([n], losses),
    )?;
    reduce_weighted(op, per_row, &rest, o.reduction, denom)
}

panicking_twin!(
    /// As [`try_cross_entropy`].
    cross_entropy / try_cross_entropy[T: Element](logits: &Var<T>, target: &Indices, o: &ClassLossOptions<T>) -> Var<T>
);

/// cross_entropy's cases: plain, weighted with an ignored class and label
/// smoothing, and spatial ([N, C, H, W]) without reduction.
#[cfg(feature = "strategies")]
fn cross_entropy_cases() -> Vec<OpCase> {
    vec![
        case!(
            "cross_entropy" for [cross_entropy],
            ["cross_entropy"],
            unary_fixed(&[5, 4], ANY),
            |v| try_cross_entropy(
                &v[0],
                &targets(5, 4),
                &options(None, None, 0.0, Reduction::Mean)
            )
        ),
        case!(
            "cross_entropy_weighted_ignore_smoothing" for [cross_entropy],
            ["cross_entropy"],
            unary_fixed(&[6, 4], ANY),
            |v| {
                let o = options(Some(vec![0.5, 1.0, 2.0, 1.5]), Some(2), 0.1, Reduction::Mean);
                try_cross_entropy(&v[0], &targets(6, 4), &o)
            }
        ),
        case!(
            "cross_entropy_spatial_none" for [cross_entropy],
            ["cross_entropy", "permute"],
            unary_fixed(&[2, 3, 2, 2], ANY),
            |v| {
                let o = options(None, None, 0.0, Reduction::None);
                try_cross_entropy(&v[0], &pattern_indices(&[2, 2, 2], 3), &o)
            }
        ),
    ]
}

/// Cross-entropy from logits with probability targets of the same shape:
/// loss_i = −Σ_c w_c·q_ic·log_softmax(x)_ic with q = (1 − ε)p + ε/C; the mean
/// divides by the number of rows. Differentiable in the targets too.
#[track_caller]
pub fn try_cross_entropy_probs<T: Element>(
    logits: &Var<T>,
    target: &Var<T>,
    o: &ClassLossOptions<T>,
) -> Result<Var<T>> {
    let op = "cross_entropy";
    same_shape(op, logits, target)?;
    let (x, rest) = rows(op, logits)?;
    let (p, _) = rows(op, target)?;
    let c = x.shape()[1];
    let eps = T::from_f64(o.label_smoothing);
    let q = p
        .mul_scalar(T::one() - eps)
        .add_scalar(eps / T::from_f64(c as f64));
    let mut wq = q;
    if o.weight.is_some() {
        let w = class_weights(op, &o.weight, c)?;
        wq = wq.try_mul(&Var::constant(Tensor::from_vec(
            [c],
            w.into_iter().map(T::from_f64).collect(),
        )))?;
    }
    let per_row = wq
        .try_mul(&log_softmax(&x, 1)?)?
        .try_sum(&[1], false)?
        .neg();
    match o.reduction {
        Reduction::None => per_row.try_reshape_to(&rest),
        r => reduce(op, per_row, r),
    }
}

panicking_twin!(
    /// As [`try_cross_entropy_probs`].
    cross_entropy_probs / try_cross_entropy_probs[T: Element](logits: &Var<T>, target: &Var<T>, o: &ClassLossOptions<T>) -> Var<T>
);

#[cfg(feature = "strategies")]
fn cross_entropy_probs_cases() -> Vec<OpCase> {
    vec![case!(
        "cross_entropy_probs" for [cross_entropy_probs],
        ["log_softmax"],
        fixed(vec![(vec![3, 4], ANY), (vec![3, 4], Domain::Range(0.0, 1.0))]),
        |v| {
            let o = options(Some(vec![1.0, 0.5, 2.0, 1.0]), None, 0.2, Reduction::Mean);
            try_cross_entropy_probs(&v[0], &v[1], &o)
        }
    )]
}

/// Negative log-likelihood of log-probabilities [N, C] (or [N, C, d…]):
/// loss_i = −w_{y_i}·x_{i,y_i}; the mean divides by Σ w_{y_i} (ignored targets excluded).
#[track_caller]
pub fn try_nll_loss<T: Element>(
    logp: &Var<T>,
    target: &Indices,
    o: &ClassLossOptions<T>,
) -> Result<Var<T>> {
    let op = "nll_loss";
    let (x, rest) = rows(op, logp)?;
    let (n, c) = (x.shape()[0], x.shape()[1]);
    check_targets(op, n, c, target, o.ignore_index)?;
    let w = class_weights(op, &o.weight, c)?;
    let (mut picks, mut scale, mut denom) = (Vec::with_capacity(n), Vec::with_capacity(n), 0.0);
    for &y in &target.data {
        if Some(y) == o.ignore_index {
            picks.push(0);
            scale.push(T::zero());
        } else {
            picks.push(y);
            scale.push(T::from_f64(-w[y]));
            denom += w[y];
        }
    }
    let picked = gather(&x, 1, &Indices::new(vec![n, 1], picks)?)?.try_reshape_to(&[n])?;
    let per_row = picked.try_mul(&Var::constant(Tensor::from_vec([n], scale)))?;
    reduce_weighted(op, per_row, &rest, o.reduction, denom)
}

panicking_twin!(
    /// As [`try_nll_loss`].
    nll_loss / try_nll_loss[T: Element](logp: &Var<T>, target: &Indices, o: &ClassLossOptions<T>) -> Var<T>
);

#[cfg(feature = "strategies")]
fn nll_loss_cases() -> Vec<OpCase> {
    vec![case!(
        "nll_loss" for [nll_loss],
        ["take"],
        unary_fixed(&[5, 3], ANY),
        |v| {
            let o = options(Some(vec![0.3, 1.0, 2.0]), Some(1), 0.0, Reduction::Mean);
            try_nll_loss(&v[0], &targets(5, 3), &o)
        }
    )]
}

/// KL divergence with `input` = log q: target·(ln target − input), 0 where
/// target = 0 (or, with `log_target`, e^t·(t − input)). PyTorch's default
/// reduction `mean` averages over elements; `BatchMean` is the true KL mean.
#[track_caller]
pub fn try_kl_div<T: Element>(
    input: &Var<T>,
    target: &Var<T>,
    log_target: bool,
    r: Reduction,
) -> Result<Var<T>> {
    same_shape("kl_div", input, target)?;
    let l = if log_target {
        target.try_exp()?.try_mul(&target.try_sub(input)?)?
    } else {
        let positive = target
            .value()
            .map(|v| if v > T::zero() { T::one() } else { T::zero() });
        let one = Var::constant(Tensor::scalar(T::one()));
        let safe = try_where_(&positive, target, &one)?; // ln(1) = 0 where target = 0
        let xlogx = target.try_mul(&safe.try_log()?)?;
        xlogx.try_sub(&target.try_mul(input)?)?
    };
    reduce("kl_div", l, r)
}

panicking_twin!(
    /// As [`try_kl_div`].
    kl_div / try_kl_div[T: Element](input: &Var<T>, target: &Var<T>, log_target: bool, r: Reduction) -> Var<T>
);

#[cfg(feature = "strategies")]
fn kl_div_cases() -> Vec<OpCase> {
    vec![
        case!(
            "kl_div_batchmean" for [kl_div],
            ["log"],
            fixed(vec![(vec![3, 4], ANY), (vec![3, 4], POSITIVE)]),
            |v| try_kl_div(&v[0], &v[1], false, Reduction::BatchMean)
        ),
        case!(
            "kl_div_log_target" for [kl_div],
            ["exp"],
            fixed(vec![(vec![3, 4], ANY), (vec![3, 4], ANY)]),
            |v| try_kl_div(&v[0], &v[1], true, Reduction::Sum)
        ),
    ]
}

/// Multi-class margin (hinge) loss on scores [N, C]:
/// loss_i = Σ_{j≠y_i} w_{y_i}·max(0, margin − x_{i,y_i} + x_ij)^p / C, p ∈ {1, 2}.
#[track_caller]
pub fn try_multi_margin_loss<T: Element>(
    x: &Var<T>,
    target: &Indices,
    p: u32,
    margin: T,
    weight: Option<&Tensor<T>>,
    r: Reduction,
) -> Result<Var<T>> {
    let op = "multi_margin_loss";
    if x.shape().len() != 2 {
        return Err(Error::shape(
            op,
            format!("scores must be [N, C], got {}", fmt_shape(x.shape())),
        ));
    }
    if p != 1 && p != 2 {
        return Err(Error::argument(op, format!("p must be 1 or 2, got {p}")));
    }
    let (n, c) = (x.shape()[0], x.shape()[1]);
    check_targets(op, n, c, target, None)?;
    let right = gather(x, 1, &Indices::new(vec![n, 1], target.data.clone())?)?;
    let mut h = x.try_sub(&right)?.add_scalar(margin).try_relu()?;
    if p == 2 {
        h = h.try_square()?;
    }
    let mut off_target = vec![T::one(); n * c];
    for (i, &y) in target.data.iter().enumerate() {
        off_target[i * c + y] = T::zero();
    }
    let mut scale = Tensor::from_vec([n, c], off_target);
    if let Some(w) = weight {
        let wy: Vec<T> = target.data.iter().map(|&y| w.data()[y]).collect();
        scale = scale.broadcast_zip(&Tensor::from_vec([n, 1], wy), op, |a, b| a * b)?;
    }
    let per_row = h
        .try_mul(&Var::constant(scale))?
        .try_sum(&[1], false)?
        .mul_scalar(T::one() / T::from_f64(c as f64));
    reduce(op, per_row, r)
}

panicking_twin!(
    /// As [`try_multi_margin_loss`].
    multi_margin_loss / try_multi_margin_loss[T: Element](x: &Var<T>, target: &Indices, p: u32, margin: T, weight: Option<&Tensor<T>>, r: Reduction) -> Var<T>
);

/// multi_margin_loss's cases: scores on the 0.1 grid and a margin of 1.05,
/// so no hinge sits at its kink.
#[cfg(feature = "strategies")]
fn multi_margin_loss_cases() -> Vec<OpCase> {
    vec![
        case!(
            "multi_margin_loss" for [multi_margin_loss],
            ["relu", "take"],
            grid(vec![(vec![4, 3], 0.0)]),
            |v| try_multi_margin_loss(&v[0], &targets(4, 3), 1, 1.05, None, Reduction::Mean)
        ),
        case!(
            "multi_margin_loss_p2_weighted" for [multi_margin_loss],
            ["relu", "take"],
            grid(vec![(vec![4, 3], 0.0)]),
            |v| {
                let w = Tensor::from_fn([3], |k| 1.0 + 0.5 * k as f64);
                let t = targets(4, 3);
                try_multi_margin_loss(&v[0], &t, 2, 1.05, Some(&w.cast()), Reduction::Sum)
            }
        ),
    ]
}

/// Hinge embedding loss: x where y = 1, max(0, margin − x) where y = −1.
#[track_caller]
pub fn try_hinge_embedding_loss<T: Element>(
    x: &Var<T>,
    y: &Tensor<T>,
    margin: T,
    r: Reduction,
) -> Result<Var<T>> {
    if x.shape() != y.shape() {
        return Err(Error::shape(
            "hinge_embedding_loss",
            format!(
                "input {} and target {} differ",
                fmt_shape(x.shape()),
                fmt_shape(y.shape())
            ),
        ));
    }
    let positive = y.map(|v| if v > T::zero() { T::one() } else { T::zero() });
    let l = try_where_(&positive, x, &x.rsub_scalar(margin).try_relu()?)?;
    reduce("hinge_embedding_loss", l, r)
}

panicking_twin!(
    /// As [`try_hinge_embedding_loss`].
    hinge_embedding_loss / try_hinge_embedding_loss[T: Element](x: &Var<T>, y: &Tensor<T>, margin: T, r: Reduction) -> Var<T>
);

/// hinge_embedding_loss's case: inputs on the grid offset by 0.05 never meet
/// the margin 1.
#[cfg(feature = "strategies")]
fn hinge_embedding_loss_cases() -> Vec<OpCase> {
    vec![case!(
        "hinge_embedding_loss" for [hinge_embedding_loss],
        ["where", "relu"],
        grid(vec![(vec![3, 4], 0.05)]),
        |v| {
            let y = Tensor::from_fn([3, 4], |k| if k % 2 == 0 { 1.0 } else { -1.0 });
            try_hinge_embedding_loss(&v[0], &y.cast(), 1.0, Reduction::Mean)
        }
    )]
}

/// This family's registry cases.
#[cfg(feature = "strategies")]
pub(crate) fn cases() -> Vec<OpCase> {
    [
        mse_loss_cases(),
        l1_loss_cases(),
        smooth_l1_loss_cases(),
        huber_loss_cases(),
        binary_cross_entropy_cases(),
        binary_cross_entropy_with_logits_cases(),
        cross_entropy_cases(),
        cross_entropy_probs_cases(),
        nll_loss_cases(),
        kl_div_cases(),
        multi_margin_loss_cases(),
        hinge_embedding_loss_cases(),
    ]
    .concat()
}
