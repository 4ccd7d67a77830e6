//! Training checkpoints: the model's state dict, the best weights so far,
//! the optimizer's state, the trainer's counters and the run's settings in
//! one safetensors file, written atomically. Loading it and continuing
//! gives bit-identical results to a run that never stopped.
//!
//! Format 2 (the metadata entry [`FORMAT_KEY`] = [`FORMAT_VERSION`]):
//! tensors `model.<name>`, `best.<name>` and `optim.<i>.<buffer>` (f32,
//! counters i64); metadata `trainer` ([`TrainerState`]), `optimizer` (its
//! name, each group's hyperparameters, each parameter's step, scalars and
//! buffer names) and `settings` ([`RunSettings`], when the run recorded
//! them), all JSON with non-finite numbers as the strings `"inf"`, `"-inf"`,
//! `"NaN"`; plus a CRC-32 per tensor and one over the whole content
//! ([`crate::nn::state::CHECKSUM_KEY`]), so any edit of the metadata or the
//! tensors is detected. Loading never panics: every entry is parsed into a
//! typed struct and checked, and anything unexpected is an error naming
//! the file and the entry.

use crate::nn::state::{
    self, state_dict, LoadReport, Metadata, RawTensors, StateError, CHECKSUM_KEY,
};
use crate::nn::Module;
use crate::optim::{Optimizer, OptimizerState, ParamState, Schedule, Scheduler};
use crate::tape::Tensor;
use crate::{EpochRecord, TrainError};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// The metadata entry naming the checkpoint format.
pub const FORMAT_KEY: &str = "chainrule.checkpoint";
/// The format this version writes and reads.
pub const FORMAT_VERSION: &str = "2";

/// Everything a checkpoint holds.
#[derive(Clone, Debug, PartialEq)]
pub struct Checkpoint {
    /// Model parameters and buffers by name.
    pub model: Vec<(String, Tensor<f32>)>,
    /// The best model so far (early stopping restores it).
    pub best: Vec<(String, Tensor<f32>)>,
    /// The optimizer's state.
    pub optimizer: OptimizerState<f32>,
    /// The trainer's counters, history and scheduler state.
    pub trainer: TrainerState,
    /// The settings of the run that wrote it (none for runs that set none).
    pub settings: Option<RunSettings>,
}

/// A number in the checkpoint's JSON that keeps its exact value, infinite
/// and NaN ones included (JSON has none: they are written as the strings
/// `"inf"`, `"-inf"` and `"NaN"`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Float(pub f64);

impl std::fmt::Display for Float {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl Serialize for Float {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            v if v.is_finite() => s.serialize_f64(v),
            v if v.is_nan() => s.serialize_str("NaN"),
            v if v > 0.0 => s.serialize_str("inf"),
            _ => s.serialize_str("-inf"),
        }
    }
}

impl<'de> Deserialize<'de> for Float {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Float;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a number, \"inf\", \"-inf\" or \"NaN\"")
            }
            fn visit_f64<E>(self, v: f64) -> Result<Float, E> {
                Ok(Float(v))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Float, E> {
                Ok(Float(v as f64))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Float, E> {
                Ok(Float(v as f64))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Float, E> {
                match v {
                    "inf" => Ok(Float(f64::INFINITY)),
                    "-inf" => Ok(Float(f64::NEG_INFINITY)),
                    "NaN" => Ok(Float(f64::NAN)),
                    _ => Err(E::invalid_value(serde::de::Unexpected::Str(v), &self)),
                }
            }
        }
        d.deserialize_any(Visitor)
    }
}

/// `#[serde(with = "float")]` for plain `f64` fields stored as [`Float`].
pub mod float {
    use super::Float;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    /// Writes `v` as a [`Float`].
    pub fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
        Float(*v).serialize(s)
    }

    /// Reads a [`Float`].
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        Float::deserialize(d).map(|f| f.0)
    }
}

