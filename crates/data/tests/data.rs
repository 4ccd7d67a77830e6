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

// ---- Hostile and damaged IDX input, and where the data is read from ----

use chainrule_data::fashion::{DataDir, Part};
use chainrule_data::idx::{read_idx_expecting, read_idx_from};
use std::io::Read;
use std::path::{Path, PathBuf};

/// A reader that counts the bytes pulled through it.
struct Counting<R> {
    inner: R,
    pulled: u64,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.pulled += n as u64;
        Ok(n)
    }
}

/// A valid IDX header and data declaring 10 labels, then `zeros` zero bytes, gzip'd.
fn gzip_bomb(zeros: usize) -> Vec<u8> {
    let mut e = flate2_encoder();
    e.write_all(&encode_idx(&[10], &[3; 10])).unwrap();
    let chunk = vec![0u8; 1 << 20];
    for _ in 0..zeros >> 20 {
        e.write_all(&chunk).unwrap();
    }
    e.finish().unwrap()
}

#[test]
fn a_gzip_bomb_is_rejected_after_inflating_only_the_declared_size() {
    // 128 MiB of zeros after a header declaring 10 bytes: about 130 KB of gzip.
    let bomb = gzip_bomb(128 << 20);
    assert!(bomb.len() > 100_000, "{} bytes", bomb.len());
    let mut reader = Counting {
        inner: &bomb[..],
        pulled: 0,
    };
    let e = read_idx_from(&mut reader, &IdxExpect::default()).unwrap_err();
    assert!(e.contains("trailing data"), "{e}");
    // Inflating 11 bytes needs the first block of the stream; the reader
    // buffers 8 KiB at a time, so a few buffers at most are pulled — not the
    // whole stream, as inflating everything and checking afterwards would.
    assert!(
        reader.pulled <= 32 << 10,
        "{} of {} compressed bytes pulled",
        reader.pulled,
        bomb.len()
    );
    // The same through a file: the error names it.
    let path = tmp("bomb-labels.gz");
    std::fs::write(&path, &bomb).unwrap();
    let e = read_idx(&path).unwrap_err().to_string();
    assert!(
        e.starts_with(&path.display().to_string()) && e.contains("trailing data"),
        "{e}"
    );
}

#[test]
fn raw_trailing_data_is_not_read_past_the_declared_size() {
    // A raw file declaring 6 bytes followed by 64 MiB more: at most the
    // declared size, one byte and one 8 KiB buffer are pulled.
    let header = encode_idx(&[2, 3], &[1, 2, 3, 4, 5, 6]);
    let mut reader = Counting {
        inner: (&header[..]).chain(std::io::repeat(0).take(64 << 20)),
        pulled: 0,
    };
    let e = read_idx_from(&mut reader, &IdxExpect::default()).unwrap_err();
    assert!(e.contains("trailing data"), "{e}");
    assert!(reader.pulled <= 16 << 10, "{} bytes pulled", reader.pulled);
}

#[test]
fn a_header_declaring_too_much_is_rejected_before_reading_data() {
    // 2^32-1 to the fourth power overflows u64: an error, not a panic.
    let huge = [
        0, 0, 8, 4, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
    ];
    let e = parse_idx(&huge).unwrap_err();
    assert!(e.contains("more than the 1073741824-byte limit"), "{e}");
    // 65536 × 65536 = 4 GiB, within u64 but over the limit: rejected from
    // the header, pulling nothing more from an endless stream of zeros.
    let mut reader = Counting {
        inner: std::io::Cursor::new(encode_idx(&[65536, 65536], &[])).chain(std::io::repeat(0)),
        pulled: 0,
    };
    let e = read_idx_from(&mut reader, &IdxExpect::default()).unwrap_err();
    assert!(e.contains("[65536, 65536] declare more than"), "{e}");
    assert!(reader.pulled <= 16 << 10, "{} bytes pulled", reader.pulled);
    // A caller's own limit.
    let small = IdxExpect {
        rank: None,
        max_bytes: 100,
    };
    let e = read_idx_from(&encode_idx(&[11, 10], &[0; 110])[..], &small).unwrap_err();
    assert!(e.contains("more than the 100-byte limit"), "{e}");
    assert!(read_idx_from(&encode_idx(&[10, 10], &[0; 100])[..], &small).is_ok());
}

