//! Evaluation (loss, accuracy, confusion matrix), the metrics CSV and the
//! loss/accuracy curves.

use super::plotting::{color, text_available};
use super::EpochRecord;
use crate::data::{DataLoader, InMemory, Regime};
use crate::nn::state::write_atomically;
use crate::nn::Module;
use crate::ops::{loss, try_argmax, ClassLossOptions};
use crate::tape::{no_grad, Graph};
use image::codecs::png::PngEncoder;
use image::{ColorType, ImageEncoder};
use plotters::coord::Shift;
use plotters::prelude::*;

use std::path::Path;

/// Loss, accuracy and confusion matrix on a dataset.
#[derive(Clone, Debug)]
pub struct Evaluation {
    /// Mean cross-entropy.
    pub loss: f64,
    /// Fraction classified correctly.
    pub accuracy: f64,
    /// `confusion[true][predicted]`: how many of class `true` were predicted as `predicted`.
    pub confusion: Vec<Vec<usize>>,
}

/// Evaluates `model` (which should be in eval mode) on `data` in batches of
/// `batch`, without gradients.
///
/// The class count comes from the data and the model, never a constant:
/// one row and column per class the model scores (its logits' width), and
/// at least one per label in `data` (a label beyond the logits is
/// cross-entropy's error). So a 3-class model on 3-class data gives a 3×3
/// matrix.
///
/// # Errors
///
/// The forward pass's or cross-entropy's error (shapes, a label outside
/// the logits), naming the op.
pub fn evaluate<M: Module<f32> + ?Sized>(
    model: &M,
    data: &InMemory,
    batch: usize,
) -> Result<Evaluation, crate::tape::Error> {
    let mut confusion = Confusion::new(data.labels.iter().max().map_or(0, |&m| m + 1));
    let mut total_loss = 0.0;
    let sum = ClassLossOptions {
        reduction: loss::Reduction::Sum,
        ..Default::default()
    };
    no_grad(|| -> Result<(), crate::tape::Error> {
        for b in DataLoader::new(data, Regime::MiniBatch(batch)).in_order() {
            let g = Graph::new();
            let logits = model.try_forward(&g, &g.input(b.x))?;
            total_loss += loss::try_cross_entropy(&logits, &b.y, &sum)?.item() as f64;
            let pred = try_argmax(logits.value(), 1)?;
            confusion.grow(logits.value().shape().last().copied().unwrap_or(0));
            for (&t, &p) in b.y.data.iter().zip(&pred.data) {
                confusion.add(t, p);
            }
        }
        Ok(())
    })?;
    let n = data.labels.len().max(1) as f64;
    let confusion = confusion.0;
    let correct: usize = (0..confusion.len()).map(|c| confusion[c][c]).sum();
    Ok(Evaluation {
        loss: total_loss / n,
        accuracy: correct as f64 / n,
        confusion,
    })
}

/// A square confusion matrix that grows to the classes seen.
struct Confusion(Vec<Vec<usize>>);

impl Confusion {
    fn new(classes: usize) -> Self {
        Confusion(vec![vec![0; classes]; classes])
    }

    /// At least `classes` rows and columns.
    fn grow(&mut self, classes: usize) {
        let n = self.0.len().max(classes);
        self.0.resize_with(n, Vec::new);
        for row in &mut self.0 {
            row.resize(n, 0);
        }
    }

    /// Counts an example of class `t` predicted as `p`.
    fn add(&mut self, t: usize, p: usize) {
        self.grow(t.max(p) + 1);
        self.0[t][p] += 1;
    }
}

/// The confusion matrix as a table (rows: true class, columns: predicted).
pub fn confusion_table(confusion: &[Vec<usize>], names: &[&str]) -> String {
    let w = names.iter().map(|n| n.len()).max().unwrap_or(5).max(5);
    let mut out = format!("{:>w$} | predicted\n", "true");
    out.push_str(&format!("{:>w$} |", ""));
    for c in 0..confusion.len() {
        out.push_str(&format!(" {c:>5}"));
    }
    out.push('\n');
    for (t, row) in confusion.iter().enumerate() {
        out.push_str(&format!("{:>w$} |", names.get(t).copied().unwrap_or("?")));
        for v in row {
            out.push_str(&format!(" {v:>5}"));
        }
        out.push('\n');
    }
    out
}