/// The trainer's counters and history: where a resumed run continues.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainerState {
    /// Epochs completed.
    pub epochs_done: usize,
    /// The best validation loss so far (infinite before any).
    #[serde(with = "float")]
    pub best_loss: f64,
    /// Epochs since the last improvement.
    pub bad_epochs: usize,
    /// The epoch of the best validation loss (0: none yet).
    pub best_epoch: usize,
    /// One record per completed epoch.
    pub records: Vec<EpochRecord>,
    /// The learning-rate scheduler's state, if the run had one (`null`
    /// if not; the key is required).
    #[serde(deserialize_with = "Option::deserialize")]
    pub scheduler: Option<SchedulerState>,
}

/// A [`crate::optim::Scheduler`]'s state.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SchedulerState {
    /// Steps taken.
    pub last_epoch: u64,
    /// Each group's initial rate.
    pub base_lrs: Vec<Float>,
}

impl TrainerState {
    /// The counters must agree with each other: one record per completed
    /// epoch, numbered 1, 2, …; the best and the bad epochs within them.
    fn check(&self) -> Result<(), String> {
        let n = self.epochs_done;
        if self.records.len() != n {
            return Err(format!(
                "{} epoch records for {n} completed epochs",
                self.records.len()
            ));
        }
        if let Some((i, r)) = self
            .records
            .iter()
            .enumerate()
            .find(|(i, r)| r.epoch != i + 1)
        {
            return Err(format!(
                "record {i} is of epoch {}, expected {}",
                r.epoch,
                i + 1
            ));
        }
        if self.best_epoch > n || self.bad_epochs > n {
            return Err(format!(
                "best epoch {} and {} epochs without improvement after {n} epochs",
                self.best_epoch, self.bad_epochs
            ));
        }
        Ok(())
    }
}

/// A setting changed with `--resume --force`, kept in the record.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForcedChange {
    /// Epochs completed when it changed.
    pub after_epoch: usize,
    /// The setting (its flag).
    pub setting: String,
    /// The value before.
    pub from: String,
    /// The value after.
    pub to: String,
}

/// Everything that decides a `chainrule train` run, recorded in its
/// checkpoint and compared with the command line on `--resume`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunSettings {
    /// The network (`mlp`, `cnn`).
    pub model: String,
    /// The optimizer's name as `--optimizer` spells it.
    pub optimizer: String,
    /// The learning rate the run started with.
    pub lr: Float,
    /// Every hyperparameter of the optimizer at the start (lr included).
    pub hyperparameters: BTreeMap<String, Float>,
    /// The learning-rate schedule.
    pub schedule: String,
    /// Mini-batch size.
    pub batch_size: usize,
    /// Epochs of the run.
    pub epochs: usize,
    /// The seed of weights, shuffling, augmentation and dropout.
    pub seed: u64,
    /// `--limit`: training images kept before the validation hold-out.
    #[serde(deserialize_with = "Option::deserialize")]
    pub limit: Option<usize>,
    /// Where the images came from.
    pub data: String,
    /// Number of training images (after `--limit` and the hold-out).
    pub train_images: usize,
    /// Weight initialisation.
    pub init: String,
    /// Dropout probability.
    pub dropout: Float,
    /// Gradient-norm clipping.
    #[serde(deserialize_with = "Option::deserialize")]
    pub clip: Option<Float>,
    /// Label smoothing ε.
    pub label_smoothing: Float,
    /// Training-image augmentation.
    #[serde(deserialize_with = "Option::deserialize")]
    pub augment: Option<String>,
    /// Early-stopping patience.
    #[serde(deserialize_with = "Option::deserialize")]
    pub patience: Option<usize>,
    /// Smallest improvement that counts.
    pub min_delta: Float,
    /// Settings changed by earlier `--resume --force` runs (not compared).
    pub forced: Vec<ForcedChange>,
}

