//! Fuzz targets' bodies, one function per target taking arbitrary bytes.
//!
//! They live in the library so that two harnesses share them: the
//! coverage-guided `cargo fuzz` targets under `fuzz/` (long runs, see
//! docs/RELIABILITY.md) and the bounded, deterministic pass in
//! `tests/fuzz_pass.rs` that the README's test command runs over the seed
//! corpus, every past crash, and seeded mutations of them. A target panics
//! only when the library misbehaves (a panic, or a broken invariant it
//! asserts); errors are the expected answer to bad bytes.

pub mod checkpoint;
pub mod idx;
pub mod shapes;
pub mod text;

/// Reads a fuzz input as a stream of bytes, then zeros once it runs out.
pub struct ByteReader<'a> {
    rest: &'a [u8],
}

impl<'a> ByteReader<'a> {
    /// A reader over `data`.
    pub fn new(data: &'a [u8]) -> Self {
        ByteReader { rest: data }
    }

    /// The next byte, or 0 past the end.
    pub fn byte(&mut self) -> u8 {
        match self.rest.split_first() {
            Some((&b, rest)) => {
                self.rest = rest;
                b
            }
            None => 0,
        }
    }

    /// True when every byte has been read.
    pub fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }
}
