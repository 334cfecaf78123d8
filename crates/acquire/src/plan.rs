//! What one capture is to do, typed: made once from the command line
//! ([`crate::cli::CaptureArgs::plan`]) and handed out in parts, so no phase
//! of [`crate::run`] reads a flag. As ripgrep's high-level args
//! (`crates/core/flags/hiargs.rs`): the parser stops at the top.

use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::time::Duration;

use fv_evidence::manifest::Case;

use crate::roots::Roots;
use crate::source::spec::SourceSpec;

/// One capture's plan.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Where the memory comes from (phase 2, and the copy's stall limit).
    pub source: SourcePlan,
    /// Where the image goes (phases 1 and 3).
    pub output: OutputPlan,
    /// How the image is compressed (phase 1 checks it).
    pub writer: WriterPlan,
    /// What of the host is read, and where from.
    pub host: HostPlan,
    /// Case bookkeeping recorded in the manifest as given.
    pub case: Case,
    /// No progress output (errors and the final line only).
    pub quiet: bool,
}

/// The source asked for and how to treat it.
#[derive(Debug, Clone)]
pub struct SourcePlan {
    /// `--source`.
    pub spec: SourceSpec,
    /// `--foreign-lime`: a LiME stream made on another host.
    pub foreign_lime: bool,
    /// `--trust-lime-peer`: accept a `lime-tcp` peer a process holds.
    pub trust_lime_peer: bool,
    /// How long to keep retrying until a LiME module listens.
    pub connect_timeout: Duration,
    /// How long a LiME stream may send nothing before it is stalled (at
    /// least a second).
    pub stall_timeout: Duration,
    /// `--page-offset`: kcore's direct-map base on kernels before 4.11.
    pub page_offset: Option<u64>,
}

/// The output root and what it may be.
#[derive(Debug, Clone)]
pub struct OutputPlan {
    /// `--output`; `None`: the `captures` folder of the forensics volume
    /// this binary runs from.
    pub root: Option<PathBuf>,
    /// `--allow-any-output`: the root need not be on a forensics volume.
    pub allow_any: bool,
    /// `--volume-id`: the root must be on that EBS volume.
    pub volume_id: Option<fv_ebs::VolumeId>,
    /// `--allow-partial`: start even when free space is clearly too small.
    pub allow_partial: bool,
}

/// The image writer's settings as asked (checked in phase 1).
#[derive(Debug, Clone, Copy, Default)]
pub struct WriterPlan {
    /// `--level`.
    pub level: Option<i32>,
    /// `--threads`.
    pub threads: Option<NonZeroUsize>,
    /// Uncompressed bytes per zstd frame (tests only).
    pub frame_size: Option<u32>,
}

/// What of the host is read, and where from.
#[derive(Debug, Clone)]
pub struct HostPlan {
    /// Where `/proc`, `/sys` and `/dev` are.
    pub roots: Roots,
    /// IMDS's address; `None` with `--no-imds`.
    pub imds: Option<String>,
}
