//! A stream that never produced a record is no image at all: the error
//! that says why ([`no_image`]).

use std::path::Path;

use fv_evidence::writer::WriterError;
use fv_formats::lime::LimeError;

use crate::error::Error;
use crate::source::lime::LimeSourceError;
use crate::stop;
use crate::stream::Stop;

/// The error of a run whose stream never produced a record: the LiME
/// input's own error, the signal, or the write failure.
pub(super) fn no_image(stop: &Stop<WriterError>, location: String, image_path: &Path) -> Error {
    match stop {
        Stop::Source { error, .. } => Error::BadLime {
            location,
            source: clone_lime_error(error),
        },
        Stop::Signal(sig) => Error::Lime(LimeSourceError::Interrupted(stop::signal_name(*sig))),
        Stop::Sink(e) => Error::Io {
            what: format!("writing {}", image_path.display()),
            source: std::io::Error::other(e.to_string()),
        },
    }
}

/// LiME errors are not `Clone` (they carry `io::Error`); rebuild the I/O
/// case by kind and message.
fn clone_lime_error(e: &LimeError) -> LimeError {
    match e {
        LimeError::Io { offset, source } => LimeError::Io {
            offset: *offset,
            source: std::io::Error::new(source.kind(), source.to_string()),
        },
        LimeError::BadMagic {
            record,
            offset,
            found,
        } => LimeError::BadMagic {
            record: *record,
            offset: *offset,
            found: *found,
        },
        LimeError::BadVersion {
            record,
            offset,
            found,
        } => LimeError::BadVersion {
            record: *record,
            offset: *offset,
            found: *found,
        },
        LimeError::EndBeforeStart {
            record,
            offset,
            start,
            end,
        } => LimeError::EndBeforeStart {
            record: *record,
            offset: *offset,
            start: *start,
            end: *end,
        },
        LimeError::TooLong {
            record,
            offset,
            start,
            end,
        } => LimeError::TooLong {
            record: *record,
            offset: *offset,
            start: *start,
            end: *end,
        },
        LimeError::TrailingBytes { offset, len } => LimeError::TrailingBytes {
            offset: *offset,
            len: *len,
        },
        LimeError::Empty => LimeError::Empty,
        other => LimeError::Io {
            offset: 0,
            source: std::io::Error::other(other.to_string()),
        },
    }
}
