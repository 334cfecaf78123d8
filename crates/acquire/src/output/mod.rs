//! Where a capture goes: the output root (on the forensics volume: found by
//! its marker file, and proved by device identity, see
//! [`check_volume_device`]), the lock that allows one capture at a time per root,
//! the free-space check, the capture directory, the space reserve, and
//! atomic small-file writes.
//!
//! Every directory is opened with [`Dir::open`] (no symlink at any
//! component); every file is created `O_EXCL|O_NOFOLLOW` 0600 relative to a
//! checked directory fd.

mod capture_dir;
mod device;
mod error;
mod root;

pub use capture_dir::{
    LOCK_FILE, RESERVE_FILE, create_capture_dir, free_bytes, lock, release_reserve, reserve,
    sanitize, write_atomic,
};
pub use device::{check_volume_device, check_volume_id};
pub use error::{ON_VOLUME_HINT, OutputError};
pub use root::{Root, TEST_MODEL_ENV, default_root, open_root};

#[cfg(test)]
mod tests;
