//! Physical memory sources: `/proc/kcore` (through its ELF segments),
//! `/dev/crash` and `/dev/mem` (offset = physical address), all guided by
//! `/proc/iomem`'s System RAM. Each is probed before use (open, header, one
//! page read) so `auto` can say exactly why a source is unusable: missing,
//! kernel lockdown, permission, or restricted (`CONFIG_STRICT_DEVMEM`).

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use fv_evidence::manifest::Attempt;
use fv_formats::iomem::{self, IomemError, RamRange};
use fv_formats::kcore::{self, AddressMode, KcoreError, Lookup, Map};

use crate::roots::{Roots, read_small};
use crate::stream::PhysRead;

/// A physical source kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `/proc/kcore`.
    Kcore,
    /// `/dev/crash`.
    Crash,
    /// `/dev/mem`.
    Mem,
}

impl Kind {
    /// The manifest's name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Kcore => "kcore",
            Self::Crash => "crash",
            Self::Mem => "mem",
        }
    }
}

/// Why a physical source cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// The opened source is not what its name says.
    #[error("{path}: refused: {what}")]
    WrongType {
        /// Path.
        path: PathBuf,
        /// What it is instead.
        what: String,
    },
    /// `/proc/iomem` cannot be read.
    #[error("{path}: {source}")]
    IomemRead {
        /// Path.
        path: PathBuf,
        /// Cause.
        #[source]
        source: io::Error,
    },
    /// `/proc/iomem` is malformed, hidden or has no RAM.
    #[error(transparent)]
    Iomem(#[from] IomemError),
    /// The device or file does not exist.
    #[error("missing: {path} does not exist ({why})")]
    Missing {
        /// Path.
        path: PathBuf,
        /// What that usually means.
        why: &'static str,
    },
    /// Kernel lockdown refuses it.
    #[error("refused by kernel lockdown ({mode} mode): {path}: {source}")]
    Lockdown {
        /// Path.
        path: PathBuf,
        /// Lockdown mode (`integrity`, `confidentiality`).
        mode: String,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// Permission denied without lockdown.
    #[error("permission denied: {path}: {source} (not root, or an LSM such as SELinux denies it)")]
    Permission {
        /// Path.
        path: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// Readable in part only (`/dev/mem` under STRICT_DEVMEM).
    #[error(
        "restricted: {path}: reading RAM at {addr:#x} failed: {source} (CONFIG_STRICT_DEVMEM allows only the first 1 MiB)"
    )]
    Restricted {
        /// Path.
        path: PathBuf,
        /// Address tried.
        addr: u64,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// The kcore ELF header is malformed or maps no RAM.
    #[error("{path}: {source}")]
    Kcore {
        /// Path.
        path: PathBuf,
        /// Cause.
        #[source]
        source: KcoreError,
    },
    /// Another read error.
    #[error("{path}: {op}: {source}")]
    Io {
        /// Path.
        path: PathBuf,
        /// Operation.
        op: &'static str,
        /// Cause.
        #[source]
        source: io::Error,
    },
}

impl ProbeError {
    /// Whether this is malformed input rather than an unavailable source.
    pub fn is_bad_input(&self) -> bool {
        matches!(
            self,
            Self::Iomem(_) | Self::Kcore { .. } | Self::WrongType { .. }
        )
    }
}

/// Checks, after opening, that a source is what its name says: `/proc/
/// kcore` a regular file on procfs, `/dev/mem` the character device 1:1,
/// `/dev/crash` a character device of the misc driver (major 10). A bind
/// mount or a file planted over the path (root on the suspect can do
/// either) is refused instead of recorded as memory. Skipped when the
/// roots are test fixtures (`strict` false).
///
/// # Errors
/// [`ProbeError::WrongType`].
pub fn check_type(kind: Kind, file: &File, path: &Path, strict: bool) -> Result<(), ProbeError> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    if !strict {
        return Ok(());
    }
    let wrong = |what: String| ProbeError::WrongType {
        path: path.to_path_buf(),
        what,
    };
    let meta = file.metadata().map_err(|e| wrong(format!("fstat: {e}")))?;
    match kind {
        Kind::Kcore => {
            let fs = nix::sys::statfs::fstatfs(file).map_err(|e| wrong(format!("fstatfs: {e}")))?;
            if fs.filesystem_type() != nix::sys::statfs::PROC_SUPER_MAGIC
                || !meta.file_type().is_file()
            {
                return Err(wrong(format!(
                    "not procfs's kcore (filesystem type {:#x})",
                    fs.filesystem_type().0
                )));
            }
        }
        Kind::Mem => {
            if !meta.file_type().is_char_device() || meta.rdev() != libc::makedev(1, 1) {
                return Err(wrong("not the character device 1:1 (mem)".into()));
            }
        }
        Kind::Crash => {
            if !meta.file_type().is_char_device() || libc::major(meta.rdev()) != 10 {
                return Err(wrong("not a misc character device (major 10)".into()));
            }
        }
    }
    Ok(())
}

