//! The Fashion-MNIST splits every command trains on.

use crate::data::fashion;
use crate::data::transform::{Standardize, Transform};
use crate::data::InMemory;

/// Training, validation and test sets, standardized with the training set's statistics.
pub struct Splits {
    /// Training images.
    pub train: InMemory,
    /// The last 1/12 of the training images (5,000 of 60,000), held out.
    pub val: InMemory,
    /// The test set.
    pub test: InMemory,
}

/// Loads Fashion-MNIST (the committed subset if `subset`), prints which
/// data is used, keeps the first `limit` training images, holds out the
/// validation set and standardizes all three per feature.
pub fn fashion_splits(subset: bool, limit: Option<usize>) -> Result<Splits, String> {
    let data = if subset {
        fashion::load_from(&fashion::subset_dir(), true)
    } else {
        fashion::load()
    }
    .map_err(|e| e.to_string())?;
    println!("{}", data.notice());
    let mut train = data.train;
    if let Some(n) = limit {
        train = train.head(n);
    }
    let (mut train, mut val) = train.split_last(train.labels.len() / 12);
    let mut test = data.test;
    let scaler = Standardize::fit(&train);
    for set in [&mut train, &mut val, &mut test] {
        scaler.apply(set);
    }
    Ok(Splits { train, val, test })
}