/// Why a setting can never be overridden on resume, or `None` if
/// `--resume --force` may change it.
type Lock = Option<&'static str>;

const ARCHITECTURE: Lock = Some("the checkpoint's tensors belong to that model");
const OPTIMIZER: Lock = Some("the checkpoint's optimizer state would replace the value given");
const SCHEDULE: Lock = Some("the scheduler's saved position belongs to that schedule");
const STEPS: Lock = Some("the saved step counts and the scheduler's position depend on it");
const STREAMS: Lock =
    Some("the remaining epochs' shuffling, augmentation and dropout derive from it");
const DATASET: Lock = Some("the training set and its standardization would differ");
const FORCEABLE: Lock = None;

/// One difference between a checkpoint's settings and a run's.
#[derive(Clone, Debug, PartialEq)]
pub struct SettingDiff {
    /// The setting (its flag, e.g. `--epochs`).
    pub setting: String,
    /// The checkpoint's value.
    pub checkpoint: String,
    /// The value given.
    pub given: String,
    /// Why it can never be overridden (`None`: `--force` may).
    pub locked: Option<&'static str>,
}

impl std::fmt::Display for SettingDiff {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: the checkpoint has {}, this run has {}",
            self.setting, self.checkpoint, self.given
        )?;
        match self.locked {
            Some(why) => write!(f, " (cannot be overridden: {why})"),
            None => write!(f, " (--force continues with {})", self.given),
        }
    }
}

fn show<T: std::fmt::Display>(v: &Option<T>) -> String {
    v.as_ref().map_or("none".into(), |v| v.to_string())
}

impl RunSettings {
    /// Every compared setting: (flag, value, lock).
    fn entries(&self) -> Vec<(String, String, Lock)> {
        let mut out: Vec<(String, String, Lock)> = vec![
            ("--model".into(), self.model.clone(), ARCHITECTURE),
            ("--dropout".into(), self.dropout.to_string(), ARCHITECTURE),
            ("--init".into(), self.init.clone(), ARCHITECTURE),
            ("--optimizer".into(), self.optimizer.clone(), OPTIMIZER),
            ("--lr".into(), self.lr.to_string(), OPTIMIZER),
        ];
        for (k, v) in &self.hyperparameters {
            out.push((
                format!("optimizer hyperparameter {k}"),
                v.to_string(),
                OPTIMIZER,
            ));
        }
        out.extend([
            ("--schedule".into(), self.schedule.clone(), SCHEDULE),
            ("--batch-size".into(), self.batch_size.to_string(), STEPS),
            ("--seed".into(), self.seed.to_string(), STREAMS),
            ("--limit".into(), show(&self.limit), DATASET),
            (
                "training images".into(),
                self.train_images.to_string(),
                DATASET,
            ),
            ("data source".into(), self.data.clone(), FORCEABLE),
            ("--epochs".into(), self.epochs.to_string(), FORCEABLE),
            ("--patience".into(), show(&self.patience), FORCEABLE),
            ("--min-delta".into(), self.min_delta.to_string(), FORCEABLE),
            ("--clip".into(), show(&self.clip), FORCEABLE),
            (
                "--label-smoothing".into(),
                self.label_smoothing.to_string(),
                FORCEABLE,
            ),
            ("--augment".into(), show(&self.augment), FORCEABLE),
        ]);
        out
    }

    /// The settings that differ between this checkpoint's record and `given`.
    pub fn differences(&self, given: &RunSettings) -> Vec<SettingDiff> {
        let (mine, theirs) = (self.entries(), given.entries());
        let value = |list: &[(String, String, Lock)], k: &str| {
            list.iter()
                .find(|e| e.0 == k)
                .map_or_else(|| "none".to_string(), |e| e.1.clone())
        };
        // Every setting of either (hyperparameters differ between optimizers).
        let mut names: Vec<(String, Lock)> = mine.iter().map(|e| (e.0.clone(), e.2)).collect();
        for e in &theirs {
            if !names.iter().any(|n| n.0 == e.0) {
                names.push((e.0.clone(), e.2));
            }
        }
        names
            .into_iter()
            .filter_map(|(setting, locked)| {
                let (checkpoint, given) = (value(&mine, &setting), value(&theirs, &setting));
                (checkpoint != given).then_some(SettingDiff {
                    setting,
                    checkpoint,
                    given,
                    locked,
                })
            })
            .collect()
    }

