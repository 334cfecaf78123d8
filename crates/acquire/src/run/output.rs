//! Phase 3, the output: the space check, the capture directory (named for
//! the host, marked in progress), the reserve, the context job and the
//! image writer.

use std::ffi::OsStr;
use std::io::{IsTerminal, Write};

use fv_core::fs::Dir;
use fv_evidence::manifest;
use fv_evidence::writer::{ImageWriter, WriterOptions};

use super::cleanup::cleanup;
use super::state::{OutputState, Preflight, SourceState};
use crate::error::Error;
use crate::host::{ContextJob, Uname};
use crate::output::{self, OutputError};
use crate::plan::OutputPlan;
use crate::progress::{Progress, human};
use crate::roots::Roots;
use crate::source::Opened;
use crate::stop;
use crate::stream;

/// Assumed stream size when nothing says how large memory is (only sizes
/// the reserve; the copy is not limited by it).
const UNKNOWN_SIZE: u64 = 64 << 30;
/// Room for the manifest and sidecar, on top of the writer's reserve.
const MANIFEST_ROOM: u64 = 1 << 20;

/// Room for the manifest and sidecar on top of the writer's reserve
/// ([`MANIFEST_ROOM`] holds the capped `unreadable` list): it grows with the
/// records a stream of `estimate` bytes has (each listed in `ranges`, or in
/// `omitted` after a stop).
fn manifest_room(estimate: u64) -> u64 {
    MANIFEST_ROOM + (estimate / stream::RECORD_MAX + 64) * 256
}

/// The space the run needs, checked against what is free.
struct Space {
    /// Bytes to reserve for finalization.
    reserve_len: u64,
    /// Bytes free at the start.
    free: u64,
    /// What the check had to say (recorded in the manifest).
    warnings: Vec<String>,
}

/// The space check: refused when free space is clearly too small (unless
/// `--allow-partial`), warned when it is enough only if memory compresses.
fn check_space(
    estimate: Option<u64>,
    opts: &WriterOptions,
    root: &Dir,
    allow_partial: bool,
) -> Result<Space, Error> {
    let size = estimate.unwrap_or(UNKNOWN_SIZE);
    let reserve_len = ImageWriter::reserve_for(size, opts).saturating_add(manifest_room(size));
    let free = output::free_bytes(root)?;
    let min_needed = reserve_len.saturating_add(estimate.unwrap_or(0) / 10);
    let mut warnings = Vec::new();
    if free < min_needed {
        let why = match estimate {
            Some(e) => format!(
                "{} reserved for the seek table, zero tail and manifest, plus 10 % of the {} LiME stream, less than memory images compress to",
                human(reserve_len),
                human(e)
            ),
            None => format!(
                "{} reserved for the seek table, zero tail and manifest",
                human(reserve_len)
            ),
        };
        if !allow_partial {
            return Err(OutputError::NoSpace {
                path: root.path().to_path_buf(),
                free: human(free),
                needed: human(min_needed),
                why,
            }
            .into());
        }
        warnings.push(format!(
            "started with {} free, less than the {} needed ({why}); --allow-partial given",
            human(free),
            human(min_needed)
        ));
    } else if let Some(e) = estimate
        && free < reserve_len.saturating_add(e)
    {
        warnings.push(format!(
            "{} free for a {} LiME stream: enough only if memory compresses (it usually does)",
            human(free),
            human(e)
        ));
    }
    Ok(Space {
        reserve_len,
        free,
        warnings,
    })
}

/// The capture directory's name before the time: `foreign-lime` for memory
/// from another host, else the instance ID, else the host name ("(none)"
/// is the kernel's nodename when nothing set one, in an initramfs).
fn host_id(source: &SourceState, uname: &Uname) -> String {
    source
        .foreign
        .as_ref()
        .map(|_| "foreign-lime".to_string())
        .or_else(|| {
            source
                .imds
                .as_ref()
                .and_then(|i| i.imds.instance_id.clone())
        })
        .or_else(|| Some(uname.nodename.clone()).filter(|n| !n.is_empty() && n != "(none)"))
        .unwrap_or_else(|| "unnamed-host".into())
}

