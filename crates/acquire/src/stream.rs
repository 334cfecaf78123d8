//! The LiME stream being produced: its [`Layout`] (one record per RAM
//! range, or per [`RECORD_MAX`] of it), the copy loops from a physical
//! source ([`copy_physical`]) or a LiME input ([`ingest_lime`]) into a
//! [`Sink`], and what turns a stopped run into a valid stream ([`cut`],
//! [`fill_zeros`]): the current record is completed with zeros, later
//! records are left out and listed, so a stop costs at most one record of
//! zero-fill whatever the RAM size.
//!
//! Kept apart from the image writer so the source side is tested against a
//! plain `Vec<u8>` sink: the bytes must equal what the LiME module writes.

use std::io::{self, Read};

use fv_evidence::manifest::{PartialCause, Range, Span};
use fv_formats::iomem::RamRange;
use fv_formats::lime::{HEADER_LEN, Header, LimeError, RecordReader};

use crate::progress::Progress;
use crate::stop;

/// Most bytes read from a physical source per call, and the alignment of
/// the reads in physical memory: large reads keep `/proc/kcore` and
/// `/dev/*` fast. The reads go straight into the sink's buffer, which may
/// offer less (the image writer: the rest of a 1 MiB frame).
pub const CHUNK: usize = 4 << 20;
/// Granularity of the page-by-page retry after a failed large read.
pub const PAGE: u64 = 4096;
/// Most LiME records accepted from an input (a real dump has tens).
pub const MAX_RECORDS: usize = 1 << 16;
/// Largest LiME record written: RAM ranges (and the records of a LiME
/// input) are split at every `RECORD_MAX` boundary of physical memory. A
/// stop zero-fills the rest of the current record only, so this bounds
/// the time a stop takes (about a second at the writer's zero rate) and
/// what a lying LiME header can make us write.
pub const RECORD_MAX: u64 = 1 << 30;
/// Most `unreadable` spans listed one by one; past it, each range's further
/// failures are summarised in one span (see [`Copied`]).
pub const MAX_UNREADABLE: usize = 4096;

/// Where the LiME stream goes.
pub trait Sink {
    /// The error type (the image writer's, or `io::Error` for tests).
    type Error: std::error::Error + Send + Sync + 'static;
    /// Appends stream bytes.
    ///
    /// # Errors
    /// The sink's own; the copy loops stop and hand it back.
    fn write(&mut self, bytes: &[u8]) -> Result<(), Self::Error>;
    /// Appends what `fill` writes into room the sink gives it (at most
    /// `max` bytes, maybe less, never none): the source reads straight into
    /// the sink's buffer, without a copy. `fill` returns how many bytes it
    /// wrote; so does this.
    ///
    /// # Errors
    /// As [`Sink::write`].
    fn write_with(
        &mut self,
        max: usize,
        fill: impl FnOnce(&mut [u8]) -> usize,
    ) -> Result<usize, Self::Error>;
    /// Stream bytes accepted so far.
    fn offset(&self) -> u64;
}

impl Sink for Vec<u8> {
    type Error = io::Error;
    fn write(&mut self, bytes: &[u8]) -> Result<(), io::Error> {
        self.extend_from_slice(bytes);
        Ok(())
    }
    fn write_with(
        &mut self,
        max: usize,
        fill: impl FnOnce(&mut [u8]) -> usize,
    ) -> Result<usize, io::Error> {
        let at = self.len();
        // Tests hand out odd-sized room, as the image writer does at the
        // end of each frame.
        self.resize(at + max.min(100_003), 0);
        let n = self.get_mut(at..).map_or(0, fill);
        self.truncate(at + n);
        Ok(n)
    }
    fn offset(&self) -> u64 {
        self.len() as u64
    }
}

/// Reads physical memory at an address.
pub trait PhysRead {
    /// Fills `buf` with the bytes at physical `phys`.
    ///
    /// # Errors
    /// Why the span cannot be read (the copy loop retries page by page and
    /// records what still fails).
    fn read_phys(&mut self, phys: u64, buf: &mut [u8]) -> io::Result<()>;
    /// Releases read input from the page cache, where that applies.
    fn drop_cache(&mut self) {}
}

/// The records of the stream, with their offsets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Layout {
    /// Ranges in stream order.
    pub ranges: Vec<Range>,
}

impl Layout {
    /// The layout of the given RAM ranges: one record each, split at every
    /// [`RECORD_MAX`] boundary.
    pub fn of_ram(ram: &[RamRange]) -> Self {
        let mut l = Self::default();
        for r in ram {
            let mut s = r.start;
            loop {
                let e = piece_end(s, r.end);
                l.push(s, e);
                if e >= r.end {
                    break;
                }
                s = e + 1;
            }
        }
        l
    }