    /// Decides a `--resume`: `Ok` with the settings to continue with (the
    /// given ones, with `--force`'s changes appended to the record) if
    /// nothing differs, or only what `force` may override; otherwise an
    /// error listing every difference.
    pub fn resume_with(
        &self,
        given: &RunSettings,
        force: bool,
        epochs_done: usize,
    ) -> Result<(RunSettings, Vec<SettingDiff>), String> {
        let diffs = self.differences(given);
        let locked = diffs.iter().any(|d| d.locked.is_some());
        if !diffs.is_empty() && (locked || !force) {
            let lines: Vec<String> = diffs.iter().map(|d| format!("  {d}")).collect();
            let advice = if locked {
                "start a new run in another --out directory, or run with the checkpoint's values"
            } else {
                "pass --force to continue with the values given, \
                 or run with the checkpoint's values"
            };
            return Err(format!(
                "the run's settings differ from the checkpoint's:\n{}\n{advice}",
                lines.join("\n")
            ));
        }
        let mut next = given.clone();
        next.forced = self.forced.clone();
        next.forced.extend(diffs.iter().map(|d| ForcedChange {
            after_epoch: epochs_done,
            setting: d.setting.clone(),
            from: d.checkpoint.clone(),
            to: d.given.clone(),
        }));
        Ok((next, diffs))
    }
}

/// The optimizer's metadata entry (its tensors are `optim.<i>.<buffer>`).
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct OptimizerMeta {
    optimizer: String,
    groups: Vec<BTreeMap<String, Float>>,
    params: Vec<ParamMeta>,
}

/// One parameter's optimizer state, without its buffers' values.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ParamMeta {
    step: u64,
    scalars: BTreeMap<String, Float>,
    buffers: Vec<String>,
}

fn floats(m: &BTreeMap<String, f64>) -> BTreeMap<String, Float> {
    m.iter().map(|(k, v)| (k.clone(), Float(*v))).collect()
}

fn plain(m: BTreeMap<String, Float>) -> BTreeMap<String, f64> {
    m.into_iter().map(|(k, v)| (k, v.0)).collect()
}

fn optimizer_meta(s: &OptimizerState<f32>) -> OptimizerMeta {
    OptimizerMeta {
        optimizer: s.optimizer.clone(),
        groups: s.groups.iter().map(floats).collect(),
        params: s
            .params
            .iter()
            .map(|p| ParamMeta {
                step: p.step,
                scalars: floats(&p.scalars),
                buffers: p.buffers.keys().cloned().collect(),
            })
            .collect(),
    }
}

fn to_json<T: Serialize>(path: &Path, key: &str, v: &T) -> Result<String, StateError> {
    serde_json::to_string(v).map_err(|e| StateError::Format {
        path: path.to_path_buf(),
        message: format!("cannot encode the {key} metadata: {e}"),
    })
}

/// Writes a checkpoint atomically.
pub fn save(path: &Path, c: &Checkpoint) -> Result<(), StateError> {
    let mut tensors: Vec<(String, Tensor<f32>)> = Vec::new();
    tensors.extend(
        c.model
            .iter()
            .map(|(n, t)| (format!("model.{n}"), t.clone())),
    );
    tensors.extend(c.best.iter().map(|(n, t)| (format!("best.{n}"), t.clone())));
    for (i, p) in c.optimizer.params.iter().enumerate() {
        tensors.extend(
            p.buffers
                .iter()
                .map(|(n, t)| (format!("optim.{i}.{n}"), t.clone())),
        );
    }
    let mut meta = HashMap::new();
    meta.insert(FORMAT_KEY.to_string(), FORMAT_VERSION.to_string());
    meta.insert("trainer".into(), to_json(path, "trainer", &c.trainer)?);
    let optimizer = optimizer_meta(&c.optimizer);
    meta.insert("optimizer".into(), to_json(path, "optimizer", &optimizer)?);
    if let Some(s) = &c.settings {
        meta.insert("settings".into(), to_json(path, "settings", s)?);
    }
    state::write_tensors(path, &tensors, meta)
}

