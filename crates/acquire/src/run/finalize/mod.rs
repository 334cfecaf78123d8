//! Phase 5 of a capture, [`finalize`]: a stream that never produced a
//! record is no image ([`no_image`]); otherwise the partial path
//! ([`partial`]: recover, zero-fill, record what is missing, with what the
//! source still had from [`remainder`]), the seek table, the sidecar, and
//! the manifest last and atomically ([`manifest`]).

mod manifest;
mod no_image;
mod partial;
mod remainder;

use std::time::Duration;

use fv_core::fs::Dir;
use fv_evidence::manifest::{Case, FileEntry, Imds, Manifest, Source, Status};

use super::cleanup::cleanup;
use super::state::{Acquired, Outcome, OutputState, Preflight, SourceState};
use crate::error::Error;
use crate::host::{self, ContextJob, imds};
use crate::output;
use crate::roots::Roots;
use crate::source::{Opened, SourceSpec};
use no_image::no_image;
use partial::Missing;
use remainder::source_remainder;

pub use manifest::UNKNOWN;

/// Phase 5, finalization: a stream that never produced a record is no
/// image; otherwise the partial path (recover, zero-fill, record what is
/// missing), the seek table, the sidecar, and the manifest last and
/// atomically. `case`, `requested` and `roots` are the plan's parts the
/// manifest records.
pub(super) fn finalize(
    case: &Case,
    requested: &SourceSpec,
    roots: &Roots,
    pre: Preflight,
    source: SourceState,
    out: OutputState,
    acquired: Acquired,
) -> Result<Outcome, Error> {
    let OutputState {
        cdir,
        cname,
        image_path,
        mut writer,
        mut context,
        kind,
        location,
        detail,
        warnings: space_warnings,
        ..
    } = out;
    let Acquired {
        mut layout,
        mut copied,
        result,
    } = acquired;
    let mut warnings = pre.warnings;
    warnings.extend(source.warnings);
    warnings.extend(space_warnings);
    let (mut files, imds) = context_and_identity(&mut context, source.imds, &cdir, &mut warnings);

    // A stream that never produced a record is no image at all.
    if layout.is_empty()
        && let Err(stop) = &result
    {
        let _ = writer.finish();
        cleanup(&pre.root.dir, &cdir, &cname);
        return Err(no_image(stop, location, &image_path));
    }

    let short = partial::short_of_ram(&result, source.host_ram.as_deref(), &layout);
    let partial = partial::reason(result, short.as_deref(), &layout, &cdir);
    let mut missing = Missing::default();
    if let (Some(gaps), Some(reason)) = (&short, &partial) {
        missing.omitted = partial::not_sent(gaps, &layout, reason);
    } else if let Some(reason) = &partial {
        let full = layout.clone();
        let cut = partial::zero_fill(&mut writer, &mut layout, &full, &cdir, &reason.detail)?;
        let (rest, unknown) = source_remainder(
            &source.opened,
            source.host_ram.as_deref(),
            &full,
            &copied,
            &location,
            &reason.detail,
        );
        missing = Missing::after_stop(cut, rest, unknown, &mut copied.unreadable);
    }
    missing.omitted.sort_unstable_by_key(|s| s.start);
    output::release_reserve(&cdir);
    let summary = writer.finish().map_err(|source| Error::Finalize {
        dir: cdir.path().to_path_buf(),
        source,
    })?;
    let detail = with_module_line(detail, source.opened);

    manifest::add_image_files(&cdir, &summary, &mut files)?;
    let timing = manifest::timing(pre.start_wall, pre.t0, &summary);
    let m = Manifest {
        schema: fv_evidence::manifest::SCHEMA.into(),
        schema_version: fv_evidence::manifest::SCHEMA_VERSION,
        tool: manifest::tool(),
        command_line: std::env::args_os()
            .map(|a| a.to_string_lossy().into_owned())
            .collect(),
        host: manifest::host_section(source.foreign, &pre.uname, roots, imds, source.imds_status),
        case: case.clone(),
        source: Source {
            kind: kind.into(),
            location,
            requested: requested.to_string(),
            detail,
            attempts: source.attempts,
        },
        ranges: layout.ranges.clone(),
        unreadable: copied.unreadable,
        not_captured: missing.not_captured,
        omitted: missing.omitted,
        remainder_unknown: missing.remainder_unknown,
        image: manifest::image_section(&summary),
        timing,
        peak_rss_bytes: host::peak_rss(),
        status: if partial.is_some() {
            Status::Partial
        } else {
            Status::Complete
        },
        partial_reason: partial,
        files,
        warnings,
    };
    let manifest_sha256 = manifest::write(&cdir, &pre.root.dir, &m)?;
    Ok(Outcome {
        exit: manifest::exit_code(&m),
        manifest: m,
        dir: cdir.path().to_path_buf(),
        manifest_sha256,
    })
}

/// The files the context job wrote (waited for) and the IMDS identity's
/// document and signature, kept in the capture directory; their warnings
/// join `warnings`.
fn context_and_identity(
    context: &mut ContextJob,
    identity: Option<imds::Identity>,
    cdir: &Dir,
    warnings: &mut Vec<String>,
) -> (Vec<FileEntry>, Option<Imds>) {
    let (mut files, ctx_warnings) = context.wait();
    warnings.extend(ctx_warnings);
    let imds = identity.map(|id| {
        let (entries, w) = imds::keep_identity(cdir, &id);
        files.extend(entries);
        warnings.extend(w);
        id.imds
    });
    (files, imds)
}

/// The source's detail, with the line a module we loaded ends with (its
/// load result and unloading, waited for up to 30 s).
fn with_module_line(detail: Option<String>, opened: Opened) -> Option<String> {
    let module_line = match opened {
        Opened::Lime {
            module: Some(m), ..
        } => Some(m.finish(Duration::from_secs(30))),
        _ => None,
    };
    match (detail, module_line) {
        (Some(d), Some(m)) => Some(format!("{d}; {m}")),
        (d, m) => d.or(m),
    }
}
