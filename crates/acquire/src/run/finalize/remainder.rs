//! What the source still had after a stop, beyond the stream's layout
//! ([`source_remainder`]): listed in the manifest's `omitted`, or said to be
//! unknown.

use fv_evidence::manifest::Span;
use fv_formats::iomem::RamRange;

use crate::source::{LimeInput, Opened, is_regular_file};
use crate::stream::{self, Copied, Layout};

/// What the source still had after a stop, beyond the layout: the rest of
/// the current LiME input record, then the input's later records (a
/// regular file's headers, read without its payloads) or, for a stream of
/// this host, the System RAM it had not sent (after the stop, and any range
/// it passed over). A stream from elsewhere
/// that stopped early leaves its remainder unknown, and the second value
/// says so.
pub(super) fn source_remainder(
    opened: &Opened,
    host_ram: Option<&[RamRange]>,
    full: &Layout,
    copied: &Copied,
    location: &str,
    reason: &str,
) -> (Vec<Span>, Option<String>) {
    let Opened::Lime { input, .. } = opened else {
        return (Vec::new(), None);
    };
    let span = |(start, end): (u64, u64)| Span {
        start,
        length: (end - start).saturating_add(1),
        error: reason.to_string(),
    };
    let mut out: Vec<Span> = copied.pending.map(span).into_iter().collect();
    let last = copied
        .pending
        .map(|(_, e)| e)
        .or_else(|| full.ranges.last().map(|r| r.end));
    match (input, host_ram) {
        (LimeInput::File(f), _) if is_regular_file(input) => {
            match stream::headers_from(f, copied.next_header, last) {
                Ok(h) => {
                    out.extend(h.into_iter().map(span));
                    (out, None)
                }
                Err((offset, why)) => (
                    out,
                    Some(format!(
                        "the LiME input {location} does not parse from byte {offset} on ({why}): what else it holds is unknown"
                    )),
                ),
            }
        }
        (_, Some(ram)) => {
            // Every byte of the host's RAM the stream did not carry: after
            // where it stopped (the stop's reason), and any range it passed
            // over without a record (security review S4).
            let mut covered: Vec<(u64, u64)> =
                full.ranges.iter().map(|r| (r.start, r.end)).collect();
            covered.extend(copied.pending);
            for (s, e) in stream::ram_gaps(ram, &covered) {
                out.push(Span {
                    start: s,
                    length: (e - s).saturating_add(1),
                    error: if last.is_some_and(|l| s <= l) {
                        stream::NO_RECORD.to_string()
                    } else {
                        reason.to_string()
                    },
                });
            }
            (out, None)
        }
        (_, None) => (
            out,
            Some(format!(
                "the LiME stream {location} (from another host: --foreign-lime) stopped early: what its remaining records would have covered is unknown"
            )),
        ),
    }
}
