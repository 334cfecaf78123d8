//! The kernel context files copied for the analyst into `context/` of the
//! capture directory ([`ContextJob`], [`write_context`]): only from `/proc`
//! and `/sys`, never from the suspect's disks.

use std::ffi::OsStr;
use std::io::Write;
use std::path::PathBuf;

use fv_core::fs::Dir;
use fv_evidence::manifest::FileEntry;
use sha2::{Digest, Sha256};

use super::copy::{CONTEXT_CAP, copy_into};
use super::identity::Uname;
use crate::hex::hex;
use crate::roots::{Roots, read_small};

/// The GNU build ID (`NT_GNU_BUILD_ID`, name `GNU`) from the ELF notes of
/// `/sys/kernel/notes`, as hex. Pure over bytes; stops at the first
/// malformed note.
pub fn build_id(notes: &[u8]) -> Option<String> {
    fv_symbols::elfnote::iter(notes)
        .find(|n| n.kind == 3 && n.name == b"GNU" && !n.desc.is_empty())
        .map(|n| hex(n.desc))
}

/// One context file to copy: name in `context/`, source path.
fn context_sources(roots: &Roots) -> Vec<(&'static str, PathBuf)> {
    let p = |s: &str| roots.proc.join(s);
    let s = |x: &str| roots.sys.join(x);
    vec![
        ("version", p("version")),
        ("cmdline", p("cmdline")),
        ("modules", p("modules")),
        ("kallsyms", p("kallsyms")),
        ("iomem", p("iomem")),
        ("cpuinfo", p("cpuinfo")),
        ("meminfo", p("meminfo")),
        ("uptime", p("uptime")),
        ("boot_id", p("sys/kernel/random/boot_id")),
        ("mountinfo", p("self/mountinfo")),
        ("vmcoreinfo", s("kernel/vmcoreinfo")),
        ("kernel-notes", s("kernel/notes")),
        ("lockdown", s("kernel/security/lockdown")),
        ("tainted", p("sys/kernel/tainted")),
    ]
}

/// What [`write_context`] returns: the files written and the warnings.
pub type Context = (Vec<FileEntry>, Vec<String>);

/// [`write_context`] in a thread of its own, alongside the memory copy:
/// reading `/proc/kallsyms` alone takes the kernel a quarter of a second
/// of one CPU, which the copy would otherwise wait for. Waited for (also
/// when dropped) before the capture directory is finished or removed.
#[derive(Debug)]
pub struct ContextJob {
    thread: Option<std::thread::JoinHandle<Context>>,
    done: Option<Context>,
}

impl ContextJob {
    /// Starts writing the context (stop signals blocked in the thread, so
    /// they still reach the copy loop); where a thread cannot be had, writes
    /// it here and now.
    pub fn start(roots: &Roots, capture: &Dir, uname: &Uname) -> Self {
        let spawned = capture.try_clone().ok().and_then(|dir| {
            let (roots, uname) = (roots.clone(), uname.clone());
            crate::stop::with_signals_blocked(|| {
                std::thread::Builder::new()
                    .name("fv-context".into())
                    .spawn(move || write_context(&roots, &dir, &uname))
                    .ok()
            })
        });
        match spawned {
            Some(thread) => Self {
                thread: Some(thread),
                done: None,
            },
            None => Self {
                thread: None,
                done: Some(write_context(roots, capture, uname)),
            },
        }
    }

    /// No context at all, for `why` (a LiME dump from another host: this
    /// host's `/proc` and `/sys` would describe the wrong machine).
    pub fn none(why: String) -> Self {
        Self {
            thread: None,
            done: Some((Vec::new(), vec![why])),
        }
    }

    /// Waits for the context; the files and warnings (taken once).
    pub fn wait(&mut self) -> Context {
        if let Some(thread) = self.thread.take() {
            self.done = Some(thread.join().unwrap_or_else(|_| {
                (
                    Vec::new(),
                    vec!["kernel context: its thread stopped unexpectedly".into()],
                )
            }));
        }
        self.done.take().unwrap_or_default()
    }
}

