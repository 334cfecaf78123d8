//! One context file copied from `/proc` or `/sys` into the capture
//! directory, bounded and hashed ([`copy_into`]).

use std::ffi::OsStr;
use std::fs::File;
use std::io::{Read, Write};
use std::path::Path;

use fv_core::fs::Dir;
use sha2::{Digest, Sha256};

use crate::hex::hex;

/// Most bytes copied from one context file (kallsyms is the largest, tens
/// of MiB at most); bounds time and space on a hostile or odd kernel.
pub const CONTEXT_CAP: u64 = 256 << 20;

/// Copies `src` into `dir/name` (created `O_EXCL`), `cap` bytes at most;
/// its length and SHA-256.
pub(crate) fn copy_into(
    src: &Path,
    dir: &Dir,
    name: &str,
    cap: u64,
) -> Result<(u64, String), String> {
    let cap = cap.min(CONTEXT_CAP);
    let mut input = File::open(src).map_err(|e| format!("{}: {e}", src.display()))?;
    let mut out = dir
        .create_file(OsStr::new(name))
        .map_err(|e| e.to_string())?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut len = 0u64;
    while len < cap {
        let n = match input.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n.min((cap - len) as usize),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(format!("{}: read: {e}", src.display())),
        };
        out.write_all(&buf[..n])
            .map_err(|e| format!("{}: write: {e}", dir.path().join(name).display()))?;
        h.update(&buf[..n]);
        len += n as u64;
    }
    fv_core::fs::sync_file(&out, &dir.path().join(name)).map_err(|e| e.to_string())?;
    fv_core::fs::drop_cached(&out, 0, 0);
    Ok((len, hex(&h.finalize())))
}
