//! State dicts (parameters and buffers by name) to and from safetensors
//! files, the format PyTorch (`safetensors.torch.save_file` /
//! `load_file` + `load_state_dict`) reads and writes.
//!
//! Saving is atomic: the bytes go to a temporary file beside the target,
//! which is flushed to disk and then renamed over it, so a crash mid-save
//! leaves the previous file intact; the temporary file's name
//! (`.<name>.tmp-<pid>`, [`temp_path`]) is defined here alone, and
//! [`remove_stale_temp_files`] deletes those a killed process left behind.
//! Each tensor's CRC-32 is stored in the file's metadata (`crc32.<name>`),
//! and one CRC-32 over everything else — every metadata entry, every
//! tensor's name, dtype, shape and bytes — under [`CHECKSUM_KEY`]; both are
//! checked on load, so a flipped bit or an edited metadata value is an
//! error rather than a silently wrong weight or setting; files without
//! checksums (PyTorch's) load too. Loading validates every name,
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

/// The metadata key of the whole-file CRC-32: over every other metadata
/// entry and every tensor's name, dtype, shape and bytes (see
/// [`content_checksum`]), so an edited metadata value, a renamed tensor or
/// a changed shape is detected as well as damaged data.
pub const CHECKSUM_KEY: &str = "checksum.crc32";

/// A file's metadata entries.
pub type Metadata = HashMap<String, String>;

/// The CRC-32 (8 hex digits) over `metadata` (all entries but
/// [`CHECKSUM_KEY`], sorted by key) and `tensors` (sorted by name: name,
/// dtype, shape, bytes), every field length-prefixed so that no two
/// different contents hash the same bytes.
pub fn content_checksum<'a>(
    metadata: &Metadata,
    tensors: impl IntoIterator<Item = (&'a str, Dtype, &'a [usize], &'a [u8])>,
) -> String {
    fn field(h: &mut crc32fast::Hasher, bytes: &[u8]) {
        h.update(&(bytes.len() as u64).to_le_bytes());
        h.update(bytes);
    }
    let mut h = crc32fast::Hasher::new();
    let entries: BTreeMap<&String, &String> = metadata
        .iter()
        .filter(|(k, _)| k.as_str() != CHECKSUM_KEY)
        .collect();
    for (k, v) in entries {
        field(&mut h, k.as_bytes());
        field(&mut h, v.as_bytes());
    }
    let mut tensors: Vec<_> = tensors.into_iter().collect();
    tensors.sort_by(|a, b| a.0.cmp(b.0));
    for (name, dtype, shape, bytes) in tensors {
        field(&mut h, name.as_bytes());
        field(&mut h, format!("{dtype:?}").as_bytes());
        let dims: Vec<u8> = shape
            .iter()
            .flat_map(|d| (*d as u64).to_le_bytes())
            .collect();
        field(&mut h, &dims);
        field(&mut h, bytes);
    }
    format!("{:08x}", h.finalize())
}

/// The temporary file an atomic save of `path` writes before renaming it
/// over `path`: `.<file name>.tmp-<pid>` beside it. The one definition of
/// the pattern [`remove_stale_temp_files`] recognises.
pub fn temp_path(path: &Path) -> PathBuf {
    let file_name = path
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{file_name}{TEMP_MARKER}{}", std::process::id()))
}

const TEMP_MARKER: &str = ".tmp-";

/// The process id in a file name made by [`temp_path`], if it is one.
pub fn temp_owner(file_name: &str) -> Option<u32> {
    let rest = file_name.strip_prefix('.')?;
    let (target, pid) = rest.rsplit_once(TEMP_MARKER)?;
    if target.is_empty() || pid.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    pid.parse().ok()
}

/// Whether process `pid` is running on this machine. Only Linux can tell
/// (through `/proc`); elsewhere every process counts as alive, so nothing
/// another run might still be writing is ever removed.
fn process_alive(pid: u32) -> bool {
    if cfg!(target_os = "linux") && Path::new("/proc/self").exists() {
        Path::new("/proc").join(pid.to_string()).exists()
    } else {
        true
    }
}

/// Removes the temporary files of atomic saves ([`temp_path`]) in `dir`
/// that a killed process left behind: those whose process is no longer
/// running. Files of live processes (another run writing into the same
/// directory) and of this process are kept, as is everything not named by
/// the pattern. Returns the files removed; a missing `dir` removes nothing.
pub fn remove_stale_temp_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut removed = Vec::new();
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(temp_owner) else {
            continue;
        };
        if pid == std::process::id() || process_alive(pid) || !entry.file_type()?.is_file() {
            continue;
        }
        match std::fs::remove_file(entry.path()) {
            Ok(()) => removed.push(entry.path()),
            // Another run cleaned it up first.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    removed.sort();
    Ok(removed)
}

