//! One capture, start to finish, in five phases that each have a name:
//!
//! 1. [`plan`]: checks that touch nothing (root, signals, writer options,
//!    the output root on the forensics volume, the per-root lock);
//! 2. `open_source_phase`: the source ([`source`]), IMDS, the size estimate;
//! 3. [`open_output`]: space check, capture directory, reserve, context,
//!    image writer;
//! 4. [`acquire`]: the copy;
//! 5. [`finalize`]: the partial path (full disk, signal, source failure:
//!    recover, zero-fill, record), seek table, sidecar, and the manifest
//!    last and atomically.
//!
//! The summary printed afterwards is in [`summary`].

mod finalize;
mod source;
mod summary;

use std::ffi::OsStr;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use fv_core::fs::Dir;
use fv_evidence::manifest::{
    self, Attempt, Case, Compression, FileEntry, Host, Image, Manifest, PartialCause,
    PartialReason, Source, Span, Status, Timing, Tool,
};
use fv_evidence::writer::{self, ImageSummary, ImageWriter, WriterError, WriterOptions};
use fv_formats::iomem::RamRange;

use crate::avml_input::{self, LimeOrAvml};
use crate::cli::CaptureArgs;
use crate::error::Error;
use crate::lime_source::LimeSourceError;
use crate::output::{self, OutputError, hex};
use crate::physical::{self, Roots};
use crate::progress::{Progress, human};
use crate::spec::SourceSpec;
use crate::stop::{self, StopAware};
use crate::stream::{self, Copied, Layout, Sink, Stop};
use crate::{exit, host, imds};

use finalize::{cleanup, finalize};
use source::{
    LimeInput, Opened, canonical_exe, clone_lime_error, is_regular_file, open_source,
    source_remainder,
};
pub use summary::{anchor_digests, summary_json, summary_line};

impl Sink for ImageWriter {
    type Error = WriterError;
    fn write(&mut self, bytes: &[u8]) -> Result<(), WriterError> {
        ImageWriter::write(self, bytes)
    }
    fn write_with(
        &mut self,
        max: usize,
        fill: impl FnOnce(&mut [u8]) -> usize,
    ) -> Result<usize, WriterError> {
        ImageWriter::write_with(self, max, fill)
    }
    fn offset(&self) -> u64 {
        self.stream_offset()
    }
}

/// What a finished run produced.
#[derive(Debug)]
pub struct Outcome {
    /// The documented exit code (0 or a partial code).
    pub exit: u8,
    /// The manifest written.
    pub manifest: Manifest,
    /// The capture directory.
    pub dir: PathBuf,
    /// SHA-256 (hex) of the `manifest.json` written: with the image and LiME
    /// digests, the anchor an analyst checks later copies against
    /// (`capture verify --expect-manifest-sha256`).
    pub manifest_sha256: String,
}

/// Assumed stream size when nothing says how large memory is (only sizes
/// the reserve; the copy is not limited by it).
const UNKNOWN_SIZE: u64 = 64 << 30;
/// Room for the manifest and sidecar, on top of the writer's reserve.
const MANIFEST_ROOM: u64 = 1 << 20;
/// Drop a LiME input file's pages from the cache every this many bytes.
const INPUT_DROP_STEP: u64 = 64 << 20;

