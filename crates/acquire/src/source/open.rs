//! The source ladder: the source `--source` names, opened ([`open`]) into
//! a physical reader (`auto` tries kcore, then crash, then mem) or a LiME
//! input (file, FIFO, stdin, TCP, or a module loaded for the purpose), with
//! every attempt recorded for the manifest.

use std::path::{Path, PathBuf};
use std::time::Duration;

use fv_evidence::manifest::Attempt;

use super::lime::{self, LimeSourceError, Module, ModuleFifo};
use super::physical::{self, Kind, Physical};
use super::spec::SourceSpec;
use crate::error::Error;
use crate::host::identity::canonical_exe;
use crate::output;
use crate::plan::SourcePlan;
use crate::roots::Roots;

/// Where a module's FIFO directory is made: tmpfs, never a suspect disk.
const RUN_DIR: &str = "/run";

/// The source, open.
#[derive(Debug)]
pub enum Opened {
    Phys(Physical),
    Lime {
        kind: &'static str,
        location: String,
        input: LimeInput,
        module: Option<Module>,
    },
}

/// Where a LiME stream comes from.
#[derive(Debug)]
pub enum LimeInput {
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
pub(crate) fn next_steps(
    release: &str,
    failures: &[(Kind, physical::ProbeError)],
    roots: &Roots,
) -> String {
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

/// Opens the source `plan` asks for; `attempts` gets every source tried.
///
/// # Errors
/// [`Error::NoSource`] (`auto`: every reason), [`Error::Source`],
/// [`Error::Lime`], or [`Error::Output`] when `lime-module:auto` finds no
/// forensics volume.
pub fn open(
    plan: &SourcePlan,
    roots: &Roots,
    release: &str,
    attempts: &mut Vec<Attempt>,
) -> Result<Opened, Error> {
    match &plan.spec {
        SourceSpec::Auto => open_auto(roots, release, plan.page_offset, attempts),
        SourceSpec::Kcore => open_physical(Kind::Kcore, roots, plan.page_offset, attempts),
        SourceSpec::Crash => open_physical(Kind::Crash, roots, plan.page_offset, attempts),
        SourceSpec::Mem => open_physical(Kind::Mem, roots, plan.page_offset, attempts),
        SourceSpec::LimeFile(path) => {
            let f = lime::open_file(path)?;
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
        SourceSpec::LimeTcp { host, port } => open_lime_tcp(host, *port, plan, attempts),
        SourceSpec::LimeModule(path) => {
            open_lime_module(path.as_deref(), roots, release, plan, attempts)
        }
    }
}

/// `auto`: kcore, then crash, then mem; when none can be used, every
/// reason and what to do next. A malformed `/proc/iomem` is bad input, not
/// a missing source.
fn open_auto(
    roots: &Roots,
    release: &str,
    page_offset: Option<u64>,
    attempts: &mut Vec<Attempt>,
) -> Result<Opened, Error> {
    match physical::auto(roots, page_offset) {
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
    }
}

/// `kcore`, `crash` or `mem`, asked for by name.
fn open_physical(
    kind: Kind,
    roots: &Roots,
    page_offset: Option<u64>,
    attempts: &mut Vec<Attempt>,
) -> Result<Opened, Error> {
    let p = physical::open(kind, roots, page_offset).map_err(|source| Error::Source {
        kind: kind.name(),
        source,
    })?;
    attempts.push(attempt(kind.name(), None));
    Ok(Opened::Phys(p))
}

/// `lime-tcp`: connect, then refuse a peer some process holds unless
/// `--trust-lime-peer`.
fn open_lime_tcp(
    host: &str,
    port: u16,
    plan: &SourcePlan,
    attempts: &mut Vec<Attempt>,
) -> Result<Opened, Error> {
    let s = lime::connect(host, port, plan.connect_timeout, || None)?;
    // LiME's socket is the kernel's: a peer some process owns got
    // the port first (H2). Checked before a byte is trusted.
    if !plan.trust_lime_peer {
        let addr = format!("{host}:{port}");
        match lime::peer_owner(Path::new("/proc"), &s) {
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

/// `lime-module:auto`: the volume's `modules/<release>/lime.ko`, which must
/// exist (the error says what to do when it does not).
fn volume_module(release: &str) -> Result<PathBuf, Error> {
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
    Ok(path)
}

/// `lime-module`: load the module writing into a root-only FIFO, and wait
/// until it opens the FIFO (or is refused, or never writes).
fn open_lime_module(
    path: Option<&Path>,
    roots: &Roots,
    release: &str,
    plan: &SourcePlan,
    attempts: &mut Vec<Attempt>,
) -> Result<Opened, Error> {
    let path = match path {
        Some(p) => p.to_path_buf(),
        None => volume_module(release)?,
    };
    // LiME writes into a FIFO only root can reach (never a TCP
    // port any local user could connect to first).
    let fifo = ModuleFifo::create(Path::new(RUN_DIR))?;
    let mut module = Module::start(&path, &fifo.path)?;
    let waited = fifo.wait_for_writer(&path, plan.connect_timeout, || module.refusal(roots));
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

/// Whether a LiME input is a regular file (a dump taken as made elsewhere;
/// its length bounds its records).
pub fn is_regular_file(input: &LimeInput) -> bool {
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
