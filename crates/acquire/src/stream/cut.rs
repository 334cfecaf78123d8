//! What turns a stopped run into a valid stream: [`cut`] ends the layout at
//! the record the writer resumed in, [`fill_zeros`] completes that record
//! with zeros, and the rest is listed ([`not_captured`], [`Cut::omitted`]).

use fv_evidence::manifest::{Range, Span};
use fv_formats::lime::{HEADER_LEN, Header};

use super::layout::Layout;
use super::sink::Sink;

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
