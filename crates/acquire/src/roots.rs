//! The roots every host path is read under: `/proc`, `/sys` and `/dev`, or
//! fixture trees in tests (STYLE: every root the code reads from is a
//! parameter).

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

/// The roots every path is read under (fixture trees in tests).
#[derive(Debug, Clone)]
pub struct Roots {
    /// `/proc`.
    pub proc: PathBuf,
    /// `/sys`.
    pub sys: PathBuf,
    /// `/dev`.
    pub dev: PathBuf,
}

/// Reads at most `cap` bytes of a small (procfs) file.
pub(crate) fn read_small(path: &Path, cap: u64) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    File::open(path)?.take(cap).read_to_end(&mut out)?;
    Ok(out)
}
