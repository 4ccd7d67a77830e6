//! Plots and metrics are written atomically: through a temporary file
//! beside the target, renamed over it, never left half-written.

use chainrule_nn::state::write_atomically;
use chainrule_train::metrics::{plot_curves, Series};

fn temp_files(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp-"))
        .collect()
}

#[test]
fn plot_curves_replaces_the_png_whole_and_leaves_no_temporary_file() {
    let dir = std::env::temp_dir().join(format!("chainrule-plots-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let png = dir.join("curves.png");
    std::fs::write(&png, b"").unwrap(); // what a killed run used to leave
    let line = |k: f64| -> Vec<Series> { vec![("a".into(), vec![(1.0, k), (2.0, k / 2.0)])] };
    plot_curves(&png, &line(1.0), &line(0.5)).unwrap();
    let first = std::fs::read(&png).unwrap();
    assert_eq!(&first[..8], b"\x89PNG\r\n\x1a\n");
    plot_curves(&png, &line(2.0), &line(0.7)).unwrap();
    assert_ne!(std::fs::read(&png).unwrap(), first, "redrawn");
    assert!(temp_files(&dir).is_empty(), "{:?}", temp_files(&dir));
    // A target that cannot be replaced is an error naming it, and nothing is left behind.
    let blocked = dir.join("blocked.png");
    std::fs::create_dir_all(blocked.join("inside")).unwrap();
    let e = plot_curves(&blocked, &line(1.0), &line(0.5)).unwrap_err();
    assert!(e.starts_with(&blocked.display().to_string()), "{e}");
    assert!(temp_files(&dir).is_empty(), "{:?}", temp_files(&dir));
    write_atomically(&dir.join("m.csv"), b"x\n").unwrap();
    assert_eq!(std::fs::read(dir.join("m.csv")).unwrap(), b"x\n");
    std::fs::remove_dir_all(&dir).ok();
}
