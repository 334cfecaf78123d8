//! What the writer needs below the standard library: `sync_file_range(2)`,
//! which `nix` does not wrap, and zstd's estimate of a context's size.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;

/// What [`sync_range`] should do with the range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SyncRange {
    /// Start writeback of the dirty pages and return at once.
    Start,
    /// Write the range out and wait until it is on disk.
    Wait,
}

/// `sync_file_range(2)` on `[offset, offset + len)`.
///
/// Used to push written image data to disk as it goes, so that it can then
/// be dropped from the page cache: `fsync` at the end alone would let
/// gigabytes of dirty evidence pile up in the suspect host's memory.
///
/// # Errors
/// The system call's error (`EIO` for a failed writeback; `EINVAL`/`ENOSYS`/
/// `ESPIPE` where a file system or kernel does not support it).
pub(super) fn sync_range(file: &File, offset: u64, len: u64, how: SyncRange) -> io::Result<()> {
    let (Ok(offset), Ok(len)) = (i64::try_from(offset), i64::try_from(len)) else {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    };
    let flags = match how {
        SyncRange::Start => libc::SYNC_FILE_RANGE_WRITE,
        SyncRange::Wait => {
            libc::SYNC_FILE_RANGE_WAIT_BEFORE
                | libc::SYNC_FILE_RANGE_WRITE
                | libc::SYNC_FILE_RANGE_WAIT_AFTER
        }
    };
    // SAFETY: sync_file_range takes a file descriptor and plain integers and
    // touches none of our memory; `file` keeps the descriptor open for the
    // duration of the call.
    let rc = unsafe { libc::sync_file_range(file.as_raw_fd(), offset, len, flags) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Whether an error from [`sync_range`] only means "not supported here".
pub(super) fn unsupported(err: &io::Error) -> bool {
    matches!(
        err.raw_os_error(),
        Some(libc::EINVAL | libc::ENOSYS | libc::ESPIPE | libc::EOPNOTSUPP)
    )
}

/// zstd's estimate of a compression context for `level` and inputs of
/// `frame` bytes.
pub(super) fn context_size(level: i32, frame: u64) -> u64 {
    use zstd::zstd_safe::zstd_sys;
    // SAFETY: both are pure functions of their arguments (ZSTD_getCParams
    // clamps any level; the estimate reads the parameters it is given).
    let size = unsafe {
        zstd_sys::ZSTD_estimateCCtxSize_usingCParams(zstd_sys::ZSTD_getCParams(level, frame, 0))
    };
    size as u64
}
