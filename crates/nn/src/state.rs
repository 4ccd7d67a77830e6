//! State dicts (parameters and buffers by name) to and from safetensors
//! files, the format PyTorch (`safetensors.torch.save_file` /
//! `load_file` + `load_state_dict`) reads and writes.
//!
//! Saving is atomic: the bytes go to a temporary file beside the target,
//! which is flushed to disk and then renamed over it, so a crash mid-save
//! leaves the previous file intact. Each tensor's CRC-32 is stored in the
//! file's metadata (`crc32.<name>`) and checked on load, so a flipped bit
//! in the data is an error rather than a silently wrong weight; files
//! without checksums (PyTorch's) load too. Loading validates every name,
//! shape and dtype before assigning anything: in strict mode any missing
//! key, unexpected key or shape mismatch is an error and the module is left
//! untouched.

use crate::module::Module;
use chainrule_tape::{Element, Tensor};
use safetensors::tensor::{Dtype, TensorView};
use safetensors::SafeTensors;
use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Errors of saving and loading.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// Reading or writing the file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file is not a valid safetensors file, or its data is corrupt.
    #[error("{path}: {message}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// Strict loading found keys or shapes that do not match the module.
    #[error("{path}: state dict does not match the module: {report}")]
    Mismatch {
        /// The file.
        path: PathBuf,
        /// What differs.
        report: LoadReport,
    },
}

/// What a load found (PyTorch's `missing_keys` / `unexpected_keys`, plus shapes).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LoadReport {
    /// Module entries the file lacks.
    pub missing: Vec<String>,
    /// File entries the module lacks.
    pub unexpected: Vec<String>,
    /// (name, module shape, file shape) where both have the entry.
    pub mismatched: Vec<(String, Vec<usize>, Vec<usize>)>,
}

impl LoadReport {
    /// Whether everything matched.
    pub fn is_clean(&self) -> bool {
        self.missing.is_empty() && self.unexpected.is_empty() && self.mismatched.is_empty()
    }
}

impl std::fmt::Display for LoadReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut parts = Vec::new();
        if !self.missing.is_empty() {
            parts.push(format!("missing keys {:?}", self.missing));
        }
        if !self.unexpected.is_empty() {
            parts.push(format!("unexpected keys {:?}", self.unexpected));
        }
        for (n, want, got) in &self.mismatched {
            parts.push(format!("{n}: module has shape {want:?}, file has {got:?}"));
        }
        if parts.is_empty() {
            parts.push("all keys match".into());
        }
        write!(f, "{}", parts.join("; "))
    }
}

/// Every parameter and buffer of `m` by name, in definition order.
pub fn state_dict<T: Element>(m: &(impl Module<T> + ?Sized)) -> Vec<(String, Tensor<T>)> {
    let mut out: Vec<(String, Tensor<T>)> = m
        .named_parameters()
        .into_iter()
        .map(|(n, p)| (n, p.value()))
        .collect();
    out.extend(m.named_buffers().into_iter().map(|(n, b)| (n, b.value())));
    out
}

/// PyTorch stores batch counters as int64.
fn is_counter(name: &str) -> bool {
    name.ends_with("num_batches_tracked")
}

fn encode<T: Element>(name: &str, t: &Tensor<T>) -> (Dtype, Vec<u8>) {
    if is_counter(name) {
        let bytes = t
            .data()
            .iter()
            .flat_map(|v| (v.as_f64().round() as i64).to_le_bytes())
            .collect();
        return (Dtype::I64, bytes);
    }
    match T::DTYPE {
        "float32" => (
            Dtype::F32,
            t.data()
                .iter()
                .flat_map(|v| (v.as_f64() as f32).to_le_bytes())
                .collect(),
        ),
        _ => (
            Dtype::F64,
            t.data()
                .iter()
                .flat_map(|v| v.as_f64().to_le_bytes())
                .collect(),
        ),
    }
}

/// Writes `m`'s state dict to `path` atomically, with a CRC-32 per tensor.
pub fn save<T: Element>(
    m: &(impl Module<T> + ?Sized),
    path: impl AsRef<Path>,
) -> Result<(), StateError> {
    write_tensors(path, &state_dict(m), HashMap::new())
}