/// Creates the capture directory `base` (or `base-N`), marks it in
/// progress and takes the space reserve; on failure removes what it made.
fn make_capture_dir(root: &Dir, base: &str, space: &Space) -> Result<(Dir, String), Error> {
    let (cdir, cname) = output::create_capture_dir(root, base)?;
    // Marked in progress before anything else lands in it (M7).
    if let Err(e) = fv_evidence::inprogress::mark(&cdir) {
        cleanup(root, &cdir, &cname);
        return Err(OutputError::from(e).into());
    }
    root.sync().map_err(OutputError::from)?;
    if let Err(e) = output::reserve(&cdir, space.reserve_len) {
        cleanup(root, &cdir, &cname);
        return Err(match e {
            OutputError::Sys { source, .. } if source.raw_os_error() == Some(libc::ENOSPC) => {
                OutputError::NoSpace {
                    path: root.path().to_path_buf(),
                    free: human(space.free),
                    needed: human(space.reserve_len),
                    why: "the space reserve for finalization could not be allocated".into(),
                }
                .into()
            }
            e => e.into(),
        });
    }
    Ok((cdir, cname))
}

/// The kernel context of this host, written alongside the copy; none for
/// memory from another host.
fn start_context(foreign: Option<&str>, roots: &Roots, cdir: &Dir, uname: &Uname) -> ContextJob {
    match foreign {
        // This host's kernel, symbols and BTF would be taken for the
        // source's: `info` and `capture symbols` would judge the image by
        // the wrong kernel.
        Some(why) => ContextJob::none(format!(
            "no kernel context (context/): the memory is from another host ({why}); this host's /proc and /sys would describe the wrong kernel, so `capture symbols` needs the source's kernel context from elsewhere"
        )),
        None => ContextJob::start(roots, cdir, uname),
    }
}

/// Source kind, location and detail, as the manifest will say them.
fn describe(opened: &Opened) -> (&'static str, String, Option<String>) {
    match opened {
        Opened::Phys(p) => (
            p.kind.name(),
            p.path.display().to_string(),
            p.detail.clone(),
        ),
        Opened::Lime {
            kind,
            location,
            module,
            ..
        } => (
            *kind,
            location.clone(),
            module
                .as_ref()
                .map(|m| format!("module sha256 {}, parameters \"{}\"", m.sha256, m.params)),
        ),
    }
}

/// Phase 3, the output: the space check, the capture directory, the
/// reserve, the context job and the image writer.
pub(super) fn open_output(
    plan: &OutputPlan,
    quiet: bool,
    roots: &Roots,
    pre: &Preflight,
    source: &SourceState,
) -> Result<OutputState, Error> {
    let estimate = source.estimate;
    let root = &pre.root;
    let space = check_space(estimate, &pre.opts, &root.dir, plan.allow_partial)?;
    let base = format!(
        "{}_{}",
        output::sanitize(&host_id(source, &pre.uname)),
        crate::utc::compact(pre.start_wall)
    );
    let (cdir, cname) = make_capture_dir(&root.dir, &base, &space)?;
    let context = start_context(source.foreign.as_deref(), roots, &cdir, &pre.uname);

    let image_path = cdir.path().join(manifest::IMAGE_FILE);
    let image_file = cdir
        .create_file(OsStr::new(manifest::IMAGE_FILE))
        .map_err(OutputError::from)?;
    let opts = pre.opts;
    let writer =
        stop::with_signals_blocked(|| ImageWriter::new(image_file, image_path.clone(), opts))
            .map_err(Error::Writer)?;

    let (kind, location, detail) = describe(&source.opened);
    if !quiet {
        let _ = writeln!(
            std::io::stderr(),
            "capture: source {kind} ({location}){} -> {}",
            estimate.map_or(String::new(), |e| format!(", {}", human(e))),
            cdir.path().display()
        );
    }
    let progress = Progress::new(quiet, std::io::stderr().is_terminal(), estimate);
    Ok(OutputState {
        cdir,
        cname,
        image_path,
        writer,
        context,
        kind,
        location,
        detail,
        progress,
        warnings: space.warnings,
    })
}
