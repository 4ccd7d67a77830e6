//! Strong-Wolfe line search (Nocedal & Wright, *Numerical Optimization*,
//! algorithms 3.5 and 3.6) with safeguarded cubic interpolation, as used by
//! `torch.optim.LBFGS(line_search_fn="strong_wolfe")` (minFunc's variant).
//!
//! Along a direction d from x, with φ(t) = f(x + t·d) and φ'(t) = ∇f·d, a step t
//! satisfies the strong Wolfe conditions when
//! φ(t) ≤ φ(0) + c1·t·φ'(0) (sufficient decrease) and
//! |φ'(t)| ≤ −c2·φ'(0) (curvature).

use chainrule_tape::error::Result;

/// One evaluation along the line: φ(t), ∇f(x + t·d), φ'(t).
#[derive(Clone, Debug)]
pub(crate) struct LinePoint {
    pub t: f64,
    pub f: f64,
    pub g: Vec<f64>,
    pub gtd: f64,
}

/// Minimiser of the cubic through (x1, f1, g1) and (x2, f2, g2), clamped to
/// `bounds` (default: the interval between x1 and x2); the bounds' midpoint
/// when the cubic has no real minimiser.
///
/// d1 = g1 + g2 − 3(f1 − f2)/(x1 − x2), d2 = √(d1² − g1·g2),
/// t = x2 − (x2 − x1)·(g2 + d2 − d1)/(g2 − g1 + 2·d2) (N&W eq. 3.59).
pub(crate) fn cubic_minimiser(
    a: (f64, f64, f64),
    b: (f64, f64, f64),
    bounds: Option<(f64, f64)>,
) -> f64 {
    let ((x1, f1, g1), (x2, f2, g2)) = (a, b);
    let (lo, hi) = bounds.unwrap_or((x1.min(x2), x1.max(x2)));
    let d1 = g1 + g2 - 3.0 * (f1 - f2) / (x1 - x2);
    let disc = d1 * d1 - g1 * g2;
    if disc < 0.0 {
        return (lo + hi) / 2.0;
    }
    let d2 = disc.sqrt();
    // Written from the left end point of the pair so that both orders agree.
    let t = if x1 <= x2 {
        x2 - (x2 - x1) * ((g2 + d2 - d1) / (g2 - g1 + 2.0 * d2))
    } else {
        x1 - (x1 - x2) * ((g1 + d2 - d1) / (g1 - g2 + 2.0 * d2))
    };
    t.max(lo).min(hi)
}

/// Settings of [`strong_wolfe`] (PyTorch's fixed values).
pub(crate) struct WolfeSettings {
    pub c1: f64,
    pub c2: f64,
    pub tolerance_change: f64,
    pub max_evals: usize,
}

impl Default for WolfeSettings {
    fn default() -> Self {
        WolfeSettings {
            c1: 1e-4,
            c2: 0.9,
            tolerance_change: 1e-9,
            max_evals: 25,
        }
    }
}