/// Reads and verifies a checkpoint written by [`save`].
pub fn load(path: &Path) -> Result<Checkpoint, StateError> {
    let (tensors, meta) = state::read_file(path)?;
    from_parts(tensors, meta, path)
}

/// [`load`] from bytes in memory (errors name the source `<bytes>`). Never
/// panics, whatever the bytes: the entry point for fuzzing checkpoint loading.
pub fn load_bytes(bytes: &[u8]) -> Result<Checkpoint, StateError> {
    let path = Path::new("<bytes>");
    let (tensors, meta) = state::parse(bytes, path)?;
    from_parts(tensors, meta, path)
}

/// The metadata entries a checkpoint may have besides the checksums.
const KEYS: [&str; 5] = ["format", FORMAT_KEY, "trainer", "optimizer", "settings"];

/// A checkpoint from a verified safetensors file's tensors and metadata.
fn from_parts(
    mut tensors: RawTensors,
    meta: Metadata,
    path: &Path,
) -> Result<Checkpoint, StateError> {
    let bad = |m: String| StateError::Format {
        path: path.to_path_buf(),
        message: m,
    };
    check_format(&meta).map_err(&bad)?;
    let entry = |key: &str| {
        meta.get(key)
            .map(String::as_str)
            .ok_or_else(|| bad(format!("checkpoint has no {key} metadata")))
    };
    let trainer: TrainerState = json(entry("trainer")?, "trainer").map_err(&bad)?;
    trainer
        .check()
        .map_err(|m| bad(format!("trainer metadata: {m}")))?;
    let opt: OptimizerMeta = json(entry("optimizer")?, "optimizer").map_err(&bad)?;
    let settings: Option<RunSettings> = meta
        .get("settings")
        .map(|text| json(text, "settings"))
        .transpose()
        .map_err(&bad)?;
    if let Some(s) = &settings {
        if trainer.epochs_done > s.epochs {
            return Err(bad(format!(
                "trainer metadata: {} epochs done of a {}-epoch run",
                trainer.epochs_done, s.epochs
            )));
        }
    }
    let model = take_prefix(&mut tensors, "model.").map_err(&bad)?;
    let best = take_prefix(&mut tensors, "best.").map_err(&bad)?;
    let optimizer = optimizer_state(opt, &mut tensors).map_err(&bad)?;
    if let Some(name) = tensors.keys().next() {
        return Err(bad(format!("unexpected tensor {name} in a checkpoint")));
    }
    Ok(Checkpoint {
        model,
        best,
        optimizer,
        trainer,
        settings,
    })
}

/// The format entry must be this version's, and the whole-file checksum
/// must be there (it was verified when the file was read); no unknown
/// metadata entries.
fn check_format(meta: &Metadata) -> Result<(), String> {
    match meta.get(FORMAT_KEY).map(String::as_str) {
        Some(FORMAT_VERSION) => {}
        Some(v) => {
            return Err(format!(
                "checkpoint format {v:?}; this chainrule reads format {FORMAT_VERSION}"
            ))
        }
        None => {
            return Err(format!(
                "not a chainrule checkpoint of format {FORMAT_VERSION} (no {FORMAT_KEY} entry; \
                 checkpoints before format {FORMAT_VERSION} had no whole-file checksum and \
                 cannot be verified): delete it, or start again without --resume"
            ))
        }
    }
    if !meta.contains_key(CHECKSUM_KEY) {
        return Err(format!(
            "checkpoint has no whole-file checksum ({CHECKSUM_KEY}): it cannot be verified"
        ));
    }
    match meta.keys().find(|k| {
        !KEYS.contains(&k.as_str()) && k.as_str() != CHECKSUM_KEY && !k.starts_with("crc32.")
    }) {
        Some(k) => Err(format!("unexpected metadata entry {k:?} in a checkpoint")),
        None => Ok(()),
    }
}

