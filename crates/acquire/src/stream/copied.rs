//! What a copy produced besides the stream ([`Copied`]: unreadable spans,
//! the input's pending record) and why it stopped early ([`Stop`]).

use std::io;

use fv_evidence::manifest::{PartialCause, Span};
use fv_formats::lime::LimeError;

/// Most `unreadable` spans listed one by one; past it, each range's further
/// failures are summarised in one span (see [`Copied`]).
pub const MAX_UNREADABLE: usize = 4096;

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
    pub(super) range_start: u64,
    /// LiME input: the part of the current input record not yet in the
    /// layout (records are split at [`RECORD_MAX`] as the payload arrives).
    pub pending: Option<(u64, u64)>,
    /// LiME input: where the header after the last record begun would be.
    pub next_header: u64,
}

impl Copied {
    pub(super) fn unreadable(&mut self, start: u64, len: u64, error: &io::Error) {
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
