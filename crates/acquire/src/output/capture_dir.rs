//! Inside the output root: the per-root lock, free space, the new capture
//! directory, the space reserve, and atomic small-file writes.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::Write;
use std::os::fd::AsFd;

use fv_core::fs::{Dir, FsError};
use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg, OFlag, openat};
use nix::sys::stat::Mode;
use sha2::{Digest, Sha256};

use super::error::OutputError;
use crate::hex::hex;

/// The lock file in the output root.
pub const LOCK_FILE: &str = ".capture.lock";
/// The space reserve in a capture directory (removed at finalization).
pub const RESERVE_FILE: &str = ".reserve";

/// Takes the per-root lock (`flock` on [`LOCK_FILE`], non-blocking); held
/// until the returned value is dropped (or the process exits).
///
/// # Errors
/// [`OutputError::Busy`] when another capture holds it.
pub fn lock(root: &Dir) -> Result<Flock<File>, OutputError> {
    let path = root.path().join(LOCK_FILE);
    let fd = openat(
        root,
        LOCK_FILE,
        OFlag::O_RDWR | OFlag::O_CREAT | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(0o600),
    )
    .map_err(|e| match e {
        Errno::ELOOP => OutputError::Fs(FsError::Symlink { path: path.clone() }),
        e => OutputError::sys(&path, "open lock", e),
    })?;
    Flock::lock(File::from(fd), FlockArg::LockExclusiveNonblock).map_err(|(_, e)| match e {
        Errno::EWOULDBLOCK => OutputError::Busy { path: path.clone() },
        e => OutputError::sys(&path, "flock", e),
    })
}

/// Free bytes for an unprivileged-equivalent writer (`f_bavail`; root may
/// use the reserved blocks too, but counting on them is not safe).
///
/// # Errors
/// [`OutputError::Sys`].
pub fn free_bytes(dir: &Dir) -> Result<u64, OutputError> {
    let st =
        nix::sys::statvfs::fstatvfs(dir).map_err(|e| OutputError::sys(dir.path(), "statvfs", e))?;
    Ok((st.blocks_available() as u64).saturating_mul(st.fragment_size() as u64))
}

/// A file name safe for any file system: `[A-Za-z0-9._-]`, others `_`.
pub fn sanitize(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect();
    let s = s.trim_start_matches('.').to_string();
    if s.is_empty() { "host".into() } else { s }
}

/// Creates `<base>`, or `<base>-2`, `-3`, ... if taken.
///
/// # Errors
/// [`OutputError::Fs`].
pub fn create_capture_dir(root: &Dir, base: &str) -> Result<(Dir, String), OutputError> {
    for n in 1..1000 {
        let name = if n == 1 {
            base.to_string()
        } else {
            format!("{base}-{n}")
        };
        match root.create_dir(OsStr::new(&name)) {
            Ok(d) => return Ok((d, name)),
            Err(FsError::Exists { .. }) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(OutputError::Fs(FsError::Exists {
        path: root.path().join(base),
    }))
}

/// Creates the reserve file of `len` bytes (allocated, so the space is
/// really held).
///
/// # Errors
/// [`OutputError::Sys`] (e.g. `ENOSPC`).
pub fn reserve(dir: &Dir, len: u64) -> Result<(), OutputError> {
    let path = dir.path().join(RESERVE_FILE);
    let file = dir.create_file(OsStr::new(RESERVE_FILE))?;
    let ilen = i64::try_from(len).unwrap_or(i64::MAX);
    match nix::fcntl::fallocate(file.as_fd(), nix::fcntl::FallocateFlags::empty(), 0, ilen) {
        Ok(()) => {}
        Err(Errno::EOPNOTSUPP) => {
            // File systems without fallocate: write the zeros.
            let zeros = vec![0u8; 1 << 20];
            let mut left = len;
            let mut w = &file;
            while left > 0 {
                let n = left.min(zeros.len() as u64) as usize;
                w.write_all(&zeros[..n])
                    .map_err(|e| OutputError::sys(&path, "write reserve", e))?;
                left -= n as u64;
            }
        }
        Err(e) => {
            drop(file);
            let _ = dir.remove_file(OsStr::new(RESERVE_FILE));
            return Err(OutputError::sys(&path, "fallocate reserve", e));
        }
    }
    fv_core::fs::sync_file(&file, &path)?;
    Ok(())
}

/// Removes the reserve (idempotent).
pub fn release_reserve(dir: &Dir) {
    // Missing is fine: released already.
    let _ = dir.remove_file(OsStr::new(RESERVE_FILE));
}

/// Writes `bytes` to `name` atomically: a temporary name, fsync, rename
/// without replace, fsync of the directory. Returns the SHA-256.
///
/// # Errors
/// [`OutputError`] from any step.
pub fn write_atomic(dir: &Dir, name: &str, bytes: &[u8]) -> Result<String, OutputError> {
    let tmp: OsString = format!(".{name}.tmp").into();
    let path = dir.path().join(name);
    let mut f = dir.create_file(&tmp)?;
    f.write_all(bytes)
        .map_err(|e| OutputError::sys(&path, "write", e))?;
    fv_core::fs::sync_file(&f, &path)?;
    drop(f);
    dir.rename(&tmp, OsStr::new(name), false)?;
    dir.sync()?;
    Ok(hex(&Sha256::digest(bytes)))
}
