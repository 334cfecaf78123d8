//! Phase 2 of a run, opening the source: a physical reader (`auto`,
//! `kcore`, `crash`, `mem`) or a LiME input (file, FIFO, stdin, TCP, or a
//! module loaded for the purpose), with every attempt recorded.

use std::path::{Path, PathBuf};
use std::time::Duration;

use fv_evidence::manifest::{Attempt, Span};
use fv_formats::iomem::RamRange;
use fv_formats::lime::LimeError;

use crate::cli::CaptureArgs;
use crate::error::Error;
use crate::lime_source::{self, LimeSourceError, Module, ModuleFifo};
use crate::output;
use crate::physical::{self, Kind, Physical, Roots};
use crate::spec::SourceSpec;
use crate::stream::{self, Copied, Layout};

/// Where a module's FIFO directory is made: tmpfs, never a suspect disk.
const RUN_DIR: &str = "/run";

/// The source, open.
pub(super) enum Opened {
    Phys(Physical),
    Lime {
        kind: &'static str,
        location: String,
        input: LimeInput,
        module: Option<Module>,
    },
}

/// Where a LiME stream comes from.
pub(super) enum LimeInput {
    /// The FIFO a module we loaded writes into.
    Fifo(ModuleFifo),
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

/// What to do when no physical source could be used. Under kernel lockdown
/// the LiME route is narrower: the same lockdown refuses unsigned modules
/// (issue 23), so the advice says what is left.
fn next_steps(release: &str, failures: &[(Kind, physical::ProbeError)], roots: &Roots) -> String {
    let lockdown = failures
        .iter()
        .find_map(|(_, e)| match e {
            physical::ProbeError::Lockdown { mode, .. } => Some(mode.clone()),
            _ => None,
        })
        .or_else(|| physical::lockdown_mode(roots));
    if let Some(mode) = lockdown {
        return format!(
            "kernel lockdown ({mode} mode) is on. It refuses /proc/kcore (confidentiality mode) and /dev/mem (both modes), and it refuses unsigned modules too: an unsigned LiME will not load. A lime.ko built for kernel {release} AND signed by a key this kernel trusts (the distribution's, or one enrolled before this boot; enrolling a key needs a reboot, which loses the memory) still loads: if you have one, put it at <volume>/modules/{release}/lime.ko and run `capture --source lime-module:auto`. Without one, memory cannot be captured on this instance (EC2 offers no hypervisor-level memory acquisition): preserve the disks instead (snapshot every EBS volume of the instance: the runbook's SnapshotAllVolumes=yes, or EC2 CreateSnapshots), and record in the case that memory capture was refused by kernel lockdown ({mode})"
        );
    }
    format!(
        "use LiME: put a lime.ko built for kernel {release} at <volume>/modules/{release}/lime.ko and run `capture --source lime-module:auto` (or lime-module:PATH); or load LiME yourself into a FIFO only root can reach (mkdir -m 700 /run/lime; mkfifo /run/lime/fifo; `capture --source lime:/run/lime/fifo` in the background; insmod lime.ko \"path=/run/lime/fifo format=lime timeout=0\"); not over TCP, where any local user can connect first"
    )
}

pub(super) fn canonical_exe() -> PathBuf {
    std::fs::read_link("/proc/self/exe")
        .or_else(|_| std::env::current_exe())
        .unwrap_or_default()
}

/// Opens the source `args` asks for; `attempts` gets every source tried.
pub(super) fn open_source(
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
                    next: next_steps(release, &failures, roots),
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
            // LiME's socket is the kernel's: a peer some process owns got
            // the port first (H2). Checked before a byte is trusted.
            if !args.trust_lime_peer {
                let addr = format!("{host}:{port}");
                match lime_source::peer_owner(Path::new("/proc"), &s) {
                    Ok(None) => {}
                    Ok(Some(owner)) => return Err(LimeSourceError::UserPeer { addr, owner }.into()),
                    Err(e) => {
                        return Err(LimeSourceError::UserPeer {
                            addr,
                            owner: format!("unknown ({e})"),
                        }
                        .into());
                    }
                }
            }
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
                    let path = root
                        .parent()
                        .unwrap_or(Path::new("/"))
                        .join(fv_core::volume::MODULES_DIR)
                        .join(release)
                        .join("lime.ko");
                    // Say what was looked for and what to do, not only
                    // "No such file or directory".
                    if let Err(source) = std::fs::metadata(&path) {
                        return Err(Error::Lime(LimeSourceError::NoModule {
                            path,
                            release: release.to_string(),
                            source,
                        }));
                    }
                    path
                }
            };
            // LiME writes into a FIFO only root can reach (never a TCP
            // port any local user could connect to first).
            let fifo = ModuleFifo::create(Path::new(RUN_DIR))?;
            let mut module = Module::start(&path, &fifo.path)?;
            let waited = fifo.wait_for_writer(&path, connect_timeout, || module.refusal(roots));
            match waited {
                Ok(()) => {}
                Err(LimeSourceError::NoStream {
                    fifo: f, waited, ..
                }) => {
                    let line = module.finish(Duration::from_secs(1));
                    return Err(Error::Lime(LimeSourceError::NoStream {
                        path: PathBuf::from(format!("{} ({line})", path.display())),
                        fifo: f,
                        waited,
                    }));
                }
                Err(e) => {
                    if !matches!(e, LimeSourceError::Refused { .. }) {
                        let _ = module.finish(Duration::from_secs(1));
                    }
                    return Err(e.into());
                }
            }
            attempts.push(attempt("lime-module", None));
            let location = format!("{} via {}", path.display(), fifo.path.display());
            Ok(Opened::Lime {
                kind: "lime-module",
                location,
                input: LimeInput::Fifo(fifo),
                module: Some(module),
            })
        }
    }
}

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

