//! The errors of `verify`, `extract` and `info`, each mapped to an exit code
//! ([`crate::exit`]).

use std::io;
use std::path::{Path, PathBuf};

use fv_evidence::manifest::ManifestError;
use fv_evidence::reader::ReadError;
use fv_formats::lime::LimeError;

use crate::exit;

/// Why a command could not run to the end.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An input could not be opened or read.
    #[error("{path}: {source}")]
    Input {
        /// The input.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// An input inside a capture directory, or one named, refused or not
    /// opened at the file system layer (a symlink, a FIFO, missing).
    #[error(transparent)]
    InputFs(fv_core::fs::FsError),
    /// A capture directory without a manifest but with what a capture
    /// writes: the run was stopped before it finished.
    #[error(
        "{path}: aborted capture: no manifest ({found} present); the capture was stopped before it finished, so its image is at best an unfinished prefix"
    )]
    Aborted {
        /// The directory.
        path: PathBuf,
        /// What was found in it.
        found: String,
    },
    /// A path is neither a capture directory nor a format we read.
    #[error("{path}: {reason}")]
    Unrecognised {
        /// The input.
        path: PathBuf,
        /// What it is (or is not).
        reason: String,
    },
    /// The manifest cannot be parsed.
    #[error("{path}: {source}")]
    Manifest {
        /// The manifest.
        path: PathBuf,
        /// The cause.
        #[source]
        source: ManifestError,
    },
    /// The manifest contradicts itself or names an unsafe path.
    #[error("{path}: {reason}")]
    ManifestInvalid {
        /// The manifest.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The seekable image cannot be read or a frame is bad.
    #[error("{path}: {source}")]
    Image {
        /// The image.
        path: PathBuf,
        /// The cause.
        #[source]
        source: ReadError,
    },
    /// The LiME stream is malformed.
    #[error("{path}: {source}")]
    Lime {
        /// The image or LiME file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: LimeError,
    },
    /// A plain zstd stream cannot be decompressed.
    #[error("{path}: zstd: {source}")]
    Zstd {
        /// The file.
        path: PathBuf,
        /// zstd's error.
        #[source]
        source: io::Error,
    },
    /// Decompressed content disagrees with a recorded digest.
    #[error("{path}: {what}")]
    Mismatch {
        /// The file.
        path: PathBuf,
        /// What disagrees.
        what: String,
    },
    /// Bad usage the argument parser could not catch.
    #[error("{0}")]
    Usage(String),
    /// The output file exists.
    #[error("{path}: already exists (use --force to replace it)")]
    OutputExists {
        /// The output.
        path: PathBuf,
    },
    /// The output would replace or be the evidence.
    #[error("{path}: is the input evidence itself; refusing to write over it, even with --force")]
    OutputIsInput {
        /// The output.
        path: PathBuf,
    },
    /// The output would land in the evidence (a capture directory).
    #[error(
        "{path}: is inside the capture directory {dir}; the evidence directory is never written to (a new file there is an unlisted file to `capture verify`, and a copy of the image beside it doubles what must be kept): give -o with a path outside it, e.g. -o {suggestion}"
    )]
    OutputInEvidence {
        /// The output.
        path: PathBuf,
        /// The capture directory.
        dir: PathBuf,
        /// A path outside it.
        suggestion: PathBuf,
    },
    /// Creating or writing the output failed.
    #[error("{path}: {source}")]
    Output {
        /// The output.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// Creating the output failed at the file system layer.
    #[error(transparent)]
    OutputFs(#[from] fv_core::fs::FsError),
    /// No symbol table can be made from this capture.
    #[error("{path}: no Volatility symbol table can be made: {reason}")]
    NoSymbols {
        /// The capture.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// Making the symbol table failed.
    #[error("{path}: {source}")]
    Symbols {
        /// The capture.
        path: PathBuf,
        /// The cause.
        #[source]
        source: fv_symbols::Error,
    },
    /// Writing the report failed (stdout closed).
    #[error("writing the report: {0}")]
    Report(#[source] io::Error),
}

impl Error {
    /// An [`Error::InputFs`], or [`Error::Input`] for a plain system call
    /// failure (so a missing file reads as it always did).
    pub(crate) fn input_fs(path: &Path, e: fv_core::fs::FsError) -> Self {
        match e {
            fv_core::fs::FsError::Sys { source, .. } => Self::Input {
                path: path.to_path_buf(),
                source,
            },
            other => Self::InputFs(other),
        }
    }

    /// A stable name for the failure, from its exit code, for `--json`
    /// (the helpers' `error_kind`).
    pub fn kind(&self) -> &'static str {
        match self.exit_code() {
            exit::EVIDENCE_BAD => "evidence_bad",
            exit::USAGE => "usage",
            exit::OUTPUT => "output",
            exit::INPUT => "input",
            exit::NO_SYMBOLS => "no_symbols",
            _ => "failure",
        }
    }

    /// The documented exit code for this error ([`crate::exit`]).
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Input { .. } => exit::INPUT,
            Self::InputFs(e) => match e {
                fv_core::fs::FsError::Sys { .. } => exit::INPUT,
                // A symlink, FIFO or device where evidence should be.
                _ => exit::EVIDENCE_BAD,
            },
            Self::Aborted { .. } => exit::EVIDENCE_BAD,
            Self::Unrecognised { .. } | Self::Usage(_) => exit::USAGE,
            Self::Manifest { .. }
            | Self::ManifestInvalid { .. }
            | Self::Lime { .. }
            | Self::Zstd { .. }
            | Self::Mismatch { .. } => exit::EVIDENCE_BAD,
            Self::Image { source, .. } => match source {
                ReadError::Io { .. } => exit::INPUT,
                _ => exit::EVIDENCE_BAD,
            },
            Self::NoSymbols { .. } => exit::NO_SYMBOLS,
            Self::Symbols { source, .. } => match source {
                fv_symbols::Error::Write(_) => exit::OUTPUT,
                _ => exit::NO_SYMBOLS,
            },
            Self::OutputExists { .. }
            | Self::OutputIsInput { .. }
            | Self::OutputInEvidence { .. }
            | Self::Output { .. }
            | Self::OutputFs(_)
            | Self::Report(_) => exit::OUTPUT,
        }
    }
}
