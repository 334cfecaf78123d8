//! The crate's top-level error: every module's error, with the documented
//! exit code each maps to ([`Error::exit_code`], see [`crate::exit`]).

use std::io;
use std::path::PathBuf;

use fv_evidence::manifest::ManifestError;
use fv_evidence::writer::WriterError;
use fv_formats::lime::LimeError;

use crate::exit;
use crate::output::OutputError;
use crate::source::lime::LimeSourceError;
use crate::source::physical::ProbeError;

/// Why a capture did not produce an image.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Not root.
    #[error(
        "capture must run as root (effective uid is {uid}): reading physical memory, /proc/iomem addresses and loading modules need it. Nothing was written"
    )]
    NotRoot {
        /// The effective uid.
        uid: u32,
    },
    /// Every source failed (`auto`).
    #[error("no memory source could be used:\n{list}\nNext: {next}")]
    NoSource {
        /// One line per source.
        list: String,
        /// What to do.
        next: String,
    },
    /// The requested physical source failed.
    #[error("source {kind}: {source}")]
    Source {
        /// Source kind.
        kind: &'static str,
        /// Why.
        #[source]
        source: ProbeError,
    },
    /// A LiME stream of this host, but its System RAM is unknown, so its
    /// records cannot be checked.
    #[error(
        "source {kind}: a LiME stream from this host is checked against its System RAM, but {source}; for a dump made on another host, give --foreign-lime"
    )]
    HostRam {
        /// Source kind.
        kind: &'static str,
        /// Why.
        #[source]
        source: ProbeError,
    },
    /// The LiME input could not be opened or connected, or the module was
    /// refused.
    #[error(transparent)]
    Lime(#[from] LimeSourceError),
    /// The LiME input is malformed before any record was captured.
    #[error("LiME input {location}: {source}. Nothing was captured")]
    BadLime {
        /// What was read.
        location: String,
        /// Why.
        #[source]
        source: LimeError,
    },
    /// Output root, lock, space.
    #[error(transparent)]
    Output(#[from] OutputError),
    /// The image writer could not start.
    #[error("starting the image writer: {0}")]
    Writer(#[source] WriterError),
    /// The image could not be completed.
    #[error(
        "the image could not be finalized, {dir} holds no valid image and no manifest: {source}"
    )]
    Finalize {
        /// The capture directory.
        dir: PathBuf,
        /// Why.
        #[source]
        source: WriterError,
    },
    /// The manifest could not be serialised.
    #[error("building the manifest: {0}")]
    Manifest(#[from] ManifestError),
    /// Signal handlers could not be installed.
    #[error("installing signal handlers: {0}")]
    Signals(#[source] nix::errno::Errno),
    /// Another I/O failure.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// An option is out of range.
    #[error("{0}")]
    Usage(String),
}

impl Error {
    /// A stable name for the failure, from its exit code (as the helpers'
    /// `error_kind`), for `--json`.
    pub fn kind(&self) -> &'static str {
        match self.exit_code() {
            exit::USAGE => "usage",
            exit::NOT_ROOT => "not_root",
            exit::NO_SOURCE => "no_source",
            exit::BAD_INPUT => "bad_input",
            exit::MODULE_REFUSED => "module_refused",
            exit::OUTPUT_REFUSED => "output_refused",
            exit::BUSY => "busy",
            exit::NO_SPACE => "no_space",
            exit::INTERRUPTED_EARLY => "interrupted_early",
            exit::FINALIZE_FAILED => "finalize_failed",
            _ => "failure",
        }
    }

    /// The documented exit code.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::NotRoot { .. } => exit::NOT_ROOT,
            Self::NoSource { .. } => exit::NO_SOURCE,
            Self::Source { source, .. } if source.is_bad_input() => exit::BAD_INPUT,
            Self::Source { .. } => exit::NO_SOURCE,
            Self::HostRam { source, .. } if source.is_bad_input() => exit::BAD_INPUT,
            Self::HostRam { .. } => exit::NO_SOURCE,
            Self::Lime(e) if e.is_module_refusal() => exit::MODULE_REFUSED,
            Self::Lime(LimeSourceError::Interrupted(_)) => exit::INTERRUPTED_EARLY,
            Self::Lime(_) => exit::NO_SOURCE,
            Self::BadLime { .. } => exit::BAD_INPUT,
            Self::Output(OutputError::Busy { .. }) => exit::BUSY,
            Self::Output(OutputError::NoSpace { .. }) => exit::NO_SPACE,
            Self::Output(_) => exit::OUTPUT_REFUSED,
            Self::Finalize { .. } => exit::FINALIZE_FAILED,
            Self::Usage(_) => exit::USAGE,
            Self::Writer(_) | Self::Manifest(_) | Self::Signals(_) | Self::Io { .. } => {
                exit::FAILURE
            }
        }
    }
}
