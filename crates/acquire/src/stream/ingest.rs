//! The copy from a LiME input ([`ingest_lime`]): its records as they
//! arrive, checked against the host's System RAM when the stream is this
//! host's, split at [`RECORD_MAX`].

use std::io::{self, Read};

use fv_evidence::manifest::PartialCause;
use fv_formats::iomem::RamRange;
use fv_formats::lime::{HEADER_LEN, Header, LimeError, Record, RecordReader};

use super::copied::{Copied, Stop};
use super::layout::{Layout, RECORD_MAX, piece_end};
use super::sink::Sink;
use crate::progress::Progress;
use crate::stop;

/// Most LiME records accepted from an input (a real dump has tens).
pub const MAX_RECORDS: usize = 1 << 16;

/// Reads a LiME stream from `input` and writes it to `sink`, building
/// `layout` as records arrive. The bytes are the input's, except that a
/// record longer than [`RECORD_MAX`] is split at those boundaries (a
/// header more, same addresses, same payload): a stop then zero-fills at
/// most one such piece.
///
/// With `ram` (a stream from this host), every record must lie inside one
/// of the host's System RAM ranges, as the LiME module's do: a record that
/// claims more is refused before anything of it is written, so a forged
/// header cannot make the capture write or promise more than the host's
/// RAM.
///
/// # Errors
/// [`Stop::Signal`], [`Stop::Sink`], or [`Stop::Source`] when the input is
/// malformed, truncated, stalls, or (with `ram`) claims memory the host
/// does not have; the layout then holds every record started, and
/// `copied.pending` what the current input record still claimed.
pub fn ingest_lime<S: Sink, R: Read>(
    input: R,
    ram: Option<&[RamRange]>,
    layout: &mut Layout,
    sink: &mut S,
    progress: &mut Progress,
    copied: &mut Copied,
    mut after_chunk: impl FnMut(u64),
) -> Result<(), Stop<S::Error>> {
    let mut reader = RecordReader::new(input);
    loop {
        if let Some(sig) = stop::requested() {
            return Err(Stop::Signal(sig));
        }
        let Some(rec) = reader.next_record().map_err(source_stop)? else {
            return Ok(());
        };
        check_record(&rec, reader.records(), ram, layout)?;
        copied.next_header = rec.payload_offset.saturating_add(rec.len);
        let (start, end) = (rec.header.start, rec.header.end);
        let mut s = start;
        loop {
            let e = piece_end(s, end);
            copied.pending = (e < end).then(|| (e + 1, end));
            layout.push(s, e);
            // A record copied whole keeps its header as read: reserved bytes
            // may be non-zero (some LiME versions leave them uninitialised)
            // and the stream stays byte-identical (found by the ingest_lime
            // fuzz target). A record split at RECORD_MAX gets new headers.
            if s == start && e == end {
                sink.write(&rec.raw).map_err(Stop::Sink)?;
            } else {
                sink.write(&Header::new(s, e).to_bytes())
                    .map_err(Stop::Sink)?;
            }
            progress.advance(HEADER_LEN as u64);
            copy_payload(&mut reader, e - s + 1, sink, progress, &mut after_chunk)?;
            if e >= end {
                break;
            }
            s = e + 1;
        }
    }
}

/// Small reads: a payload read cut short (truncation, stall) loses what it
/// had read, so keep that little.
const READ: u64 = 256 << 10;

/// Copies `left` payload bytes of the current record straight into the
/// sink's buffer; a failed read adds nothing to the stream.
fn copy_payload<S: Sink, R: Read>(
    reader: &mut RecordReader<R>,
    mut left: u64,
    sink: &mut S,
    progress: &mut Progress,
    after_chunk: &mut impl FnMut(u64),
) -> Result<(), Stop<S::Error>> {
    while left > 0 {
        if let Some(sig) = stop::requested() {
            return Err(Stop::Signal(sig));
        }
        let mut failed = None;
        let want = left.min(READ) as usize;
        let n = sink
            .write_with(want, |buf| {
                reader.read_payload(buf).unwrap_or_else(|e| {
                    failed = Some(e);
                    0
                })
            })
            .map_err(Stop::Sink)?;
        if let Some(e) = failed {
            return Err(source_stop(e));
        }
        left -= n as u64;
        progress.advance(n as u64);
        after_chunk(reader.offset());
    }
    Ok(())
}

/// Refuses a record before anything of it is written: past
/// [`MAX_RECORDS`], outside this host's System RAM (`ram`, a stream of this
/// host), or ending past 2^64 bytes of stream.
fn check_record<E>(
    rec: &Record,
    records: u64,
    ram: Option<&[RamRange]>,
    layout: &Layout,
) -> Result<(), Stop<E>> {
    if records > MAX_RECORDS as u64 {
        return Err(refused(
            rec.header_offset,
            format!("more than {MAX_RECORDS} LiME records: not a LiME module dump"),
        ));
    }
    let (start, end) = (rec.header.start, rec.header.end);
    if let Some(ram) = ram
        && !ram.iter().any(|r| r.start <= start && end <= r.end)
    {
        return Err(refused(
            rec.header_offset,
            format!(
                "LiME record {start:#x}-{end:#x} is not inside this host's System RAM (/proc/iomem): refused, a dump of this host has one record per System RAM range (--foreign-lime accepts a dump made on another host)"
            ),
        ));
    }
    // A record whose end in the stream does not fit a u64 (a header
    // claiming memory up to 2^64-1) cannot be laid out: the stream
    // offsets, the zero-fill and the manifest would all wrap (found by
    // the ingest_lime fuzz target). Each RECORD_MAX piece adds a header.
    let fits = layout
        .len()
        .checked_add(rec.len)
        .and_then(|o| o.checked_add((rec.len / RECORD_MAX + 2) * HEADER_LEN as u64));
    if fits.is_none() {
        return Err(refused(
            rec.header_offset,
            format!(
                "LiME record {start:#x}-{end:#x} would end past 2^64 bytes of stream: not a memory dump"
            ),
        ));
    }
    Ok(())
}

/// A failed LiME input as a stop: a signal if one came (the read it
/// interrupted failed because of it), else the input's failure with its
/// cause for the manifest (truncated, stalled, or malformed).
fn source_stop<E>(error: LimeError) -> Stop<E> {
    if let Some(sig) = stop::requested() {
        return Stop::Signal(sig);
    }
    let cause = match &error {
        LimeError::Truncated { .. } => PartialCause::SourceTruncated,
        LimeError::Io { source, .. }
            if matches!(
                source.kind(),
                io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
            ) =>
        {
            PartialCause::SourceStalled
        }
        LimeError::Io { source, .. }
            if matches!(
                source.kind(),
                io::ErrorKind::UnexpectedEof
                    | io::ErrorKind::ConnectionReset
                    | io::ErrorKind::ConnectionAborted
            ) =>
        {
            PartialCause::SourceTruncated
        }
        _ => PartialCause::SourceError,
    };
    Stop::Source { cause, error }
}

/// A record refused at stream offset `offset`, for the reason `text`.
fn refused<E>(offset: u64, text: String) -> Stop<E> {
    Stop::Source {
        cause: PartialCause::SourceError,
        error: LimeError::Io {
            offset,
            source: io::Error::other(text),
        },
    }
}
