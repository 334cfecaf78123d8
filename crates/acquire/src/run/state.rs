//! What each phase of a run hands the next: [`Preflight`] (phase 1),
//! [`SourceState`] (2), [`OutputState`] (3), [`Acquired`] (4), and what the
//! run returns, [`Outcome`] (5).

use std::path::PathBuf;
use std::time::{Instant, SystemTime};

use fv_core::fs::Dir;
use fv_evidence::manifest::{Attempt, Manifest};
use fv_evidence::writer::{ImageWriter, WriterError, WriterOptions};
use fv_formats::iomem::RamRange;

use crate::host::{self, ContextJob, imds};
use crate::output;
use crate::progress::Progress;
use crate::source::Opened;
use crate::stream::{Copied, Layout, Stop};

/// What a finished run produced.
#[derive(Debug)]
pub struct Outcome {
    /// The documented exit code (0 or a partial code).
    pub exit: u8,
    /// The manifest written.
    pub manifest: Manifest,
    /// The capture directory.
    pub dir: PathBuf,
    /// SHA-256 (hex) of the `manifest.json` written: with the image and LiME
    /// digests, the anchor an analyst checks later copies against
    /// (`capture verify --expect-manifest-sha256`).
    pub manifest_sha256: String,
}

/// Phase 1's result: what was checked before anything was touched.
pub(super) struct Preflight {
    pub(super) start_wall: SystemTime,
    pub(super) t0: Instant,
    pub(super) opts: WriterOptions,
    pub(super) uname: host::Uname,
    /// The output root, checked to be on the forensics volume.
    pub(super) root: output::Root,
    /// The per-root lock, held until the run ends.
    pub(super) _lock: nix::fcntl::Flock<std::fs::File>,
    pub(super) warnings: Vec<String>,
}

/// Phase 2's result: the open source and what is known about it.
pub(super) struct SourceState {
    pub(super) opened: Opened,
    pub(super) attempts: Vec<Attempt>,
    pub(super) imds: Option<imds::Identity>,
    pub(super) imds_status: String,
    /// Size of the LiME stream, as well as it can be known before the copy.
    pub(super) estimate: Option<u64>,
    /// A LiME stream from this host: its System RAM, which every record must
    /// lie in and which says what a stopped stream still had to send.
    pub(super) host_ram: Option<Vec<RamRange>>,
    /// What the manifest must say about the source's trustworthiness.
    pub(super) warnings: Vec<String>,
    /// Set when the memory is not this host's (a LiME file, or a stream
    /// with `--foreign-lime`): why. Nothing of this host (names, kernel,
    /// boot ID, IMDS identity, `context/`) is then recorded as the source's.
    pub(super) foreign: Option<String>,
}

/// Phase 3's result: where the image goes.
pub(super) struct OutputState {
    /// The capture directory and its name in the root.
    pub(super) cdir: Dir,
    pub(super) cname: String,
    pub(super) image_path: PathBuf,
    pub(super) writer: ImageWriter,
    pub(super) context: ContextJob,
    /// Source kind, location and detail, as the manifest will say them.
    pub(super) kind: &'static str,
    pub(super) location: String,
    pub(super) detail: Option<String>,
    pub(super) progress: Progress,
    /// Warnings about free space.
    pub(super) warnings: Vec<String>,
}

/// Phase 4's result: the stream's layout, what the copy recorded, and why
/// it stopped early, if it did.
pub(super) struct Acquired {
    pub(super) layout: Layout,
    pub(super) copied: Copied,
    pub(super) result: Result<(), Stop<WriterError>>,
}