/// The writer's options from the command line, and a warning when the
/// memory bound takes threads away.
fn writer_options(args: &CaptureArgs) -> Result<(WriterOptions, Option<String>), Error> {
    let mut opts = WriterOptions::default();
    if let Some(l) = args.level {
        if !(-7..=22).contains(&l) {
            return Err(Error::Usage(format!(
                "--level {l} is out of range (-7 to 22; 1 is the default, 0 adaptive)"
            )));
        }
        opts.level = l;
    }
    if let Some(t) = args.threads {
        opts.threads = t.get().min(fv_evidence::writer::MAX_THREADS);
    }
    if let Some(f) = args.frame_size() {
        opts.frame_size = f;
    }
    // Peak RSS stays under 64 MiB whatever the level and the CPU count:
    // high levels get fewer threads, as do machines with many CPUs.
    let fit = writer::threads_within(&opts, writer::MEMORY_BUDGET);
    let mut note = None;
    if fit < opts.threads {
        let asked = if args.threads.is_some() {
            "asked for"
        } else {
            "one per CPU"
        };
        let level = if opts.level == writer::ADAPTIVE_LEVEL {
            format!("the adaptive level (up to {})", writer::ADAPTIVE_MAX)
        } else {
            format!("zstd level {}", opts.level)
        };
        note = Some(format!(
            "{fit} compression thread(s) instead of {} ({asked}): at {level} more would need over {} MiB, past the memory bound",
            opts.threads,
            writer::MEMORY_BUDGET >> 20
        ));
        opts.threads = fit;
    }
    Ok((opts, note))
}

/// Runs one capture with `args`, in five phases a reader can find by name:
/// [`plan`] (checks that touch nothing), [`open_source`], [`open_output`]
/// (the capture directory, reserve, context and image writer),
/// [`acquire`] (the copy), and [`finalize`] (the partial path, seek table,
/// sidecar and manifest).
///
/// # Errors
/// An [`Error`] when no image was produced; a partial image is an `Ok`
/// [`Outcome`] with a partial exit code.
pub fn run(args: &CaptureArgs) -> Result<Outcome, Error> {
    let plan = plan(args)?;
    let source = open_source_phase(args, &plan)?;
    let mut out = open_output(args, &plan, &source)?;
    let mut source = source;
    let acquired = acquire(args, &mut source, &mut out);
    finalize(args, plan, source, out, acquired)
}

/// Phase 1: what the run will do, checked before anything is touched.
struct Plan {
    start_wall: SystemTime,
    t0: Instant,
    opts: WriterOptions,
    roots: Roots,
    uname: host::Uname,
    /// The output root, checked to be on the forensics volume.
    root: output::Root,
    /// The per-root lock, held until the run ends.
    _lock: nix::fcntl::Flock<std::fs::File>,
    warnings: Vec<String>,
}

/// Phase 1, the plan: root, signals, writer options, the output root and
/// its lock. The output is checked before the source is touched: a refused
/// output must leave the machine exactly as it was.
fn plan(args: &CaptureArgs) -> Result<Plan, Error> {
    let uid = nix::unistd::geteuid();
    if !uid.is_root() {
        return Err(Error::NotRoot { uid: uid.as_raw() });
    }
    let start_wall = SystemTime::now();
    let t0 = Instant::now();
    stop::install().map_err(Error::Signals)?;
    let (opts, threads_note) = writer_options(args)?;
    let roots = args.roots();
    let uname = host::uname();
    let root_path = match &args.output {
        Some(p) => p.clone(),
        None => output::default_root(&canonical_exe())?,
    };
    let root = output::open_root(&root_path, args.allow_any_output, args.volume_id.as_ref())?;
    let lock = output::lock(&root.dir)?;
    let mut warnings: Vec<String> = threads_note.into_iter().collect();
    for w in &root.warnings {
        let _ = writeln!(std::io::stderr(), "capture: warning: {w}");
    }
    warnings.extend(root.warnings.iter().cloned());
    Ok(Plan {
        start_wall,
        t0,
        opts,
        roots,
        uname,
        root,
        _lock: lock,
        warnings,
    })
}

/// Phase 2's result: the open source and what is known about it.
struct SourceState {
    opened: Opened,
    attempts: Vec<Attempt>,
    imds: Option<imds::Identity>,
    imds_status: String,
    /// Size of the LiME stream, as well as it can be known before the copy.
    estimate: Option<u64>,
    /// A LiME stream from this host: its System RAM, which every record must
    /// lie in and which says what a stopped stream still had to send.
    host_ram: Option<Vec<RamRange>>,
    /// What the manifest must say about the source's trustworthiness.
    warnings: Vec<String>,
    /// Set when the memory is not this host's (a LiME file, or a stream
    /// with `--foreign-lime`): why. Nothing of this host (names, kernel,
    /// boot ID, IMDS identity, `context/`) is then recorded as the source's.
    foreign: Option<String>,
}

