//! The Fashion-MNIST splits every command trains on.

use crate::data::fashion;
use crate::data::transform::{Standardize, Transform};
use crate::data::InMemory;
use std::path::Path;

/// How images are standardized (always with the training set's statistics).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scaling {
    /// Each pixel to zero mean and unit variance (the MLP: every input is
    /// its own feature).
    PerPixel,
    /// One mean and deviation for all pixels, as torchvision's `Normalize`
    /// (the CNN: convolutions, crops and flips need a pixel value to mean
    /// the same at every position).
    Global,
}

/// The fewest training images a run can use: every twelfth is held out
/// for validation, so fewer would leave none.
pub const MIN_TRAIN_IMAGES: usize = 12;

/// Training, validation and test sets, standardized with the training set's statistics.
pub struct Splits {
    /// Training images.
    pub train: InMemory,
    /// The last 1/12 of the training images (5,000 of 60,000), held out.
    pub val: InMemory,
    /// The test set.
    pub test: InMemory,
    /// What a black (raw 0) pixel becomes after scaling — the padding of a
    /// random crop. With [`Scaling::PerPixel`] it is pixel 0's.
    pub background: f32,
}

/// Loads Fashion-MNIST (the committed subset if `subset`, else the
/// directory `data` (`--data`), else `$CHAINRULE_DATA`, else the system
/// dataset or the subset; see [`fashion::DataDir`]), prints which data is
/// used, keeps the first `limit` training images, holds out the validation
/// set and standardizes all three with `scaling`.
pub fn fashion_splits(
    subset: bool,
    data: Option<&Path>,
    limit: Option<usize>,
    scaling: Scaling,
) -> Result<Splits, String> {
    let dir = fashion::DataDir::from_env(subset, data).map_err(|e| e.to_string())?;
    let data = fashion::load_dir(&dir).map_err(|e| e.to_string())?;
    println!("{}", data.notice());
    let mut train = data.train;
    if let Some(n) = limit {
        train = train.head(n);
    }
    if train.labels.len() < MIN_TRAIN_IMAGES {
        return Err(format!(
            "{}: {} training images; at least {MIN_TRAIN_IMAGES} are needed (every twelfth is held out for validation)",
            data.source.display(),
            train.labels.len()
        ));
    }
    let (mut train, mut val) = train.split_last(train.labels.len() / 12);
    let mut test = data.test;
    let scaler = match scaling {
        Scaling::PerPixel => Standardize::fit(&train),
        Scaling::Global => Standardize::fit_global(&train),
    };
    for set in [&mut train, &mut val, &mut test] {
        scaler.apply(set);
    }
    Ok(Splits {
        train,
        val,
        test,
        background: scaler.scaled(0, 0.0),
    })
}