    /// Appends a record for `[start, end]`; returns it.
    pub fn push(&mut self, start: u64, end: u64) -> Range {
        let lime_offset = self.len();
        let r = Range {
            start,
            end,
            length: (end - start).saturating_add(1),
            lime_offset,
        };
        self.ranges.push(r);
        r
    }

    /// Total stream length.
    pub fn len(&self) -> u64 {
        self.ranges
            .last()
            .map_or(0, |r| r.lime_offset + HEADER_LEN as u64 + r.length)
    }

    /// Whether no record is there.
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// Payload bytes (RAM) covered.
    pub fn ram_bytes(&self) -> u64 {
        self.ranges.iter().map(|r| r.length).sum()
    }
}

/// The end of the record that starts at `start` in a range ending at
/// `end`: the last address before the next [`RECORD_MAX`] boundary, or
/// `end`.
pub fn piece_end(start: u64, end: u64) -> u64 {
    (start | (RECORD_MAX - 1)).min(end)
}

/// Why a copy stopped before the end.
#[derive(Debug)]
pub enum Stop<E> {
    /// SIGINT, SIGTERM or SIGHUP (the number).
    Signal(i32),
    /// The sink failed (full disk, I/O error).
    Sink(E),
    /// The source failed after the layout was known.
    Source {
        /// Machine-readable cause.
        cause: PartialCause,
        /// The error.
        error: LimeError,
    },
}

/// What the copy produced besides the stream.
#[derive(Debug, Default)]
pub struct Copied {
    /// Spans that read as errors and were written as zeros. At most
    /// [`MAX_UNREADABLE`] listed one by one, then one summary span per range
    /// (its `error` says how many failures it stands for and that it holds
    /// readable pages too): the manifest stays small whatever fails.
    pub unreadable: Vec<Span>,
    /// Summary spans: index in `unreadable`, failed spans, failed bytes.
    summaries: Vec<(usize, u64, u64)>,
    /// Start of the range being copied (a summary never crosses a range).
    range_start: u64,
    /// LiME input: the part of the current input record not yet in the
    /// layout (records are split at [`RECORD_MAX`] as the payload arrives).
    pub pending: Option<(u64, u64)>,
    /// LiME input: where the header after the last record begun would be.
    pub next_header: u64,
}

impl Copied {
    fn unreadable(&mut self, start: u64, len: u64, error: &io::Error) {
        let text = describe_io(error);
        let range_start = self.range_start;
        let count = self.unreadable.len();
        if let Some(&mut (i, ref mut n, ref mut bytes)) = self.summaries.last_mut()
            && i + 1 == count
            && let Some(sum) = self.unreadable.get_mut(i)
            && sum.start >= range_start
        {
            sum.length = start + len - sum.start;
            *n += 1;
            *bytes += len;
            return;
        }
        if let Some(last) = self.unreadable.last_mut()
            && last.start + last.length == start
            && last.error == text
        {
            last.length += len;
            return;
        }
        if self.unreadable.len() >= MAX_UNREADABLE {
            self.summaries.push((self.unreadable.len(), 1, len));
        }
        self.unreadable.push(Span {
            start,
            length: len,
            error: text,
        });
    }

    /// Writes the summary spans' text (call once the copy is over).
    pub fn close_summaries(&mut self) {
        for (i, n, bytes) in self.summaries.drain(..) {
            if let Some(s) = self.unreadable.get_mut(i) {
                s.error = format!(
                    "{n} unreadable span(s), {bytes} bytes in all, between these addresses (more than {MAX_UNREADABLE} spans: not listed one by one; this span also holds readable pages); the first: {}",
                    s.error
                );
            }
        }
    }
}

/// `EIO (Input/output error)`-style text for the manifest.
pub fn describe_io(e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(n) => format!("{} ({})", nix::errno::Errno::from_raw(n), e),
        None => e.to_string(),
    }
}

/// Copies every range of `layout` from `src` into `sink` as a LiME stream.
/// A failed read is retried page by page; pages that still fail become
/// zeros and are recorded. Checks for a stop signal between chunks.
///
/// # Errors
/// [`Stop::Signal`] or [`Stop::Sink`], with what was copied so far in
/// `copied` (the sink's offset says where the stream stopped).
pub fn copy_physical<S: Sink>(
    src: &mut dyn PhysRead,
    layout: &Layout,
    sink: &mut S,
    progress: &mut Progress,
    copied: &mut Copied,
) -> Result<(), Stop<S::Error>> {
    for r in &layout.ranges {
        copied.range_start = r.start;
        sink.write(&Header::new(r.start, r.end).to_bytes())
            .map_err(Stop::Sink)?;
        progress.advance(HEADER_LEN as u64);
        let mut pos = r.start;
        let mut left = r.length;
        while left > 0 {
            if let Some(sig) = stop::requested() {
                return Err(Stop::Signal(sig));
            }
            // Align chunks to CHUNK boundaries of physical memory so the
            // page retry below works on whole pages.
            let to_boundary = CHUNK as u64 - (pos % CHUNK as u64);
            let want = left.min(to_boundary) as usize;
            // Read straight into the sink's buffer (it may offer less).
            let n = sink
                .write_with(want, |chunk| {
                    if src.read_phys(pos, chunk).is_err() {
                        read_by_page(src, pos, chunk, copied);
                    }
                    chunk.len()
                })
                .map_err(Stop::Sink)?;
            progress.advance(n as u64);
            pos += n as u64;
            left -= n as u64;
            src.drop_cache();
        }
    }
    Ok(())
}