/// LiME errors are not `Clone` (they carry `io::Error`); rebuild the I/O
/// case by kind and message.
pub(super) fn clone_lime_error(e: &LimeError) -> LimeError {
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

/// Whether a LiME input is a regular file (a dump taken as made elsewhere;
/// its length bounds its records).
pub(super) fn is_regular_file(input: &LimeInput) -> bool {
    match input {
        LimeInput::File(f) => f.metadata().is_ok_and(|m| m.is_file()),
        LimeInput::Fifo(_) | LimeInput::Stdin | LimeInput::Tcp(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::path::PathBuf;

    use super::*;

    fn roots(t: &tempfile::TempDir) -> Roots {
        Roots {
            proc: t.path().join("proc"),
            sys: t.path().join("sys"),
            dev: t.path().join("dev"),
        }
    }

    /// Issue 23: under lockdown the advice does not send the responder to
    /// an unsigned LiME; it says what lockdown means for the module route
    /// and what is left. Without lockdown, the LiME advice stays.
    #[test]
    fn lockdown_changes_the_advice() {
        let t = tempfile::tempdir().unwrap();
        let r = roots(&t);
        let locked = vec![
            (
                Kind::Kcore,
                physical::ProbeError::Lockdown {
                    path: PathBuf::from("/proc/kcore"),
                    mode: "confidentiality".into(),
                    source: io::Error::from_raw_os_error(libc::EPERM),
                },
            ),
            (
                Kind::Mem,
                physical::ProbeError::Lockdown {
                    path: PathBuf::from("/dev/mem"),
                    mode: "confidentiality".into(),
                    source: io::Error::from_raw_os_error(libc::EPERM),
                },
            ),
        ];
        let next = next_steps("6.1.0-test", &locked, &r);
        assert!(next.contains("unsigned LiME will not load"), "{next}");
        assert!(
            next.contains("signed by a key this kernel trusts"),
            "{next}"
        );
        assert!(next.contains("snapshot every EBS volume"), "{next}");
        assert!(!next.contains("insmod"), "{next}");
        // Lockdown seen only in /sys (the sources failed for other reasons).
        std::fs::create_dir_all(t.path().join("sys/kernel/security")).unwrap();
        std::fs::write(
            t.path().join("sys/kernel/security/lockdown"),
            "none [integrity] confidentiality\n",
        )
        .unwrap();
        let missing = vec![(
            Kind::Kcore,
            physical::ProbeError::Missing {
                path: PathBuf::from("/proc/kcore"),
                why: "no CONFIG_PROC_KCORE",
            },
        )];
        let next = next_steps("6.1.0-test", &missing, &r);
        assert!(next.contains("lockdown (integrity mode)"), "{next}");
        // No lockdown: load LiME.
        std::fs::write(
            t.path().join("sys/kernel/security/lockdown"),
            "[none] integrity confidentiality\n",
        )
        .unwrap();
        let next = next_steps("6.1.0-test", &missing, &r);
        assert!(next.contains("insmod lime.ko"), "{next}");
        assert!(!next.contains("lockdown"), "{next}");
    }
}
