//! Training checkpoints: the model's state dict, the best weights so far,
//! the optimizer's state, and the trainer's counters in one safetensors file
//! (tensors as f32, counters and hyperparameters as JSON in the metadata),
//! written atomically. Loading it and continuing gives bit-identical results
//! to a run that never stopped.

use crate::nn::state::{read_file, write_tensors, StateError};
use crate::optim::{OptimizerState, ParamState};
use crate::tape::Tensor;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// Everything a checkpoint holds.
pub struct Checkpoint {
    /// Model parameters and buffers by name.
    pub model: Vec<(String, Tensor<f32>)>,
    /// The best model so far (early stopping restores it).
    pub best: Vec<(String, Tensor<f32>)>,
    /// The optimizer's state.
    pub optimizer: OptimizerState<f32>,
    /// The trainer's counters, history and scheduler state, as JSON.
    pub trainer: Value,
}

fn optimizer_json(s: &OptimizerState<f32>) -> Value {
    json!({
        "optimizer": s.optimizer,
        "groups": s.groups,
        "params": s.params.iter().map(|p| json!({"step": p.step, "scalars": p.scalars, "buffers": p.buffers.keys().collect::<Vec<_>>()})).collect::<Vec<_>>(),
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
    meta.insert("trainer".to_string(), c.trainer.to_string());
    meta.insert(
        "optimizer".to_string(),
        optimizer_json(&c.optimizer).to_string(),
    );
    write_tensors(path, &tensors, meta)
}

/// Reads a checkpoint written by [`save`].
pub fn load(path: &Path) -> Result<Checkpoint, StateError> {
    let (mut tensors, meta) = read_file(path)?;
    let bad = |m: &str| StateError::Format {
        path: path.to_path_buf(),
        message: format!("not a chainrule checkpoint: {m}"),
    };
    let parse = |key: &str| -> Result<Value, StateError> {
        let text = meta
            .get(key)
            .ok_or_else(|| bad(&format!("no {key} metadata")))?;
        serde_json::from_str(text).map_err(|e| bad(&format!("{key} metadata: {e}")))
    };
    let trainer = parse("trainer")?;
    let opt = parse("optimizer")?;
    let take_prefix =
        |tensors: &mut crate::nn::state::RawTensors, prefix: &str| -> Vec<(String, Tensor<f32>)> {
            let names: Vec<String> = tensors
                .keys()
                .filter(|k| k.starts_with(prefix))
                .cloned()
                .collect();
            names
                .into_iter()
                .map(|k| {
                    let (shape, v) = tensors.remove(&k).expect("listed");
                    (
                        k[prefix.len()..].to_string(),
                        Tensor::from_vec(&shape, v.into_iter().map(|x| x as f32).collect()),
                    )
                })
                .collect()
        };
    let model = take_prefix(&mut tensors, "model.");
    let best = take_prefix(&mut tensors, "best.");
    let groups: Vec<BTreeMap<String, f64>> =
        serde_json::from_value(opt["groups"].clone()).map_err(|e| bad(&e.to_string()))?;
    let mut params = Vec::new();
    for (i, p) in opt["params"]
        .as_array()
        .ok_or_else(|| bad("optimizer params"))?
        .iter()
        .enumerate()
    {
        let mut buffers = BTreeMap::new();
        for name in p["buffers"]
            .as_array()
            .ok_or_else(|| bad("optimizer buffers"))?
        {
            let name = name.as_str().ok_or_else(|| bad("buffer name"))?;
            // Exact names: "exp_avg" must not also take "exp_avg_sq".
            let key = format!("optim.{i}.{name}");
            let (shape, v) = tensors
                .remove(&key)
                .ok_or_else(|| bad(&format!("optimizer buffer {key}")))?;
            let t = Tensor::from_vec(&shape, v.into_iter().map(|x| x as f32).collect());
            buffers.insert(name.to_string(), t);
        }
        params.push(ParamState {
            step: p["step"].as_u64().ok_or_else(|| bad("step"))?,
            buffers,
            scalars: serde_json::from_value(p["scalars"].clone())
                .map_err(|e| bad(&e.to_string()))?,
        });
    }
    let optimizer = OptimizerState {
        optimizer: opt["optimizer"].as_str().unwrap_or_default().to_string(),
        groups,
        params,
    };
    Ok(Checkpoint {
        model,
        best,
        optimizer,
        trainer,
    })
}
