//! Weight initializers, as `torch.nn.init`, each drawing from an explicit
//! RNG so runs repeat. Fans follow PyTorch: for a weight of shape
//! [out, in, k…], fan_in = in·Πk and fan_out = out·Πk (the receptive field).
//!
//! | initializer | distribution |
//! |---|---|
//! | uniform(a, b), normal(μ, σ) | as named |
//! | trunc_normal(μ, σ, a, b) | N(μ, σ²) conditioned on [a, b] |
//! | lecun_uniform / lecun_normal | U(±√(3/fan_in)) / N(0, 1/fan_in) |
//! | xavier_uniform(gain) / xavier_normal(gain) | U(±gain·√(6/(fan_in+fan_out))) / N(0, gain²·2/(fan_in+fan_out)) |
//! | kaiming_uniform / kaiming_normal | U(±gain·√(3/fan)) / N(0, gain²/fan), fan = fan_in or fan_out |
//! | orthogonal(gain) | Q of a Gaussian matrix's QR, signs fixed by R's diagonal |
//! | eye, dirac | identity matrix; identity convolution |
//!
//! The fan-based initializers leave a weight without elements as it is (its
//! fans may be 0), as PyTorch does. `uniform` and `normal` panic on bounds
//! PyTorch rejects (a > b, std < 0, NaN); `try_uniform` and `try_normal`
//! return the error.

use chainrule_tape::error::{or_panic, Error, Result};
use chainrule_tape::{Element, Parameter, Tensor};
use rand::Rng;
use rand_distr::{Distribution, StandardNormal};

/// The nonlinearity after a layer, for [`calculate_gain`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Nonlinearity {
    /// Linear, conv, sigmoid: gain 1.
    Linear,
    /// Sigmoid: gain 1.
    Sigmoid,
    /// tanh: gain 5/3.
    Tanh,
    /// ReLU: gain √2.
    Relu,
    /// Leaky ReLU with this negative slope: gain √(2/(1 + slope²)).
    LeakyRelu(f64),
    /// SELU: gain 3/4.
    Selu,
}

/// The recommended gain for a nonlinearity (`torch.nn.init.calculate_gain`).
pub fn calculate_gain(nonlinearity: Nonlinearity) -> f64 {
    match nonlinearity {
        Nonlinearity::Linear | Nonlinearity::Sigmoid => 1.0,
        Nonlinearity::Tanh => 5.0 / 3.0,
        Nonlinearity::Relu => 2f64.sqrt(),
        Nonlinearity::LeakyRelu(slope) => (2.0 / (1.0 + slope * slope)).sqrt(),
        Nonlinearity::Selu => 0.75,
    }
}

/// Which fan Kaiming initialization preserves.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum FanMode {
    /// Preserve the forward pass's variance (PyTorch's default).
    FanIn,
    /// Preserve the backward pass's variance.
    FanOut,
}

/// (fan_in, fan_out) of a weight shape: [out, in, k…] → (in·Πk, out·Πk).
pub fn fans(shape: &[usize]) -> Result<(usize, usize)> {
    if shape.len() < 2 {
        return Err(Error::argument(
            "init",
            format!("fans need a weight with at least 2 dimensions, got {shape:?}"),
        ));
    }
    let receptive: usize = shape[2..].iter().product();
    Ok((shape[1] * receptive, shape[0] * receptive))
}

/// Sets every element to `f()`.
fn fill<T: Element>(p: &Parameter<T>, mut f: impl FnMut() -> f64) {
    let shape = p.shape();
    p.set_value(Tensor::from_fn(&shape, |_| T::from_f64(f())));
}

/// All zeros.
pub fn zeros<T: Element>(p: &Parameter<T>) {
    constant(p, 0.0)
}

/// All ones.
pub fn ones<T: Element>(p: &Parameter<T>) {
    constant(p, 1.0)
}

/// Every element = `v`.
pub fn constant<T: Element>(p: &Parameter<T>, v: f64) {
    fill(p, || v)
}

/// U(a, b).
///
/// # Panics
///
/// On the bounds [`try_uniform`] rejects.
#[track_caller]
pub fn uniform<T: Element>(p: &Parameter<T>, a: f64, b: f64, rng: &mut impl Rng) {
    or_panic(try_uniform(p, a, b, rng))
}