impl Drop for ContextJob {
    fn drop(&mut self) {
        let _ = self.wait();
    }
}

/// Copies the kernel context into `context/` of the capture directory.
/// Files that cannot be read are skipped with a warning (a kernel without
/// `/sys/kernel/notes` is not a reason to stop).
pub fn write_context(roots: &Roots, capture: &Dir, uname: &Uname) -> (Vec<FileEntry>, Vec<String>) {
    let mut files = Vec::new();
    let mut warnings = Vec::new();
    let dir_name = fv_evidence::manifest::CONTEXT_DIR;
    let dir = match capture.create_dir(OsStr::new(dir_name)) {
        Ok(d) => d,
        Err(e) => {
            warnings.push(format!("kernel context not written: {e}"));
            return (files, warnings);
        }
    };
    let uname_text = format!(
        "{} {} {} {} {}\n",
        uname.sysname, uname.nodename, uname.release, uname.version, uname.machine
    );
    match dir.create_file(OsStr::new("uname")).and_then(|mut f| {
        f.write_all(uname_text.as_bytes())
            .and_then(|()| f.sync_all())
            .map_err(|source| fv_core::fs::FsError::Sys {
                path: dir.path().join("uname"),
                op: "write",
                source,
            })
    }) {
        Ok(()) => files.push(FileEntry {
            path: format!("{dir_name}/uname"),
            size: uname_text.len() as u64,
            sha256: hex(&Sha256::digest(uname_text.as_bytes())),
        }),
        Err(e) => warnings.push(format!("context/uname: {e}")),
    }
    // The kernel build ID, decoded for the analyst (symbol servers key on it).
    if let Some(id) = read_small(&roots.sys.join("kernel/notes"), 1 << 20)
        .ok()
        .and_then(|n| build_id(&n))
    {
        let text = format!("{id}\n");
        match dir.create_file(OsStr::new("build-id")).and_then(|mut f| {
            f.write_all(text.as_bytes())
                .and_then(|()| f.sync_all())
                .map_err(|source| fv_core::fs::FsError::Sys {
                    path: dir.path().join("build-id"),
                    op: "write",
                    source,
                })
        }) {
            Ok(()) => files.push(FileEntry {
                path: format!("{dir_name}/build-id"),
                size: text.len() as u64,
                sha256: hex(&Sha256::digest(text.as_bytes())),
            }),
            Err(e) => warnings.push(format!("context/build-id: {e}")),
        }
    }
    for (name, src) in context_sources(roots) {
        if !src.exists() {
            if name != "lockdown" && name != "kernel-notes" && name != "vmcoreinfo" {
                warnings.push(format!("context/{name}: {} does not exist", src.display()));
            }
            continue;
        }
        match copy_into(&src, &dir, name, CONTEXT_CAP) {
            Ok((size, sha256)) => files.push(FileEntry {
                path: format!("{dir_name}/{name}"),
                size,
                sha256,
            }),
            Err(e) => {
                warnings.push(format!("context/{name}: {e}"));
                let _ = dir.remove_file(OsStr::new(name));
            }
        }
    }
    super::symbols::write(roots, &dir, &mut files, &mut warnings);
    if let Err(e) = dir.sync() {
        warnings.push(format!("context: {e}"));
    }
    (files, warnings)
}

#[cfg(test)]
mod tests {
    use super::*;

    use fv_symbols::elfnote::encode as note;

    #[test]
    fn build_id_from_kernel_notes() {
        let mut notes = note(b"Xen\0", 1, b"abc");
        notes.extend(note(b"GNU\0", 3, &[0xde, 0xad, 0xbe, 0xef, 0x01]));
        assert_eq!(build_id(&notes).as_deref(), Some("deadbeef01"));
        assert_eq!(build_id(&notes[..20]), None);
        // A lying size ends the walk, no panic.
        let mut bad = notes.clone();
        bad[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(build_id(&bad), None);
    }
}
