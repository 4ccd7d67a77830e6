//! The Trainer trains any `Module<f32>` and takes the class count from the
//! data, not a constant.

use chainrule_data::InMemory;
use chainrule_nn::state::state_dict;
use chainrule_nn::{join, BatchNorm, BatchNormOptions, Buffer, Linear, Module};
use chainrule_optim::{optimizer_by_name, Optimizer};
use chainrule_tape::error::Result;
use chainrule_tape::{Graph, Parameter, Var};
use chainrule_train::metrics::evaluate;
use chainrule_train::{Trainer, TrainerConfig};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::path::PathBuf;

/// `n` examples of `features` values in `classes` classes, each class
/// around its own mean (so a linear model separates them).
fn blobs(n: usize, features: usize, classes: usize, seed: u64) -> InMemory {
    let mut rng = StdRng::seed_from_u64(seed);
    let labels: Vec<usize> = (0..n).map(|i| i % classes).collect();
    let mut values = Vec::with_capacity(n * features);
    for &c in &labels {
        for j in 0..features {
            let centre = if j % classes == c { 2.0 } else { 0.0 };
            values.push(centre + rng.gen_range(-0.5f32..0.5));
        }
    }
    InMemory {
        features: values,
        shape: vec![features],
        labels,
    }
}

/// Not a `Sequential`: `out(norm(hidden(x))) + skip(x)`, with a batch
/// norm's buffers among its state.
struct Residual {
    hidden: Linear<f32>,
    norm: BatchNorm<f32>,
    out: Linear<f32>,
    skip: Linear<f32>,
}

impl Residual {
    fn new(features: usize, classes: usize, seed: u64) -> Self {
        let rng = &mut StdRng::seed_from_u64(seed);
        Residual {
            hidden: Linear::new(features, 8, rng),
            norm: BatchNorm::new_1d(8, BatchNormOptions::default()),
            out: Linear::new(8, classes, rng),
            skip: Linear::new(features, classes, rng),
        }
    }
}

impl Module<f32> for Residual {
    fn try_forward(&self, g: &Graph<f32>, x: &Var<f32>) -> Result<Var<f32>> {
        let h = self.norm.try_forward(g, &self.hidden.try_forward(g, x)?)?;
        self.out
            .try_forward(g, &h)?
            .try_add(&self.skip.try_forward(g, x)?)
    }

    fn visit_parameters(&self, prefix: &str, f: &mut dyn FnMut(String, &Parameter<f32>)) {
        self.hidden.visit_parameters(&join(prefix, "hidden"), f);
        self.norm.visit_parameters(&join(prefix, "norm"), f);
        self.out.visit_parameters(&join(prefix, "out"), f);
        self.skip.visit_parameters(&join(prefix, "skip"), f);
    }

    fn visit_buffers(&self, prefix: &str, f: &mut dyn FnMut(String, &Buffer<f32>)) {
        self.norm.visit_buffers(&join(prefix, "norm"), f);
    }

    fn set_training(&mut self, training: bool) {
        self.norm.set_training(training);
    }
}

fn config(epochs: usize, out: Option<PathBuf>) -> TrainerConfig {
    TrainerConfig {
        epochs,
        batch_size: 10,
        out_dir: out,
        progress: false,
        verbose: false,
        ..Default::default()
    }
}

fn adam(model: &dyn Module<f32>) -> Box<dyn Optimizer<f32>> {
    optimizer_by_name("adam", model.parameters(), Some(0.05)).unwrap()
}