fn read_by_page(src: &mut dyn PhysRead, start: u64, chunk: &mut [u8], out: &mut Copied) {
    let mut off = 0usize;
    while off < chunk.len() {
        let phys = start + off as u64;
        let n = ((PAGE - phys % PAGE) as usize).min(chunk.len() - off);
        let page = &mut chunk[off..off + n];
        if let Err(e) = src.read_phys(phys, page) {
            page.fill(0);
            out.unreadable(phys, n as u64, &e);
        }
        off += n;
    }
}

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
    // Small reads: a payload read cut short (truncation, stall) loses
    // what it had read, so keep that little.
    const READ: u64 = 256 << 10;
    let source_err = |error: LimeError| -> Stop<S::Error> {
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
    };
    let refuse = |offset: u64, text: String| -> Stop<S::Error> {
        Stop::Source {
            cause: PartialCause::SourceError,
            error: LimeError::Io {
                offset,
                source: io::Error::other(text),
            },
        }
    };
    loop {
        if let Some(sig) = stop::requested() {
            return Err(Stop::Signal(sig));
        }
        let Some(rec) = reader.next_record().map_err(source_err)? else {
            return Ok(());
        };
        if reader.records() > MAX_RECORDS as u64 {
            return Err(refuse(
                rec.header_offset,
                format!("more than {MAX_RECORDS} LiME records: not a LiME module dump"),
            ));
        }
        let (start, end) = (rec.header.start, rec.header.end);
        if let Some(ram) = ram
            && !ram.iter().any(|r| r.start <= start && end <= r.end)
        {
            return Err(refuse(
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
            return Err(refuse(
                rec.header_offset,
                format!(
                    "LiME record {start:#x}-{end:#x} would end past 2^64 bytes of stream: not a memory dump"
                ),
            ));
        }
        copied.next_header = rec.payload_offset.saturating_add(rec.len);
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
            let mut left = e - s + 1;
            while left > 0 {
                if let Some(sig) = stop::requested() {
                    return Err(Stop::Signal(sig));
                }
                // Read straight into the sink's buffer; a failed read adds
                // nothing to the stream.
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
                    return Err(source_err(e));
                }
                left -= n as u64;
                progress.advance(n as u64);
                after_chunk(reader.offset());
            }
            if e >= end {
                break;
            }
            s = e + 1;
        }
    }
}

/// Where a stopped stream ends, and what it leaves out.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Cut {
    /// The zero-filled rest of the current record's payload.
    pub not_captured: Vec<Span>,
    /// The records after it, left out of the stream.
    pub omitted: Vec<Span>,
}

/// Ends `layout` at the record holding stream offset `from` (where the
/// image writer resumed): that record stays (to be completed with
/// [`fill_zeros`]), every later one is removed and listed in
/// [`Cut::omitted`]. Records carry their addresses, so the shorter stream
/// is still valid LiME with true addresses; the zero-fill is one record at
/// most.
pub fn cut(layout: &mut Layout, from: u64, reason: &str) -> Cut {
    let end_of = |r: &Range| r.lime_offset + HEADER_LEN as u64 + r.length;
    let Some(i) = layout.ranges.iter().position(|r| end_of(r) > from) else {
        return Cut::default();
    };
    // Resumed exactly at a record's header: nothing of it was written; the
    // stream ends before it (but keeps at least one record).
    let keep = match layout.ranges.get(i) {
        Some(r) if i > 0 && from <= r.lime_offset => i,
        _ => i + 1,
    };
    let omitted = layout
        .ranges
        .get(keep..)
        .unwrap_or(&[])
        .iter()
        .map(|r| Span {
            start: r.start,
            length: r.length,
            error: reason.to_string(),
        })
        .collect();
    layout.ranges.truncate(keep);
    Cut {
        not_captured: not_captured(layout, from, reason),
        omitted,
    }
}

/// Why a range of a stream of this host is in `omitted` when the stream
/// went past it without a record (security review S4).
pub const NO_RECORD: &str = "the LiME stream sent no record for this System RAM";