/// `host.*` strings of a capture whose memory is from another host.
pub const UNKNOWN: &str = "unknown";

/// Said on stderr and in the manifest of every `lime-tcp` capture
/// (security review S1): the peer check is not a proof.
pub const LIME_TCP_UNPROVEN: &str = "lime-tcp: the peer was checked to be no process's socket as far as /proc shows, which is no proof it is LiME's kernel socket: an unprivileged local user can pass that check (accepting in a thread after unshare(CLONE_FILES), or parking the accepted socket in an AF_UNIX queue) and serve a fabricated dump. Treat this image's origin as unproven; lime-module (a root-only FIFO) is the trusted LiME route";

/// Phase 2, the source: open it, ask IMDS who we are, estimate the size.
fn open_source_phase(args: &CaptureArgs, plan: &Plan) -> Result<SourceState, Error> {
    let mut attempts = Vec::new();
    // Read before a module is loaded: a stream of this host that cannot be
    // checked is refused before anything happens.
    let ram = match args.source {
        SourceSpec::Auto | SourceSpec::Kcore | SourceSpec::Crash | SourceSpec::Mem => None,
        _ => Some(physical::read_ram(&plan.roots)),
    };
    let opened = open_source(args, &plan.roots, &plan.uname.release, &mut attempts)?;
    let foreign = match &opened {
        Opened::Lime {
            input,
            module: None,
            ..
        } => {
            if is_regular_file(input) {
                Some("a LiME file, taken as a dump made elsewhere (by whom and of which host it does not say)".to_string())
            } else if args.foreign_lime {
                Some("a LiME stream made on another host (--foreign-lime)".to_string())
            } else {
                None
            }
        }
        _ => None,
    };
    let host_ram = match (&opened, ram) {
        (Opened::Lime { kind, .. }, Some(ram)) if foreign.is_none() => {
            Some(ram.map_err(|source| Error::HostRam { kind, source })?)
        }
        _ => None,
    };
    let (imds, imds_status) = if let Some(why) = &foreign {
        // This host's identity is not the source's.
        (
            None,
            format!("not asked: the memory is from another host ({why})"),
        )
    } else if args.no_imds {
        (None, "skipped (--no-imds)".to_string())
    } else {
        match imds::identity(&args.imds_endpoint) {
            Ok(id) => (Some(id), "answered".to_string()),
            Err(e) => (None, format!("no answer: {e}")),
        }
    };
    let estimate = estimate(&opened, &plan.roots, foreign.is_some());
    let mut warnings = Vec::new();
    if matches!(args.source, SourceSpec::LimeTcp { .. }) {
        let _ = writeln!(std::io::stderr(), "capture: warning: {LIME_TCP_UNPROVEN}");
        warnings.push(LIME_TCP_UNPROVEN.to_string());
    }
    Ok(SourceState {
        warnings,
        foreign,
        opened,
        attempts,
        imds,
        imds_status,
        estimate,
        host_ram,
    })
}

/// Size of the stream, as well as it can be known now: the layout of a
/// physical source, a regular file's length, for a stream of this host
/// (FIFO, stdin, TCP, module) the host's RAM, and for a stream from
/// another host nothing (this host's RAM says nothing about it).
fn estimate(opened: &Opened, roots: &Roots, foreign: bool) -> Option<u64> {
    match opened {
        Opened::Phys(p) => Some(Layout::of_ram(&p.ram).len()),
        Opened::Lime { input, .. } if is_regular_file(input) => match input {
            // An AVML compressed file holds more than its length: sized
            // from the host's RAM below, as a FIFO is.
            LimeInput::File(f) if avml_input::file_is_avml(f) => physical::read_ram(roots)
                .ok()
                .map(|r| Layout::of_ram(&r).len()),
            LimeInput::File(f) => f.metadata().ok().map(|m| m.len()),
            _ => None,
        },
        Opened::Lime { .. } if foreign => None,
        Opened::Lime { .. } => physical::read_ram(roots)
            .ok()
            .map(|r| Layout::of_ram(&r).len()),
    }
}