/// Parses metadata entry `key` into `T`. Every error names the entry and,
/// where the JSON is well-formed but does not fit `T` (a missing, unknown
/// or wrongly typed key), the path of the key within it, e.g.
/// `trainer metadata: records[1].val_loss: invalid type: …`.
fn json<'a, T: Deserialize<'a>>(text: &'a str, key: &str) -> Result<T, String> {
    serde_json::from_str(text).map_err(|e| {
        // A missing key is found at the end of its object, after the
        // object's last key: the path is the object's.
        let missing = e.to_string().starts_with("missing field");
        let at = match e.classify() {
            serde_json::error::Category::Data => key_path(text, e.line(), e.column(), missing),
            _ => None,
        };
        match at {
            Some(path) if !path.is_empty() => format!("{key} metadata: {path}: {e}"),
            _ => format!("{key} metadata: {e}"),
        }
    })
}

/// A step into a JSON value: an object's key (none before it is read) or
/// an array's index.
enum Step {
    Key(Option<String>),
    Index(usize),
}

/// The path (`records[1].val_loss`) of the value being read at 1-based
/// `line` and byte `column` of `text` (where serde_json reports an error),
/// from the keys and indices of the well-formed JSON before it; `None` if
/// the position is not in `text`. With `object`, the path of the object
/// being read rather than of its key.
fn key_path(text: &str, line: usize, column: usize, object: bool) -> Option<String> {
    let start: usize = text
        .split_inclusive('\n')
        .take(line.checked_sub(1)?)
        .map(str::len)
        .sum();
    let prefix = text.get(..start.checked_add(column)?.min(text.len()))?;
    let (mut stack, mut last, mut chars) = (Vec::new(), String::new(), prefix.chars());
    while let Some(ch) = chars.next() {
        match (ch, stack.last_mut()) {
            ('"', _) => last = read_string(&mut chars),
            ('{', _) => stack.push(Step::Key(None)),
            ('[', _) => stack.push(Step::Index(0)),
            ('}' | ']', _) => {
                stack.pop();
            }
            (':', Some(Step::Key(k))) => *k = Some(std::mem::take(&mut last)),
            (',', Some(Step::Key(k))) => *k = None,
            (',', Some(Step::Index(i))) => *i += 1,
            _ => {}
        }
    }
    if object && matches!(stack.last(), Some(Step::Key(_))) {
        if let Some(Step::Key(k)) = stack.last_mut() {
            *k = None;
        }
    }
    let mut path = String::new();
    for step in &stack {
        match step {
            Step::Key(Some(k)) if path.is_empty() => path.push_str(k),
            Step::Key(Some(k)) => path.push_str(&format!(".{k}")),
            Step::Key(None) => break,
            Step::Index(i) => path.push_str(&format!("[{i}]")),
        }
    }
    Some(path)
}

/// The rest of a JSON string whose opening quote was read (escapes kept
/// as written: keys here are plain names).
fn read_string(chars: &mut std::str::Chars<'_>) -> String {
    let mut out = String::new();
    while let Some(ch) = chars.next() {
        match ch {
            '"' => break,
            '\\' => out.extend(chars.next()),
            c => out.push(c),
        }
    }
    out
}