/// Searches along `d` from `start` (t = 0) beginning with step `t`;
/// `evaluate(t)` returns φ(t) and ∇f(x + t·d). Returns the accepted point and
/// the number of evaluations.
pub(crate) fn strong_wolfe(
    mut evaluate: impl FnMut(f64) -> Result<(f64, Vec<f64>)>,
    d: &[f64],
    start: LinePoint,
    mut t: f64,
    s: &WolfeSettings,
) -> Result<(LinePoint, usize)> {
    let dot = |g: &[f64]| -> f64 { g.iter().zip(d).map(|(a, b)| a * b).sum() };
    let d_max = d.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let (f0, gtd0) = (start.f, start.gtd);
    let mut at = |t: f64| -> Result<LinePoint> {
        let (f, g) = evaluate(t)?;
        let gtd = dot(&g);
        Ok(LinePoint { t, f, g, gtd })
    };
    let armijo_fails = |p: &LinePoint| p.f > f0 + s.c1 * p.t * gtd0;
    let curvature_holds = |p: &LinePoint| p.gtd.abs() <= -s.c2 * gtd0;

    let mut evals = 1;
    let mut new = at(t)?;
    let mut prev = start.clone();
    let mut iters = 0;
    // Bracketing phase: grow the step until an interval contains a point
    // satisfying both conditions, or the current point satisfies them.
    let mut bracket: Vec<LinePoint> = loop {
        if iters >= s.max_evals {
            break vec![start.clone(), new];
        }
        if armijo_fails(&new) || (iters > 1 && new.f >= prev.f) {
            break vec![prev, new];
        }
        if curvature_holds(&new) {
            return Ok((new, evals));
        }
        if new.gtd >= 0.0 {
            break vec![prev, new];
        }
        let bounds = (new.t + 0.01 * (new.t - prev.t), new.t * 10.0);
        t = cubic_minimiser(
            (prev.t, prev.f, prev.gtd),
            (new.t, new.f, new.gtd),
            Some(bounds),
        );
        prev = std::mem::replace(&mut new, at(t)?);
        evals += 1;
        iters += 1;
    };

    // Zoom phase: shrink the bracket [low, high] (low has the lower φ).
    let order = |b: &[LinePoint]| if b[0].f <= b[1].f { (0, 1) } else { (1, 0) };
    let (mut low, mut high) = order(&bracket);
    let mut insufficient_progress = false;
    while iters < s.max_evals {
        let (a, b) = (bracket[0].t, bracket[1].t);
        if (b - a).abs() * d_max < s.tolerance_change {
            break;
        }
        let (lo, hi) = (a.min(b), a.max(b));
        t = cubic_minimiser(
            (a, bracket[0].f, bracket[0].gtd),
            (b, bracket[1].f, bracket[1].gtd),
            None,
        );
        // Keep the trial point at least 10 % of the interval from its ends
        // when the previous trial already made too little progress.
        let margin = 0.1 * (hi - lo);
        if (hi - t).min(t - lo) < margin {
            if insufficient_progress || t >= hi || t <= lo {
                t = if (t - hi).abs() < (t - lo).abs() {
                    hi - margin
                } else {
                    lo + margin
                };
                insufficient_progress = false;
            } else {
                insufficient_progress = true;
            }
        } else {
            insufficient_progress = false;
        }
        let trial = at(t)?;
        evals += 1;
        iters += 1;
        if armijo_fails(&trial) || trial.f >= bracket[low].f {
            bracket[high] = trial;
            (low, high) = order(&bracket);
        } else {
            let done = curvature_holds(&trial);
            if !done && trial.gtd * (bracket[high].t - bracket[low].t) >= 0.0 {
                bracket[high] = bracket[low].clone();
            }
            bracket[low] = trial;
            if done {
                break;
            }
        }
    }
    Ok((bracket.swap_remove(low), evals))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cubic_minimiser_is_exact_on_a_cubic() {
        // φ(t) = t³ − 3t has its local minimum at t = 1; sampled at 0 and 2.
        let phi = |t: f64| t * t * t - 3.0 * t;
        let dphi = |t: f64| 3.0 * t * t - 3.0;
        let t = cubic_minimiser((0.0, phi(0.0), dphi(0.0)), (2.0, phi(2.0), dphi(2.0)), None);
        // Exact arithmetic gives 1; a few ulps of rounding.
        assert!((t - 1.0).abs() < 1e-12, "{t}");
        let swapped = cubic_minimiser((2.0, phi(2.0), dphi(2.0)), (0.0, phi(0.0), dphi(0.0)), None);
        assert!((swapped - 1.0).abs() < 1e-12, "{swapped}");
    }

    #[test]
    fn the_accepted_step_satisfies_both_wolfe_conditions() {
        // f(x) = (x − 3)⁴ + x² along d = 1 from x = 0, starting with t = 0.01
        // (too short: the bracketing phase must extrapolate).
        let f = |x: f64| (x - 3.0).powi(4) + x * x;
        let g = |x: f64| 4.0 * (x - 3.0).powi(3) + 2.0 * x;
        let start = LinePoint {
            t: 0.0,
            f: f(0.0),
            g: vec![g(0.0)],
            gtd: g(0.0),
        };
        let s = WolfeSettings::default();
        let (p, evals) =
            strong_wolfe(|t| Ok((f(t), vec![g(t)])), &[1.0], start.clone(), 0.01, &s).unwrap();
        assert!(p.f <= start.f + s.c1 * p.t * start.gtd, "{p:?}");
        assert!(p.gtd.abs() <= -s.c2 * start.gtd, "{p:?}");
        assert!(evals <= s.max_evals);
        // The same from an overlong first step (the zoom phase must shrink).
        let (p, _) =
            strong_wolfe(|t| Ok((f(t), vec![g(t)])), &[1.0], start.clone(), 50.0, &s).unwrap();
        assert!(p.f <= start.f + s.c1 * p.t * start.gtd, "{p:?}");
        assert!(p.gtd.abs() <= -s.c2 * start.gtd, "{p:?}");
    }

    #[test]
    fn matches_pytorchs_strong_wolfe_on_one_dimensional_functions() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/fixtures/torch/optim.json"
        );
        let fx: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        type Fn1 = fn(f64) -> (f64, f64);
        let functions: [(&str, Fn1); 4] = [
            ("quartic", |x| {
                ((x - 3.0).powi(4) + x * x, 4.0 * (x - 3.0).powi(3) + 2.0 * x)
            }),
            ("wiggle", |x| {
                (
                    (3.0 * x).sin() + 0.1 * x * x - x,
                    3.0 * (3.0 * x).cos() + 0.2 * x - 1.0,
                )
            }),
            ("steep", |x| {
                ((x - 2.0).exp() - 3.0 * x, (x - 2.0).exp() - 3.0)
            }),
            ("hyperbola", |x| {
                let r = (1.0 + (x - 1.5).powi(2)).sqrt();
                (4.0 * r - x, 4.0 * (x - 1.5) / r - 1.0)
            }),
        ];
        let cases = fx["line_search"].as_array().unwrap();
        assert_eq!(cases.len(), 20);
        for case in cases {
            let name = case["function"].as_str().unwrap();
            let f = functions.iter().find(|(n, _)| *n == name).unwrap().1;
            let (f0, g0) = f(0.0);
            let d = -g0;
            let start = LinePoint {
                t: 0.0,
                f: f0,
                g: vec![g0],
                gtd: g0 * d,
            };
            let t0 = case["t0"].as_f64().unwrap();
            let (p, evals) = strong_wolfe(
                |t| {
                    let (v, g) = f(t * d);
                    Ok((v, vec![g]))
                },
                &[d],
                start,
                t0,
                &WolfeSettings::default(),
            )
            .unwrap();
            let want_t = case["t"].as_f64().unwrap();
            // The same arithmetic in another order (autograd's vs closed-form
            // derivatives): agreement to 1e-10 relative.
            assert!(
                (p.t - want_t).abs() <= 1e-10 * want_t.abs(),
                "{name} t0 {t0}: t {} vs torch {want_t}",
                p.t
            );
            assert_eq!(
                evals as u64,
                case["evals"].as_u64().unwrap(),
                "{name} t0 {t0}: evaluations"
            );
        }
    }
}
