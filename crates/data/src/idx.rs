//! The IDX file format (LeCun's MNIST format), gzip'd or plain: a magic
//! number (two zero bytes, a type code, the number of dimensions), the
//! dimensions as big-endian u32, then the data. Only unsigned bytes (type
//! 0x08, what MNIST and Fashion-MNIST use) are read; everything is checked
//! and a bad file is an error naming the file and the problem.
//!
//! The header is read first and the data after it is read through a limit
//! of the size the header declares plus one byte (to detect trailing
//! data), so a small file that inflates to gigabytes is rejected after
//! inflating at most that much, and nothing larger than the declared size
//! (itself capped by [`IdxExpect::max_bytes`]) is ever allocated.
//!
//! Entry points that never panic, whatever the bytes: [`read_idx_bytes`]
//! (raw or gzip'd, in memory), [`parse_idx`] (raw only) and
//! [`read_idx_from`] (any reader).

use flate2::bufread::MultiGzDecoder;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

/// Why a dataset file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// The file could not be opened or read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The contents are not a valid IDX file, or not the expected one.
    #[error("{path}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A data directory that was asked for (with `--data` or
    /// `$CHAINRULE_DATA`) cannot be used; it is never replaced by another.
    #[error("{origin}: {message}")]
    Unusable {
        /// Who asked for it, e.g. `--data /srv/fmnist` or `CHAINRULE_DATA=/srv/fmnist`.
        origin: String,
        /// What is wrong, naming the missing or bad file.
        message: String,
    },
}

/// An IDX array of bytes.
#[derive(Clone, Debug, PartialEq)]
pub struct IdxArray {
    /// Dimensions (e.g. [60000, 28, 28]).
    pub dims: Vec<usize>,
    /// Row-major bytes.
    pub data: Vec<u8>,
}

/// The largest data section accepted by default: 1 GiB (the full
/// Fashion-MNIST training images are 47 MB).
pub const DEFAULT_MAX_BYTES: u64 = 1 << 30;

/// The most dimensions accepted (MNIST-style files use 1 to 3).
pub const MAX_RANK: u8 = 4;

/// The two bytes every gzip stream starts with.
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// At most this much is reserved up front for the data; more grows as it
/// actually arrives, so a header declaring a large size over a short file
/// costs no more than the file's contents.
const MAX_RESERVE: u64 = 64 << 20;

/// What a reader requires of an IDX file, checked on the header before any
/// data is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IdxExpect {
    /// The number of dimensions required (3 for images, 1 for labels), or any from 1 to [`MAX_RANK`].
    pub rank: Option<u8>,
    /// The largest data section accepted, in bytes.
    pub max_bytes: u64,
}

impl Default for IdxExpect {
    fn default() -> Self {
        IdxExpect {
            rank: None,
            max_bytes: DEFAULT_MAX_BYTES,
        }
    }
}

impl IdxExpect {
    /// Requires `rank` dimensions (the magic number 0x0000_08_rank).
    pub fn rank(rank: u8) -> Self {
        IdxExpect {
            rank: Some(rank),
            ..Self::default()
        }
    }
}

/// The IDX magic number of unsigned bytes with `rank` dimensions.
fn magic_of(rank: u8) -> u32 {
    0x0800 | u32::from(rank)
}

/// Reads an IDX file, gunzipping it if it starts with gzip's magic bytes.
pub fn read_idx(path: impl AsRef<Path>) -> Result<IdxArray, DataError> {
    read_idx_expecting(path, &IdxExpect::default())
}

/// Reads an IDX file (gzip'd or raw) whose header must satisfy `expect`.
pub fn read_idx_expecting(
    path: impl AsRef<Path>,
    expect: &IdxExpect,
) -> Result<IdxArray, DataError> {
    let path = path.as_ref();
    let file = std::fs::File::open(path).map_err(|source| DataError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    read_idx_from(file, expect).map_err(|message| DataError::Invalid {
        path: path.to_path_buf(),
        message,
    })
}

/// Reads IDX bytes held in memory, raw or gzip'd (detected by gzip's magic
/// bytes). Never panics; a bad input is an error saying what is wrong.
pub fn read_idx_bytes(bytes: &[u8]) -> Result<IdxArray, String> {
    read_idx_from(bytes, &IdxExpect::default())
}

/// Parses raw (not gzip'd) IDX bytes. Never panics.
pub fn parse_idx(bytes: &[u8]) -> Result<IdxArray, String> {
    let mut reader = bytes;
    read_body(&mut reader, &IdxExpect::default()).map_err(|e| e.describe(false))
}

/// Reads an IDX array from any reader, gunzipping it if it starts with
/// gzip's magic bytes. Pulls from `reader` only as much as the header's
/// declared size needs (plus a little buffering and one byte to detect
/// trailing data), and allocates no more than that size.
pub fn read_idx_from<R: Read>(mut reader: R, expect: &IdxExpect) -> Result<IdxArray, String> {
    let mut head = [0u8; 2];
    let got = read_up_to(&mut reader, &mut head).map_err(|e| format!("read failed ({e})"))?;
    let mut input = BufReader::new((&head[..got]).chain(reader));
    if head[..got] == GZIP_MAGIC {
        let mut gz = MultiGzDecoder::new(input);
        read_body(&mut gz, expect).map_err(|e| e.describe(true))
    } else {
        read_body(&mut input, expect).map_err(|e| e.describe(false))
    }
}

/// A failure while reading: of the stream itself, or of its contents.
enum Failure {
    Io(std::io::Error),
    Format(String),
}

impl Failure {
    fn describe(self, gzip: bool) -> String {
        match self {
            Failure::Io(e) if gzip => format!("corrupt or truncated gzip data ({e})"),
            Failure::Io(e) => format!("read failed ({e})"),
            Failure::Format(m) => m,
        }
    }
}

impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Self {
        Failure::Io(e)
    }
}