/// Tensor `name` in f32 (the shape and count came checked from the file;
/// any disagreement is still an error, never a panic).
fn to_tensor(name: &str, shape: Vec<usize>, values: Vec<f64>) -> Result<Tensor<f32>, String> {
    Tensor::try_from_vec(&shape, values.into_iter().map(|x| x as f32).collect())
        .map_err(|e| format!("tensor {name}: {e}"))
}

/// Removes and returns the tensors whose names start with `prefix`, without it.
fn take_prefix(
    tensors: &mut RawTensors,
    prefix: &str,
) -> Result<Vec<(String, Tensor<f32>)>, String> {
    let names: Vec<String> = tensors
        .keys()
        .filter(|k| k.starts_with(prefix))
        .cloned()
        .collect();
    let mut out = Vec::with_capacity(names.len());
    for name in names {
        if let Some((shape, v)) = tensors.remove(&name) {
            let t = to_tensor(&name, shape, v)?;
            out.push((name[prefix.len()..].to_string(), t));
        }
    }
    Ok(out)
}

/// The optimizer's state from its metadata and its `optim.<i>.<buffer>`
/// tensors (each removed from `tensors`).
fn optimizer_state(
    opt: OptimizerMeta,
    tensors: &mut RawTensors,
) -> Result<OptimizerState<f32>, String> {
    let mut params = Vec::with_capacity(opt.params.len());
    for (i, p) in opt.params.into_iter().enumerate() {
        let mut buffers = BTreeMap::new();
        for name in p.buffers {
            // Exact names: "exp_avg" must not also take "exp_avg_sq".
            let key = format!("optim.{i}.{name}");
            let (shape, v) = tensors.remove(&key).ok_or_else(|| {
                format!(
                    "optimizer metadata lists buffer {name} of parameter {i}, \
                     but there is no tensor {key} (or it is listed twice)"
                )
            })?;
            buffers.insert(name, to_tensor(&key, shape, v)?);
        }
        params.push(ParamState {
            step: p.step,
            buffers,
            scalars: plain(p.scalars),
        });
    }
    Ok(OptimizerState {
        optimizer: opt.optimizer,
        groups: opt.groups.into_iter().map(plain).collect(),
        params,
    })
}

/// What a resuming run expects of its checkpoint.
pub struct ResumeCheck<'a> {
    /// This run's settings (none: not compared, the record is kept).
    pub settings: Option<&'a RunSettings>,
    /// `--force`: continue although overridable settings differ.
    pub force: bool,
    /// Optimizer steps per epoch.
    pub batches_per_epoch: usize,
    /// Whether the scheduler steps per batch (else per epoch).
    pub per_batch: bool,
}

/// A checkpoint restored into an optimizer and scheduler, and what the
/// trainer continues with.
pub struct Restored {
    /// The model's tensors (checked against the model, to install).
    pub model: Vec<(String, Tensor<f32>)>,
    /// The best weights so far (checked against the model).
    pub best: Vec<(String, Tensor<f32>)>,
    /// The counters.
    pub trainer: TrainerState,
    /// The settings to record from now on.
    pub settings: Option<RunSettings>,
    /// Settings `--force` changed.
    pub forced: Vec<SettingDiff>,
}

