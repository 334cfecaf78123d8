//! One capture, start to finish, in five phases that each have a name and
//! a file, each taking only its part of the [`Plan`]:
//!
//! 1. [`preflight`]: checks that touch nothing (root, signals, writer
//!    options, the output root on the forensics volume, the per-root lock);
//! 2. [`source`]: the source opened ([`crate::source`]), IMDS, the size
//!    estimate;
//! 3. [`output`]: space check, capture directory, reserve, context, image
//!    writer;
//! 4. [`acquire`]: the copy;
//! 5. [`finalize`]: the partial path (full disk, signal, source failure:
//!    recover, zero-fill, record), seek table, sidecar, and the manifest
//!    last and atomically.
//!
//! What each phase hands the next is in [`state`]; the summary printed
//! afterwards is in [`summary`].

mod acquire;
mod cleanup;
mod finalize;
mod output;
mod preflight;
mod source;
mod state;
mod summary;

use crate::error::Error;
use crate::plan::Plan;

pub use finalize::UNKNOWN;
pub use source::LIME_TCP_UNPROVEN;
pub use state::Outcome;
pub use summary::{ANCHOR_ADVICE, anchor_digests, summary_json, summary_line};

/// Runs one capture of `plan`, in five phases a reader can find by name:
/// [`preflight`] (checks that touch nothing), [`source`], [`output`] (the
/// capture directory, reserve, context and image writer), [`acquire`] (the
/// copy), and [`finalize`] (the partial path, seek table, sidecar and
/// manifest).
///
/// # Errors
/// An [`Error`] when no image was produced; a partial image is an `Ok`
/// [`Outcome`] with a partial exit code.
pub fn run(plan: &Plan) -> Result<Outcome, Error> {
    let pre = preflight::preflight(&plan.writer, &plan.output)?;
    let mut source = source::open_source(&plan.source, &plan.host, &pre)?;
    let mut out = output::open_output(&plan.output, plan.quiet, &plan.host.roots, &pre, &source)?;
    let acquired = acquire::acquire(plan.source.stall_timeout, &mut source, &mut out);
    finalize::finalize(
        &plan.case,
        &plan.source.spec,
        &plan.host.roots,
        pre,
        source,
        out,
        acquired,
    )
}
