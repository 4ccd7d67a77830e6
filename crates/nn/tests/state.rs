//! Saving and loading: round trips in f32 and f64, strict and lenient
//! mismatch reports, corrupt and truncated files, atomic replacement.

use chainrule_nn::state::{load, read_tensors, save, state_dict, StateError};
use chainrule_nn::*;
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::path::PathBuf;

fn dir(test: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("chainrule-nn-{test}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn mlp<T: chainrule_tape::Element>(seed: u64, hidden: usize) -> Sequential<T> {
    let mut rng = StdRng::seed_from_u64(seed);
    Sequential::new()
        .push(Linear::new(5, hidden, &mut rng))
        .push(BatchNorm::new_1d(hidden, BatchNormOptions::default()))
        .push(Relu)
        .push(Linear::new(hidden, 3, &mut rng))
}

#[test]
fn round_trips_parameters_and_buffers_in_both_precisions() {
    let d = dir("roundtrip");
    let a = mlp::<f64>(1, 4);
    save(&a, d.join("m.safetensors")).unwrap();
    let b = mlp::<f64>(2, 4);
    assert!(load(&b, d.join("m.safetensors"), true).unwrap().is_clean());
    for ((n, x), (_, y)) in state_dict(&a).into_iter().zip(state_dict(&b)) {
        assert_eq!(x.data(), y.data(), "{n}");
    }
    // f32 file into an f32 model: bit-identical as well.
    let a32 = mlp::<f32>(3, 4);
    save(&a32, d.join("m32.safetensors")).unwrap();
    let b32 = mlp::<f32>(4, 4);
    load(&b32, d.join("m32.safetensors"), true).unwrap();
    assert_eq!(state_dict(&a32)[0].1.data(), state_dict(&b32)[0].1.data());
    // No temporary file is left beside the target.
    let names: Vec<_> = std::fs::read_dir(&d)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn strict_loading_reports_every_mismatch_by_name_and_changes_nothing() {
    let d = dir("strict");
    save(&mlp::<f32>(1, 4), d.join("m.safetensors")).unwrap();
    let other = Sequential::<f32>::new()
        .push(Linear::new(5, 6, &mut StdRng::seed_from_u64(9)))
        .push(Relu)
        .push(Linear::new(6, 3, &mut StdRng::seed_from_u64(9)));
    let before = state_dict(&other);
    let err = load(&other, d.join("m.safetensors"), true).unwrap_err();
    let StateError::Mismatch { report, .. } = &err else {
        panic!("{err}")
    };
    assert_eq!(report.missing, ["2.weight", "2.bias"]);
    assert_eq!(
        report.mismatched,
        [
            ("0.weight".to_string(), vec![6, 5], vec![4, 5]),
            ("0.bias".to_string(), vec![6], vec![4])
        ]
    );
    assert!(
        report.unexpected.contains(&"1.running_mean".to_string())
            && report.unexpected.contains(&"3.weight".to_string())
    );
    assert!(
        err.to_string()
            .contains("missing keys [\"2.weight\", \"2.bias\"]"),
        "{err}"
    );
    for ((n, x), (_, y)) in before.iter().zip(state_dict(&other)) {
        assert_eq!(x.data(), y.data(), "{n} changed by a failed strict load");
    }
    // Lenient: the entries that match load, the report says what did not.
    let report = load(&other, d.join("m.safetensors"), false).unwrap();
    assert!(!report.is_clean() && report.missing.len() == 2);
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn truncated_bit_flipped_and_foreign_files_are_errors_not_panics() {
    let d = dir("corrupt");
    let path = d.join("m.safetensors");
    save(&mlp::<f32>(1, 4), &path).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let model = mlp::<f32>(2, 4);
    // Every truncation point: header length, header, data.
    for cut in [0, 4, 8, 20, bytes.len() / 2, bytes.len() - 1] {
        std::fs::write(&path, &bytes[..cut]).unwrap();
        let e = load(&model, &path, true).unwrap_err();
        assert!(matches!(e, StateError::Format { .. }), "cut {cut}: {e}");
    }
    // A bit flipped in the last tensor's data: caught by its CRC-32.
    let mut flipped = bytes.clone();
    let last = flipped.len() - 3;
    flipped[last] ^= 0x10;
    std::fs::write(&path, &flipped).unwrap();
    let e = load(&model, &path, true).unwrap_err();
    assert!(e.to_string().contains("is corrupt (CRC-32"), "{e}");
    // A bit flipped in the JSON header.
    let mut header = bytes.clone();
    header[10] ^= 0x40;
    std::fs::write(&path, &header).unwrap();
    assert!(load(&model, &path, true).is_err());
    // Not a safetensors file at all, and a missing file.
    std::fs::write(&path, b"PK\x03\x04 this is a zip").unwrap();
    assert!(matches!(
        read_tensors(&path),
        Err(StateError::Format { .. })
    ));
    assert!(matches!(
        read_tensors(d.join("nope")),
        Err(StateError::Io { .. })
    ));
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn a_failed_save_leaves_the_previous_file_intact() {
    let d = dir("atomic");
    let path = d.join("m.safetensors");
    save(&mlp::<f32>(1, 4), &path).unwrap();
    let before = std::fs::read(&path).unwrap();
    // Make the rename fail: a directory now occupies the temporary file's
    // name, so creating it fails and nothing touches the target.
    let tmp = d.join(format!(".m.safetensors.tmp-{}", std::process::id()));
    std::fs::create_dir(&tmp).unwrap();
    assert!(matches!(
        save(&mlp::<f32>(2, 4), &path),
        Err(StateError::Io { .. })
    ));
    assert_eq!(std::fs::read(&path).unwrap(), before);
    std::fs::remove_dir_all(&d).ok();
}
