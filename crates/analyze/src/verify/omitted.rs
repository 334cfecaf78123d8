//! The manifest's account of what a stopped capture left out (`omitted`,
//! `remainder_unknown`, `not_captured`), checked against the manifest's own
//! ranges and against the records really in the image.
//!
//! A stop zero-fills the rest of the record it stopped in (`not_captured`,
//! so that record, the last in the stream, is complete) and lists every
//! later range of the source without writing it (`omitted`); a stream of the
//! capturing host that went past a System RAM range without a record, or
//! ended before the last one, has those listed too (security review S4). So
//! in a manifest that lists omitted spans: they lie outside every captured
//! range, do not overlap one another, and every `not_captured` span lies in
//! the last range. A manifest that says memory was left out while the
//! image holds it, or that calls a capture with omitted memory complete,
//! misstates the evidence.

use fv_evidence::manifest::{Manifest, Span, Status};

use super::report::{Findings, LIST_MAX};
use crate::scan::Scan;

/// Adds findings of one check, the first [`LIST_MAX`] in full and the rest
/// counted (a hostile manifest may list millions of spans).
struct Bounded<'a> {
    f: &'a mut Findings,
    listed: usize,
    more: usize,
}

impl<'a> Bounded<'a> {
    fn new(f: &'a mut Findings) -> Self {
        Self {
            f,
            listed: 0,
            more: 0,
        }
    }

    fn add(&mut self, msg: String) {
        if self.listed < LIST_MAX {
            self.f.add("omitted", msg);
            self.listed += 1;
        } else {
            self.more += 1;
        }
    }

    fn finish(self) {
        if self.more > 0 {
            self.f.add(
                "omitted",
                format!("... and {} more findings about omitted spans", self.more),
            );
        }
    }
}

/// The last address of `s`, if it is a real span.
fn last(s: &Span) -> Option<u64> {
    s.length.checked_sub(1).and_then(|l| s.start.checked_add(l))
}

/// Sorted `(start, end)` pairs with, for each, the largest end among it and
/// those before it: `overlapping` answers "does any pair meet [a, b]" in
/// O(log n).
struct Intervals {
    by_start: Vec<(u64, u64)>,
    reach: Vec<u64>,
}

impl Intervals {
    fn new(mut by_start: Vec<(u64, u64)>) -> Self {
        by_start.sort_unstable();
        let mut furthest = 0u64;
        let reach = by_start
            .iter()
            .map(|&(_, end)| {
                furthest = furthest.max(end);
                furthest
            })
            .collect();
        Self { by_start, reach }
    }

    /// Whether some interval meets `[a, b]`: among those starting at or
    /// before `b`, the furthest end reaches `a`.
    fn overlapping(&self, a: u64, b: u64) -> bool {
        let n = self.by_start.partition_point(|&(s, _)| s <= b);
        n > 0 && self.reach.get(n - 1).is_some_and(|&e| e >= a)
    }
}

/// Total bytes of `spans`, saturating.
pub(super) fn bytes(spans: &[Span]) -> u64 {
    spans.iter().fold(0u64, |a, s| a.saturating_add(s.length))
}

/// The manifest's omitted spans against its own status and ranges.
pub(super) fn manifest_findings(m: &Manifest, f: &mut Findings) {
    let mut out = Bounded::new(f);
    if m.status == Status::Complete {
        if !m.omitted.is_empty() {
            out.add(format!(
                "status is complete but {} omitted span(s) ({} bytes) are listed: memory left out of the image makes the capture partial",
                m.omitted.len(),
                bytes(&m.omitted)
            ));
        }
        if let Some(why) = &m.remainder_unknown {
            out.add(format!(
                "status is complete but remainder_unknown is set ({why:?}): a capture that does not know what it missed is partial"
            ));
        }
    }
    let captured = Intervals::new(m.ranges.iter().map(|r| (r.start, r.end)).collect());
    let last_range = m.ranges.last();
    let mut spans = Vec::with_capacity(m.omitted.len());
    for s in &m.omitted {
        let Some(end) = last(s) else {
            out.add(format!(
                "omitted span at {:#x} ({} bytes) is empty or runs past the end of the address space",
                s.start, s.length
            ));
            continue;
        };
        if captured.overlapping(s.start, end) {
            out.add(format!(
                "omitted span {:#x}-{end:#x} overlaps a captured range: the manifest says this memory is both in the image and left out",
                s.start
            ));
        }
        spans.push((s.start, end));
    }
    spans.sort_unstable();
    for w in spans.windows(2) {
        if let [a, b] = w
            && b.0 <= a.1
        {
            out.add(format!(
                "omitted spans {:#x}-{:#x} and {:#x}-{:#x} overlap: their bytes are counted twice",
                a.0, a.1, b.0, b.1
            ));
        }
    }
    // With omitted spans the capture is of a build that stops by records:
    // only the record it stopped in, the last one, was zero-filled.
    if !m.omitted.is_empty()
        && let Some(r) = last_range
    {
        for s in &m.not_captured {
            if s.start < r.start {
                out.add(format!(
                    "not_captured span at {:#x} ({} bytes) is not in the last record {:#x}-{:#x}, yet later ranges are listed as omitted: only the record a stop comes in is zero-filled",
                    s.start, s.length, r.start, r.end
                ));
            }
        }
    }
    out.finish();
}

/// The manifest's omitted spans against the records the image really holds:
/// memory in the image was captured, whatever the manifest says.
pub(super) fn against_image(m: &Manifest, scan: &Scan, f: &mut Findings) {
    if m.omitted.is_empty() {
        return;
    }
    let records = Intervals::new(
        scan.records
            .iter()
            .map(|r| (r.header.start, r.header.end))
            .collect(),
    );
    let mut out = Bounded::new(f);
    for s in &m.omitted {
        let Some(end) = last(s) else { continue };
        if records.overlapping(s.start, end) {
            let rec = scan
                .records
                .iter()
                .find(|r| r.header.start <= end && r.header.end >= s.start);
            let what = rec.map_or_else(String::new, |r| {
                format!(
                    " (record {} {:#x}-{:#x})",
                    r.index, r.header.start, r.header.end
                )
            });
            out.add(format!(
                "omitted span {:#x}-{end:#x} is in the image{what}: that memory was captured, the manifest says it was left out",
                s.start
            ));
        }
    }
    out.finish();
}

/// What a person should know about a partial capture's coverage (a note,
/// not a failure).
pub(super) fn coverage_note(m: &Manifest) -> Option<String> {
    if m.status != Status::Partial {
        return None;
    }
    let mut note = format!(
        "partial capture: {} byte(s) zero-filled in the last record (not_captured), {} range(s) of {} byte(s) left out of the image (omitted)",
        bytes(&m.not_captured),
        m.omitted.len(),
        bytes(&m.omitted)
    );
    if let Some(why) = &m.remainder_unknown {
        note.push_str(&format!(
            "; what the source still held is unknown ({why}), so more may be missing than omitted lists"
        ));
    }
    Some(note)
}
