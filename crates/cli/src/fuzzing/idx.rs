//! The IDX fuzz target: arbitrary bytes read as an IDX file (raw, or gzip'd
//! when they start with gzip's magic), and split in two as an image file
//! and a label file through every check the Fashion-MNIST loader makes.

use chainrule::data::fashion::parse_pair;
use chainrule::data::idx::{read_idx_from, IdxExpect};
use chainrule::data::Dataset;

/// The largest data section the target accepts: small, so that a header
/// declaring a large (valid) set is refused instead of allocated.
const MAX_BYTES: u64 = 1 << 20;

/// Runs the target on one input; bad input must come back as an error.
pub fn run(data: &[u8]) {
    let expect = IdxExpect {
        rank: None,
        max_bytes: MAX_BYTES,
    };
    if let Ok(array) = read_idx_from(data, &expect) {
        let n: usize = array.dims.iter().product();
        assert_eq!(array.data.len(), n, "IDX data and dimensions disagree");
    }
    // The first byte says how many of the rest are the image file.
    let Some((&cut, rest)) = data.split_first() else {
        return;
    };
    let (images, labels) = rest.split_at(usize::from(cut).min(rest.len()));
    if let Ok(set) = parse_pair(images, labels) {
        assert!(set.len() > 0, "an empty set was accepted");
    }
}
