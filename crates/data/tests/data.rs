//! IDX validation, the Fashion-MNIST subset, the four loader regimes,
//! fitted transforms (whitened covariance = I) and augmentation.

use chainrule_data::idx::{encode_idx, parse_idx};
use chainrule_data::transform::{
    random_crop, random_horizontal_flip, MinMax, Standardize, Transform, Whitening,
};
use chainrule_data::*;
use rand::rngs::StdRng;
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};
use std::io::Write;

fn tmp(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("chainrule-data-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d.join(name)
}

fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2_encoder();
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

fn flate2_encoder() -> flate2::write::GzEncoder<Vec<u8>> {
    flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default())
}

#[test]
fn idx_round_trips_and_bad_files_are_errors_naming_the_file() {
    let bytes = encode_idx(&[2, 3], &[1, 2, 3, 4, 5, 6]);
    let a = parse_idx(&bytes).unwrap();
    assert_eq!(
        (a.dims.clone(), a.data.clone()),
        (vec![2, 3], vec![1, 2, 3, 4, 5, 6])
    );
    assert!(parse_idx(&bytes[..bytes.len() - 1])
        .unwrap_err()
        .contains("(truncated)"));
    let mut magic = bytes.clone();
    magic[0] = 1;
    assert!(parse_idx(&magic)
        .unwrap_err()
        .starts_with("bad magic number"));
    let mut dtype = bytes.clone();
    dtype[2] = 0x0d;
    assert!(parse_idx(&dtype).unwrap_err().contains("element type 0x0d"));

    // gzip'd: a truncated copy and a bit-flipped copy of a real file.
    let path = tmp("labels.gz");
    let zipped = gz(&encode_idx(&[1000], &vec![7; 1000]));
    std::fs::write(&path, &zipped).unwrap();
    assert_eq!(read_idx(&path).unwrap().data.len(), 1000);
    std::fs::write(&path, &zipped[..zipped.len() / 2]).unwrap();
    let e = read_idx(&path).unwrap_err().to_string();
    assert!(
        e.starts_with(&path.display().to_string()) && e.contains("corrupt or truncated gzip"),
        "{e}"
    );
    let mut flipped = zipped.clone();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 0x04;
    std::fs::write(&path, &flipped).unwrap();
    assert!(
        read_idx(&path).is_err(),
        "gzip's CRC-32 catches a flipped bit"
    );
    assert!(matches!(
        read_idx(tmp("missing.gz")),
        Err(DataError::Io { .. })
    ));
}

#[test]
fn the_embedded_subset_loads_with_a_notice() {
    let data = fashion::load_from(&fashion::subset_dir(), true).unwrap();
    assert_eq!(
        (data.train.labels.len(), data.test.labels.len()),
        (3000, 1000)
    );
    assert_eq!(data.train.shape, [1, 28, 28]);
    assert!(data.train.features.iter().all(|v| (0.0..=1.0).contains(v)));
    // Every class is present (the subset is roughly balanced: 282-321 per class).
    for c in 0..10 {
        assert!(data.train.labels.iter().filter(|&&l| l == c).count() > 250);
    }
    assert!(data
        .notice()
        .contains("apt-get install -y dataset-fashion-mnist"));
}

fn toy(n: usize) -> InMemory {
    InMemory {
        features: (0..n * 2).map(|v| v as f32).collect(),
        shape: vec![2],
        labels: (0..n).collect(),
    }
}

fn labels_of(batches: &[Batch]) -> Vec<Vec<usize>> {
    batches.iter().map(|b| b.y.data.clone()).collect()
}

