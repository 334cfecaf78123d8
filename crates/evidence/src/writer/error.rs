//! Why writing the image failed: [`WriterError`].

use std::io;
use std::path::{Path, PathBuf};

use fv_core::fs::FsError;

use super::entries::EntriesError;
use super::pipeline::WriteFailure;
use crate::seektable::TableWriteError;

/// Why writing the image failed.
#[derive(Debug, thiserror::Error)]
pub enum WriterError {
    /// An option is out of range.
    #[error("image writer: {what} {value} is out of range ({range})")]
    Option {
        /// Which option.
        what: &'static str,
        /// The value given.
        value: i64,
        /// What is accepted.
        range: String,
    },
    /// The output's directory could not be opened (for the spill file).
    #[error("{path}: opening the image's directory: {source}")]
    Dir {
        /// The output path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: FsError,
    },
    /// Starting a thread failed.
    #[error("starting image writer thread: {0}")]
    Spawn(#[source] io::Error),
    /// zstd refused the level or failed to compress.
    #[error("{path}: zstd compression (level {level}) of frame {frame}: {source}")]
    Compress {
        /// The output path.
        path: PathBuf,
        /// The level.
        level: i32,
        /// Frame number.
        frame: u64,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// Writing a frame failed (`ENOSPC`, `EIO`, ...). Recoverable with
    /// [`ImageWriter::recover`].
    #[error("{path}: writing frame {frame}: {source}")]
    Write {
        /// The output path.
        path: PathBuf,
        /// Frame number.
        frame: u64,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// Written data failed to reach the disk: not recoverable.
    #[error("{path}: writeback failed at byte {offset}: {source}")]
    Writeback {
        /// The output path.
        path: PathBuf,
        /// Start of the range that failed.
        offset: u64,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The seek-table entry store failed.
    #[error("{path}: {source}")]
    Entries {
        /// The output path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: EntriesError,
    },
    /// Truncating, syncing or finishing the file failed.
    #[error("{path}: {op}: {source}")]
    Io {
        /// The output path.
        path: PathBuf,
        /// What was being done.
        op: &'static str,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// Writing the seek table failed.
    #[error("{path}: writing the seek table: {source}")]
    Table {
        /// The output path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: TableWriteError,
    },
    /// An earlier error was reported and [`ImageWriter::recover`] has not
    /// been called since.
    #[error("{path}: image writer stopped after an earlier error; recover() first")]
    NotRecovered {
        /// The output path.
        path: PathBuf,
    },
    /// A pipeline thread ended unexpectedly (a bug).
    #[error("{path}: image writer pipeline stopped unexpectedly ({what})")]
    Pipeline {
        /// The output path.
        path: PathBuf,
        /// Which part.
        what: &'static str,
    },
}

impl WriterError {
    /// The OS error number behind this error, if any (`ENOSPC` is the one a
    /// caller recovers from).
    pub fn raw_os_error(&self) -> Option<i32> {
        match self {
            Self::Dir { source, .. } => source.raw_os_error(),
            Self::Spawn(e)
            | Self::Compress { source: e, .. }
            | Self::Write { source: e, .. }
            | Self::Writeback { source: e, .. }
            | Self::Io { source: e, .. } => e.raw_os_error(),
            Self::Entries { source, .. } => source.raw_os_error(),
            Self::Table {
                source: TableWriteError::Io(e),
                ..
            } => e.raw_os_error(),
            Self::Option { .. }
            | Self::Table { .. }
            | Self::NotRecovered { .. }
            | Self::Pipeline { .. } => None,
        }
    }

    /// Whether the output file system is full.
    pub fn is_no_space(&self) -> bool {
        matches!(self.raw_os_error(), Some(libc::ENOSPC | libc::EDQUOT))
    }

    pub(super) fn from_failure(path: &Path, level: i32, f: WriteFailure) -> Self {
        let path = path.to_path_buf();
        match f {
            WriteFailure::Write { frame, source } => Self::Write {
                path,
                frame,
                source,
            },
            WriteFailure::Compress { frame, source } => Self::Compress {
                path,
                level,
                frame,
                source,
            },
            WriteFailure::Entries(source) => Self::Entries { path, source },
            WriteFailure::Writeback { offset, source } => Self::Writeback {
                path,
                offset,
                source,
            },
            WriteFailure::Recover { op, source } => Self::Io { path, op, source },
        }
    }
}
