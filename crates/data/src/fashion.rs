//! Fashion-MNIST (Xiao, Rasul & Vollgraf 2017): 60,000 training and 10,000
//! test images of 28×28 grey levels in ten clothing classes.
//!
//! Where it is read from ([`DataDir::resolve`]): the directory given with
//! `--data DIR`, else `$CHAINRULE_DATA`; a directory asked for either way
//! is used or is an error naming it, the missing or bad file and where it
//! came from — never replaced by other data. Only when nothing is asked
//! for: `/usr/share/datasets/fashion-mnist` (Debian's
//! `dataset-fashion-mnist`), otherwise the subset committed under
//! `data/fashion-mnist-subset` (3,000 training and 1,000 test images), with
//! a notice saying so and how to get the full set.
//!
//! A directory holds the four files [`FILES`], each gzip'd (`NAME.gz`, as
//! distributed) or raw (`NAME`, as `gunzip` leaves it).

use crate::dataset::InMemory;
use crate::idx::{read_idx_expecting, read_idx_from, DataError, IdxArray, IdxExpect};
use std::ffi::OsStr;
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

/// The environment variable naming a data directory.
pub const ENV_VAR: &str = "CHAINRULE_DATA";

/// The four files, without `.gz`: training images and labels, test images and labels.
pub const FILES: [&str; 4] = [
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
];

/// Side of the square images.
const SIDE: usize = 28;

/// The subset committed with the repository.
pub fn subset_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data/fashion-mnist-subset")
}

/// Which data directory to read, and who chose it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DataDir {
    /// Asked for with `--data DIR`.
    Flag(PathBuf),
    /// Asked for with `$CHAINRULE_DATA`.
    Env(PathBuf),
    /// The committed subset, asked for (`--subset`).
    Subset,
    /// Nothing asked for: the system dataset if installed, else the subset.
    Default,
}

impl DataDir {
    /// What was asked for: `--subset`, else `--data` (`flag`), else
    /// `$CHAINRULE_DATA` (`env`, its value if set), else the default. An
    /// empty variable is an error, not "unset".
    pub fn resolve(
        subset: bool,
        flag: Option<&Path>,
        env: Option<&OsStr>,
    ) -> Result<DataDir, DataError> {
        match (subset, flag, env) {
            (true, _, _) => Ok(DataDir::Subset),
            (false, Some(dir), _) => Ok(DataDir::Flag(dir.to_path_buf())),
            (false, None, Some(v)) if v.is_empty() => Err(DataError::Unusable {
                origin: ENV_VAR.into(),
                message: format!(
                    "set but empty; set it to a directory holding {}, or unset it to use {SYSTEM_DIR} or the embedded subset",
                    files_wanted()
                ),
            }),
            (false, None, Some(v)) => Ok(DataDir::Env(PathBuf::from(v))),
            (false, None, None) => Ok(DataDir::Default),
        }
    }

    /// [`DataDir::resolve`] with this process's `$CHAINRULE_DATA`.
    pub fn from_env(subset: bool, flag: Option<&Path>) -> Result<DataDir, DataError> {
        Self::resolve(subset, flag, std::env::var_os(ENV_VAR).as_deref())
    }

    /// The directory explicitly asked for and how it is named in errors
    /// (`--data DIR`, `CHAINRULE_DATA=DIR`), if any.
    fn explicit(&self) -> Option<(&Path, String)> {
        match self {
            DataDir::Flag(d) => Some((d, format!("--data {}", d.display()))),
            DataDir::Env(d) => Some((d, format!("{ENV_VAR}={}", d.display()))),
            DataDir::Subset | DataDir::Default => None,
        }
    }
}

/// "each of train-images-idx3-ubyte, … as NAME.gz or NAME".
fn files_wanted() -> String {
    format!(
        "the four Fashion-MNIST files {} (each gzip'd as NAME.gz, or raw as NAME)",
        FILES.join(", ")
    )
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
                "using the {}-image training subset embedded in the repository ({}); for the full 60,000 images: apt-get install -y dataset-fashion-mnist, or pass --data DIR (or set {ENV_VAR}) with a directory holding the four IDX files",
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

/// The path of `name` in `dir`: `name.gz` if it is a file, else `name`;
/// `Ok(None)` if neither exists, an error if one cannot be examined.
pub fn find_file(dir: &Path, name: &str) -> Result<Option<PathBuf>, DataError> {
    for candidate in [dir.join(format!("{name}.gz")), dir.join(name)] {
        match std::fs::metadata(&candidate) {
            Ok(m) if m.is_file() => return Ok(Some(candidate)),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(DataError::Io {
                    path: candidate,
                    source,
                })
            }
        }
    }
    Ok(None)
}