/// An opened, probed physical source.
pub struct Physical {
    /// Which one.
    pub kind: Kind,
    /// Its path.
    pub path: PathBuf,
    /// How addresses map (kcore), for the manifest.
    pub detail: Option<String>,
    /// iomem's System RAM: the records of the stream.
    pub ram: Vec<RamRange>,
    /// The reader.
    pub reader: Box<dyn PhysRead + Send>,
}

impl std::fmt::Debug for Physical {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Physical")
            .field("kind", &self.kind)
            .field("path", &self.path)
            .field("detail", &self.detail)
            .field("ram", &self.ram)
            .finish_non_exhaustive()
    }
}

/// Reads `/proc/iomem`'s System RAM.
///
/// # Errors
/// [`ProbeError::IomemRead`] or [`ProbeError::Iomem`].
pub fn read_ram(roots: &Roots) -> Result<Vec<RamRange>, ProbeError> {
    let path = roots.proc.join("iomem");
    let bytes = read_small(&path, 4 << 20).map_err(|source| ProbeError::IomemRead {
        path: path.clone(),
        source,
    })?;
    Ok(iomem::system_ram(&bytes)?)
}

/// The kernel lockdown mode, if lockdown is on (`integrity` or
/// `confidentiality`), from `/sys/kernel/security/lockdown`.
pub fn lockdown_mode(roots: &Roots) -> Option<String> {
    let text = read_small(&roots.sys.join("kernel/security/lockdown"), 4096).ok()?;
    let text = String::from_utf8_lossy(&text);
    let start = text.find('[')?;
    let end = text[start..].find(']')? + start;
    let mode = &text[start + 1..end];
    (mode != "none").then(|| mode.to_string())
}

fn classify_open(roots: &Roots, path: &Path, e: io::Error, missing: &'static str) -> ProbeError {
    match e.raw_os_error() {
        Some(libc::ENOENT) | Some(libc::ENXIO) | Some(libc::ENODEV) => ProbeError::Missing {
            path: path.to_path_buf(),
            why: missing,
        },
        Some(libc::EPERM) | Some(libc::EACCES) => match lockdown_mode(roots) {
            Some(mode) => ProbeError::Lockdown {
                path: path.to_path_buf(),
                mode,
                source: e,
            },
            None => ProbeError::Permission {
                path: path.to_path_buf(),
                source: e,
            },
        },
        _ => ProbeError::Io {
            path: path.to_path_buf(),
            op: "open",
            source: e,
        },
    }
}