#[test]
fn a_custom_module_trains_and_resumes_through_the_trainer() {
    let (train, val) = (blobs(60, 4, 3, 0), blobs(30, 4, 3, 1));
    let mut model = Residual::new(4, 3, 7);
    let before = state_dict(&model);
    let mut opt = adam(&model);
    let history = Trainer::new(config(3, None))
        .fit(&mut model, opt.as_mut(), None, &train, &val, false)
        .unwrap();
    assert_eq!(history.records.len(), 3);
    let after = state_dict(&model);
    assert_ne!(before[0].1.data(), after[0].1.data(), "no step was taken");
    // Three separable blobs: 3 epochs of Adam at 0.05 leave the loss well
    // below ln 3 ≈ 1.10 (chance), whatever the seed's exact figures.
    assert!(history.records[2].val_loss < 0.9, "{:?}", history.records);

    // The checkpoint holds the module's named parameters and buffers, and
    // a resumed run continues where the first stopped, bit for bit.
    let out = std::env::temp_dir().join(format!("chainrule-custom-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let run = |epochs: usize, out: Option<PathBuf>, resume: bool| {
        let mut model = Residual::new(4, 3, 7);
        let mut opt = adam(&model);
        Trainer::new(config(epochs, out))
            .fit(&mut model, opt.as_mut(), None, &train, &val, resume)
            .unwrap();
        state_dict(&model)
    };
    run(2, Some(out.clone()), false);
    let ck = chainrule_train::checkpoint::load(&out.join("checkpoint.safetensors")).unwrap();
    let names: Vec<&str> = ck.model.iter().map(|(n, _)| n.as_str()).collect();
    for want in ["hidden.weight", "norm.running_var", "skip.bias"] {
        assert!(names.contains(&want), "{want} not in {names:?}");
    }
    let resumed = run(3, Some(out.clone()), true);
    for ((n, a), (_, b)) in run(3, None, false).iter().zip(&resumed) {
        assert_eq!(a.data(), b.data(), "{n} differs after resuming");
    }
    std::fs::remove_dir_all(&out).ok();
}

#[test]
fn a_boxed_dyn_module_trains_through_the_trainer() {
    let (train, val) = (blobs(30, 4, 3, 0), blobs(30, 4, 3, 1));
    let mut model: Box<dyn Module<f32>> = Box::new(Residual::new(4, 3, 7));
    let mut opt = adam(model.as_ref());
    let history = Trainer::new(config(1, None))
        .fit(model.as_mut(), opt.as_mut(), None, &train, &val, false)
        .unwrap();
    assert_eq!(history.records.len(), 1);
}

#[test]
fn a_three_class_dataset_gives_three_by_three_metrics() {
    let (train, val) = (blobs(60, 4, 3, 0), blobs(30, 4, 3, 1));
    let mut model = Residual::new(4, 3, 7);
    let mut opt = adam(&model);
    Trainer::new(config(2, None))
        .fit(&mut model, opt.as_mut(), None, &train, &val, false)
        .unwrap();
    let eval = evaluate(&model, &val, 7).unwrap();
    assert_eq!(eval.confusion.len(), 3);
    assert!(eval.confusion.iter().all(|row| row.len() == 3));
    assert_eq!(eval.confusion.iter().flatten().sum::<usize>(), 30);
    let correct: usize = (0..3).map(|c| eval.confusion[c][c]).sum();
    assert_eq!(eval.accuracy, correct as f64 / 30.0);
}

#[test]
fn more_than_ten_classes_train_and_evaluate() {
    // The trainer's validation used a 10×10 matrix: label 11 indexed past it.
    let (train, val) = (blobs(48, 12, 12, 0), blobs(24, 12, 12, 1));
    let mut model = Residual::new(12, 12, 3);
    let mut opt = adam(&model);
    let history = Trainer::new(config(1, None))
        .fit(&mut model, opt.as_mut(), None, &train, &val, false)
        .unwrap();
    assert_eq!(history.records.len(), 1);
    let eval = evaluate(&model, &val, 5).unwrap();
    assert_eq!(eval.confusion.len(), 12);
    assert_eq!(eval.confusion.iter().flatten().sum::<usize>(), 24);
}

#[test]
fn a_label_outside_the_logits_is_an_error_not_a_panic() {
    let mut val = blobs(6, 4, 3, 1);
    val.labels[4] = 5;
    let model = Residual::new(4, 3, 7);
    let err = evaluate(&model, &val, 4).unwrap_err().to_string();
    assert!(err.contains("cross_entropy"), "{err}");
}
