//! The records of the stream being produced ([`Layout`]), split at every
//! [`RECORD_MAX`] boundary of physical memory.

use fv_evidence::manifest::Range;
use fv_formats::iomem::RamRange;
use fv_formats::lime::HEADER_LEN;

/// Largest LiME record written: RAM ranges (and the records of a LiME
/// input) are split at every `RECORD_MAX` boundary of physical memory. A
/// stop zero-fills the rest of the current record only, so this bounds
/// the time a stop takes (about a second at the writer's zero rate) and
/// what a lying LiME header can make us write.
pub const RECORD_MAX: u64 = 1 << 30;

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