#[test]
fn the_four_regimes() {
    let data = toy(10);
    let mut rng = StdRng::seed_from_u64(1);
    let full: Vec<Batch> = DataLoader::new(&data, Regime::FullBatch)
        .epoch(&mut rng)
        .collect();
    assert_eq!(labels_of(&full), [(0..10).collect::<Vec<_>>()]);
    assert_eq!(full[0].x.shape(), &[10, 2]);

    let mini = DataLoader::new(&data, Regime::MiniBatch(4));
    let e1 = labels_of(&mini.epoch(&mut rng).collect::<Vec<_>>());
    let e2 = labels_of(&mini.epoch(&mut rng).collect::<Vec<_>>());
    assert_eq!(e1.iter().map(Vec::len).collect::<Vec<_>>(), [4, 4, 2]);
    let mut seen: Vec<usize> = e1.concat();
    seen.sort();
    assert_eq!(
        seen,
        (0..10).collect::<Vec<_>>(),
        "each example once per epoch"
    );
    assert_ne!(e1, e2, "reshuffled every epoch");
    let again = labels_of(
        &mini
            .epoch(&mut StdRng::seed_from_u64(1))
            .collect::<Vec<_>>(),
    );
    assert_eq!(again, e1, "the same seed gives the same epoch");
    let mut dropping = DataLoader::new(&data, Regime::MiniBatch(4));
    dropping.drop_last = true;
    assert_eq!(dropping.epoch(&mut rng).count(), 2);
    assert_eq!(dropping.batches_per_epoch(), 2);

    let sgd = labels_of(
        &DataLoader::new(&data, Regime::Stochastic)
            .epoch(&mut rng)
            .collect::<Vec<_>>(),
    );
    assert!(sgd.iter().all(|b| b.len() == 1) && sgd.concat() != (0..10).collect::<Vec<_>>());
    let online = labels_of(
        &DataLoader::new(&data, Regime::Online)
            .epoch(&mut rng)
            .collect::<Vec<_>>(),
    );
    assert_eq!(online.concat(), (0..10).collect::<Vec<_>>(), "fixed order");
}

/// 2,000 samples of 4 correlated features: x = A·z with z ~ N(0, I).
fn correlated(seed: u64) -> InMemory {
    let mut rng = StdRng::seed_from_u64(seed);
    let a = [
        [2.0, 0.0, 0.0, 0.0],
        [1.0, 0.5, 0.0, 0.0],
        [0.3, -0.8, 1.5, 0.0],
        [0.0, 0.2, 0.4, 0.1],
    ];
    let mut features = Vec::new();
    for _ in 0..2000 {
        let z: Vec<f64> = (0..4).map(|_| StandardNormal.sample(&mut rng)).collect();
        for row in &a {
            features.push((row.iter().zip(&z).map(|(a, z)| a * z).sum::<f64>() + 3.0) as f32);
        }
    }
    InMemory {
        features,
        shape: vec![4],
        labels: vec![0; 2000],
    }
}

fn covariance(d: &InMemory) -> Vec<Vec<f64>> {
    let n = d.labels.len() as f64;
    let k = d.example_len();
    let mean: Vec<f64> = (0..k)
        .map(|j| d.features.chunks(k).map(|r| r[j] as f64).sum::<f64>() / n)
        .collect();
    (0..k)
        .map(|i| {
            (0..k)
                .map(|j| {
                    d.features
                        .chunks(k)
                        .map(|r| (r[i] as f64 - mean[i]) * (r[j] as f64 - mean[j]))
                        .sum::<f64>()
                        / n
                })
                .collect()
        })
        .collect()
}

#[test]
fn whitening_gives_identity_covariance_on_the_training_data() {
    for (name, zca) in [("pca", false), ("zca", true)] {
        let train = correlated(3);
        let w = if zca {
            Whitening::zca(&train, 1e-9)
        } else {
            Whitening::pca(&train, 1e-9)
        };
        let mut white = train.clone();
        w.apply(&mut white);
        let c = covariance(&white);
        for (i, row) in c.iter().enumerate() {
            for (j, v) in row.iter().enumerate() {
                let want = if i == j { 1.0 } else { 0.0 };
                // f32 storage of the whitened values (rel. 6e-8) and ε = 1e-9: within 1e-3 as the issue asks.
                assert!((v - want).abs() < 1e-3, "{name} cov[{i}][{j}] = {v}");
            }
        }
        // Test data is transformed with the training statistics: near, not exactly, identity.
        let mut test = correlated(4);
        w.apply(&mut test);
        let c = covariance(&test);
        assert!(
            (c[0][0] - 1.0).abs() < 0.15 && (c[0][0] - 1.0).abs() > 1e-6,
            "{name}: {}",
            c[0][0]
        );
    }
    // ZCA stays close to the input (it is the symmetric whitening): features keep their order and sign.
    let train = correlated(3);
    let mut white = train.clone();
    Whitening::zca(&train, 1e-9).apply(&mut white);
    let corr: f64 = train
        .features
        .iter()
        .zip(&white.features)
        .step_by(4)
        .map(|(a, b)| (*a as f64 - 3.0) * *b as f64)
        .sum();
    assert!(corr > 0.0);
}

