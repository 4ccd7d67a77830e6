//! Shared plotting set-up (plotters, bitmap backend).
//!
//! plotters draws text with ab_glyph from a TrueType font registered at run
//! time; we look for DejaVu Sans or Liberation Sans (Debian's
//! `fonts-dejavu-core` / `fonts-liberation2`), or `$CHAINRULE_FONT`. Without
//! one, plots are still drawn, only without text.

use plotters::style::{register_font, FontStyle, RGBColor};
use std::sync::OnceLock;

const FONT_CANDIDATES: &[&str] = &[
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation2/LiberationSans-Regular.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
];

/// Registers a sans-serif font once; true if one was found.
pub fn text_available() -> bool {
    static FOUND: OnceLock<bool> = OnceLock::new();
    *FOUND.get_or_init(|| {
        let from_env = std::env::var("CHAINRULE_FONT").ok();
        let paths = from_env
            .iter()
            .map(String::as_str)
            .chain(FONT_CANDIDATES.iter().copied());
        for path in paths {
            if let Ok(bytes) = std::fs::read(path) {
                // plotters keeps registered fonts for the life of the process.
                let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
                if register_font("sans-serif", FontStyle::Normal, bytes).is_ok() {
                    return true;
                }
            }
        }
        false
    })
}

/// A palette of distinguishable colours (Tableau 10 followed by darker tones).
pub fn color(i: usize) -> RGBColor {
    const PALETTE: [(u8, u8, u8); 18] = [
        (31, 119, 180),
        (255, 127, 14),
        (44, 160, 44),
        (214, 39, 40),
        (148, 103, 189),
        (140, 86, 75),
        (227, 119, 194),
        (127, 127, 127),
        (188, 189, 34),
        (23, 190, 207),
        (0, 0, 0),
        (100, 30, 30),
        (30, 100, 30),
        (30, 30, 120),
        (200, 160, 0),
        (0, 120, 120),
        (120, 0, 120),
        (90, 90, 0),
    ];
    let (r, g, b) = PALETTE[i % PALETTE.len()];
    RGBColor(r, g, b)
}
