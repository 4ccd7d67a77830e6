//! clip_grad_norm and clip_grad_value match torch.nn.utils on fixed gradients.

use chainrule_optim::{clip_grad_norm, clip_grad_value, ClipGradNormOptions};
use chainrule_tape::{ErrorKind, Parameter, Tensor};
use serde_json::Value;

fn fixture() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/fixtures/torch/optim.json"
    );
    serde_json::from_str::<Value>(&std::fs::read_to_string(path).unwrap()).unwrap()["clip"].clone()
}

fn params_with_grads(fx: &Value) -> Vec<Parameter<f64>> {
    fx["grads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            let shape: Vec<usize> = g["shape"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d.as_u64().unwrap() as usize)
                .collect();
            let data: Vec<f64> = g["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap())
                .collect();
            let p = Parameter::new(Tensor::zeros(&shape));
            p.set_grad(Some(Tensor::from_vec(&shape, data)));
            p
        })
        .collect()
}

fn assert_grads(params: &[Parameter<f64>], want: &Value, what: &str) {
    for (p, w) in params.iter().zip(want.as_array().unwrap()) {
        for (g, w) in p.grad().unwrap().data().iter().zip(w.as_array().unwrap()) {
            // Sums of a handful of f64 terms: a few ulps; 1e-12 relative + 1e-15 absolute.
            let w = w.as_f64().unwrap();
            assert!(
                (g - w).abs() <= 1e-12 * w.abs() + 1e-15,
                "{what}: {g} vs torch {w}"
            );
        }
    }
}

#[test]
fn clipping_matches_torch_for_every_norm_type_and_by_value() {
    let fx = fixture();
    for case in fx["cases"].as_array().unwrap() {
        let params = params_with_grads(&fx);
        if case["kind"] == "norm" {
            let p = match &case["norm_type"] {
                Value::String(_) => f64::INFINITY,
                v => v.as_f64().unwrap(),
            };
            let total =
                clip_grad_norm(&params, case["max_norm"].as_f64().unwrap(), norm(p)).unwrap();
            let want = case["total"].as_f64().unwrap();
            assert!(
                (total - want).abs() <= 1e-12 * want,
                "norm {p}: {total} vs {want}"
            );
            assert_grads(&params, &case["clipped"], &format!("norm {p}"));
        } else {
            clip_grad_value(&params, case["clip_value"].as_f64().unwrap()).unwrap();
            assert_grads(&params, &case["clipped"], "value");
        }
    }
}

#[test]
fn a_non_finite_norm_is_an_error_on_request_and_leaves_gradients_alone() {
    let p = Parameter::new(Tensor::zeros([2]));
    p.set_grad(Some(Tensor::from_vec([2], vec![1.0f64, f64::INFINITY])));
    let e = clip_grad_norm(
        std::slice::from_ref(&p),
        1.0,
        ClipGradNormOptions {
            error_if_nonfinite: true,
            ..Default::default()
        },
    )
    .unwrap_err();
    assert_eq!(e.kind, ErrorKind::NonFinite);
    assert_eq!(p.grad().unwrap().data()[0], 1.0);
    assert!(clip_grad_norm(&[p], 1.0, ClipGradNormOptions::default())
        .unwrap()
        .is_infinite());
    let q = Parameter::new(Tensor::<f64>::zeros([1]));
    assert_eq!(
        clip_grad_norm(&[q], 1.0, norm(-1.0)).unwrap_err().kind,
        ErrorKind::Argument
    );
}

#[test]
fn a_negative_or_nan_max_norm_is_an_error_and_leaves_gradients_alone() {
    let p = Parameter::new(Tensor::zeros([2]));
    p.set_grad(Some(Tensor::from_vec([2], vec![3.0f64, 4.0])));
    for bad in [-1.0, f64::NAN] {
        let e = clip_grad_norm(
            std::slice::from_ref(&p),
            bad,
            ClipGradNormOptions::default(),
        )
        .unwrap_err();
        assert_eq!(e.kind, ErrorKind::Argument);
        assert!(e.to_string().contains("max_norm must be ≥ 0"), "{e}");
        assert_eq!(p.grad().unwrap().data(), &[3.0, 4.0]);
    }
    // Infinity is no limit: the gradients stay as they are.
    assert_eq!(
        clip_grad_norm(
            std::slice::from_ref(&p),
            f64::INFINITY,
            ClipGradNormOptions::default()
        )
        .unwrap(),
        5.0
    );
    assert_eq!(p.grad().unwrap().data(), &[3.0, 4.0]);
}

/// The options with norm order `p`, the rest PyTorch's defaults.
fn norm(p: f64) -> ClipGradNormOptions {
    ClipGradNormOptions {
        norm_type: p,
        ..Default::default()
    }
}

/// A NaN among the gradients makes the norm NaN, and PyTorch's
/// `clip_grad_norm_` (error_if_nonfinite=False) then makes every gradient
/// NaN (`torch.clamp(nan, max=1.0)` is NaN; checked with torch 2.15:
/// grads [1, nan] and [3] become [nan, nan] and [nan]). Before, `f64::min`
/// turned the NaN coefficient into 1 and left the finite gradient at 3.
#[test]
fn a_nan_norm_makes_every_gradient_nan_as_pytorch() {
    let a = Parameter::new(Tensor::<f64>::zeros([2]));
    let b = Parameter::new(Tensor::<f64>::zeros([1]));
    a.set_grad(Some(Tensor::from_vec([2], vec![1.0, f64::NAN])));
    b.set_grad(Some(Tensor::from_vec([1], vec![3.0])));
    let norm = clip_grad_norm(&[a.clone(), b.clone()], 1.0, ClipGradNormOptions::default())
        .expect("error_if_nonfinite is off");
    assert!(norm.is_nan());
    assert!(b.grad().unwrap().item().is_nan(), "{:?}", b.grad());
}