/// The parts of the host's System RAM `ram` that no span of `covered`
/// (ascending `(start, end)` pairs, ends inclusive, as the records of a
/// LiME stream) holds: what a stream of this host did not send. Each gap is
/// `(start, end)`, end inclusive, in ascending order.
pub fn ram_gaps(ram: &[RamRange], covered: &[(u64, u64)]) -> Vec<(u64, u64)> {
    let mut gaps = Vec::new();
    for r in ram {
        let mut cursor = Some(r.start);
        let first = covered.partition_point(|&(_, e)| e < r.start);
        for &(s, e) in covered.get(first..).unwrap_or(&[]) {
            let Some(c) = cursor else { break };
            if s > r.end {
                break;
            }
            if s > c {
                gaps.push((c, s - 1));
            }
            // e < r.end <= u64::MAX, so e + 1 does not wrap.
            cursor = (e < r.end).then(|| c.max(e + 1));
        }
        if let Some(c) = cursor
            && c <= r.end
        {
            gaps.push((c, r.end));
        }
    }
    gaps
}

/// The records of a LiME file from byte `offset` on, read header by header
/// (payloads are skipped, not read), up to [`MAX_RECORDS`].
///
/// # Errors
/// Where the file stops parsing as LiME, and why.
pub fn headers_from(
    file: &std::fs::File,
    mut offset: u64,
    after: Option<u64>,
) -> Result<Vec<(u64, u64)>, (u64, String)> {
    use std::os::unix::fs::FileExt;
    let len = file.metadata().map_err(|e| (offset, e.to_string()))?.len();
    let mut out = Vec::new();
    let mut previous = after;
    while offset < len && out.len() < MAX_RECORDS {
        let mut b = [0u8; HEADER_LEN];
        file.read_exact_at(&mut b, offset)
            .map_err(|e| (offset, e.to_string()))?;
        let h = Header::parse(&b, 0, offset).map_err(|e| (offset, e.to_string()))?;
        if previous.is_some_and(|p| h.start <= p) {
            return Err((offset, "records out of order".into()));
        }
        previous = Some(h.end);
        out.push((h.start, h.end));
        let payload = h.payload_len().unwrap_or(u64::MAX);
        offset = offset
            .saturating_add(HEADER_LEN as u64)
            .saturating_add(payload);
    }
    Ok(out)
}

/// Writes the rest of `layout`'s stream from stream offset `from` to its
/// end: record headers where they fall, zeros for payloads. The result is a
/// complete LiME stream whose missing memory reads as zeros.
///
/// # Errors
/// The sink's error.
pub fn fill_zeros<S: Sink>(sink: &mut S, layout: &Layout, from: u64) -> Result<(), S::Error> {
    let zeros = vec![0u8; 1 << 20];
    let mut pos = from;
    for r in &layout.ranges {
        let header_end = r.lime_offset + HEADER_LEN as u64;
        let end = header_end + r.length;
        if end <= pos {
            continue;
        }
        if pos < header_end {
            let h = Header::new(r.start, r.end).to_bytes();
            let skip = (pos - r.lime_offset) as usize;
            sink.write(&h[skip..])?;
            pos = header_end;
        }
        while pos < end {
            let n = (end - pos).min(zeros.len() as u64) as usize;
            sink.write(&zeros[..n])?;
            pos += n as u64;
        }
    }
    Ok(())
}

/// The physical spans whose payload lies at or after stream offset `from`.
pub fn not_captured(layout: &Layout, from: u64, reason: &str) -> Vec<Span> {
    let mut out = Vec::new();
    for r in &layout.ranges {
        let payload = r.lime_offset + HEADER_LEN as u64;
        let end = payload + r.length;
        if end <= from {
            continue;
        }
        let skip = from.saturating_sub(payload);
        out.push(Span {
            start: r.start + skip,
            length: r.length - skip,
            error: reason.to_string(),
        });
    }
    out
}

/// Drops unreadable spans (or their parts) that now lie in the
/// not-captured tail, so no byte is counted twice.
pub fn clip_unreadable(unreadable: &mut Vec<Span>, tail: &[Span]) {
    let mut out = Vec::with_capacity(unreadable.len());
    for s in unreadable.drain(..) {
        let mut start = s.start;
        let mut end = s.start + s.length;
        for t in tail {
            let (ts, te) = (t.start, t.start + t.length);
            if ts <= start && te >= end {
                end = start;
            } else if ts > start && ts < end {
                end = ts;
            } else if te > start && te < end && ts <= start {
                start = te;
            }
        }
        if end > start {
            out.push(Span {
                start,
                length: end - start,
                error: s.error,
            });
        }
    }
    *unreadable = out;
}

#[cfg(test)]
mod tests;
