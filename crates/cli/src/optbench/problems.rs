//! The 2-D test functions of `chainrule optbench`, written with chainrule's
//! differentiable ops (so gradients come from the tape, not closed forms).

use chainrule::prelude::*;

/// f(x, y) built from two scalar variables.
pub type Objective = fn(&Var<f64>, &Var<f64>) -> Var<f64>;

/// Residuals r(x, y) with f = Σ r².
pub type Residuals = fn(&Var<f64>, &Var<f64>) -> Vec<Var<f64>>;

/// A test function with its start point, optima and plotting window.
pub struct Problem {
    /// Name on the command line and in the table.
    pub name: &'static str,
    /// f(x, y).
    pub f: Objective,
    /// Residuals r with f = Σ r² (Levenberg–Marquardt), where f is a sum of squares.
    pub residuals: Option<Residuals>,
    /// Where every optimizer starts.
    pub start: (f64, f64),
    /// Global minimisers; empty for the saddle (it has none).
    pub optima: &'static [(f64, f64)],
    /// Plot window: (x range, y range).
    pub window: ((f64, f64), (f64, f64)),
}

impl Problem {
    /// Distance from (x, y) to the nearest optimum (∞ without optima).
    pub fn distance(&self, x: f64, y: f64) -> f64 {
        self.optima
            .iter()
            .map(|&(a, b)| ((x - a).powi(2) + (y - b).powi(2)).sqrt())
            .fold(f64::INFINITY, f64::min)
    }

    /// f at a point, evaluated without recording a graph.
    pub fn value(&self, x: f64, y: f64) -> f64 {
        let x = Var::constant(Tensor::scalar(x));
        let y = Var::constant(Tensor::scalar(y));
        (self.f)(&x, &y).item()
    }
}

fn rosenbrock(x: &Var<f64>, y: &Var<f64>) -> Vec<Var<f64>> {
    // (1 − x)² + 100(y − x²)²
    vec![1.0 - x, (y - &x.square()) * 10.0]
}

fn beale(x: &Var<f64>, y: &Var<f64>) -> Vec<Var<f64>> {
    // Σ_i (c_i − x + x·yⁱ)², c = 1.5, 2.25, 2.625
    let xy = x * y;
    let xy2 = &xy * y;
    let xy3 = &xy2 * y;
    vec![1.5 - x + &xy, 2.25 - x + &xy2, 2.625 - x + &xy3]
}

fn booth(x: &Var<f64>, y: &Var<f64>) -> Vec<Var<f64>> {
    // (x + 2y − 7)² + (2x + y − 5)²
    vec![x + &(y * 2.0) - 7.0, x * 2.0 + y - 5.0]
}

fn himmelblau(x: &Var<f64>, y: &Var<f64>) -> Vec<Var<f64>> {
    // (x² + y − 11)² + (x + y² − 7)²
    vec![x.square() + y - 11.0, x + &y.square() - 7.0]
}

fn sum_of_squares(r: Vec<Var<f64>>) -> Var<f64> {
    r.iter()
        .map(|r| r.square())
        .reduce(|a, b| a + b)
        .expect("at least one residual")
}

/// The functions, in the table's order.
pub fn problems() -> Vec<Problem> {
    vec![
        Problem {
            name: "rosenbrock",
            f: |x, y| sum_of_squares(rosenbrock(x, y)),
            residuals: Some(rosenbrock),
            start: (-1.2, 1.0),
            optima: &[(1.0, 1.0)],
            window: ((-2.0, 2.0), (-1.0, 3.0)),
        },
        Problem {
            name: "beale",
            f: |x, y| sum_of_squares(beale(x, y)),
            residuals: Some(beale),
            start: (1.0, 1.0),
            optima: &[(3.0, 0.5)],
            window: ((-1.0, 4.5), (-1.5, 2.0)),
        },
        Problem {
            name: "booth",
            f: |x, y| sum_of_squares(booth(x, y)),
            residuals: Some(booth),
            start: (-5.0, -5.0),
            optima: &[(1.0, 3.0)],
            window: ((-6.0, 6.0), (-6.0, 6.0)),
        },
        Problem {
            name: "himmelblau",
            f: |x, y| sum_of_squares(himmelblau(x, y)),
            residuals: Some(himmelblau),
            start: (0.0, 0.0),
            optima: &[
                (3.0, 2.0),
                (-2.805118086952745, 3.131312518250573),
                (-3.779310253377747, -3.28318599128617),
                (3.584428340330492, -1.848126526964404),
            ],
            window: ((-5.0, 5.0), (-5.0, 5.0)),
        },
        Problem {
            // x² − y², started just off the ridge y = 0: escaping is the test.
            name: "saddle",
            f: |x, y| x.square() - &y.square(),
            residuals: None,
            start: (1.0, 1e-3),
            optima: &[],
            window: ((-1.5, 1.5), (-1.5, 1.5)),
        },
        Problem {
            // 20 + Σ (v² − 10 cos 2πv): many local minima around the global one at 0.
            name: "rastrigin",
            f: |x, y| {
                let tau = 2.0 * std::f64::consts::PI;
                let term = |v: &Var<f64>| v.square() - &((v * tau).cos() * 10.0);
                term(x) + term(y) + 20.0
            },
            residuals: None,
            start: (2.2, 1.7),
            optima: &[(0.0, 0.0)],
            window: ((-3.0, 3.0), (-3.0, 3.0)),
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn optima_are_minima_with_zero_value() {
        for p in problems() {
            for &(a, b) in p.optima {
                // Himmelblau's irrational minimisers are given to 15 digits: 1e-20 suffices
                // for f ≈ (error·gradient scale)²; the rest are exact zeros.
                assert!(
                    p.value(a, b).abs() < 1e-20,
                    "{} at ({a}, {b}): {}",
                    p.name,
                    p.value(a, b)
                );
            }
        }
    }
}