#[test]
fn min_max_and_standardize_use_the_training_statistics() {
    let train = correlated(3);
    let mm = MinMax::fit(&train);
    let mut t = train.clone();
    mm.apply(&mut t);
    assert!(t.features.iter().all(|v| (0.0..=1.0).contains(v)));
    let st = Standardize::fit(&train);
    let mut s = train.clone();
    st.apply(&mut s);
    let c = covariance(&s);
    for (i, row) in c.iter().enumerate() {
        assert!((row[i] - 1.0).abs() < 1e-4, "var {i} = {}", row[i]);
    }
}

#[test]
fn augmentation_crops_and_flips() {
    let mut rng = StdRng::seed_from_u64(0);
    let img: Vec<f32> = (0..2 * 3 * 4).map(|v| v as f32).collect();
    let mut same = img.clone();
    random_crop(&mut same, &[2, 3, 4], 0, 0.0, &mut rng);
    assert_eq!(same, img, "no padding: the crop is the image");
    let mut flipped = img.clone();
    random_horizontal_flip(&mut flipped, &[2, 3, 4], 1.0, &mut rng);
    assert_eq!(&flipped[..4], &[3.0, 2.0, 1.0, 0.0]);
    random_horizontal_flip(&mut flipped, &[2, 3, 4], 1.0, &mut rng);
    assert_eq!(flipped, img);
    // With padding 2 each output is the image shifted by one (dy, dx) in
    // [-2, 2]², the uncovered pixels holding the fill value.
    let fill = -7.0;
    for _ in 0..20 {
        let mut cropped = img.clone();
        random_crop(&mut cropped, &[2, 3, 4], 2, fill, &mut rng);
        let shifted = |dy: isize, dx: isize| -> Vec<f32> {
            let mut out = vec![fill; img.len()];
            for ch in 0..2 {
                for y in 0..3isize {
                    for x in 0..4isize {
                        let (sy, sx) = (y + dy, x + dx);
                        if (0..3).contains(&sy) && (0..4).contains(&sx) {
                            out[(ch * 3 + y as usize) * 4 + x as usize] =
                                img[(ch * 3 + sy as usize) * 4 + sx as usize];
                        }
                    }
                }
            }
            out
        };
        let matches = (-2..=2)
            .flat_map(|dy| (-2..=2).map(move |dx| (dy, dx)))
            .filter(|&(dy, dx)| shifted(dy, dx) == cropped)
            .count();
        assert_eq!(matches, 1, "not a shifted copy: {cropped:?}");
    }
}

#[test]
fn global_standardization_uses_one_mean_and_deviation() {
    let train = correlated(3);
    let st = Standardize::fit_global(&train);
    let mut s = train.clone();
    st.apply(&mut s);
    let n = s.features.len() as f64;
    let mean = s.features.iter().map(|&v| v as f64).sum::<f64>() / n;
    let var = s
        .features
        .iter()
        .map(|&v| (v as f64 - mean).powi(2))
        .sum::<f64>()
        / n;
    // f32 data of a few thousand values: 1e-5 is well above its rounding.
    assert!(mean.abs() < 1e-5, "mean {mean}");
    assert!((var - 1.0).abs() < 1e-5, "variance {var}");
    // One affine map for every feature: equal raw values stay equal.
    let d = train.features.len() / train.labels.len();
    for k in 1..d {
        assert_eq!(st.scaled(k, 0.5), st.scaled(0, 0.5));
    }
}
