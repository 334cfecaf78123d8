//! The captured host's identity (`uname`, boot ID) and our own process's
//! (the running binary's hash, peak RSS), for the manifest.

use std::fs::File;
use std::io::Read;
use std::path::PathBuf;

use sha2::{Digest, Sha256};

use crate::hex::hex;
use crate::roots::{Roots, read_small};

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
    let b = read_small(&roots.proc.join("sys/kernel/random/boot_id"), 256).ok()?;
    let s = String::from_utf8_lossy(&b).trim().to_string();
    (!s.is_empty()).then_some(s)
}

/// The running binary's canonical path (`/proc/self/exe`), where the
/// forensics volume it runs from is looked for.
pub fn canonical_exe() -> PathBuf {
    std::fs::read_link("/proc/self/exe")
        .or_else(|_| std::env::current_exe())
        .unwrap_or_default()
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
