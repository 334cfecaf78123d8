//! One capture, start to finish: checks (root, output root, lock, source,
//! space), the capture directory (reserve, context, image), the copy, the
//! partial path (full disk, signal, source failure: recover, zero-fill,
//! record), the finalization (seek table, sidecar, manifest last and
//! atomically) and the summary.

use std::ffi::OsStr;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use fv_core::fs::Dir;
use fv_evidence::manifest::{
    self, Attempt, Case, Compression, FileEntry, Host, Image, Manifest, PartialCause,
    PartialReason, Source, Span, Status, Timing, Tool,
};
use fv_evidence::writer::{self, ImageSummary, ImageWriter, WriterError, WriterOptions};
use fv_formats::lime::LimeError;

use crate::cli::CaptureArgs;
use crate::error::Error;
use crate::lime_source::{self, LimeSourceError, Module};
use crate::output::{self, OutputError, hex};
use crate::physical::{self, Kind, Physical, Roots};
use crate::progress::{Progress, duration, human};
use crate::spec::SourceSpec;
use crate::stop::{self, StopAware};
use crate::stream::{self, Copied, Layout, Sink, Stop};
use crate::{exit, host, imds};

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
}

/// Assumed stream size when nothing says how large memory is (only sizes
/// the reserve; the copy is not limited by it).
const UNKNOWN_SIZE: u64 = 64 << 30;
/// Room for the manifest and sidecar, on top of the writer's reserve.
const MANIFEST_ROOM: u64 = 1 << 20;
/// Drop a LiME input file's pages from the cache every this many bytes.
const INPUT_DROP_STEP: u64 = 64 << 20;

enum Opened {
    Phys(Physical),
    Lime {
        kind: &'static str,
        location: String,
        input: LimeInput,
        module: Option<Module>,
    },
}

enum LimeInput {
    File(std::fs::File),
    Stdin,
    Tcp(std::net::TcpStream),
}

fn attempt(kind: &str, reason: Option<String>) -> Attempt {
    Attempt {
        kind: kind.into(),
        outcome: if reason.is_none() { "used" } else { "failed" }.into(),
        reason,
    }
}

fn next_steps(release: &str) -> String {
    format!(
        "use LiME: put a lime.ko built for kernel {release} at <volume>/modules/{release}/lime.ko and run `capture --source lime-module:auto` (or lime-module:PATH); or load LiME yourself with \"path=tcp:4444 localhostonly=1 format=lime timeout=0\" and run `capture --source lime-tcp:127.0.0.1:4444`"
    )
}

fn canonical_exe() -> PathBuf {
    std::fs::read_link("/proc/self/exe")
        .or_else(|_| std::env::current_exe())
        .unwrap_or_default()
}