/// U(a, b), or an argument error if a bound is not finite or a > b
/// (PyTorch's `uniform_` range); a = b fills with a.
pub fn try_uniform<T: Element>(p: &Parameter<T>, a: f64, b: f64, rng: &mut impl Rng) -> Result<()> {
    // b − a must be finite too (PyTorch: `to - from` within the type's range).
    if !(a.is_finite() && b.is_finite() && a <= b && (b - a).is_finite()) {
        return Err(Error::argument(
            "uniform",
            format!("needs finite bounds a ≤ b with b − a finite, got a = {a}, b = {b}"),
        ));
    }
    if a == b {
        constant(p, a);
    } else {
        fill(p, || rng.gen_range(a..b));
    }
    Ok(())
}

/// N(mean, std²).
///
/// # Panics
///
/// On the arguments [`try_normal`] rejects.
#[track_caller]
pub fn normal<T: Element>(p: &Parameter<T>, mean: f64, std: f64, rng: &mut impl Rng) {
    or_panic(try_normal(p, mean, std, rng))
}

/// N(mean, std²), or an argument error if the mean is not finite or the
/// deviation is not finite and ≥ 0 (PyTorch's `normal_` rejects std < 0).
pub fn try_normal<T: Element>(
    p: &Parameter<T>,
    mean: f64,
    std: f64,
    rng: &mut impl Rng,
) -> Result<()> {
    if !(mean.is_finite() && std.is_finite() && std >= 0.0) {
        return Err(Error::argument(
            "normal",
            format!("needs a finite mean and a finite std ≥ 0, got mean = {mean}, std = {std}"),
        ));
    }
    fill(p, || {
        let z: f64 = StandardNormal.sample(rng);
        mean + std * z
    });
    Ok(())
}

/// N(mean, std²) truncated to [a, b] (rejection sampling; PyTorch's default
/// bounds are a = −2, b = 2 in absolute units).
pub fn trunc_normal<T: Element>(
    p: &Parameter<T>,
    mean: f64,
    std: f64,
    a: f64,
    b: f64,
    rng: &mut impl Rng,
) -> Result<()> {
    // Rejection needs a reasonable acceptance rate: at least 1e-4.
    let (za, zb) = ((a - mean) / std, (b - mean) / std);
    if za.partial_cmp(&zb) != Some(std::cmp::Ordering::Less)
        || standard_normal_cdf(zb) - standard_normal_cdf(za) < 1e-4
    {
        return Err(Error::argument(
            "trunc_normal",
            format!("[{a}, {b}] holds almost no mass of N({mean}, {std}²)"),
        ));
    }
    fill(p, || loop {
        let z: f64 = StandardNormal.sample(rng);
        let v = mean + std * z;
        if v >= a && v <= b {
            break v;
        }
    });
    Ok(())
}

/// Φ(z), the standard normal CDF.
pub fn standard_normal_cdf(z: f64) -> f64 {
    0.5 * (1.0 + libm::erf(z / std::f64::consts::SQRT_2))
}

/// LeCun uniform: U(±√(3/fan_in)).
pub fn lecun_uniform<T: Element>(p: &Parameter<T>, rng: &mut impl Rng) -> Result<()> {
    let (fan_in, _) = fans(&p.shape())?;
    if p.numel() == 0 {
        return Ok(());
    }
    let bound = (3.0 / fan_in as f64).sqrt();
    try_uniform(p, -bound, bound, rng)
}

/// LeCun normal: N(0, 1/fan_in).
pub fn lecun_normal<T: Element>(p: &Parameter<T>, rng: &mut impl Rng) -> Result<()> {
    let (fan_in, _) = fans(&p.shape())?;
    if p.numel() == 0 {
        return Ok(());
    }
    try_normal(p, 0.0, (1.0 / fan_in as f64).sqrt(), rng)
}

/// Xavier/Glorot uniform: U(±gain·√(6/(fan_in + fan_out))).
pub fn xavier_uniform<T: Element>(p: &Parameter<T>, gain: f64, rng: &mut impl Rng) -> Result<()> {
    let (fi, fo) = fans(&p.shape())?;
    if p.numel() == 0 {
        return Ok(());
    }
    let bound = gain * (6.0 / (fi + fo) as f64).sqrt();
    try_uniform(p, -bound, bound, rng)
}

/// Xavier/Glorot normal: N(0, gain²·2/(fan_in + fan_out)).
pub fn xavier_normal<T: Element>(p: &Parameter<T>, gain: f64, rng: &mut impl Rng) -> Result<()> {
    let (fi, fo) = fans(&p.shape())?;
    if p.numel() == 0 {
        return Ok(());
    }
    try_normal(p, 0.0, gain * (2.0 / (fi + fo) as f64).sqrt(), rng)
}