/// Fills as much of `buf` as the reader has (stopping early only at its end).
fn read_up_to(reader: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match reader.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// Reads and checks the header: the magic number and the dimensions.
fn read_header(reader: &mut impl Read, expect: &IdxExpect) -> Result<Vec<usize>, Failure> {
    let mut magic = [0u8; 4];
    let got = read_up_to(reader, &mut magic)?;
    if got < 4 {
        return Err(Failure::Format(format!(
            "{got} bytes is too short for an IDX header"
        )));
    }
    check_magic(magic, expect).map_err(Failure::Format)?;
    let rank = usize::from(magic[3]);
    let mut raw = vec![0u8; 4 * rank];
    let got = read_up_to(reader, &mut raw)?;
    if got < raw.len() {
        return Err(Failure::Format(format!(
            "truncated header: {} bytes for {rank} dimensions (needs {})",
            4 + got,
            4 + raw.len()
        )));
    }
    raw.chunks_exact(4)
        .map(|b| {
            let d = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
            usize::try_from(d).map_err(|_| Failure::Format(format!("dimension {d} is too large")))
        })
        .collect()
}

/// Checks the magic number 00 00 08 rank (against `expect.rank` if given).
fn check_magic(magic: [u8; 4], expect: &IdxExpect) -> Result<(), String> {
    let found = u32::from_be_bytes(magic);
    if let Some(rank) = expect.rank {
        if found != magic_of(rank) {
            return Err(format!(
                "bad magic number 0x{found:08x}, expected 0x{:08x} (unsigned bytes in {rank} dimension{})",
                magic_of(rank),
                if rank == 1 { "" } else { "s" }
            ));
        }
        return Ok(());
    }
    if magic[0] != 0 || magic[1] != 0 {
        return Err(format!(
            "bad magic number 0x{found:08x} (an IDX file starts with two zero bytes)"
        ));
    }
    if magic[2] != 0x08 {
        return Err(format!(
            "element type 0x{:02x} is not unsigned bytes (0x08)",
            magic[2]
        ));
    }
    if !(1..=MAX_RANK).contains(&magic[3]) {
        return Err(format!(
            "{} dimensions (expected 1 to {MAX_RANK})",
            magic[3]
        ));
    }
    Ok(())
}

/// The data size the dimensions declare, checked against `max_bytes`.
fn declared_size(dims: &[usize], max_bytes: u64) -> Result<usize, String> {
    let size = dims
        .iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(d as u64))
        .filter(|&s| s <= max_bytes)
        .ok_or_else(|| {
            format!("dimensions {dims:?} declare more than the {max_bytes}-byte limit of data")
        })?;
    usize::try_from(size).map_err(|_| format!("dimensions {dims:?} are too large for this machine"))
}

/// Reads the header and exactly the data it declares; more data is an error.
fn read_body(reader: &mut impl Read, expect: &IdxExpect) -> Result<IdxArray, Failure> {
    let dims = read_header(reader, expect)?;
    let size = declared_size(&dims, expect.max_bytes).map_err(Failure::Format)?;
    let limit = size as u64 + 1;
    let mut data = Vec::with_capacity(limit.min(MAX_RESERVE) as usize);
    reader.take(limit).read_to_end(&mut data)?;
    if data.len() < size {
        return Err(Failure::Format(format!(
            "dimensions {dims:?} need {size} bytes of data, the file has {} (truncated)",
            data.len()
        )));
    }
    if data.len() > size {
        return Err(Failure::Format(format!(
            "trailing data: more than the {size} bytes of data its dimensions {dims:?} declare"
        )));
    }
    Ok(IdxArray { dims, data })
}

/// Encodes bytes as IDX (for writing subsets and test files); each
/// dimension must fit IDX's u32 and there can be at most 255 of them.
pub fn encode_idx(dims: &[usize], data: &[u8]) -> Vec<u8> {
    let mut out = vec![0, 0, 0x08, dims.len() as u8];
    for &d in dims {
        out.extend((d as u32).to_be_bytes());
    }
    out.extend_from_slice(data);
    out
}