/// The four files' paths in `dir`, in [`FILES`] order, or a message
/// naming the directory's problem or every missing file.
fn find_all(dir: &Path) -> Result<[PathBuf; 4], String> {
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => return Err(format!("{} is not a directory", dir.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(format!("{} does not exist", dir.display()))
        }
        Err(e) => return Err(format!("cannot use directory {}: {e}", dir.display())),
    }
    std::fs::read_dir(dir).map_err(|e| format!("cannot list directory {}: {e}", dir.display()))?;
    let found: Vec<Option<PathBuf>> = FILES
        .iter()
        .map(|name| find_file(dir, name))
        .collect::<Result<_, _>>()
        .map_err(|e| e.to_string())?;
    let missing: Vec<String> = FILES
        .iter()
        .zip(&found)
        .filter(|(_, f)| f.is_none())
        .map(|(name, _)| format!("{name}.gz (or {name})"))
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "{} has no {}; it must hold {}",
            dir.display(),
            missing.join(", no "),
            files_wanted()
        ));
    }
    let mut paths = found.into_iter().flatten();
    Ok(std::array::from_fn(|_| paths.next().unwrap_or_default()))
}

/// Loads Fashion-MNIST from the first place that has it, `$CHAINRULE_DATA`
/// counting as asked for (see the module docs).
pub fn load() -> Result<FashionMnist, DataError> {
    load_dir(&DataDir::from_env(false, None)?)
}

/// Loads Fashion-MNIST from `dir`: an explicit directory or an error
/// naming it; the default falls back from the system dataset to the subset.
pub fn load_dir(dir: &DataDir) -> Result<FashionMnist, DataError> {
    if let Some((path, origin)) = dir.explicit() {
        let unusable = |message: String| DataError::Unusable {
            origin: origin.clone(),
            message,
        };
        let files = find_all(path).map_err(unusable)?;
        return load_files(path, &files, false).map_err(|e| unusable(e.to_string()));
    }
    if *dir == DataDir::Default {
        if let Ok(files) = find_all(Path::new(SYSTEM_DIR)) {
            return load_files(Path::new(SYSTEM_DIR), &files, false);
        }
    }
    load_from(&subset_dir(), true)
}

/// Loads the four IDX files (gzip'd or raw) from `dir`.
pub fn load_from(dir: &Path, is_subset: bool) -> Result<FashionMnist, DataError> {
    let files = find_all(dir).map_err(|message| DataError::Invalid {
        path: dir.to_path_buf(),
        message,
    })?;
    load_files(dir, &files, is_subset)
}

/// Reads the four files found by [`find_all`].
fn load_files(
    dir: &Path,
    files: &[PathBuf; 4],
    is_subset: bool,
) -> Result<FashionMnist, DataError> {
    let part = |images: &Path, labels: &Path| -> Result<InMemory, DataError> {
        let img = read_idx_expecting(images, &IdxExpect::rank(3))?;
        let lab = read_idx_expecting(labels, &IdxExpect::rank(1))?;
        images_and_labels(img, lab).map_err(|(part, message)| DataError::Invalid {
            path: match part {
                Part::Images => images,
                Part::Labels => labels,
            }
            .to_path_buf(),
            message,
        })
    };
    Ok(FashionMnist {
        train: part(&files[0], &files[1])?,
        test: part(&files[2], &files[3])?,
        source: dir.to_path_buf(),
        is_subset,
    })
}

/// Which file of an images-and-labels pair is at fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    /// The images.
    Images,
    /// The labels.
    Labels,
}

/// Checks an image array (N×28×28, N ≥ 1) against its labels (N of them,
/// each 0-9) and makes the dataset, pixels scaled to [0, 1]. The error
/// says which of the two is at fault.
pub fn images_and_labels(img: IdxArray, lab: IdxArray) -> Result<InMemory, (Part, String)> {
    if img.dims.len() != 3 || img.dims[1] != SIDE || img.dims[2] != SIDE || img.dims[0] == 0 {
        return Err((
            Part::Images,
            format!(
                "expected N×28×28 images with N ≥ 1, found dimensions {:?}",
                img.dims
            ),
        ));
    }
    if lab.dims.len() != 1 || lab.dims[0] != img.dims[0] {
        return Err((
            Part::Labels,
            format!(
                "expected {} labels (one per image), found dimensions {:?}",
                img.dims[0], lab.dims
            ),
        ));
    }
    if let Some((i, &l)) = lab.data.iter().enumerate().find(|(_, &l)| l > 9) {
        return Err((
            Part::Labels,
            format!("label {l} (of example {i}) is not a class 0-9"),
        ));
    }
    Ok(InMemory {
        features: img.data.iter().map(|&b| b as f32 / 255.0).collect(),
        shape: vec![1, SIDE, SIDE],
        labels: lab.data.iter().map(|&l| l as usize).collect(),
    })
}

/// An images file and a labels file held in memory (each raw or gzip'd)
/// as a dataset, with every check [`load_from`] makes. Never panics.
pub fn parse_pair(images: &[u8], labels: &[u8]) -> Result<InMemory, String> {
    let img = read_idx_from(images, &IdxExpect::rank(3)).map_err(|e| format!("images: {e}"))?;
    let lab = read_idx_from(labels, &IdxExpect::rank(1)).map_err(|e| format!("labels: {e}"))?;
    images_and_labels(img, lab).map_err(|(part, message)| match part {
        Part::Images => format!("images: {message}"),
        Part::Labels => format!("labels: {message}"),
    })
}
