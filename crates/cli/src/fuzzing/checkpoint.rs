//! The checkpoint fuzz target, in two halves:
//! - the input read as a whole checkpoint file (safetensors header, tensors,
//!   per-tensor and whole-content checksums);
//! - the input read as edits to a real checkpoint's metadata text (trainer
//!   counters, optimizer state, run settings), after which the file is
//!   signed again, so that edits pass the checksums and reach the checks a
//!   resume makes (`checkpoint::restore` into a model, Adam and a scheduler).

use super::ByteReader;
use crate::data::fashion;
use crate::nn::state::{self, Metadata};
use crate::nn::{Flatten, Linear};
use crate::nn::{Module, Sequential};
use crate::optim::{optimizer_by_name, CosineAnnealingLr, Optimizer, Schedule, Scheduler};
use crate::tape::Tensor;
use chainrule_train::checkpoint::{self, ResumeCheck};
use chainrule_train::{ScheduleStep, Trainer, TrainerConfig};
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::path::PathBuf;
use std::sync::OnceLock;

/// Training images of the template run: one epoch of two batches.
const IMAGES: usize = 48;
const BATCH: usize = 24;

/// The metadata entries the edits reach.
const KEYS: [&str; 4] = ["trainer", "optimizer", "settings", checkpoint::FORMAT_KEY];

/// A real checkpoint's tensors and metadata, written once per process by a
/// one-epoch run of a 784→10 linear model with Adam and a cosine schedule.
struct Template {
    tensors: Vec<(String, Tensor<f32>)>,
    metadata: Metadata,
    scratch: PathBuf,
}

fn model() -> Sequential<f32> {
    let mut rng = StdRng::seed_from_u64(1);
    Sequential::new()
        .push(Flatten)
        .push(Linear::new(784, 10, &mut rng))
}

fn optimizer(m: &Sequential<f32>) -> Box<dyn Optimizer<f32>> {
    optimizer_by_name("adam", m.parameters(), None).expect("adam exists")
}

fn schedule() -> Box<dyn Schedule> {
    Box::new(CosineAnnealingLr {
        t_max: 4,
        eta_min: 0.0,
    })
}

fn template() -> &'static Template {
    static TEMPLATE: OnceLock<Template> = OnceLock::new();
    TEMPLATE.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("chainrule-fuzz-ck-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let data = fashion::load_from(&fashion::subset_dir(), true).expect("the committed subset");
        let (train, val) = (data.train.head(IMAGES), data.test.head(BATCH));
        let mut m = model();
        let mut opt = optimizer(&m);
        let mut sched = Scheduler::new(opt.as_mut(), schedule());
        let config = TrainerConfig {
            epochs: 1,
            batch_size: BATCH,
            out_dir: Some(dir.clone()),
            progress: false,
            verbose: false,
            schedule_step: ScheduleStep::PerBatch,
            ..Default::default()
        };
        Trainer::new(config)
            .fit(&mut m, opt.as_mut(), Some(&mut sched), &train, &val, false)
            .expect("the template run trains");
        let bytes = std::fs::read(dir.join("checkpoint.safetensors")).expect("its checkpoint");
        let (raw, metadata) = state::read_bytes(&bytes).expect("a valid checkpoint");
        let tensors = raw
            .into_iter()
            .map(|(name, (shape, values))| {
                let data = values.into_iter().map(|v| v as f32).collect();
                (name, Tensor::from_vec(shape, data))
            })
            .collect();
        Template {
            tensors,
            metadata,
            scratch: dir.join("edited.safetensors"),
        }
    })
}

/// Applies the edit script: 3 bytes an edit (which entry, where, what:
/// below 0x20 deletes the byte there, otherwise it is inserted).
fn edit(metadata: &mut Metadata, script: &[u8]) {
    let mut r = ByteReader::new(script);
    while !r.is_empty() {
        let key = KEYS[usize::from(r.byte()) % KEYS.len()];
        let (at, what) = (r.byte(), r.byte());
        let mut text = metadata.remove(key).unwrap_or_default().into_bytes();
        let pos = usize::from(at) * text.len() / 256;
        if what < 0x20 {
            if pos < text.len() {
                text.remove(pos);
            }
        } else {
            text.insert(pos, what);
        }
        metadata.insert(key.to_string(), String::from_utf8_lossy(&text).into_owned());
    }
}

/// Runs the target on one input: every outcome is `Ok` or an error.
pub fn run(data: &[u8]) {
    if let Ok(ck) = checkpoint::load_bytes(data) {
        let _ = ck.trainer.epochs_done;
    }
    let t = template();
    let mut metadata = t.metadata.clone();
    metadata.retain(|k, _| KEYS.contains(&k.as_str()));
    edit(&mut metadata, data);
    if state::write_tensors(&t.scratch, &t.tensors, metadata).is_err() {
        return;
    }
    let bytes = std::fs::read(&t.scratch).expect("the file just written");
    let Ok(ck) = checkpoint::load_bytes(&bytes) else {
        return;
    };
    let m = model();
    let mut opt = optimizer(&m);
    let mut sched = Scheduler::new(opt.as_mut(), schedule());
    let expect = ResumeCheck {
        settings: None,
        force: false,
        batches_per_epoch: IMAGES / BATCH,
        per_batch: true,
    };
    let _ = checkpoint::restore(&t.scratch, ck, &m, opt.as_mut(), Some(&mut sched), &expect);
}