fn open_source(
    args: &CaptureArgs,
    roots: &Roots,
    release: &str,
    attempts: &mut Vec<Attempt>,
) -> Result<Opened, Error> {
    let connect_timeout = Duration::from_secs(args.connect_timeout);
    match &args.source {
        SourceSpec::Auto => match physical::auto(roots, args.page_offset) {
            Ok((p, a)) => {
                *attempts = a;
                Ok(Opened::Phys(p))
            }
            Err(failures) => {
                if let Some((kind, e)) = failures.first()
                    && e.is_bad_input()
                    && matches!(e, physical::ProbeError::Iomem(_))
                {
                    let (kind, source) = (kind.name(), failures.into_iter().next());
                    return Err(match source {
                        Some((_, source)) => Error::Source { kind, source },
                        None => Error::Usage("no source".into()),
                    });
                }
                let list = failures
                    .iter()
                    .map(|(k, e)| format!("  {}: {e}", k.name()))
                    .collect::<Vec<_>>()
                    .join("\n");
                Err(Error::NoSource {
                    list,
                    next: next_steps(release),
                })
            }
        },
        SourceSpec::Kcore | SourceSpec::Crash | SourceSpec::Mem => {
            let kind = match args.source {
                SourceSpec::Kcore => Kind::Kcore,
                SourceSpec::Crash => Kind::Crash,
                _ => Kind::Mem,
            };
            let p =
                physical::open(kind, roots, args.page_offset).map_err(|source| Error::Source {
                    kind: kind.name(),
                    source,
                })?;
            attempts.push(attempt(kind.name(), None));
            Ok(Opened::Phys(p))
        }
        SourceSpec::LimeFile(path) => {
            let f = lime_source::open_file(path)?;
            attempts.push(attempt("lime-file", None));
            Ok(Opened::Lime {
                kind: "lime-file",
                location: path.display().to_string(),
                input: LimeInput::File(f),
                module: None,
            })
        }
        SourceSpec::LimeStdin => {
            attempts.push(attempt("lime-stdin", None));
            Ok(Opened::Lime {
                kind: "lime-stdin",
                location: "-".into(),
                input: LimeInput::Stdin,
                module: None,
            })
        }
        SourceSpec::LimeTcp { host, port } => {
            let s = lime_source::connect(host, *port, connect_timeout, || None)?;
            attempts.push(attempt("lime-tcp", None));
            Ok(Opened::Lime {
                kind: "lime-tcp",
                location: format!("{host}:{port}"),
                input: LimeInput::Tcp(s),
                module: None,
            })
        }
        SourceSpec::LimeModule(path) => {
            let path = match path {
                Some(p) => p.clone(),
                None => {
                    let root = output::default_root(&canonical_exe())?;
                    root.parent()
                        .unwrap_or(Path::new("/"))
                        .join(fv_core::volume::MODULES_DIR)
                        .join(release)
                        .join("lime.ko")
                }
            };
            let port = lime_source::free_port().map_err(|source| Error::Io {
                what: "choosing a loopback port for LiME".into(),
                source,
            })?;
            let mut module = Module::start(&path, port)?;
            let s =
                lime_source::connect("127.0.0.1", port, connect_timeout, || module.refusal(roots));
            let s = match s {
                Ok(s) => s,
                Err(LimeSourceError::Connect { waited, .. }) => {
                    let line = module.finish(Duration::from_secs(1));
                    return Err(Error::Lime(LimeSourceError::NoStream {
                        path: PathBuf::from(format!("{} ({line})", path.display())),
                        port,
                        waited,
                    }));
                }
                Err(e) => return Err(e.into()),
            };
            attempts.push(attempt("lime-module", None));
            Ok(Opened::Lime {
                kind: "lime-module",
                location: format!("{} via 127.0.0.1:{port}", path.display()),
                input: LimeInput::Tcp(s),
                module: Some(module),
            })
        }
    }
}

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
    if let Some(f) = args.frame_size {
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

/// Runs one capture with `args`.
///
/// # Errors
/// An [`Error`] when no image was produced; a partial image is an `Ok`
/// [`Outcome`] with a partial exit code.
pub fn run(args: &CaptureArgs) -> Result<Outcome, Error> {
    let uid = nix::unistd::geteuid();
    if !uid.is_root() {
        return Err(Error::NotRoot { uid: uid.as_raw() });
    }
    let start_wall = SystemTime::now();
    let t0 = Instant::now();
    stop::install().map_err(Error::Signals)?;
    let (opts, threads_note) = writer_options(args)?;
    let roots = Roots {
        proc: args.proc_root.clone(),
        sys: args.sys_root.clone(),
        dev: args.dev_root.clone(),
    };
    let uname = host::uname();

    // Output root and lock before touching the source: a refused output
    // must leave the machine exactly as it was.
    let root_path = match &args.output {
        Some(p) => p.clone(),
        None => output::default_root(&canonical_exe())?,
    };
    let root = output::open_root(&root_path, args.allow_any_output)?;
    let _lock = output::lock(&root.dir)?;

    let mut attempts = Vec::new();
    let mut opened = open_source(args, &roots, &uname.release, &mut attempts)?;

    let mut warnings: Vec<String> = threads_note.into_iter().collect();
    let (imds, imds_status) = if args.no_imds {
        (None, "skipped (--no-imds)".to_string())
    } else {
        match imds::identity(&args.imds_endpoint) {
            Ok(id) => (Some(id), "answered".to_string()),
            Err(e) => (None, format!("no answer: {e}")),
        }
    };

    // Size of the stream, as well as it can be known now.
    let estimate = match &opened {
        Opened::Phys(p) => Some(Layout::of_ram(&p.ram).len()),
        Opened::Lime {
            input: LimeInput::File(f),
            ..
        } => f.metadata().ok().filter(|m| m.is_file()).map(|m| m.len()),
        Opened::Lime { .. } => physical::read_ram(&roots)
            .ok()
            .map(|r| Layout::of_ram(&r).len()),
    };
    let reserve_len = ImageWriter::reserve_for(estimate.unwrap_or(UNKNOWN_SIZE), &opts)
        .saturating_add(MANIFEST_ROOM);
    let free = output::free_bytes(&root.dir)?;
    let min_needed = reserve_len.saturating_add(estimate.unwrap_or(0) / 10);
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
    let host_id = imds
        .as_ref()
        .and_then(|i| i.instance_id.clone())
        .or_else(|| Some(uname.nodename.clone()).filter(|n| !n.is_empty() && n != "(none)"))
        .unwrap_or_else(|| "unnamed-host".into());
    let base = format!(
        "{}_{}",
        output::sanitize(&host_id),
        crate::utc::compact(start_wall)
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
    let mut context = host::ContextJob::start(&roots, &cdir, &uname);

    let image_path = cdir.path().join(manifest::IMAGE_FILE);
    let image_file = cdir
        .create_file(OsStr::new(manifest::IMAGE_FILE))
        .map_err(OutputError::from)?;
    let mut writer =
        stop::with_signals_blocked(|| ImageWriter::new(image_file, image_path.clone(), opts))
            .map_err(Error::Writer)?;

    let (kind, location, detail) = match &opened {
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
    let mut progress = Progress::new(quiet, std::io::stderr().is_terminal(), estimate);

    // The copy.
    let mut layout = Layout::default();
    let mut copied = Copied::default();
    let stall = Duration::from_secs(args.stall_timeout.max(1));
    let result = match &mut opened {
        Opened::Phys(p) => {
            layout = Layout::of_ram(&p.ram);
            stream::copy_physical(
                p.reader.as_mut(),
                &layout,
                &mut writer,
                &mut progress,
                &mut copied,
            )
        }
        Opened::Lime { input, .. } => match input {
            LimeInput::File(f) => {
                let file = &*f;
                let mut dropped = 0u64;
                stream::ingest_lime(
                    StopAware::new(file, stall),
                    &mut layout,
                    &mut writer,
                    &mut progress,
                    |off| {
                        if off >= dropped + INPUT_DROP_STEP {
                            fv_core::fs::drop_cached(file, 0, off);
                            dropped = off;
                        }
                    },
                )
            }
            LimeInput::Stdin => stream::ingest_lime(
                StopAware::new(std::io::stdin(), stall),
                &mut layout,
                &mut writer,
                &mut progress,
                |_| {},
            ),
            LimeInput::Tcp(s) => stream::ingest_lime(
                StopAware::new(&*s, stall),
                &mut layout,
                &mut writer,
                &mut progress,
                |_| {},
            ),
        },
    };
    progress.finish();
    let (mut files, ctx_warnings) = context.wait();
    warnings.extend(ctx_warnings);

    // A stream that never produced a record is no image at all.
    if layout.is_empty()
        && let Err(stop) = &result
    {
        let _ = writer.finish();
        cleanup(&root.dir, &cdir, &cname);
        return Err(match stop {
            Stop::Source { error, .. } => Error::BadLime {
                location,
                source: clone_lime_error(error),
            },
            Stop::Signal(sig) => Error::Lime(LimeSourceError::Interrupted(stop::signal_name(*sig))),
            Stop::Sink(e) => Error::Io {
                what: format!("writing {}", image_path.display()),
                source: std::io::Error::other(e.to_string()),
            },
        });
    }

    let partial = match result {
        Ok(()) => None,
        Err(Stop::Signal(sig)) => Some(PartialReason {
            cause: PartialCause::Interrupted,
            detail: format!("interrupted by {}", stop::signal_name(sig)),
        }),
        Err(Stop::Sink(e)) => {
            output::release_reserve(&cdir);
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
    };
    let mut not_captured = Vec::new();
    if let Some(reason) = &partial {
        let from = writer.recover().map_err(|source| Error::Finalize {
            dir: cdir.path().to_path_buf(),
            source,
        })?;
        not_captured = stream::not_captured(&layout, from, &reason.detail);
        stream::clip_unreadable(&mut copied.unreadable, &not_captured);
        if let Err(first) = stream::fill_zeros(&mut writer, &layout, from) {
            // A second full disk while zero-filling: the reserve is gone
            // already; one more recovery, then give up.
            output::release_reserve(&cdir);
            let from2 = writer.recover().map_err(|_| Error::Finalize {
                dir: cdir.path().to_path_buf(),
                source: first,
            })?;
            not_captured = stream::not_captured(&layout, from2.min(from), &reason.detail);
            stream::fill_zeros(&mut writer, &layout, from2).map_err(|source| Error::Finalize {
                dir: cdir.path().to_path_buf(),
                source,
            })?;
        }
    }
    output::release_reserve(&cdir);
    let summary = writer.finish().map_err(|source| Error::Finalize {
        dir: cdir.path().to_path_buf(),
        source,
    })?;

    let module_line = match opened {
        Opened::Lime {
            module: Some(m), ..
        } => Some(m.finish(Duration::from_secs(30))),
        _ => None,
    };
    let detail = match (detail, module_line) {
        (Some(d), Some(m)) => Some(format!("{d}; {m}")),
        (d, m) => d.or(m),
    };

    // Sidecar, files list, manifest.
    let zst_hex = hex(&summary.zst_sha256);
    let sidecar = format!("{zst_hex}  {}\n", manifest::IMAGE_FILE);
    let sidecar_sha = output::write_atomic(&cdir, manifest::IMAGE_SHA256_FILE, sidecar.as_bytes())?;
    files.insert(
        0,
        FileEntry {
            path: manifest::IMAGE_FILE.into(),
            size: summary.zst_len,
            sha256: zst_hex.clone(),
        },
    );
    files.insert(
        1,
        FileEntry {
            path: manifest::IMAGE_SHA256_FILE.into(),
            size: sidecar.len() as u64,
            sha256: sidecar_sha,
        },
    );
    let end_wall = SystemTime::now();
    let elapsed = t0.elapsed();
    let (exe_path, exe_sha) = host::self_exe();
    let m = Manifest {
        schema: manifest::SCHEMA.into(),
        schema_version: manifest::SCHEMA_VERSION,
        tool: Tool {
            name: fv_core::build::TOOLKIT.into(),
            version: fv_core::build::VERSION.into(),
            git_commit: fv_core::build::GIT_COMMIT.into(),
            binary_path: exe_path.display().to_string(),
            binary_sha256: exe_sha,
        },
        command_line: std::env::args_os()
            .map(|a| a.to_string_lossy().into_owned())
            .collect(),
        host: Host {
            hostname: uname.nodename.clone(),
            kernel_release: uname.release.clone(),
            kernel_version: uname.version.clone(),
            machine: uname.machine.clone(),
            boot_id: host::boot_id(&roots),
            imds,
            imds_status,
        },
        case: Case {
            case_id: args.case_id.clone(),
            examiner: args.examiner.clone(),
            note: args.note.clone(),
        },
        source: Source {
            kind: kind.into(),
            location,
            requested: args.source.to_string(),
            detail,
            attempts,
        },
        ranges: layout.ranges.clone(),
        unreadable: copied.unreadable,
        not_captured,
        image: image_section(&summary),
        timing: Timing {
            start_utc: crate::utc::rfc3339(start_wall),
            end_utc: crate::utc::rfc3339(end_wall),
            duration_seconds: elapsed.as_secs_f64(),
            throughput_bytes_per_second: summary.lime_len as f64 / elapsed.as_secs_f64().max(1e-9),
        },
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
    cdir.sync().map_err(OutputError::from)?;
    output::write_atomic(&cdir, manifest::MANIFEST_FILE, &m.to_json()?)?;
    fv_evidence::inprogress::clear(&cdir).map_err(OutputError::from)?;
    root.dir.sync().map_err(OutputError::from)?;

    let code = match m.partial_reason.as_ref().map(|r| r.cause) {
        None => exit::OK,
        Some(PartialCause::Interrupted) => exit::PARTIAL_INTERRUPTED,
        Some(PartialCause::NoSpace) => exit::PARTIAL_NO_SPACE,
        Some(PartialCause::WriteError) => exit::PARTIAL_WRITE,
        Some(_) => exit::PARTIAL_SOURCE,
    };
    Ok(Outcome {
        exit: code,
        manifest: m,
        dir: cdir.path().to_path_buf(),
    })
}

fn image_section(s: &ImageSummary) -> Image {
    Image {
        file: manifest::IMAGE_FILE.into(),
        format: "lime".into(),
        lime_length: s.lime_len,
        lime_sha256: hex(&s.lime_sha256),
        compressed_length: s.zst_len,
        compressed_sha256: hex(&s.zst_sha256),
        compression: Compression {
            format: "zstd-seekable".into(),
            level: s.level,
            levels_used: Some([s.level_min, s.level_max]),
            threads: u32::try_from(s.threads).unwrap_or(u32::MAX),
            frame_size: u64::from(s.frame_size),
            frames: s.frames,
            checksums: true,
        },
    }
}

/// LiME errors are not `Clone` (they carry `io::Error`); rebuild the I/O
/// case by kind and message.
fn clone_lime_error(e: &LimeError) -> LimeError {
    match e {
        LimeError::Io { offset, source } => LimeError::Io {
            offset: *offset,
            source: std::io::Error::new(source.kind(), source.to_string()),
        },
        LimeError::BadMagic {
            record,
            offset,
            found,
        } => LimeError::BadMagic {
            record: *record,
            offset: *offset,
            found: *found,
        },
        LimeError::BadVersion {
            record,
            offset,
            found,
        } => LimeError::BadVersion {
            record: *record,
            offset: *offset,
            found: *found,
        },
        LimeError::EndBeforeStart {
            record,
            offset,
            start,
            end,
        } => LimeError::EndBeforeStart {
            record: *record,
            offset: *offset,
            start: *start,
            end: *end,
        },
        LimeError::TooLong {
            record,
            offset,
            start,
            end,
        } => LimeError::TooLong {
            record: *record,
            offset: *offset,
            start: *start,
            end: *end,
        },
        LimeError::TrailingBytes { offset, len } => LimeError::TrailingBytes {
            offset: *offset,
            len: *len,
        },
        LimeError::Empty => LimeError::Empty,
        other => LimeError::Io {
            offset: 0,
            source: std::io::Error::other(other.to_string()),
        },
    }
}

/// Removes what this run created in a capture directory that produced no
/// image (only names we create; nothing else is touched).
fn cleanup(root: &Dir, cdir: &Dir, name: &str) {
    let ctx = manifest::CONTEXT_DIR;
    if let Ok(c) = cdir.open_dir(OsStr::new(ctx)) {
        for f in [
            "uname",
            "version",
            "cmdline",
            "modules",
            "kallsyms",
            "iomem",
            "cpuinfo",
            "meminfo",
            "uptime",
            "boot_id",
            "mountinfo",
            "vmcoreinfo",
            "kernel-notes",
            "lockdown",
            "tainted",
            "build-id",
        ] {
            let _ = c.remove_file(OsStr::new(f));
        }
        let _ = cdir.remove_dir(OsStr::new(ctx));
    }
    for f in [
        manifest::IMAGE_FILE,
        output::RESERVE_FILE,
        fv_evidence::inprogress::INCOMPLETE_FILE,
    ] {
        let _ = cdir.remove_file(OsStr::new(f));
    }
    let _ = root.remove_dir(OsStr::new(name));
    let _ = root.sync();
}

/// The one-line human summary.
pub fn summary_line(o: &Outcome) -> String {
    let m = &o.manifest;
    let ram = m.total_range_bytes();
    let ratio = if m.image.lime_length > 0 {
        m.image.compressed_length as f64 * 100.0 / m.image.lime_length as f64
    } else {
        0.0
    };
    let status = match &m.partial_reason {
        None => "complete".to_string(),
        Some(r) => {
            let missing: u64 = m.not_captured.iter().map(|s| s.length).sum();
            format!(
                "PARTIAL ({}; {} of {} not captured, zero-filled)",
                r.detail,
                human(missing),
                human(ram)
            )
        }
    };
    let unreadable: u64 = m.unreadable.iter().map(|s| s.length).sum();
    let unreadable = if m.unreadable.is_empty() {
        String::new()
    } else {
        format!(
            "; {} unreadable in {} span(s), zero-filled",
            human(unreadable),
            m.unreadable.len()
        )
    };
    format!(
        "capture: {status}: {} of RAM in {} range(s) from {} in {} ({}/s) -> {} ({}, {ratio:.1} %){unreadable}; LiME sha256 {}",
        human(ram),
        m.ranges.len(),
        m.source.kind,
        duration(Duration::from_secs_f64(m.timing.duration_seconds)),
        human(m.timing.throughput_bytes_per_second as u64),
        o.dir.display(),
        human(m.image.compressed_length),
        m.image.lime_sha256
    )
}

/// The `--json` summary.
pub fn summary_json(o: &Outcome) -> serde_json::Value {
    let m = &o.manifest;
    serde_json::json!({
        "status": m.status,
        "partial_reason": m.partial_reason,
        "exit_code": o.exit,
        "capture_dir": o.dir.display().to_string(),
        "manifest": o.dir.join(manifest::MANIFEST_FILE).display().to_string(),
        "source": m.source.kind,
        "host": {
            "hostname": m.host.hostname,
            "instance_id": m.host.imds.as_ref().and_then(|i| i.instance_id.clone()),
            "kernel_release": m.host.kernel_release,
        },
        "ram_bytes": m.total_range_bytes(),
        "ranges": m.ranges.len(),
        "unreadable_bytes": m.unreadable.iter().map(|s: &Span| s.length).sum::<u64>(),
        "not_captured_bytes": m.not_captured.iter().map(|s: &Span| s.length).sum::<u64>(),
        "lime_length": m.image.lime_length,
        "lime_sha256": m.image.lime_sha256,
        "compressed_length": m.image.compressed_length,
        "compressed_sha256": m.image.compressed_sha256,
        "duration_seconds": m.timing.duration_seconds,
        "throughput_bytes_per_second": m.timing.throughput_bytes_per_second,
        "peak_rss_bytes": m.peak_rss_bytes,
        "warnings": m.warnings.len(),
    })
}