/// `pread` until `buf` is full; end of file is an error naming the offset.
fn pread_exact(file: &File, mut offset: u64, mut buf: &mut [u8]) -> io::Result<()> {
    while !buf.is_empty() {
        match file.read_at(buf, offset) {
            Ok(0) => {
                // No offset in the text: adjacent failed pages with the
                // same error merge into one manifest span.
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "end of file (short read)",
                ));
            }
            Ok(n) => {
                offset += n as u64;
                buf = &mut buf[n..];
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// `/proc/kcore` through its physical map.
#[derive(Debug)]
pub struct KcoreReader {
    file: File,
    map: Map,
}

impl PhysRead for KcoreReader {
    fn read_phys(&mut self, phys: u64, buf: &mut [u8]) -> io::Result<()> {
        let mut done = 0usize;
        while done < buf.len() {
            let at = phys + done as u64;
            let want = (buf.len() - done) as u64;
            match self.map.lookup(at, want) {
                Lookup::Mapped { file_offset, len } => {
                    let n = len as usize;
                    pread_exact(&self.file, file_offset, &mut buf[done..done + n])?;
                    done += n;
                }
                Lookup::Hole { .. } => {
                    return Err(io::Error::other(
                        "RAM not mapped by any /proc/kcore segment",
                    ));
                }
            }
        }
        Ok(())
    }
}

/// A device read at offset = physical address.
#[derive(Debug)]
pub struct DevReader {
    file: File,
}

impl PhysRead for DevReader {
    fn read_phys(&mut self, phys: u64, buf: &mut [u8]) -> io::Result<()> {
        pread_exact(&self.file, phys, buf)
    }
}

/// Opens and probes one physical source.
///
/// # Errors
/// A [`ProbeError`] saying why it cannot be used.
pub fn open(kind: Kind, roots: &Roots, page_offset: Option<u64>) -> Result<Physical, ProbeError> {
    let ram = read_ram(roots)?;
    match kind {
        Kind::Kcore => open_kcore(roots, ram, page_offset),
        Kind::Crash | Kind::Mem => open_dev(kind, roots, ram),
    }
}

fn open_kcore(
    roots: &Roots,
    ram: Vec<RamRange>,
    page_offset: Option<u64>,
) -> Result<Physical, ProbeError> {
    let path = roots.proc.join("kcore");
    let file = File::open(&path).map_err(|e| {
        classify_open(
            roots,
            &path,
            e,
            "the kernel was built without CONFIG_PROC_KCORE",
        )
    })?;
    check_type(Kind::Kcore, &file, &path, roots.proc == Path::new("/proc"))?;
    let kerr = |source| ProbeError::Kcore {
        path: path.clone(),
        source,
    };
    let io_err = |source: io::Error| {
        if matches!(source.raw_os_error(), Some(libc::EPERM | libc::EACCES)) {
            classify_open(roots, &path, source, "")
        } else {
            ProbeError::Io {
                path: path.clone(),
                op: "read ELF header",
                source,
            }
        }
    };
    let mut ehdr = [0u8; kcore::EHDR_LEN];
    let got = read_up_to(&file, 0, &mut ehdr).map_err(io_err)?;
    let eh = kcore::parse_ehdr(&ehdr[..got]).map_err(kerr)?;
    let count = if eh.phnum == kcore::PN_XNUM {
        let mut sh = [0u8; 64];
        let got = read_up_to(&file, eh.shoff, &mut sh).map_err(io_err)?;
        u64::from(kcore::phnum_from_section0(&sh[..got]).map_err(kerr)?)
    } else {
        u64::from(eh.phnum)
    };
    let len = kcore::phdrs_len(count).map_err(kerr)?;
    let mut phdrs = vec![0u8; len];
    let got = read_up_to(&file, eh.phoff, &mut phdrs).map_err(io_err)?;
    let segments = kcore::parse_phdrs(&phdrs[..got], count).map_err(kerr)?;
    let map = kcore::map_ram(&segments, &ram, page_offset).map_err(kerr)?;
    let detail = match map.mode {
        AddressMode::Paddr => format!(
            "physical addresses from p_paddr; {} PT_LOAD segments, {} of {} RAM bytes mapped",
            segments
                .iter()
                .filter(|s| s.p_type == kcore::PT_LOAD)
                .count(),
            map.mapped_bytes(),
            ram.iter().map(RamRange::len).sum::<u64>()
        ),
        AddressMode::VaddrMinus { offset, given } => format!(
            "p_paddr is 0 (kernel before 4.11): physical = p_vaddr - {offset:#x} ({}, checked against /proc/iomem); {} of {} RAM bytes mapped",
            if given { "--page-offset" } else { "inferred" },
            map.mapped_bytes(),
            ram.iter().map(RamRange::len).sum::<u64>()
        ),
    };
    let mut reader = KcoreReader { file, map };
    // Probe one page of the first mapped piece.
    if let Some(p) = reader.map.pieces.first().copied() {
        let mut page = vec![0u8; p.len.min(4096) as usize];
        reader
            .read_phys(p.phys, &mut page)
            .map_err(|source| match source.raw_os_error() {
                Some(libc::EPERM | libc::EACCES) => classify_open(roots, &path, source, ""),
                _ => ProbeError::Io {
                    path: path.clone(),
                    op: "read first RAM page",
                    source,
                },
            })?;
    }
    Ok(Physical {
        kind: Kind::Kcore,
        path,
        detail: Some(detail),
        ram,
        reader: Box::new(reader),
    })
}

fn read_up_to(file: &File, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        match file.read_at(&mut buf[done..], offset + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

fn open_dev(kind: Kind, roots: &Roots, ram: Vec<RamRange>) -> Result<Physical, ProbeError> {
    let (name, missing) = match kind {
        Kind::Crash => (
            "crash",
            "the RHEL crash driver is not loaded or not available on this kernel",
        ),
        _ => ("mem", "the kernel was built without CONFIG_DEVMEM"),
    };
    let path = roots.dev.join(name);
    let file = File::open(&path).map_err(|e| classify_open(roots, &path, e, missing))?;
    check_type(kind, &file, &path, roots.dev == Path::new("/dev"))?;
    let mut reader = DevReader { file };
    // STRICT_DEVMEM allows the first 1 MiB: probe RAM above it.
    let probe = ram
        .iter()
        .find(|r| r.end >= 1 << 20)
        .map(|r| r.start.max(1 << 20))
        .or_else(|| ram.first().map(|r| r.start))
        .unwrap_or(0);
    let mut page = vec![0u8; 4096];
    if let Err(source) = reader.read_phys(probe, &mut page) {
        return Err(match source.raw_os_error() {
            Some(libc::EPERM | libc::EFAULT | libc::EINVAL) if kind == Kind::Mem => {
                ProbeError::Restricted {
                    path,
                    addr: probe,
                    source,
                }
            }
            Some(libc::EPERM | libc::EACCES) => classify_open(roots, &path, source, missing),
            _ => ProbeError::Io {
                path,
                op: "read first RAM page",
                source,
            },
        });
    }
    Ok(Physical {
        kind,
        path,
        detail: Some("read at offset = physical address".into()),
        ram,
        reader: Box::new(reader),
    })
}

/// Why each source failed, in the order tried.
pub type Failures = Vec<(Kind, ProbeError)>;

/// `auto`: kcore, then crash, then mem. On success the source and every
/// attempt; on failure every reason.
///
/// # Errors
/// The list of `(kind, reason)`, one per source.
pub fn auto(roots: &Roots, page_offset: Option<u64>) -> Result<(Physical, Vec<Attempt>), Failures> {
    let mut attempts = Vec::new();
    let mut failures = Vec::new();
    for kind in [Kind::Kcore, Kind::Crash, Kind::Mem] {
        match open(kind, roots, page_offset) {
            Ok(p) => {
                attempts.push(Attempt {
                    kind: kind.name().into(),
                    outcome: "used".into(),
                    reason: None,
                });
                return Ok((p, attempts));
            }
            Err(e) => {
                attempts.push(Attempt {
                    kind: kind.name().into(),
                    outcome: "failed".into(),
                    reason: Some(e.to_string()),
                });
                failures.push((kind, e));
            }
        }
    }
    Err(failures)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// L3: what is opened as a source must be what its name says.
    #[test]
    fn impostor_sources_are_refused() {
        let t = tempfile::NamedTempFile::new().unwrap();
        let f = File::open(t.path()).unwrap();
        for kind in [Kind::Kcore, Kind::Mem, Kind::Crash] {
            let e = check_type(kind, &f, t.path(), true).unwrap_err();
            assert!(matches!(e, ProbeError::WrongType { .. }), "{e}");
            assert!(e.is_bad_input());
            // Fixture roots are not checked.
            check_type(kind, &f, t.path(), false).unwrap();
        }
        // /dev/null is a character device, but 1:3, not mem's 1:1.
        let null = File::open("/dev/null").unwrap();
        assert!(check_type(Kind::Mem, &null, Path::new("/dev/null"), true).is_err());
        // procfs passes the filesystem test (kcore itself may be absent in
        // a container); a tmp file does not (above).
        let status = File::open("/proc/self/status").unwrap();
        check_type(Kind::Kcore, &status, Path::new("/proc/self/status"), true).unwrap();
    }
}