/// Writes named tensors (and extra metadata entries) to a safetensors file
/// atomically, with a CRC-32 per tensor in the metadata.
pub fn write_tensors<T: Element>(
    path: impl AsRef<Path>,
    tensors: &[(String, Tensor<T>)],
    extra: HashMap<String, String>,
) -> Result<(), StateError> {
    let path = path.as_ref();
    let io = |source| StateError::Io {
        path: path.to_path_buf(),
        source,
    };
    let encoded: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = tensors
        .iter()
        .map(|(n, t)| {
            let (dtype, bytes) = encode(n, t);
            (n.clone(), dtype, t.shape().to_vec(), bytes)
        })
        .collect();
    let mut metadata = extra;
    metadata.insert("format".to_string(), "pt".to_string());
    for (n, _, _, bytes) in &encoded {
        metadata.insert(
            format!("crc32.{n}"),
            format!("{:08x}", crc32fast::hash(bytes)),
        );
    }
    let views: Vec<(String, TensorView<'_>)> = encoded
        .iter()
        .map(|(n, d, s, b)| TensorView::new(*d, s.clone(), b).map(|v| (n.clone(), v)))
        .collect::<Result<_, _>>()
        .map_err(|e| StateError::Format {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
    let bytes = safetensors::serialize(views, Some(metadata)).map_err(|e| StateError::Format {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    let file_name = path
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{file_name}.tmp-{}", std::process::id()));
    let written = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written.map_err(io)
}

/// A file's tensors by name: (shape, values widened to f64).
pub type RawTensors = BTreeMap<String, (Vec<usize>, Vec<f64>)>;

/// Reads a safetensors file's tensors as (name → shape, values in f64).
pub fn read_tensors(path: impl AsRef<Path>) -> Result<RawTensors, StateError> {
    read_file(path).map(|(t, _)| t)
}

/// Reads a safetensors file: its tensors and its metadata (checksums verified).
pub fn read_file(
    path: impl AsRef<Path>,
) -> Result<(RawTensors, HashMap<String, String>), StateError> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|source| StateError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let format = |message: String| StateError::Format {
        path: path.to_path_buf(),
        message,
    };
    let st = SafeTensors::deserialize(&bytes)
        .map_err(|e| format(format!("not a valid safetensors file ({e})")))?;
    let (_, meta) =
        SafeTensors::read_metadata(&bytes).map_err(|e| format(format!("bad header ({e})")))?;
    let checksums = meta.metadata().clone().unwrap_or_default();
    let mut out = BTreeMap::new();
    for (name, view) in st.tensors() {
        if let Some(want) = checksums.get(&format!("crc32.{name}")) {
            let got = format!("{:08x}", crc32fast::hash(view.data()));
            if &got != want {
                return Err(format(format!(
                    "tensor {name} is corrupt (CRC-32 {got}, header says {want})"
                )));
            }
        }
        let data = view.data();
        let values: Vec<f64> = match view.dtype() {
            Dtype::F32 => data
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes")) as f64)
                .collect(),
            Dtype::F64 => data
                .chunks_exact(8)
                .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")))
                .collect(),
            Dtype::I64 => data
                .chunks_exact(8)
                .map(|c| i64::from_le_bytes(c.try_into().expect("8 bytes")) as f64)
                .collect(),
            other => {
                return Err(format(format!(
                    "tensor {name} has dtype {other:?}; only F32, F64 and I64 load"
                )))
            }
        };
        out.insert(name, (view.shape().to_vec(), values));
    }
    Ok((out, checksums))
}

/// Loads `path` into `m`. Strict: every key and shape must match, else an
/// error and nothing changes. Lenient: matching entries load, and the
/// report lists what did not. Values convert to the module's precision.
pub fn load<T: Element>(
    m: &(impl Module<T> + ?Sized),
    path: impl AsRef<Path>,
    strict: bool,
) -> Result<LoadReport, StateError> {
    let path = path.as_ref();
    let mut file = read_tensors(path)?;
    let params = m.named_parameters();
    let buffers = m.named_buffers();
    let mut report = LoadReport::default();
    let mut shape_of = |name: &str, shape: Vec<usize>| -> bool {
        match file.get(name) {
            None => {
                report.missing.push(name.to_string());
                false
            }
            Some((s, _)) if *s != shape => {
                report.mismatched.push((name.to_string(), shape, s.clone()));
                false
            }
            Some(_) => true,
        }
    };
    let load_params: Vec<bool> = params.iter().map(|(n, p)| shape_of(n, p.shape())).collect();
    let load_buffers: Vec<bool> = buffers
        .iter()
        .map(|(n, b)| shape_of(n, b.value().shape().to_vec()))
        .collect();
    let known: std::collections::BTreeSet<&str> = params
        .iter()
        .map(|(n, _)| n.as_str())
        .chain(buffers.iter().map(|(n, _)| n.as_str()))
        .collect();
    report.unexpected = file
        .keys()
        .filter(|k| !known.contains(k.as_str()))
        .cloned()
        .collect();
    if strict && !report.is_clean() {
        return Err(StateError::Mismatch {
            path: path.to_path_buf(),
            report,
        });
    }
    let mut take = |name: &str, shape: &[usize]| {
        let (_, values) = file.remove(name).expect("validated above");
        Tensor::from_vec(shape, values.into_iter().map(T::from_f64).collect())
    };
    for ((n, p), ok) in params.iter().zip(load_params) {
        if ok {
            p.set_value(take(n, &p.shape()));
        }
    }
    for ((n, b), ok) in buffers.iter().zip(load_buffers) {
        if ok {
            let shape = b.value().shape().to_vec();
            b.set(take(n, &shape));
        }
    }
    Ok(report)
}