/// Room for the manifest and sidecar on top of the writer's reserve
/// ([`MANIFEST_ROOM`] holds the capped `unreadable` list): it grows with the
/// records a stream of `estimate` bytes has (each listed in `ranges`, or in
/// `omitted` after a stop).
fn manifest_room(estimate: u64) -> u64 {
    MANIFEST_ROOM + (estimate / stream::RECORD_MAX + 64) * 256
}

/// Phase 3's result: where the image goes.
struct OutputState {
    /// The capture directory and its name in the root.
    cdir: Dir,
    cname: String,
    image_path: PathBuf,
    writer: ImageWriter,
    context: host::ContextJob,
    /// Source kind, location and detail, as the manifest will say them.
    kind: &'static str,
    location: String,
    detail: Option<String>,
    progress: Progress,
    /// Warnings about free space.
    warnings: Vec<String>,
}

/// Phase 3, the output: the space check, the capture directory, the
/// reserve, the context job and the image writer.
fn open_output(
    args: &CaptureArgs,
    plan: &Plan,
    source: &SourceState,
) -> Result<OutputState, Error> {
    let estimate = source.estimate;
    let opts = plan.opts;
    let root = &plan.root;
    let size = estimate.unwrap_or(UNKNOWN_SIZE);
    let reserve_len = ImageWriter::reserve_for(size, &opts).saturating_add(manifest_room(size));
    let free = output::free_bytes(&root.dir)?;
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
        if !args.allow_partial {
            return Err(OutputError::NoSpace {
                path: root.dir.path().to_path_buf(),
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

    // The capture directory.
    // "(none)" is the kernel's nodename when nothing set one (initramfs).
    let uname = &plan.uname;
    let host_id = source
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
        .unwrap_or_else(|| "unnamed-host".into());
    let base = format!(
        "{}_{}",
        output::sanitize(&host_id),
        crate::utc::compact(plan.start_wall)
    );
    let (cdir, cname) = output::create_capture_dir(&root.dir, &base)?;
    // Marked in progress before anything else lands in it (M7).
    if let Err(e) = fv_evidence::inprogress::mark(&cdir) {
        cleanup(&root.dir, &cdir, &cname);
        return Err(OutputError::from(e).into());
    }
    root.dir.sync().map_err(OutputError::from)?;
    if let Err(e) = output::reserve(&cdir, reserve_len) {
        cleanup(&root.dir, &cdir, &cname);
        return Err(match e {
            OutputError::Sys { source, .. } if source.raw_os_error() == Some(libc::ENOSPC) => {
                OutputError::NoSpace {
                    path: root.dir.path().to_path_buf(),
                    free: human(free),
                    needed: human(reserve_len),
                    why: "the space reserve for finalization could not be allocated".into(),
                }
                .into()
            }
            e => e.into(),
        });
    }
    let context = match &source.foreign {
        // This host's kernel, symbols and BTF would be taken for the
        // source's: `info` and `capture symbols` would judge the image by
        // the wrong kernel.
        Some(why) => host::ContextJob::none(format!(
            "no kernel context (context/): the memory is from another host ({why}); this host's /proc and /sys would describe the wrong kernel, so `capture symbols` needs the source's kernel context from elsewhere"
        )),
        None => host::ContextJob::start(&plan.roots, &cdir, uname),
    };

    let image_path = cdir.path().join(manifest::IMAGE_FILE);
    let image_file = cdir
        .create_file(OsStr::new(manifest::IMAGE_FILE))
        .map_err(OutputError::from)?;
    let writer =
        stop::with_signals_blocked(|| ImageWriter::new(image_file, image_path.clone(), opts))
            .map_err(Error::Writer)?;

    let (kind, location, detail) = match &source.opened {
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
    };
    let quiet = args.quiet;
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
        warnings,
    })
}

/// Phase 4's result: the stream's layout, what the copy recorded, and why
/// it stopped early, if it did.
struct Acquired {
    layout: Layout,
    copied: Copied,
    result: Result<(), Stop<WriterError>>,
}

/// Phase 4, the copy: from the physical source or the LiME input into the
/// image writer, until the end, a signal, a full disk or a source failure.
fn acquire(args: &CaptureArgs, source: &mut SourceState, out: &mut OutputState) -> Acquired {
    let mut layout = Layout::default();
    let mut copied = Copied::default();
    let stall = Duration::from_secs(args.stall_timeout.max(1));
    let writer = &mut out.writer;
    let progress = &mut out.progress;
    let mut input_note = None;
    let ram = source.host_ram.as_deref();
    let result = match &mut source.opened {
        Opened::Phys(p) => {
            layout = Layout::of_ram(&p.ram);
            stream::copy_physical(p.reader.as_mut(), &layout, writer, progress, &mut copied)
        }
        Opened::Lime { input, .. } => match input {
            LimeInput::File(f) => {
                let file = &*f;
                let mut dropped = 0u64;
                // AVML's compressed format is repackaged (issue 23).
                let mut reader = LimeOrAvml::new(StopAware::new(file, stall));
                let r = stream::ingest_lime(
                    &mut reader,
                    ram,
                    &mut layout,
                    writer,
                    progress,
                    &mut copied,
                    |off| {
                        if off >= dropped + INPUT_DROP_STEP {
                            fv_core::fs::drop_cached(file, 0, off);
                            dropped = off;
                        }
                    },
                );
                input_note = reader.note();
                r
            }
            LimeInput::Fifo(fifo) => stream::ingest_lime(
                StopAware::new(&fifo.reader, stall),
                ram,
                &mut layout,
                writer,
                progress,
                &mut copied,
                |_| {},
            ),
            LimeInput::Stdin => {
                let mut reader = LimeOrAvml::new(StopAware::new(std::io::stdin(), stall));
                let r = stream::ingest_lime(
                    &mut reader,
                    ram,
                    &mut layout,
                    writer,
                    progress,
                    &mut copied,
                    |_| {},
                );
                input_note = reader.note();
                r
            }
            LimeInput::Tcp(s) => stream::ingest_lime(
                StopAware::new(&*s, stall),
                ram,
                &mut layout,
                writer,
                progress,
                &mut copied,
                |_| {},
            ),
        },
    };
    progress.finish();
    copied.close_summaries();
    if let Some(note) = input_note {
        out.detail = Some(match out.detail.take() {
            Some(d) => format!("{d}; {note}"),
            None => note,
        });
    }
    Acquired {
        layout,
        copied,
        result,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// M8: a FIFO's size is that of the host's RAM, not the 64 GiB guess
    /// (the reserve is sized from it; too small a reserve meant a second
    /// full disk during the zero-fill and no manifest).
    #[test]
    fn a_fifo_input_is_sized_from_system_ram() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(t.path().join("proc")).unwrap();
        std::fs::write(
            t.path().join("proc/iomem"),
            "00001000-0009fbff : System RAM\n00100000-1fffffffff : System RAM\n",
        )
        .unwrap();
        let roots = Roots {
            proc: t.path().join("proc"),
            sys: t.path().join("sys"),
            dev: t.path().join("dev"),
        };
        let fifo = t.path().join("in.fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        // Read-write: opening a FIFO so does not wait for a writer.
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&fifo)
            .unwrap();
        let opened = Opened::Lime {
            kind: "lime-file",
            location: fifo.display().to_string(),
            input: LimeInput::File(f),
            module: None,
        };
        let ram = physical::read_ram(&roots).unwrap();
        let want = Layout::of_ram(&ram).len();
        assert!(want > 127 << 30);
        assert_eq!(estimate(&opened, &roots, false), Some(want));
        // From another host (--foreign-lime): this host's RAM says nothing.
        assert_eq!(estimate(&opened, &roots, true), None);
        assert!(!is_regular_file(match &opened {
            Opened::Lime { input, .. } => input,
            Opened::Phys(_) => unreachable!(),
        }));
    }
}
