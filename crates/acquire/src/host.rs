//! The captured host: identity (`uname`, boot ID), the running binary's
//! hash, peak RSS, and the kernel context files copied for the analyst —
//! only from `/proc` and `/sys`, never from the suspect's disks.

use std::ffi::OsStr;
use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use fv_core::fs::Dir;
use fv_evidence::manifest::FileEntry;
use sha2::{Digest, Sha256};

use crate::output::hex;
use crate::physical::Roots;

/// Most bytes copied from one context file (kallsyms is the largest, tens
/// of MiB at most); bounds time and space on a hostile or odd kernel.
pub const CONTEXT_CAP: u64 = 256 << 20;

/// `uname` fields.
#[derive(Debug, Clone, Default)]
pub struct Uname {
    /// sysname.
    pub sysname: String,
    /// nodename.
    pub nodename: String,
    /// release.
    pub release: String,
    /// version.
    pub version: String,
    /// machine.
    pub machine: String,
}

/// `uname(2)`.
pub fn uname() -> Uname {
    match nix::sys::utsname::uname() {
        Ok(u) => Uname {
            sysname: u.sysname().to_string_lossy().into_owned(),
            nodename: u.nodename().to_string_lossy().into_owned(),
            release: u.release().to_string_lossy().into_owned(),
            version: u.version().to_string_lossy().into_owned(),
            machine: u.machine().to_string_lossy().into_owned(),
        },
        Err(_) => Uname::default(),
    }
}

/// `/proc/sys/kernel/random/boot_id`, trimmed.
pub fn boot_id(roots: &Roots) -> Option<String> {
    let b = crate::physical::read_small(&roots.proc.join("sys/kernel/random/boot_id"), 256).ok()?;
    let s = String::from_utf8_lossy(&b).trim().to_string();
    (!s.is_empty()).then_some(s)
}

/// The running binary's path and SHA-256 (through `/proc/self/exe`, the
/// real one: this is about our own process).
pub fn self_exe() -> (PathBuf, Option<String>) {
    let path = std::fs::read_link("/proc/self/exe").unwrap_or_default();
    let sha = File::open("/proc/self/exe").ok().and_then(|f| {
        let mut h = Sha256::new();
        let mut r = f;
        let mut buf = vec![0u8; 1 << 16];
        loop {
            match r.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => h.update(&buf[..n]),
                Err(_) => return None,
            }
        }
        Some(hex(&h.finalize()))
    });
    (path, sha)
}

/// Peak resident memory (`VmHWM` of `/proc/self/status`), bytes.
pub fn peak_rss() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = text.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

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

/// Copies `src` into `dir/name` (created `O_EXCL`), `cap` bytes at most;
/// its length and SHA-256.
pub(crate) fn copy_into(
    src: &Path,
    dir: &Dir,
    name: &str,
    cap: u64,
) -> Result<(u64, String), String> {
    let cap = cap.min(CONTEXT_CAP);
    let mut input = File::open(src).map_err(|e| format!("{}: {e}", src.display()))?;
    let mut out = dir
        .create_file(OsStr::new(name))
        .map_err(|e| e.to_string())?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut len = 0u64;
    while len < cap {
        let n = match input.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n.min((cap - len) as usize),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(format!("{}: read: {e}", src.display())),
        };
        out.write_all(&buf[..n])
            .map_err(|e| format!("{}: write: {e}", dir.path().join(name).display()))?;
        h.update(&buf[..n]);
        len += n as u64;
    }
    fv_core::fs::sync_file(&out, &dir.path().join(name)).map_err(|e| e.to_string())?;
    fv_core::fs::drop_cached(&out, 0, 0);
    Ok((len, hex(&h.finalize())))
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
    if let Some(id) = crate::physical::read_small(&roots.sys.join("kernel/notes"), 1 << 20)
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
    crate::symbols_context::write(roots, &dir, &mut files, &mut warnings);
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
