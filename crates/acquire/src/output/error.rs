//! Why the output cannot be used ([`OutputError`]), and what the refusals
//! say to do instead.

use std::io;
use std::path::{Path, PathBuf};

use fv_core::fs::FsError;
use fv_core::volume::MARKER_FILE;

/// Why the output cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    /// No `--output` and the binary is not on a forensics volume.
    #[error(
        "cannot find the forensics volume: no {MARKER_FILE} above {exe} (the running binary); give --output DIR"
    )]
    NoVolume {
        /// The binary's path.
        exe: PathBuf,
    },
    /// The output root does not exist (and is not the volume's `captures`
    /// folder, which is made when missing).
    #[error("{path}: {}", missing_text())]
    Missing {
        /// The output root.
        path: PathBuf,
    },
    /// The output root is not on the forensics volume. The refusal never
    /// offers `--allow-any-output`: on an instance that flag writes memory
    /// onto the suspect's own disks (issue 23).
    #[error(
        "{path}: not on a forensics volume (no {MARKER_FILE} in it or any parent); {}",
        ON_VOLUME_HINT
    )]
    NotOnVolume {
        /// The output root.
        path: PathBuf,
    },
    /// The output's filesystem is not on the EBS volume `--volume-id` named.
    #[error(
        "{path}: not on the forensics volume {volume_id} ({why}); captures go only to the volume this run attached"
    )]
    NotTheVolumeId {
        /// The output root.
        path: PathBuf,
        /// `--volume-id`.
        volume_id: String,
        /// What the device is instead.
        why: String,
    },
    /// The output's filesystem is not the forensics volume's device.
    #[error("{path}: not on the forensics volume ({why}); {}", ON_VOLUME_HINT)]
    NotTheVolumeDevice {
        /// The output root.
        path: PathBuf,
        /// What the device is instead.
        why: String,
    },
    /// The output root is another file system mounted inside the volume.
    #[error(
        "{path}: on a different file system than the forensics volume at {volume} (something is mounted there); give a directory of the volume itself, e.g. {volume}/captures"
    )]
    OtherFilesystem {
        /// The output root.
        path: PathBuf,
        /// The volume root.
        volume: PathBuf,
    },
    /// `..` in the output path (ambiguous with symlink-free traversal).
    #[error("{path}: '..' is not accepted in --output; give the path without it")]
    ParentComponent {
        /// The path.
        path: PathBuf,
    },
    /// Opening or creating failed (symlink, not a directory, exists, ...).
    #[error(transparent)]
    Fs(#[from] FsError),
    /// Another capture holds the lock.
    #[error(
        "{path}: another capture is running on this output root (lock held); wait for it to finish"
    )]
    Busy {
        /// The lock file.
        path: PathBuf,
    },
    /// Free space is clearly too small.
    #[error(
        "{path}: {free} free, but at least {needed} is needed ({why}). Free space, grow the volume, or use --allow-partial to capture what fits"
    )]
    NoSpace {
        /// The output root.
        path: PathBuf,
        /// Free (human).
        free: String,
        /// Needed (human).
        needed: String,
        /// How the figure was reached.
        why: String,
    },
    /// Another system call failed.
    #[error("{path}: {op}: {source}")]
    Sys {
        /// Path.
        path: PathBuf,
        /// Operation.
        op: &'static str,
        /// Cause.
        #[source]
        source: io::Error,
    },
}

/// What to do instead of writing outside the forensics volume: the refusal
/// names the volume, never the flag that writes onto the suspect's disks.
pub const ON_VOLUME_HINT: &str = "captures must not be written to the suspect's disks. Mount the forensics volume with its mount-helper (docs/break-glass.md) and run capture from it with no -o (it writes into the volume's captures/ folder), or give -o a directory under the volume's mountpoint";

fn missing_text() -> &'static str {
    "does not exist. -o names an existing directory on the forensics volume: capture makes a new capture directory inside it (memory.lime.zst, its .sha256, manifest.json), never a file of that name; with no -o it writes into the captures/ folder of the volume it runs from"
}

impl OutputError {
    pub(super) fn sys(path: &Path, op: &'static str, e: impl Into<io::Error>) -> Self {
        Self::Sys {
            path: path.to_path_buf(),
            op,
            source: e.into(),
        }
    }
}