fn kaiming_std(shape: &[usize], mode: FanMode, nonlinearity: Nonlinearity) -> Result<f64> {
    let (fi, fo) = fans(shape)?;
    let fan = match mode {
        FanMode::FanIn => fi,
        FanMode::FanOut => fo,
    };
    Ok(calculate_gain(nonlinearity) / (fan as f64).sqrt())
}

/// Kaiming/He uniform: U(±gain·√(3/fan)). PyTorch's layer default is
/// `kaiming_uniform(FanIn, LeakyRelu(√5))`, i.e. U(±1/√fan_in).
pub fn kaiming_uniform<T: Element>(
    p: &Parameter<T>,
    mode: FanMode,
    nonlinearity: Nonlinearity,
    rng: &mut impl Rng,
) -> Result<()> {
    let bound = 3f64.sqrt() * kaiming_std(&p.shape(), mode, nonlinearity)?;
    if p.numel() == 0 {
        return Ok(());
    }
    try_uniform(p, -bound, bound, rng)
}

/// Kaiming/He normal: N(0, gain²/fan).
pub fn kaiming_normal<T: Element>(
    p: &Parameter<T>,
    mode: FanMode,
    nonlinearity: Nonlinearity,
    rng: &mut impl Rng,
) -> Result<()> {
    let std = kaiming_std(&p.shape(), mode, nonlinearity)?;
    if p.numel() == 0 {
        return Ok(());
    }
    try_normal(p, 0.0, std, rng)
}

/// A (semi-)orthogonal matrix (rows or columns orthonormal), times `gain`:
/// the weight is viewed as [rows, Π rest]; Q of the QR decomposition of a
/// Gaussian matrix, with column signs fixed by R's diagonal so that Q is
/// uniformly (Haar) distributed (Saxe et al. 2013).
pub fn orthogonal<T: Element>(p: &Parameter<T>, gain: f64, rng: &mut impl Rng) -> Result<()> {
    let shape = p.shape();
    if shape.len() < 2 {
        return Err(Error::argument(
            "orthogonal",
            format!("needs at least 2 dimensions, got {shape:?}"),
        ));
    }
    let rows = shape[0];
    let cols: usize = shape[1..].iter().product();
    let (m, n) = if rows < cols {
        (cols, rows)
    } else {
        (rows, cols)
    };
    let a = nalgebra::DMatrix::<f64>::from_fn(m, n, |_, _| StandardNormal.sample(rng));
    let qr = a.qr();
    let (mut q, r) = (qr.q(), qr.r());
    for j in 0..n {
        if r[(j, j)] < 0.0 {
            q.column_mut(j).neg_mut();
        }
    }
    // q is m×n with orthonormal columns; transpose when the weight is wide.
    let value = Tensor::from_fn(&shape, |k| {
        let (i, j) = (k / cols, k % cols);
        let v = if rows < cols { q[(j, i)] } else { q[(i, j)] };
        T::from_f64(gain * v)
    });
    p.set_value(value);
    Ok(())
}

/// The identity matrix (a 2-D weight), as `torch.nn.init.eye_`.
pub fn eye<T: Element>(p: &Parameter<T>) -> Result<()> {
    let shape = p.shape();
    if shape.len() != 2 {
        return Err(Error::argument(
            "eye",
            format!("needs a 2-D weight, got {shape:?}"),
        ));
    }
    let cols = shape[1];
    p.set_value(Tensor::from_fn(&shape, |k| {
        if k / cols == k % cols {
            T::one()
        } else {
            T::zero()
        }
    }));
    Ok(())
}

/// The identity convolution (3-, 4- or 5-D weight [out, in/groups, k…]):
/// 1 at the kernel centre linking channel i to channel i in each group,
/// as `torch.nn.init.dirac_`.
pub fn dirac<T: Element>(p: &Parameter<T>, groups: usize) -> Result<()> {
    let shape = p.shape();
    if !(3..=5).contains(&shape.len()) || groups == 0 || !shape[0].is_multiple_of(groups) {
        return Err(Error::argument("dirac", format!("needs a 3-5-D conv weight with out channels divisible by {groups} groups, got {shape:?}")));
    }
    let out_per_group = shape[0] / groups;
    let min_dim = out_per_group.min(shape[1]);
    let kernel = &shape[2..];
    let ksize: usize = kernel.iter().product();
    let centre: usize = kernel.iter().fold(0, |acc, &k| acc * k + k / 2);
    let mut data = vec![T::zero(); shape.iter().product()];
    for g in 0..groups {
        for d in 0..min_dim {
            let out = g * out_per_group + d;
            data[(out * shape[1] + d) * ksize + centre] = T::one();
        }
    }
    p.set_value(Tensor::from_vec(&shape, data));
    Ok(())
}
