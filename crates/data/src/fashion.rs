//! Fashion-MNIST (Xiao, Rasul & Vollgraf 2017): 60,000 training and 10,000
//! test images of 28×28 grey levels in ten clothing classes.
//!
//! Looked for in `$CHAINRULE_DATA`, then `/usr/share/datasets/fashion-mnist`
//! (Debian's `dataset-fashion-mnist`); otherwise the subset committed under
//! `data/fashion-mnist-subset` (3,000 training and 1,000 test images) is
//! used, with a notice saying so and how to get the full set.

use crate::dataset::InMemory;
use crate::idx::{read_idx, DataError};
use std::path::{Path, PathBuf};

/// The class names, by label.
pub const CLASSES: [&str; 10] = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
];

/// Where the Debian package puts the files.
pub const SYSTEM_DIR: &str = "/usr/share/datasets/fashion-mnist";

/// The subset committed with the repository.
pub fn subset_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data/fashion-mnist-subset")
}

/// Training and test sets, and where they came from.
pub struct FashionMnist {
    /// Training images [1, 28, 28] scaled to [0, 1].
    pub train: InMemory,
    /// Test images.
    pub test: InMemory,
    /// The directory read.
    pub source: PathBuf,
    /// Whether this is the committed subset rather than the full set.
    pub is_subset: bool,
}

impl FashionMnist {
    /// A one-line notice of which data is used.
    pub fn notice(&self) -> String {
        if self.is_subset {
            format!(
                "using the {}-image training subset embedded in the repository ({}); for the full 60,000 images: apt-get install -y dataset-fashion-mnist, or set CHAINRULE_DATA to a directory with the four IDX files",
                self.train.labels.len(),
                self.source.display()
            )
        } else {
            format!(
                "using Fashion-MNIST from {} ({} training, {} test images)",
                self.source.display(),
                self.train.labels.len(),
                self.test.labels.len()
            )
        }
    }
}

fn has_files(dir: &Path) -> bool {
    [
        "train-images-idx3-ubyte.gz",
        "train-labels-idx1-ubyte.gz",
        "t10k-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz",
    ]
    .iter()
    .all(|f| dir.join(f).is_file())
}

/// Loads Fashion-MNIST from the first place that has it (see the module docs).
pub fn load() -> Result<FashionMnist, DataError> {
    let mut candidates: Vec<(PathBuf, bool)> = Vec::new();
    if let Some(dir) = std::env::var_os("CHAINRULE_DATA") {
        candidates.push((PathBuf::from(dir), false));
    }
    candidates.push((PathBuf::from(SYSTEM_DIR), false));
    candidates.push((subset_dir(), true));
    for (dir, is_subset) in candidates {
        if has_files(&dir) {
            return load_from(&dir, is_subset);
        }
    }
    Err(DataError::Invalid {
        path: subset_dir(),
        message: "no Fashion-MNIST files found (the embedded subset is missing too)".into(),
    })
}

/// Loads the four gzip'd IDX files from `dir`.
pub fn load_from(dir: &Path, is_subset: bool) -> Result<FashionMnist, DataError> {
    let part = |images: &str, labels: &str| -> Result<InMemory, DataError> {
        let (ip, lp) = (dir.join(images), dir.join(labels));
        let img = read_idx(&ip)?;
        let lab = read_idx(&lp)?;
        let bad = |path: &Path, message: String| DataError::Invalid {
            path: path.to_path_buf(),
            message,
        };
        if img.dims.len() != 3 || img.dims[1] != 28 || img.dims[2] != 28 {
            return Err(bad(
                &ip,
                format!("expected N×28×28 images, found dimensions {:?}", img.dims),
            ));
        }
        if lab.dims.len() != 1 || lab.dims[0] != img.dims[0] {
            return Err(bad(
                &lp,
                format!(
                    "expected {} labels, found dimensions {:?}",
                    img.dims[0], lab.dims
                ),
            ));
        }
        if let Some(&l) = lab.data.iter().find(|&&l| l > 9) {
            return Err(bad(&lp, format!("label {l} is not a class 0-9")));
        }
        Ok(InMemory {
            features: img.data.iter().map(|&b| b as f32 / 255.0).collect(),
            shape: vec![1, 28, 28],
            labels: lab.data.iter().map(|&l| l as usize).collect(),
        })
    };
    Ok(FashionMnist {
        train: part("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz")?,
        test: part("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")?,
        source: dir.to_path_buf(),
        is_subset,
    })
}
