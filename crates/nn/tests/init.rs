//! Each initializer against its formula on a large tensor. Tolerances come
//! from the sample size: the mean within 5 standard errors (σ/√n), the
//! variance within 5 standard errors of the sample variance, estimated as
//! √((m₄ − s⁴)/n) from the sample's own fourth central moment.

use chainrule_nn::init::{self, FanMode, Nonlinearity};
use chainrule_tape::{Parameter, Tensor};
use rand::rngs::StdRng;
use rand::SeedableRng;

const OUT: usize = 400;
const IN: usize = 500; // n = 200,000 values

fn weight() -> Parameter<f64> {
    Parameter::new(Tensor::zeros([OUT, IN]))
}

struct Moments {
    n: f64,
    mean: f64,
    var: f64,
    m4: f64,
    min: f64,
    max: f64,
}

fn moments(p: &Parameter<f64>) -> Moments {
    let v = p.value().to_vec();
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
    let m4 = v.iter().map(|x| (x - mean).powi(4)).sum::<f64>() / n;
    let (min, max) = v
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &x| {
            (a.min(x), b.max(x))
        });
    Moments {
        n,
        mean,
        var,
        m4,
        min,
        max,
    }
}

fn check(what: &str, p: &Parameter<f64>, mean: f64, var: f64) -> Moments {
    let m = moments(p);
    let mean_tol = 5.0 * (var / m.n).sqrt();
    let var_tol = 5.0 * ((m.m4 - m.var * m.var) / m.n).sqrt();
    assert!(
        (m.mean - mean).abs() <= mean_tol,
        "{what}: mean {} vs {mean} (±{mean_tol:.2e})",
        m.mean
    );
    assert!(
        (m.var - var).abs() <= var_tol,
        "{what}: variance {} vs {var} (±{var_tol:.2e})",
        m.var
    );
    m
}

fn rng() -> StdRng {
    StdRng::seed_from_u64(2026)
}

#[test]
fn uniform_and_normal() {
    let p = weight();
    init::uniform(&p, -0.3, 0.7, &mut rng());
    let m = check("uniform", &p, 0.2, 1.0 / 12.0);
    assert!(m.min >= -0.3 && m.max < 0.7);
    init::normal(&p, 1.5, 0.2, &mut rng());
    check("normal", &p, 1.5, 0.04);
    init::constant(&p, 0.25);
    assert!(p.value().data().iter().all(|&v| v == 0.25));
    init::zeros(&p);
    assert!(p.value().data().iter().all(|&v| v == 0.0));
    init::ones(&p);
    assert!(p.value().data().iter().all(|&v| v == 1.0));
}

#[test]
fn truncated_normal_matches_the_truncated_moments() {
    let p = weight();
    let (mu, sigma, a, b) = (0.5, 1.0, -0.5, 2.0);
    init::trunc_normal(&p, mu, sigma, a, b, &mut rng()).unwrap();
    let phi = |z: f64| (-z * z / 2.0).exp() / (2.0 * std::f64::consts::PI).sqrt();
    let (al, be) = ((a - mu) / sigma, (b - mu) / sigma);
    let z = init::standard_normal_cdf(be) - init::standard_normal_cdf(al);
    let mean = mu + sigma * (phi(al) - phi(be)) / z;
    let var = sigma
        * sigma
        * (1.0 + (al * phi(al) - be * phi(be)) / z - ((phi(al) - phi(be)) / z).powi(2));
    let m = check("trunc_normal", &p, mean, var);
    assert!(m.min >= a && m.max <= b);
    assert!(init::trunc_normal(&p, 0.0, 1.0, 9.0, 10.0, &mut rng()).is_err());
}

