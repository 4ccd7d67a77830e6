//! `optbench --plot`: each function's contour lines with every optimizer's path.

use super::problems::Problem;
use super::Outcome;
use chainrule_train::plotting::{color, text_available};
use contour::ContourBuilder;
use plotters::prelude::*;
use std::path::Path;

/// Contour levels of z = sign(f)·ln(1 + |f|), evenly spaced in z, so that the
/// steep walls and the flat valleys both show lines.
fn contour_lines(p: &Problem, n: usize) -> Vec<Vec<(f64, f64)>> {
    let ((x0, x1), (y0, y1)) = p.window;
    let (sx, sy) = ((x1 - x0) / (n - 1) as f64, (y1 - y0) / (n - 1) as f64);
    let squash = |f: f64| f.signum() * f.abs().ln_1p();
    let values: Vec<f64> = (0..n * n)
        .map(|k| squash(p.value(x0 + (k % n) as f64 * sx, y0 + (k / n) as f64 * sy)))
        .collect();
    let (lo, hi) = values
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
            (a.min(v), b.max(v))
        });
    let thresholds: Vec<f64> = (1..16).map(|i| lo + (hi - lo) * i as f64 / 16.0).collect();
    let builder = ContourBuilder::new(n, n, true)
        .x_origin(x0)
        .y_origin(y0)
        .x_step(sx)
        .y_step(sy);
    builder
        .lines(&values, &thresholds)
        .unwrap_or_default()
        .iter()
        .flat_map(|line| line.geometry().0.iter())
        .map(|ls| ls.0.iter().map(|c| (c.x, c.y)).collect())
        .collect()
}

/// Draws one panel per problem with the noise-free paths in `outcomes`.
pub fn draw(
    path: &Path,
    problems: &[Problem],
    outcomes: &[Outcome],
    names: &[String],
) -> Result<(), String> {
    let text = text_available();
    let cols = 3;
    let rows = problems.len().div_ceil(cols);
    let root = BitMapBackend::new(path, (1500, 520 * rows as u32 + 40)).into_drawing_area();
    let err = |e: &dyn std::fmt::Display| format!("{}: {e}", path.display());
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let (legend, body) = root.split_vertically(40);
    if text {
        for (i, name) in names.iter().enumerate() {
            let x = 10 + (i as i32) * 82;
            legend
                .draw(&Rectangle::new([(x, 15), (x + 14, 27)], color(i).filled()))
                .map_err(|e| err(&e))?;
            legend
                .draw(&Text::new(name.clone(), (x + 17, 13), ("sans-serif", 13)))
                .map_err(|e| err(&e))?;
        }
    }
    for (panel, p) in body.split_evenly((rows, cols)).iter().zip(problems) {
        let ((x0, x1), (y0, y1)) = p.window;
        let mut builder = ChartBuilder::on(panel);
        builder.margin(8);
        if text {
            builder
                .caption(p.name, ("sans-serif", 20))
                .x_label_area_size(25)
                .y_label_area_size(35);
        }
        let mut chart = builder
            .build_cartesian_2d(x0..x1, y0..y1)
            .map_err(|e| err(&e))?;
        if text {
            chart
                .configure_mesh()
                .disable_mesh()
                .draw()
                .map_err(|e| err(&e))?;
        }
        for line in contour_lines(p, 120) {
            chart
                .draw_series(LineSeries::new(line, RGBColor(200, 200, 200)))
                .map_err(|e| err(&e))?;
        }
        for &(a, b) in p.optima {
            chart
                .draw_series([Cross::new((a, b), 6, BLACK.stroke_width(2))])
                .map_err(|e| err(&e))?;
        }
        for o in outcomes.iter().filter(|o| o.problem == p.name) {
            let i = names.iter().position(|n| *n == o.optimizer).unwrap_or(0);
            // Clamped to the window (one-pixel strokes: plotters' mitred
            // thick strokes spike at the sharp turns of oscillating paths).
            let mut inside: Vec<(f64, f64)> = Vec::with_capacity(o.path.len());
            for &(x, y) in &o.path {
                if !(x.is_finite() && y.is_finite()) {
                    break;
                }
                let q = (x.clamp(x0, x1), y.clamp(y0, y1));
                if inside.last() != Some(&q) {
                    inside.push(q);
                }
            }
            chart
                .draw_series(LineSeries::new(inside, color(i)))
                .map_err(|e| err(&e))?;
        }
    }
    root.present().map_err(|e| err(&e))
}