#[test]
fn damaged_headers_are_errors_saying_what_is_wrong() {
    let cases: [(&[u8], &str); 6] = [
        (&[], "0 bytes is too short for an IDX header"),
        (&[0, 0, 8], "3 bytes is too short"),
        (&[0, 0, 8, 0], "0 dimensions (expected 1 to 4)"),
        (
            &[0, 0, 8, 255, 0, 0, 0, 1],
            "255 dimensions (expected 1 to 4)",
        ),
        (
            &[0, 0, 8, 3, 0, 0, 0, 1, 0, 0],
            "truncated header: 10 bytes for 3 dimensions (needs 16)",
        ),
        (&[0x1f, 0x8b], "corrupt or truncated gzip data"),
    ];
    for (bytes, want) in cases {
        let e = read_idx_bytes(bytes).unwrap_err();
        assert!(e.contains(want), "{bytes:?}: {e}");
    }
    // Junk after a complete gzip stream is not ignored.
    let mut junk = gz(&encode_idx(&[3], &[1, 2, 3]));
    assert_eq!(read_idx_bytes(&junk).unwrap().data, [1, 2, 3]);
    junk.extend_from_slice(b"junk");
    let e = read_idx_bytes(&junk).unwrap_err();
    assert!(e.contains("corrupt or truncated gzip data"), "{e}");
    // A raw file is accepted too.
    assert_eq!(
        read_idx_bytes(&encode_idx(&[3], &[1, 2, 3])).unwrap().dims,
        [3]
    );
}

/// An images file (n × 28 × 28) and a labels file of `labels`.
fn pair(n: usize, labels: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let pixels: Vec<u8> = (0..n * 784).map(|i| (i % 256) as u8).collect();
    (
        encode_idx(&[n, 28, 28], &pixels),
        encode_idx(&[labels.len()], labels),
    )
}

#[test]
fn an_images_file_with_a_wrong_magic_number_names_both_numbers() {
    // A real images file whose rank byte says 1 (a labels file's magic):
    // read as a 1-d array it ends in "trailing data"; the error must be the magic.
    let (mut images, labels) = pair(2, &[1, 2]);
    images[3] = 1;
    let path = tmp("images-bad-magic");
    std::fs::write(&path, &images).unwrap();
    let e = read_idx_expecting(&path, &IdxExpect::rank(3))
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        format!(
            "{}: bad magic number 0x00000801, expected 0x00000803 (unsigned bytes in 3 dimensions)",
            path.display()
        )
    );
    let e = fashion::parse_pair(&images, &labels).unwrap_err();
    assert!(e.starts_with("images: bad magic number 0x00000801"), "{e}");
    let e = fashion::parse_pair(&labels, &labels).unwrap_err();
    assert!(e.contains("0x00000801, expected 0x00000803"), "{e}");
}

#[test]
fn images_and_labels_must_agree() {
    let (images, labels) = pair(3, &[0, 9, 4]);
    let set = fashion::parse_pair(&images, &gz(&labels)).unwrap();
    assert_eq!((set.labels, set.features.len()), (vec![0, 9, 4], 3 * 784));
    let (_, two) = pair(3, &[0, 9]);
    let e = fashion::parse_pair(&images, &two).unwrap_err();
    assert_eq!(
        e,
        "labels: expected 3 labels (one per image), found dimensions [2]"
    );
    let (_, bad) = pair(3, &[0, 10, 4]);
    let e = fashion::parse_pair(&images, &bad).unwrap_err();
    assert_eq!(e, "labels: label 10 (of example 1) is not a class 0-9");
    let (none, no_labels) = pair(0, &[]);
    let e = fashion::parse_pair(&none, &no_labels).unwrap_err();
    assert!(
        e.starts_with("images: expected N×28×28 images with N ≥ 1"),
        "{e}"
    );
    let wrong = encode_idx(&[1, 27, 29], &[0; 27 * 29]);
    let e = fashion::parse_pair(&wrong, &encode_idx(&[1], &[0])).unwrap_err();
    assert!(e.contains("found dimensions [1, 27, 29]"), "{e}");
    let img = read_idx_bytes(&images).unwrap();
    let lab = read_idx_bytes(&two).unwrap();
    assert_eq!(
        fashion::images_and_labels(img, lab).unwrap_err().0,
        Part::Labels
    );
}

#[test]
fn mutated_files_never_panic() {
    // Random byte flips, truncations and extensions of a valid pair, raw and
    // gzip'd: every outcome is Ok or Err, never a panic.
    let (images, labels) = pair(2, &[3, 7]);
    let (gz_images, gz_labels) = (gz(&images), gz(&labels));
    let mut rng = StdRng::seed_from_u64(7);
    use rand::Rng;
    for round in 0..3000 {
        let mut a = if round % 2 == 0 {
            images.clone()
        } else {
            gz_images.clone()
        };
        let mut b = if round % 3 == 0 {
            labels.clone()
        } else {
            gz_labels.clone()
        };
        for v in [&mut a, &mut b] {
            match rng.gen_range(0..3) {
                0 => {
                    let i = rng.gen_range(0..v.len());
                    v[i] = rng.gen();
                }
                1 => v.truncate(rng.gen_range(0..v.len())),
                _ => v.extend((0..rng.gen_range(1..20)).map(|_| rng.gen::<u8>())),
            }
        }
        let _ = fashion::parse_pair(&a, &b);
        let _ = read_idx_bytes(&a);
    }
}