/// Checks checkpoint `ck` (read from `path`) against the run — its
/// settings, the model's tensor names and shapes, the step counts — then
/// restores the optimizer's and the scheduler's state. Nothing is restored
/// unless every check passes; errors name the file and what differs.
pub fn restore(
    path: &Path,
    ck: Checkpoint,
    model: &(impl Module<f32> + ?Sized),
    opt: &mut dyn Optimizer<f32>,
    scheduler: Option<&mut Scheduler<Box<dyn Schedule>>>,
    expect: &ResumeCheck<'_>,
) -> Result<Restored, TrainError> {
    let resume_error = |m: String| TrainError::Resume(format!("{}: {m}", path.display()));
    let done = ck.trainer.epochs_done;
    let (settings, forced) = match (expect.settings, &ck.settings) {
        (Some(given), Some(saved)) => saved
            .resume_with(given, expect.force, done)
            .map(|(s, d)| (Some(s), d))
            .map_err(|m| resume_error(format!("cannot resume: {m}")))?,
        (Some(given), None) if expect.force => (Some(given.clone()), Vec::new()),
        (Some(_), None) => {
            return Err(resume_error(
                "the checkpoint records no run settings, so they cannot be compared; \
                 pass --force to resume it with this run's"
                    .into(),
            ))
        }
        (None, saved) => (saved.clone(), Vec::new()),
    };
    let wanted = state_dict(model);
    check_tensors(path, "model", &wanted, &ck.model)?;
    check_tensors(path, "best", &wanted, &ck.best)?;
    check_positions(&ck, scheduler.is_some(), expect).map_err(resume_error)?;
    opt.load_state(ck.optimizer)
        .map_err(|e| resume_error(format!("optimizer state: {e}")))?;
    if let (Some(s), Some(saved)) = (scheduler, &ck.trainer.scheduler) {
        let base = saved.base_lrs.iter().map(|f| f.0).collect();
        s.load_state(opt, (saved.last_epoch, base))
            .map_err(|e| resume_error(format!("scheduler state: {e}")))?;
    }
    Ok(Restored {
        model: ck.model,
        best: ck.best,
        trainer: ck.trainer,
        settings,
        forced,
    })
}

/// The checkpoint's `what` tensors must be exactly the model's: the same
/// names and shapes.
fn check_tensors(
    path: &Path,
    what: &str,
    wanted: &[(String, Tensor<f32>)],
    got: &[(String, Tensor<f32>)],
) -> Result<(), StateError> {
    let got: BTreeMap<&str, &[usize]> = got.iter().map(|(n, t)| (n.as_str(), t.shape())).collect();
    let mut report = LoadReport::default();
    for (name, t) in wanted {
        match got.get(name.as_str()) {
            None => report.missing.push(format!("{what}.{name}")),
            Some(s) if *s != t.shape() => {
                report
                    .mismatched
                    .push((format!("{what}.{name}"), t.shape().to_vec(), s.to_vec()))
            }
            Some(_) => {}
        }
    }
    report.unexpected = got
        .keys()
        .filter(|k| !wanted.iter().any(|(n, _)| n == *k))
        .map(|k| format!("{what}.{k}"))
        .collect();
    if report.is_clean() {
        Ok(())
    } else {
        Err(StateError::Mismatch {
            path: path.to_path_buf(),
            report,
        })
    }
}

/// The scheduler's position and the optimizer's step counts must be what
/// `epochs_done` epochs of this run's batches give.
fn check_positions(
    ck: &Checkpoint,
    has_scheduler: bool,
    expect: &ResumeCheck<'_>,
) -> Result<(), String> {
    let done = ck.trainer.epochs_done as u64;
    let steps = done.saturating_mul(expect.batches_per_epoch as u64);
    if let Some((i, p)) = ck
        .optimizer
        .params
        .iter()
        .enumerate()
        .find(|(_, p)| p.step > steps)
    {
        return Err(format!(
            "optimizer state: parameter {i} has taken {} steps, \
             more than the {steps} of {done} epochs of {} batches",
            p.step, expect.batches_per_epoch
        ));
    }
    match (&ck.trainer.scheduler, has_scheduler) {
        (None, false) => Ok(()),
        (Some(_), false) => {
            Err("the checkpoint has a scheduler state but this run has no schedule".into())
        }
        (None, true) => {
            Err("the checkpoint has no scheduler state but this run has a schedule".into())
        }
        (Some(s), true) => {
            let want = if expect.per_batch { steps } else { done };
            if s.last_epoch == want {
                Ok(())
            } else {
                Err(format!(
                    "scheduler state: {} steps taken, expected {want} after {done} epochs",
                    s.last_epoch
                ))
            }
        }
    }
}
