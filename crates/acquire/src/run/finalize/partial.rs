//! The partial path of finalization: why the capture is partial
//! ([`reason`]), and what it then lacks ([`Missing`]): the System RAM a
//! stream of this host did not send ([`not_sent`]), or, after a stop, the
//! zero-filled rest of the current record and the records left out
//! ([`zero_fill`], [`Missing::after_stop`]).

use std::io::Write;

use fv_core::fs::Dir;
use fv_evidence::manifest::{PartialCause, PartialReason, Span};
use fv_evidence::writer::{ImageWriter, WriterError};
use fv_formats::iomem::RamRange;

use crate::error::Error;
use crate::output;
use crate::progress::human;
use crate::stop;
use crate::stream::{self, Cut, Layout, Stop};

/// What a partial image lacks, as the manifest lists it.
#[derive(Default)]
pub(super) struct Missing {
    /// The zero-filled rest of the record the stream stopped in.
    pub(super) not_captured: Vec<Span>,
    /// What the stream did not reach or did not send.
    pub(super) omitted: Vec<Span>,
    /// Set when what the source still had cannot be known: why.
    pub(super) remainder_unknown: Option<String>,
}

impl Missing {
    /// After a stop: the cut's zero-filled tail and left-out records, the
    /// source's remainder, and the unreadable spans clipped so no byte is
    /// counted twice.
    pub(super) fn after_stop(
        cut: Cut,
        rest: Vec<Span>,
        remainder_unknown: Option<String>,
        unreadable: &mut Vec<Span>,
    ) -> Self {
        let mut omitted = cut.omitted;
        omitted.extend(rest);
        stream::clip_unreadable(unreadable, &cut.not_captured);
        stream::clip_unreadable(unreadable, &omitted);
        Self {
            not_captured: cut.not_captured,
            omitted,
            remainder_unknown,
        }
    }
}

/// A stream of this host that ended cleanly without all of the host's
/// System RAM (at a record boundary, or a module that died between
/// ranges) is not complete: the System RAM it did not send (security
/// review S4).
pub(super) fn short_of_ram(
    result: &Result<(), Stop<WriterError>>,
    host_ram: Option<&[RamRange]>,
    layout: &Layout,
) -> Option<Vec<(u64, u64)>> {
    match (result, host_ram) {
        (Ok(()), Some(ram)) => {
            let covered: Vec<(u64, u64)> = layout.ranges.iter().map(|r| (r.start, r.end)).collect();
            let gaps = stream::ram_gaps(ram, &covered);
            (!gaps.is_empty()).then_some(gaps)
        }
        _ => None,
    }
}

/// Why the capture is partial, if it is. A write failure releases the
/// space reserve at once: finalization needs it.
pub(super) fn reason(
    result: Result<(), Stop<WriterError>>,
    short: Option<&[(u64, u64)]>,
    layout: &Layout,
    cdir: &Dir,
) -> Option<PartialReason> {
    match result {
        Ok(()) => short.map(|gaps| {
            let bytes = gaps
                .iter()
                .fold(0u64, |a, (s, e)| a.saturating_add((e - s).saturating_add(1)));
            PartialReason {
                cause: PartialCause::SourceTruncated,
                detail: format!(
                    "the LiME stream ended after {} record(s) without {} of this host's System RAM in {} span(s) (/proc/iomem)",
                    layout.ranges.len(),
                    human(bytes),
                    gaps.len()
                ),
            }
        }),
        Err(Stop::Signal(sig)) => Some(PartialReason {
            cause: PartialCause::Interrupted,
            detail: format!("interrupted by {}", stop::signal_name(sig)),
        }),
        Err(Stop::Sink(e)) => {
            output::release_reserve(cdir);
            Some(PartialReason {
                cause: if e.is_no_space() {
                    PartialCause::NoSpace
                } else {
                    PartialCause::WriteError
                },
                detail: e.to_string(),
            })
        }
        Err(Stop::Source { cause, error }) => Some(PartialReason {
            cause,
            detail: error.to_string(),
        }),
    }
}

/// A stream of this host that ended short: it is whole up to its last
/// record, so nothing is recovered or zero-filled; the System RAM it did
/// not send is listed (and said on stderr).
pub(super) fn not_sent(gaps: &[(u64, u64)], layout: &Layout, reason: &PartialReason) -> Vec<Span> {
    let last = layout.ranges.last().map(|r| r.end);
    let omitted = gaps
        .iter()
        .map(|&(s, e)| Span {
            start: s,
            length: (e - s).saturating_add(1),
            error: if last.is_some_and(|l| s <= l) {
                stream::NO_RECORD.to_string()
            } else {
                "the LiME stream ended before sending this System RAM".to_string()
            },
        })
        .collect();
    let _ = writeln!(
        std::io::stderr(),
        "capture: warning: {}: the capture is PARTIAL; the manifest lists what is missing under omitted",
        reason.detail
    );
    omitted
}

/// After a stop, the stream ends with the record the writer resumed in,
/// completed with zeros; later records are cut from `layout` (`full` is
/// the layout before) and listed, not written: a stop costs one record of
/// zero-fill, not the rest of RAM. A second full disk while zero-filling
/// gets one more recovery, without the reserve, then gives up.
pub(super) fn zero_fill(
    writer: &mut ImageWriter,
    layout: &mut Layout,
    full: &Layout,
    cdir: &Dir,
    reason: &str,
) -> Result<Cut, Error> {
    let failed = |source| Error::Finalize {
        dir: cdir.path().to_path_buf(),
        source,
    };
    let from = writer.recover().map_err(failed)?;
    let mut cut = stream::cut(layout, from, reason);
    if let Err(first) = stream::fill_zeros(writer, layout, from) {
        // The reserve is gone already.
        output::release_reserve(cdir);
        let from2 = writer.recover().map_err(|_| failed(first))?;
        *layout = full.clone();
        cut = stream::cut(layout, from2.min(from), reason);
        stream::fill_zeros(writer, layout, from2).map_err(failed)?;
    }
    Ok(cut)
}