/// Writes named tensors (and extra metadata entries) to a safetensors file
/// atomically, with a CRC-32 per tensor and one over the whole content
/// ([`CHECKSUM_KEY`]) in the metadata.
pub fn write_tensors<T: Element>(
    path: impl AsRef<Path>,
    tensors: &[(String, Tensor<T>)],
    extra: HashMap<String, String>,
) -> Result<(), StateError> {
    let path = path.as_ref();
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
    let whole = content_checksum(
        &metadata,
        encoded
            .iter()
            .map(|(n, d, s, b)| (n.as_str(), *d, s.as_slice(), b.as_slice())),
    );
    metadata.insert(CHECKSUM_KEY.to_string(), whole);
    let format = |e: safetensors::SafeTensorError| StateError::Format {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    let views: Vec<(String, TensorView<'_>)> = encoded
        .iter()
        .map(|(n, d, s, b)| TensorView::new(*d, s.clone(), b).map(|v| (n.clone(), v)))
        .collect::<Result<_, _>>()
        .map_err(format)?;
    let bytes = safetensors::serialize(views, Some(metadata)).map_err(format)?;
    write_atomically(path, &bytes).map_err(|source| StateError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Writes `bytes` to [`temp_path`]`(path)`, flushes it to disk and renames
/// it over `path`: a kill leaves the previous file or the new one, never a
/// partial one. On failure the temporary file is removed and `path` is
/// untouched. Every file chainrule saves (weights, checkpoints, metrics,
/// plots) goes through here, so [`remove_stale_temp_files`] knows them all.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = temp_path(path);
    let written = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

/// A file's tensors by name: (shape, values widened to f64).
pub type RawTensors = BTreeMap<String, (Vec<usize>, Vec<f64>)>;

/// Reads a safetensors file's tensors as (name → shape, values in f64).
pub fn read_tensors(path: impl AsRef<Path>) -> Result<RawTensors, StateError> {
    read_file(path).map(|(t, _)| t)
}

/// Reads a safetensors file: its tensors and its metadata (checksums verified).
pub fn read_file(path: impl AsRef<Path>) -> Result<(RawTensors, Metadata), StateError> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|source| StateError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    parse(&bytes, path)
}

/// [`read_file`] on bytes already in memory (errors name the source as
/// `<bytes>`). Never panics, whatever the bytes: the entry point for
/// fuzzing the safetensors reader.
pub fn read_bytes(bytes: &[u8]) -> Result<(RawTensors, Metadata), StateError> {
    parse(bytes, Path::new("<bytes>"))
}

/// Parses and verifies a safetensors file's bytes; `path` names it in errors.
pub fn parse(bytes: &[u8], path: &Path) -> Result<(RawTensors, Metadata), StateError> {
    let format = |message: String| StateError::Format {
        path: path.to_path_buf(),
        message,
    };
    let st = SafeTensors::deserialize(bytes)
        .map_err(|e| format(format!("not a valid safetensors file ({e})")))?;
    let (_, meta) =
        SafeTensors::read_metadata(bytes).map_err(|e| format(format!("bad header ({e})")))?;
    let metadata = meta.metadata().clone().unwrap_or_default();
    let tensors = st.tensors();
    let mut out = BTreeMap::new();
    for (name, view) in &tensors {
        if let Some(want) = metadata.get(&format!("crc32.{name}")) {
            let got = format!("{:08x}", crc32fast::hash(view.data()));
            if &got != want {
                return Err(format(format!(
                    "tensor {name} is corrupt (CRC-32 {got}, header says {want}): \
                     it was altered or damaged after it was written"
                )));
            }
        }
        out.insert(
            name.clone(),
            (view.shape().to_vec(), widen(name, view).map_err(format)?),
        );
    }
    if let Some(want) = metadata.get(CHECKSUM_KEY) {
        let got = content_checksum(
            &metadata,
            tensors
                .iter()
                .map(|(n, v)| (n.as_str(), v.dtype(), v.shape(), v.data())),
        );
        if &got != want {
            return Err(format(format!(
                "checksum mismatch: the file was altered or damaged after it was written \
                 (CRC-32 of its metadata and tensors {got}, header says {want})"
            )));
        }
    }
    Ok((out, metadata))
}

/// A tensor's values as f64 (F32, F64 and I64 load).
fn widen(name: &str, view: &TensorView<'_>) -> Result<Vec<f64>, String> {
    let data = view.data();
    Ok(match view.dtype() {
        Dtype::F32 => data
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f64)
            .collect(),
        Dtype::F64 => data
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(eight(c)))
            .collect(),
        Dtype::I64 => data
            .chunks_exact(8)
            .map(|c| i64::from_le_bytes(eight(c)) as f64)
            .collect(),
        other => {
            return Err(format!(
                "tensor {name} has dtype {other:?}; only F32, F64 and I64 load"
            ))
        }
    })
}

/// The first eight bytes of a `chunks_exact(8)` chunk.
fn eight(c: &[u8]) -> [u8; 8] {
    let mut out = [0; 8];
    out.copy_from_slice(&c[..8]);
    out
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
