//! The marker of a capture in progress: an `INCOMPLETE` file that `capture`
//! creates in the capture directory as soon as the directory exists and
//! removes right after `manifest.json` is renamed in.
//!
//! Why: a capture killed (SIGKILL, power loss, a full disk at the wrong
//! moment) leaves an image and no manifest; one killed exactly at a LiME
//! record boundary even leaves a zstd stream that decodes cleanly and looks
//! like a complete dump of fewer ranges. With the marker, `capture verify`
//! tells such a prefix from evidence: a directory or image next to
//! `INCOMPLETE` and no manifest is an aborted capture (exit 1).
//!
//! Killed between the manifest's rename and the marker's removal, both are
//! there: the manifest is complete (it is written last, after the image is
//! finished and synced), and `verify` says so in a note.

use std::ffi::OsStr;
use std::io::Write;

use fv_core::fs::{Dir, FsError, sync_file};

/// Name of the marker in the capture directory.
pub const INCOMPLETE_FILE: &str = "INCOMPLETE";

/// What the marker says to someone who opens it.
const TEXT: &str = "This capture was still running when this file was last seen. capture removes it right after writing manifest.json.\nWith no manifest.json next to it, the capture was aborted: its image is an unfinished prefix (`capture verify` reports it).\n";

/// Creates the marker in `dir` and makes it durable, so that a capture
/// killed from now on is recognisable.
///
/// # Errors
/// [`FsError`] from creating, writing or syncing it.
pub fn mark(dir: &Dir) -> Result<(), FsError> {
    let path = dir.path().join(INCOMPLETE_FILE);
    let mut f = dir.create_file(OsStr::new(INCOMPLETE_FILE))?;
    f.write_all(TEXT.as_bytes())
        .map_err(|source| FsError::Sys {
            path: path.clone(),
            op: "write",
            source,
        })?;
    sync_file(&f, &path)?;
    dir.sync()
}

/// Removes the marker once the manifest is in place, and makes that
/// durable.
///
/// # Errors
/// [`FsError`] from removing it or syncing the directory.
pub fn clear(dir: &Dir) -> Result<(), FsError> {
    dir.remove_file(OsStr::new(INCOMPLETE_FILE))?;
    dir.sync()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_marker_is_there_while_running_and_gone_after() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = Dir::open(tmp.path()).unwrap();
        mark(&dir).unwrap();
        let text = std::fs::read_to_string(tmp.path().join(INCOMPLETE_FILE)).unwrap();
        assert!(text.contains("manifest.json"));
        // A second run in the same directory never reuses a marker.
        assert!(mark(&dir).is_err());
        clear(&dir).unwrap();
        assert!(!tmp.path().join(INCOMPLETE_FILE).exists());
        assert!(clear(&dir).is_err());
    }
}
