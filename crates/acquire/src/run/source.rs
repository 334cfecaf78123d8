//! Phase 2, the source: open it ([`crate::source::open`]), decide whether
//! its memory is this host's, ask IMDS who we are, estimate the size.

use std::io::Write;

use fv_formats::iomem::RamRange;

use super::state::{Preflight, SourceState};
use crate::error::Error;
use crate::host::imds;
use crate::plan::{HostPlan, SourcePlan};
use crate::roots::Roots;
use crate::source::lime::avml::file_is_avml;
use crate::source::physical::{self, ProbeError};
use crate::source::{LimeInput, Opened, SourceSpec, is_regular_file};
use crate::stream::Layout;

/// Said on stderr and in the manifest of every `lime-tcp` capture
/// (security review S1): the peer check is not a proof.
pub const LIME_TCP_UNPROVEN: &str = "lime-tcp: the peer was checked to be no process's socket as far as /proc shows, which is no proof it is LiME's kernel socket: an unprivileged local user can pass that check (accepting in a thread after unshare(CLONE_FILES), or parking the accepted socket in an AF_UNIX queue) and serve a fabricated dump. Treat this image's origin as unproven; lime-module (a root-only FIFO) is the trusted LiME route";

/// Phase 2, the source: open it, ask IMDS who we are, estimate the size.
pub(super) fn open_source(
    plan: &SourcePlan,
    host: &HostPlan,
    pre: &Preflight,
) -> Result<SourceState, Error> {
    let mut attempts = Vec::new();
    // Read before a module is loaded: a stream of this host that cannot be
    // checked is refused before anything happens.
    let ram = match plan.spec {
        SourceSpec::Auto | SourceSpec::Kcore | SourceSpec::Crash | SourceSpec::Mem => None,
        _ => Some(physical::read_ram(&host.roots)),
    };
    let opened = crate::source::open::open(plan, &host.roots, &pre.uname.release, &mut attempts)?;
    let foreign = foreign(&opened, plan.foreign_lime);
    let host_ram = host_ram(&opened, ram, foreign.is_some())?;
    let (imds, imds_status) = ask_imds(foreign.as_deref(), host.imds.as_deref());
    let estimate = estimate(&opened, &host.roots, foreign.is_some());
    let mut warnings = Vec::new();
    if matches!(plan.spec, SourceSpec::LimeTcp { .. }) {
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

/// Why the memory is not this host's, if it is not: a LiME file (a dump
/// made elsewhere), or a stream given with `--foreign-lime`.
fn foreign(opened: &Opened, foreign_lime: bool) -> Option<String> {
    match opened {
        Opened::Lime {
            input,
            module: None,
            ..
        } => {
            if is_regular_file(input) {
                Some("a LiME file, taken as a dump made elsewhere (by whom and of which host it does not say)".to_string())
            } else if foreign_lime {
                Some("a LiME stream made on another host (--foreign-lime)".to_string())
            } else {
                None
            }
        }
        _ => None,
    }
}

/// A LiME stream of this host: the System RAM its records are checked
/// against, which must be known.
fn host_ram(
    opened: &Opened,
    ram: Option<Result<Vec<RamRange>, ProbeError>>,
    foreign: bool,
) -> Result<Option<Vec<RamRange>>, Error> {
    match (opened, ram) {
        (Opened::Lime { kind, .. }, Some(ram)) if !foreign => {
            Ok(Some(ram.map_err(|source| Error::HostRam { kind, source })?))
        }
        _ => Ok(None),
    }
}

/// IMDS's identity and what became of the question: not asked for memory
/// from another host (this host's identity is not the source's), nor with
/// `--no-imds` (`endpoint` `None`).
fn ask_imds(foreign: Option<&str>, endpoint: Option<&str>) -> (Option<imds::Identity>, String) {
    if let Some(why) = foreign {
        return (
            None,
            format!("not asked: the memory is from another host ({why})"),
        );
    }
    let Some(endpoint) = endpoint else {
        return (None, "skipped (--no-imds)".to_string());
    };
    match imds::identity(endpoint) {
        Ok(id) => (Some(id), "answered".to_string()),
        Err(e) => (None, format!("no answer: {e}")),
    }
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
            LimeInput::File(f) if file_is_avml(f) => physical::read_ram(roots)
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