#[test]
fn lecun_xavier_and_kaiming_variances() {
    let p = weight();
    let (fi, fo) = (IN as f64, OUT as f64);
    init::lecun_uniform(&p, &mut rng()).unwrap();
    let m = check("lecun_uniform", &p, 0.0, 1.0 / fi);
    assert!(m.max <= (3.0 / fi).sqrt() && m.min >= -(3.0 / fi).sqrt());
    init::lecun_normal(&p, &mut rng()).unwrap();
    check("lecun_normal", &p, 0.0, 1.0 / fi);
    init::xavier_uniform(&p, 2.0, &mut rng()).unwrap();
    let m = check("xavier_uniform", &p, 0.0, 4.0 * 2.0 / (fi + fo));
    assert!(m.max <= 2.0 * (6.0 / (fi + fo)).sqrt());
    init::xavier_normal(&p, 1.0, &mut rng()).unwrap();
    check("xavier_normal", &p, 0.0, 2.0 / (fi + fo));
    init::kaiming_uniform(&p, FanMode::FanIn, Nonlinearity::Relu, &mut rng()).unwrap();
    let m = check("kaiming_uniform", &p, 0.0, 2.0 / fi);
    assert!(m.max <= (6.0 / fi).sqrt());
    init::kaiming_normal(&p, FanMode::FanOut, Nonlinearity::Relu, &mut rng()).unwrap();
    check("kaiming_normal fan_out", &p, 0.0, 2.0 / fo);
    init::kaiming_normal(&p, FanMode::FanIn, Nonlinearity::LeakyRelu(0.2), &mut rng()).unwrap();
    check("kaiming_normal leaky", &p, 0.0, 2.0 / (1.04 * fi));
}

#[test]
fn conv_fans_use_the_receptive_field() {
    assert_eq!(init::fans(&[64, 32, 3, 3]).unwrap(), (288, 576));
    assert!(init::fans(&[5]).is_err());
    let p = Parameter::<f64>::new(Tensor::zeros([64, 32, 5, 5]));
    init::kaiming_normal(&p, FanMode::FanIn, Nonlinearity::Linear, &mut rng()).unwrap();
    check("kaiming conv", &p, 0.0, 1.0 / 800.0);
}

#[test]
fn gains_are_pytorchs() {
    assert_eq!(init::calculate_gain(Nonlinearity::Linear), 1.0);
    assert_eq!(init::calculate_gain(Nonlinearity::Tanh), 5.0 / 3.0);
    assert_eq!(init::calculate_gain(Nonlinearity::Relu), 2f64.sqrt());
    assert_eq!(init::calculate_gain(Nonlinearity::Selu), 0.75);
    assert!(
        (init::calculate_gain(Nonlinearity::LeakyRelu(0.01)) - (2.0 / 1.0001f64).sqrt()).abs()
            < 1e-15
    );
}

fn gram(p: &Parameter<f64>, rows_orthonormal: bool) -> (usize, Vec<f64>) {
    let v = p.value();
    let (r, c) = (v.shape()[0], v.numel() / v.shape()[0]);
    let d = v.data();
    let k = if rows_orthonormal { r } else { c };
    let mut g = vec![0.0; k * k];
    for i in 0..k {
        for j in 0..k {
            g[i * k + j] = if rows_orthonormal {
                (0..c).map(|t| d[i * c + t] * d[j * c + t]).sum()
            } else {
                (0..r).map(|t| d[t * c + i] * d[t * c + j]).sum()
            };
        }
    }
    (k, g)
}

#[test]
fn orthogonal_gives_orthonormal_rows_or_columns_times_the_gain() {
    for (shape, rows) in [
        (vec![6, 10], true),
        (vec![10, 4], false),
        (vec![4, 2, 3], true),
    ] {
        let p = Parameter::<f64>::new(Tensor::zeros(&shape));
        init::orthogonal(&p, 2.0, &mut rng()).unwrap();
        let (k, g) = gram(&p, rows);
        for i in 0..k {
            for j in 0..k {
                let want = if i == j { 4.0 } else { 0.0 };
                // Householder QR in f64: orthogonality to ~1e-15 per entry.
                assert!(
                    (g[i * k + j] - want).abs() < 1e-12,
                    "{shape:?} ({i}, {j}): {}",
                    g[i * k + j]
                );
            }
        }
    }
}

#[test]
fn eye_and_dirac_are_identities() {
    let p = Parameter::<f64>::new(Tensor::zeros([3, 4]));
    init::eye(&p).unwrap();
    assert_eq!(
        p.value().data(),
        &[1., 0., 0., 0., 0., 1., 0., 0., 0., 0., 1., 0.]
    );
    // A dirac-initialised 3×3 convolution with padding 1 returns its input.
    use chainrule_ops::{conv2d, Conv2dOptions};
    use chainrule_tape::Var;
    let w = Parameter::<f64>::new(Tensor::zeros([2, 2, 3, 3]));
    init::dirac(&w, 1).unwrap();
    let x = Tensor::randn([1, 2, 4, 5], &mut rng());
    let y = conv2d(
        &Var::constant(x.clone()),
        &Var::constant(w.value()),
        None,
        Conv2dOptions::default().padding(1),
    );
    assert_eq!(y.value().data(), x.data());
}