/// A fresh directory with copies of the subset's four files (optionally
/// gunzipped, optionally leaving one out).
fn data_dir(name: &str, raw: bool, leave_out: Option<&str>) -> PathBuf {
    let dir = tmp(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for file in fashion::FILES {
        if Some(file) == leave_out {
            continue;
        }
        let gzipped = std::fs::read(fashion::subset_dir().join(format!("{file}.gz"))).unwrap();
        if raw {
            let mut plain = Vec::new();
            flate2::read::GzDecoder::new(&gzipped[..])
                .read_to_end(&mut plain)
                .unwrap();
            std::fs::write(dir.join(file), plain).unwrap();
        } else {
            std::fs::write(dir.join(format!("{file}.gz")), gzipped).unwrap();
        }
    }
    dir
}

/// The error of loading `dir` (which must fail).
fn load_error(dir: &DataDir) -> String {
    match fashion::load_dir(dir) {
        Ok(d) => panic!("loaded {} instead of failing", d.source.display()),
        Err(e) => e.to_string(),
    }
}

#[test]
fn an_explicit_directory_is_used_or_is_an_error_never_replaced() {
    let from_env = |p: &Path| DataDir::resolve(false, None, Some(p.as_os_str())).unwrap();
    // Missing directory.
    let missing = tmp("no-such-dir");
    let e = load_error(&from_env(&missing));
    assert!(
        e == format!(
            "CHAINRULE_DATA={}: {} does not exist",
            missing.display(),
            missing.display()
        ),
        "{e}"
    );
    // One file missing: named, with both accepted spellings.
    let partial = data_dir("partial", false, Some("train-labels-idx1-ubyte"));
    let e = load_error(&DataDir::Flag(partial.clone()));
    assert!(
        e.starts_with(&format!(
            "--data {}: {} has no train-labels-idx1-ubyte.gz (or train-labels-idx1-ubyte)",
            partial.display(),
            partial.display()
        )),
        "{e}"
    );
    // A file where the directory should be.
    let file = tmp("a-file");
    std::fs::write(&file, b"x").unwrap();
    let e = load_error(&from_env(&file));
    assert!(e.ends_with("is not a directory"), "{e}");
    // A damaged file in an explicit directory: the error names the flag and the file.
    let damaged = data_dir("damaged", false, None);
    let labels = damaged.join("t10k-labels-idx1-ubyte.gz");
    std::fs::write(&labels, gz(&encode_idx(&[1000], &[11; 1000]))).unwrap();
    let e = load_error(&DataDir::Flag(damaged.clone()));
    assert!(
        e.starts_with(&format!(
            "--data {}: {}: label 11",
            damaged.display(),
            labels.display()
        )),
        "{e}"
    );
    // Raw (gunzipped) files are accepted, and are what was asked for.
    let raw = data_dir("raw", true, None);
    let data = fashion::load_dir(&from_env(&raw)).unwrap();
    assert_eq!(
        (data.source, data.is_subset, data.train.labels.len()),
        (raw, false, 3000)
    );
}

#[test]
fn the_flag_wins_over_the_variable_and_an_empty_variable_is_an_error() {
    let flag = Path::new("/flag");
    let env = std::ffi::OsStr::new("/env");
    assert_eq!(
        DataDir::resolve(false, Some(flag), Some(env)).unwrap(),
        DataDir::Flag(flag.into())
    );
    assert_eq!(
        DataDir::resolve(false, None, Some(env)).unwrap(),
        DataDir::Env("/env".into())
    );
    assert_eq!(
        DataDir::resolve(true, None, Some(env)).unwrap(),
        DataDir::Subset
    );
    assert_eq!(
        DataDir::resolve(false, None, None).unwrap(),
        DataDir::Default
    );
    let e = DataDir::resolve(false, None, Some(std::ffi::OsStr::new("")))
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("CHAINRULE_DATA: set but empty"), "{e}");
    // The flag makes an empty variable irrelevant.
    assert!(DataDir::resolve(false, Some(flag), Some(std::ffi::OsStr::new(""))).is_ok());
}
