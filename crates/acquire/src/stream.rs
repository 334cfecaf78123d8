//! The LiME stream being produced: its [`Layout`] (one record per RAM
//! range), the copy loops from a physical source ([`copy_physical`]) or a
//! LiME input ([`ingest_lime`]) into a [`Sink`], and what turns a stopped run
//! into a complete stream ([`fill_zeros`], [`not_captured`]).
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
    /// The layout of the given RAM ranges, one record each.
    pub fn of_ram(ram: &[RamRange]) -> Self {
        let mut l = Self::default();
        for r in ram {
            l.push(r.start, r.end);
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
    /// Spans that read as errors and were written as zeros.
    pub unreadable: Vec<Span>,
}

fn record_unreadable(out: &mut Vec<Span>, start: u64, len: u64, error: &io::Error) {
    let text = describe_io(error);
    if let Some(last) = out.last_mut()
        && last.start + last.length == start
        && last.error == text
    {
        last.length += len;
        return;
    }
    out.push(Span {
        start,
        length: len,
        error: text,
    });
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
                        read_by_page(src, pos, chunk, &mut copied.unreadable);
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

fn read_by_page(src: &mut dyn PhysRead, start: u64, chunk: &mut [u8], out: &mut Vec<Span>) {
    let mut off = 0usize;
    while off < chunk.len() {
        let phys = start + off as u64;
        let n = ((PAGE - phys % PAGE) as usize).min(chunk.len() - off);
        let page = &mut chunk[off..off + n];
        if let Err(e) = src.read_phys(phys, page) {
            page.fill(0);
            record_unreadable(out, phys, n as u64, &e);
        }
        off += n;
    }
}

/// Reads a LiME stream from `input` and writes it to `sink` unchanged,
/// building `layout` as records arrive. Returns the number of records.
///
/// # Errors
/// [`Stop::Signal`], [`Stop::Sink`], or [`Stop::Source`] when the input is
/// malformed, truncated or stalls; the layout then holds every record
/// started, so [`fill_zeros`] can complete the current one.
pub fn ingest_lime<S: Sink, R: Read>(
    input: R,
    layout: &mut Layout,
    sink: &mut S,
    progress: &mut Progress,
    mut after_chunk: impl FnMut(u64),
) -> Result<(), Stop<S::Error>> {
    let mut reader = RecordReader::new(input);
    // Small reads: a payload read cut short (truncation, stall) loses
    // what it had read, so keep that little.
    const READ: usize = 256 << 10;
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
    loop {
        if let Some(sig) = stop::requested() {
            return Err(Stop::Signal(sig));
        }
        let Some(rec) = reader.next_record().map_err(source_err)? else {
            return Ok(());
        };
        if layout.ranges.len() >= MAX_RECORDS {
            return Err(Stop::Source {
                cause: PartialCause::SourceError,
                error: LimeError::Io {
                    offset: rec.header_offset,
                    source: io::Error::other(format!(
                        "more than {MAX_RECORDS} LiME records: not a LiME module dump"
                    )),
                },
            });
        }
        // A record whose end in the stream does not fit a u64 (a header
        // claiming memory up to 2^64-1) cannot be laid out: the stream
        // offsets, the zero-fill and the manifest would all wrap (found by
        // the ingest_lime fuzz target).
        let fits = layout
            .len()
            .checked_add(HEADER_LEN as u64)
            .and_then(|o| o.checked_add(rec.len));
        if fits.is_none() {
            return Err(Stop::Source {
                cause: PartialCause::SourceError,
                error: LimeError::Io {
                    offset: rec.header_offset,
                    source: io::Error::other(format!(
                        "LiME record {:#x}-{:#x} would end past 2^64 bytes of stream: not a memory dump",
                        rec.header.start, rec.header.end
                    )),
                },
            });
        }
        layout.push(rec.header.start, rec.header.end);
        // The header as read: its reserved bytes may be non-zero, and the
        // stream is copied unchanged (found by the ingest_lime fuzz target).
        sink.write(&rec.raw).map_err(Stop::Sink)?;
        progress.advance(HEADER_LEN as u64);
        loop {
            if let Some(sig) = stop::requested() {
                return Err(Stop::Signal(sig));
            }
            if reader.remaining() == 0 {
                break;
            }
            // Read straight into the sink's buffer; a failed read adds
            // nothing to the stream.
            let mut failed = None;
            let n = sink
                .write_with(READ, |buf| {
                    reader.read_payload(buf).unwrap_or_else(|e| {
                        failed = Some(e);
                        0
                    })
                })
                .map_err(Stop::Sink)?;
            if let Some(e) = failed {
                return Err(source_err(e));
            }
            progress.advance(n as u64);
            after_chunk(reader.offset());
        }
    }
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
mod tests {
    use super::*;

    /// Memory whose byte at `p` is a function of `p`; fails where told.
    struct Pattern {
        fail: Vec<(u64, u64)>,
        reads: usize,
    }
    fn byte_at(p: u64) -> u8 {
        (p.wrapping_mul(2_654_435_761) >> 13) as u8
    }
    impl PhysRead for Pattern {
        fn read_phys(&mut self, phys: u64, buf: &mut [u8]) -> io::Result<()> {
            self.reads += 1;
            let end = phys + buf.len() as u64;
            if self.fail.iter().any(|&(s, e)| s < end && e > phys) {
                return Err(io::Error::from_raw_os_error(libc::EIO));
            }
            for (i, b) in buf.iter_mut().enumerate() {
                *b = byte_at(phys + i as u64);
            }
            Ok(())
        }
    }

    fn expected(ram: &[RamRange], zero: &[(u64, u64)]) -> Vec<u8> {
        let mut out = Vec::new();
        for r in ram {
            out.extend_from_slice(&Header::new(r.start, r.end).to_bytes());
            for p in r.start..=r.end {
                let z = zero.iter().any(|&(s, e)| p >= s && p < e);
                out.push(if z { 0 } else { byte_at(p) });
            }
        }
        out
    }

    #[test]
    fn unreadable_pages_are_zero_and_recorded_merged() {
        let ram = vec![
            RamRange {
                start: 0x1000,
                end: 0x9fbff,
            },
            RamRange {
                start: 0x10_0000,
                end: 0x82_ffff,
            },
        ];
        let layout = Layout::of_ram(&ram);
        let mut src = Pattern {
            fail: vec![(0x40_1800, 0x40_3001)],
            reads: 0,
        };
        let mut sink = Vec::new();
        let mut copied = Copied::default();
        copy_physical(
            &mut src,
            &layout,
            &mut sink,
            &mut Progress::silent(),
            &mut copied,
        )
        .unwrap();
        // Pages 0x401000..0x404000 fail (the failing span touches them).
        assert_eq!(sink, expected(&ram, &[(0x40_1000, 0x40_4000)]));
        assert_eq!(copied.unreadable.len(), 1);
        assert_eq!(copied.unreadable[0].start, 0x40_1000);
        assert_eq!(copied.unreadable[0].length, 0x3000);
        assert!(
            copied.unreadable[0].error.starts_with("EIO"),
            "{:?}",
            copied.unreadable
        );
        assert_eq!(sink.len() as u64, layout.len());
    }

    #[test]
    fn fill_and_not_captured_complete_the_stream() {
        let ram = vec![
            RamRange {
                start: 0x1000,
                end: 0x1fff,
            },
            RamRange {
                start: 0x3000,
                end: 0x4fff,
            },
        ];
        let layout = Layout::of_ram(&ram);
        let mut full = Vec::new();
        let mut src = Pattern {
            fail: vec![],
            reads: 0,
        };
        copy_physical(
            &mut src,
            &layout,
            &mut full,
            &mut Progress::silent(),
            &mut Copied::default(),
        )
        .unwrap();
        // Cut inside the first payload, fill, compare.
        for cut in [
            0u64,
            10,
            32,
            100,
            0x1020,
            0x1030,
            0x1040,
            0x2000,
            full.len() as u64,
        ] {
            let mut s = full[..cut as usize].to_vec();
            fill_zeros(&mut s, &layout, cut).unwrap();
            assert_eq!(s.len(), full.len(), "cut {cut}");
            let mut r = RecordReader::new(&s[..]);
            let mut n = 0;
            while r.next_record().unwrap().is_some() {
                n += 1;
            }
            assert_eq!(n, 2);
            let nc = not_captured(&layout, cut, "x");
            let zeros: u64 = nc.iter().map(|s| s.length).sum();
            let expect_zero: u64 = layout
                .ranges
                .iter()
                .map(|r| {
                    let p = r.lime_offset + 32;
                    (p + r.length).saturating_sub(cut.max(p))
                })
                .sum();
            assert_eq!(zeros, expect_zero, "cut {cut}: {nc:?}");
        }
        let nc = not_captured(&layout, 0x30, "x");
        assert_eq!((nc[0].start, nc[0].length), (0x1010, 0xff0));
        assert_eq!(nc[1].start, 0x3000);
    }

    #[test]
    fn clip_removes_tail_overlap() {
        let mut u = vec![
            Span {
                start: 0x1000,
                length: 0x1000,
                error: "e".into(),
            },
            Span {
                start: 0x5000,
                length: 0x1000,
                error: "e".into(),
            },
        ];
        clip_unreadable(
            &mut u,
            &[Span {
                start: 0x1800,
                length: 0x8000,
                error: "cut".into(),
            }],
        );
        assert_eq!(u.len(), 1);
        assert_eq!((u[0].start, u[0].length), (0x1000, 0x800));
    }

    #[test]
    fn lime_ingest_keeps_reserved_header_bytes() {
        // fuzz/artifacts/ingest_lime/crash-1ff71ef4…: a record [0, 0] whose
        // reserved bytes end in 'M', then its one payload byte. The copy was
        // re-encoded with zero reserved bytes, so the stored stream (and its
        // digest) differed from the input.
        let mut dump = Header::new(0, 0).to_bytes().to_vec();
        dump[31] = b'M';
        dump.push(b'i');
        let mut layout = Layout::default();
        let mut sink = Vec::new();
        ingest_lime(
            &dump[..],
            &mut layout,
            &mut sink,
            &mut Progress::silent(),
            |_| {},
        )
        .unwrap();
        assert_eq!(sink, dump);
    }

    #[test]
    fn lime_ingest_refuses_a_record_whose_stream_end_overflows() {
        // fuzz/artifacts/ingest_lime/crash-3d1dd8b3…: one header
        // 0x10-0xffffffffffffffff and no payload. Its stream end,
        // 32 + 2^64 - 16, overflowed Layout::len and fill_zeros.
        let dump = Header::new(0x10, u64::MAX).to_bytes();
        let mut layout = Layout::default();
        let mut sink = Vec::new();
        let err = ingest_lime(
            &dump[..],
            &mut layout,
            &mut sink,
            &mut Progress::silent(),
            |_| {},
        )
        .unwrap_err();
        assert!(
            matches!(
                err,
                Stop::Source {
                    cause: PartialCause::SourceError,
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(layout.is_empty());
        assert_eq!(layout.len(), 0);
        fill_zeros(&mut sink, &layout, 0).unwrap();
        assert!(sink.is_empty());
    }

    #[test]
    fn lime_ingest_round_trip_and_truncation() {
        let ram = vec![
            RamRange {
                start: 0x1000,
                end: 0x2fff,
            },
            RamRange {
                start: 0x10_0000,
                end: 0x10_0fff,
            },
        ];
        let dump = expected(&ram, &[]);
        let mut layout = Layout::default();
        let mut sink = Vec::new();
        ingest_lime(
            &dump[..],
            &mut layout,
            &mut sink,
            &mut Progress::silent(),
            |_| {},
        )
        .unwrap();
        assert_eq!(sink, dump);
        assert_eq!(layout, Layout::of_ram(&ram));

        let cut = &dump[..100];
        let mut layout = Layout::default();
        let mut sink = Vec::new();
        let err =
            ingest_lime(cut, &mut layout, &mut sink, &mut Progress::silent(), |_| {}).unwrap_err();
        assert!(matches!(
            err,
            Stop::Source {
                cause: PartialCause::SourceTruncated,
                ..
            }
        ));
        assert_eq!(layout.ranges.len(), 1);
        // The reader hands back no bytes of a payload read that ended
        // early: the stream resumes where the sink is.
        let at = sink.offset();
        assert!((32..=100).contains(&at));
        fill_zeros(&mut sink, &layout, at).unwrap();
        assert_eq!(sink.len() as u64, layout.len());
        assert_eq!(&sink[..at as usize], &cut[..at as usize]);
        assert!(sink[at as usize..].iter().all(|&b| b == 0));
    }
}