/// Writes one row per epoch, atomically (see [`write_atomically`]).
pub fn write_csv(path: &Path, records: &[EpochRecord]) -> std::io::Result<()> {
    let mut s = String::from("epoch,train_loss,train_accuracy,val_loss,val_accuracy,lr,seconds\n");
    for r in records {
        s.push_str(&format!(
            "{},{},{},{},{},{},{}\n",
            r.epoch, r.train_loss, r.train_accuracy, r.val_loss, r.val_accuracy, r.lr, r.seconds
        ));
    }
    write_atomically(path, s.as_bytes())
}

/// Series to draw: (label, points (x, y)).
pub type Series = (String, Vec<(f64, f64)>);

/// Width and height of [`plot_curves`]'s image in pixels.
const CURVES_SIZE: (u32, u32) = (1200, 450);

/// Two panels: loss (left) and accuracy (right) against epochs, one line
/// per series. Drawn in memory, encoded as PNG and written atomically.
pub fn plot_curves(
    path: &Path,
    loss_series: &[Series],
    accuracy_series: &[Series],
) -> Result<(), String> {
    let err = |e: &dyn std::fmt::Display| format!("{}: {e}", path.display());
    let (w, h) = CURVES_SIZE;
    let mut rgb = vec![0u8; w as usize * h as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, CURVES_SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(&e))?;
        let panels = root.split_evenly((1, 2));
        for (panel, (title, series)) in panels
            .iter()
            .zip([("loss", loss_series), ("accuracy", accuracy_series)])
        {
            draw_panel(panel, title, series).map_err(|e| err(&e))?;
        }
        root.present().map_err(|e| err(&e))?;
    }
    let mut png = Vec::new();
    PngEncoder::new(&mut png)
        .write_image(&rgb, w, h, ColorType::Rgb8)
        .map_err(|e| err(&e))?;
    write_atomically(path, &png).map_err(|e| err(&e))
}

/// One panel of [`plot_curves`]: the series' lines, with a caption, axes
/// and legend when a font is available.
fn draw_panel<DB: DrawingBackend>(
    panel: &DrawingArea<DB, Shift>,
    title: &str,
    series: &[Series],
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let text = text_available();
    let xs = series.iter().flat_map(|(_, p)| p.iter().map(|q| q.0));
    let ys: Vec<f64> = series
        .iter()
        .flat_map(|(_, p)| p.iter().map(|q| q.1))
        .filter(|v| v.is_finite())
        .collect();
    let x_max = xs.fold(1.0f64, f64::max);
    let (lo, hi) = ys
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
            (a.min(v), b.max(v))
        });
    let (lo, hi) = if lo.is_finite() {
        (lo, if hi > lo { hi } else { lo + 1.0 })
    } else {
        (0.0, 1.0)
    };
    let pad = (hi - lo) * 0.05;
    let mut builder = ChartBuilder::on(panel);
    builder.margin(10);
    if text {
        builder
            .caption(title, ("sans-serif", 20))
            .x_label_area_size(30)
            .y_label_area_size(50);
    }
    let mut chart = builder.build_cartesian_2d(0.0..x_max, (lo - pad)..(hi + pad))?;
    if text {
        chart.configure_mesh().x_desc("epoch").draw()?;
    }
    for (i, (label, points)) in series.iter().enumerate() {
        let c = color(i);
        let drawn =
            chart.draw_series(LineSeries::new(points.iter().copied(), c.stroke_width(2)))?;
        if text {
            drawn.label(label.clone()).legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2))
            });
        }
    }
    if text {
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()?;
    }
    Ok(())
}
