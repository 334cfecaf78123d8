//! Where a capture goes: the output root (on the forensics volume: found by
//! its marker file, and proved by device identity, see
//! [`check_volume_device`]), the lock that allows one capture at a time per root,
//! the free-space check, the capture directory, the space reserve, and
//! atomic small-file writes.
//!
//! Every directory is opened with [`Dir::open`] (no symlink at any
//! component); every file is created `O_EXCL|O_NOFOLLOW` 0600 relative to a
//! checked directory fd.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Component, Path, PathBuf};

use fv_core::fs::{Dir, FsError};
use fv_core::volume::{CAPTURES_DIR, MARKER_FILE, MARKER_TOOLKIT};
use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg, OFlag, openat};
use nix::sys::stat::Mode;
use sha2::{Digest, Sha256};

/// The lock file in the output root.
pub const LOCK_FILE: &str = ".capture.lock";
/// The space reserve in a capture directory (removed at finalization).
pub const RESERVE_FILE: &str = ".reserve";

/// Why the output cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    /// No `--output` and the binary is not on a forensics volume.
    #[error(
        "cannot find the forensics volume: no {MARKER_FILE} above {exe} (the running binary); give --output DIR"
    )]
    NoVolume {
        /// The binary's path.
        exe: PathBuf,
    },
    /// The output root does not exist (and is not the volume's `captures`
    /// folder, which is made when missing).
    #[error("{path}: {}", missing_text())]
    Missing {
        /// The output root.
        path: PathBuf,
    },
    /// The output root is not on the forensics volume. The refusal never
    /// offers `--allow-any-output`: on an instance that flag writes memory
    /// onto the suspect's own disks (issue 23).
    #[error(
        "{path}: not on a forensics volume (no {MARKER_FILE} in it or any parent); {}",
        ON_VOLUME_HINT
    )]
    NotOnVolume {
        /// The output root.
        path: PathBuf,
    },
    /// The output's filesystem is not on the EBS volume `--volume-id` named.
    #[error(
        "{path}: not on the forensics volume {volume_id} ({why}); captures go only to the volume this run attached"
    )]
    NotTheVolumeId {
        /// The output root.
        path: PathBuf,
        /// `--volume-id`.
        volume_id: String,
        /// What the device is instead.
        why: String,
    },
    /// The output's filesystem is not the forensics volume's device.
    #[error("{path}: not on the forensics volume ({why}); {}", ON_VOLUME_HINT)]
    NotTheVolumeDevice {
        /// The output root.
        path: PathBuf,
        /// What the device is instead.
        why: String,
    },
    /// The output root is another file system mounted inside the volume.
    #[error(
        "{path}: on a different file system than the forensics volume at {volume} (something is mounted there); give a directory of the volume itself, e.g. {volume}/captures"
    )]
    OtherFilesystem {
        /// The output root.
        path: PathBuf,
        /// The volume root.
        volume: PathBuf,
    },
    /// `..` in the output path (ambiguous with symlink-free traversal).
    #[error("{path}: '..' is not accepted in --output; give the path without it")]
    ParentComponent {
        /// The path.
        path: PathBuf,
    },
    /// Opening or creating failed (symlink, not a directory, exists, ...).
    #[error(transparent)]
    Fs(#[from] FsError),
    /// Another capture holds the lock.
    #[error(
        "{path}: another capture is running on this output root (lock held); wait for it to finish"
    )]
    Busy {
        /// The lock file.
        path: PathBuf,
    },
    /// Free space is clearly too small.
    #[error(
        "{path}: {free} free, but at least {needed} is needed ({why}). Free space, grow the volume, or use --allow-partial to capture what fits"
    )]
    NoSpace {
        /// The output root.
        path: PathBuf,
        /// Free (human).
        free: String,
        /// Needed (human).
        needed: String,
        /// How the figure was reached.
        why: String,
    },
    /// Another system call failed.
    #[error("{path}: {op}: {source}")]
    Sys {
        /// Path.
        path: PathBuf,
        /// Operation.
        op: &'static str,
        /// Cause.
        #[source]
        source: io::Error,
    },
}

/// What to do instead of writing outside the forensics volume: the refusal
/// names the volume, never the flag that writes onto the suspect's disks.
pub const ON_VOLUME_HINT: &str = "captures must not be written to the suspect's disks. Mount the forensics volume with its mount-helper (docs/break-glass.md) and run capture from it with no -o (it writes into the volume's captures/ folder), or give -o a directory under the volume's mountpoint";

fn missing_text() -> &'static str {
    "does not exist. -o names an existing directory on the forensics volume: capture makes a new capture directory inside it (memory.lime.zst, its .sha256, manifest.json), never a file of that name; with no -o it writes into the captures/ folder of the volume it runs from"
}

impl OutputError {
    fn sys(path: &Path, op: &'static str, e: impl Into<io::Error>) -> Self {
        Self::Sys {
            path: path.to_path_buf(),
            op,
            source: e.into(),
        }
    }
}

/// The default output root: `<volume>/captures` for the volume holding
/// `exe` (the canonical path of the running binary).
///
/// # Errors
/// [`OutputError::NoVolume`].
pub fn default_root(exe: &Path) -> Result<PathBuf, OutputError> {
    for dir in exe.ancestors().skip(1) {
        if is_marker(&dir.join(MARKER_FILE)) {
            return Ok(dir.join(CAPTURES_DIR));
        }
    }
    Err(OutputError::NoVolume {
        exe: exe.to_path_buf(),
    })
}

/// Whether `path` is a regular file (not a symlink) holding our marker.
fn is_marker(path: &Path) -> bool {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return false;
    };
    if !meta.file_type().is_file() || meta.len() > 64 << 10 {
        return false;
    }
    let Ok(bytes) = std::fs::read(path) else {
        return false;
    };
    serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .and_then(|v| v.get("toolkit").and_then(|t| t.as_str()).map(str::to_owned))
        .is_some_and(|t| t == MARKER_TOOLKIT)
}

/// The checked output root.
#[derive(Debug)]
pub struct Root {
    /// The open root.
    pub dir: Dir,
    /// The volume root, if the output is on one.
    pub volume: Option<PathBuf>,
    /// What the volume check could not prove or was told to relax (a Xen
    /// disk, the test model override): recorded in the manifest.
    pub warnings: Vec<String>,
}

/// mount-helper's test override, read by capture too: one more NVMe model
/// (qemu's, and only that one, see [`fv_ebs::locate::test_model_admitted`])
/// for the VM bench. Reported whenever it is set.
pub const TEST_MODEL_ENV: &str = "FV_TEST_ACCEPT_NVME_MODEL";

/// Opens the output root (creating the last component if it is the
/// volume's `captures` folder and missing), refusing symlinks anywhere, and
/// checks it is on a forensics volume (same file system as the marker)
/// unless `allow_any`; with `volume_id` (and not `allow_any`), that it is
/// on that EBS volume ([`check_volume_id`]).
///
/// # Errors
/// [`OutputError`] naming the problem.
pub fn open_root(
    path: &Path,
    allow_any: bool,
    volume_id: Option<&fv_ebs::VolumeId>,
) -> Result<Root, OutputError> {
    if path.components().any(|c| c == Component::ParentDir) {
        return Err(OutputError::ParentComponent {
            path: path.to_path_buf(),
        });
    }
    let abs = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .map_err(|e| OutputError::sys(path, "getcwd", e))?
            .join(path)
    };
    let volume = abs
        .ancestors()
        .find(|d| is_marker(&d.join(MARKER_FILE)))
        .map(Path::to_path_buf);
    // A missing root is said to be missing (not "not on a forensics
    // volume"), except the volume's own captures folder, made below.
    let is_volume_captures =
        volume.as_deref() == abs.parent() && abs.file_name() == Some(OsStr::new(CAPTURES_DIR));
    if !is_volume_captures
        && matches!(std::fs::symlink_metadata(&abs), Err(e) if e.kind() == io::ErrorKind::NotFound)
    {
        return Err(OutputError::Missing { path: abs });
    }
    let mut warnings = Vec::new();
    // Before anything is created: a marker file proves nothing (anyone who
    // can write a directory can plant one), the filesystem itself must be
    // the volume's.
    if !allow_any {
        let Some(vol) = &volume else {
            return Err(OutputError::NotOnVolume { path: abs });
        };
        check_volume_device(
            &Dir::open(vol)?,
            Path::new("/"),
            Path::new("/sys"),
            Path::new("/dev"),
        )
        .map_err(|why| OutputError::NotTheVolumeDevice {
            path: abs.clone(),
            why,
        })?;
        if let Some(id) = volume_id {
            let extra = std::env::var(TEST_MODEL_ENV).ok();
            warnings = check_volume_id(
                &Dir::open(vol)?,
                id,
                &fv_ebs::Roots::default(),
                extra.as_deref(),
                &fv_ebs::locate::KernelIdentify,
            )
            .map_err(|why| OutputError::NotTheVolumeId {
                path: abs.clone(),
                volume_id: id.to_string(),
                why,
            })?;
        }
    }
    let dir = match Dir::open(&abs) {
        Ok(d) => d,
        Err(FsError::Sys { source, .. })
            if source.raw_os_error() == Some(libc::ENOENT) && is_volume_captures =>
        {
            let parent = Dir::open(abs.parent().unwrap_or(Path::new("/")))?;
            parent.create_dir(OsStr::new(CAPTURES_DIR))?
        }
        Err(e) => return Err(e.into()),
    };
    if !allow_any {
        let Some(vol) = &volume else {
            return Err(OutputError::NotOnVolume { path: abs });
        };
        let vol_dir = Dir::open(vol)?;
        if vol_dir.stat()?.st_dev != dir.stat()?.st_dev {
            return Err(OutputError::OtherFilesystem {
                path: abs,
                volume: vol.clone(),
            });
        }
    }
    Ok(Root {
        dir,
        volume,
        warnings,
    })
}

/// Whether the filesystem holding `dir` is the forensics volume by device
/// identity: a block device (not tmpfs, overlay or a network filesystem),
/// not the disk that holds `root`'s filesystem (the suspect's `/`), whose
/// superblock, read through a node of `dev_root` checked to be that very
/// device, carries the volume's label. The superblock is read, never
/// written (1 KiB at most of the device).
///
/// # Errors
/// Why it is not: the text says what the device is instead.
pub fn check_volume_device(
    dir: &Dir,
    root: &Path,
    sys: &Path,
    dev_root: &Path,
) -> Result<(), String> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let st = dir.stat().map_err(|e| e.to_string())?;
    let (major, minor) = (libc::major(st.st_dev), libc::minor(st.st_dev));
    let root_dev = std::fs::metadata(root)
        .map_err(|e| format!("stat {}: {e}", root.display()))?
        .dev();
    if root_dev == st.st_dev {
        return Err(format!(
            "it is the filesystem of {} ({major}:{minor})",
            root.display()
        ));
    }
    let node = sys.join(format!("dev/block/{major}:{minor}"));
    let uevent = std::fs::read_to_string(node.join("uevent"))
        .map_err(|_| format!("its filesystem ({major}:{minor}) is not on a block device"))?;
    let name = uevent
        .lines()
        .find_map(|l| l.strip_prefix("DEVNAME="))
        .filter(|n| !n.is_empty() && !n.contains(".."))
        .ok_or_else(|| format!("no device name for {major}:{minor} in {}", node.display()))?;
    let disk_of = |p: &Path| -> Option<PathBuf> {
        let real = std::fs::canonicalize(p).ok()?;
        if real.join("partition").exists() {
            real.parent().map(Path::to_path_buf)
        } else {
            Some(real)
        }
    };
    let root_node = sys.join(format!(
        "dev/block/{}:{}",
        libc::major(root_dev),
        libc::minor(root_dev)
    ));
    if let (Some(a), Some(b)) = (disk_of(&node), disk_of(&root_node))
        && a == b
    {
        return Err(format!(
            "{name} is on the disk that holds {}",
            root.display()
        ));
    }
    let path = dev_root.join(name);
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(&path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let meta = file
        .metadata()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if !meta.file_type().is_block_device() || meta.rdev() != st.st_dev {
        return Err(format!(
            "{} is not the device {major}:{minor}",
            path.display()
        ));
    }
    let sb = fv_ebs::superblock::read(&mut file).map_err(|e| format!("{}: {e}", path.display()))?;
    if sb.label != fv_core::volume::LABEL {
        return Err(format!(
            "{} is labelled {:?}, not {:?}",
            path.display(),
            sb.label,
            fv_core::volume::LABEL
        ));
    }
    Ok(())
}

/// Security review S12: whether the filesystem holding `dir` is on the EBS
/// volume `id` itself, not merely on some disk labelled FORENSICS: the disk
/// under it (`roots.sys`) must be the NVMe device whose serial is the
/// volume ID without the dash and whose model is EBS's, as fv-ebs's
/// resolution (the one mount-helper uses, with the NVMe identify data where
/// it can be read) finds it. `extra_model` is mount-helper's test override
/// (`FV_TEST_ACCEPT_NVME_MODEL`), which admits qemu's model only. A Xen
/// block device (`xvd*`, not NVMe) shows no volume ID in the guest: it is
/// accepted with a warning saying the ID was not checked. Returns the
/// warnings to record.
///
/// # Errors
/// Why it is not that volume, in a sentence.
pub fn check_volume_id(
    dir: &Dir,
    id: &fv_ebs::VolumeId,
    roots: &fv_ebs::Roots,
    extra_model: Option<&str>,
    identify: &dyn fv_ebs::locate::IdentifySource,
) -> Result<Vec<String>, String> {
    use fv_ebs::locate::{self, EBS_MODEL, Expectation, LocateOptions};
    let st = dir.stat().map_err(|e| e.to_string())?;
    let dev = fv_ebs::DevT {
        major: libc::major(st.st_dev),
        minor: libc::minor(st.st_dev),
    };
    let table = fv_ebs::sysfs::BlockTable::scan(&roots.sys).map_err(|e| e.to_string())?;
    let Some((disk, _)) = table.by_dev(dev) else {
        return Err(format!(
            "its filesystem ({}:{}) is on no block device, so not on EBS volume {id}",
            dev.major, dev.minor
        ));
    };
    let Some(nvme) = &disk.nvme else {
        if disk.name.starts_with("xvd") {
            return Ok(vec![format!(
                "the output is on {}, a Xen block device: the guest sees no volume ID there, so it was not checked to be {id} (only the FORENSICS label and that it is not the root disk)",
                disk.name
            )]);
        }
        return Err(format!(
            "it is on {}, which is not an NVMe device, so not EBS volume {id} (on Nitro every EBS volume is NVMe; a loop device or another disk labelled FORENSICS is not the volume)",
            disk.name
        ));
    };
    if nvme.model != EBS_MODEL && !locate::test_model_admitted(extra_model, &nvme.model) {
        return Err(format!(
            "it is on {}, NVMe model {:?}, not an EBS volume",
            disk.name, nvme.model
        ));
    }
    if nvme.serial != id.serial() {
        return Err(format!(
            "it is on {}, whose NVMe serial {:?} is {}, not {id}",
            disk.name,
            nvme.serial,
            fv_ebs::VolumeId::from_serial(&nvme.serial)
                .map_or_else(|| "no volume ID".to_string(), |v| format!("volume {v}"))
        ));
    }
    // The serial matches in sysfs: confirm with the whole resolution
    // (identify data, one device only, not the root disk).
    let expect = Expectation::default();
    let found = locate::locate_once(&LocateOptions {
        volume_id: id,
        requested: None,
        protect: &[],
        expect: &expect,
        extra_model,
        allow_mounted: true,
        identify,
        roots,
    })
    .map_err(|e| format!("{id} does not resolve to {}: {e}", disk.name))?;
    if found.dev != disk.dev {
        return Err(format!(
            "it is on {}, but {id} is {}",
            disk.name, found.device
        ));
    }
    Ok(found.warnings)
}

/// Takes the per-root lock (`flock` on [`LOCK_FILE`], non-blocking); held
/// until the returned value is dropped (or the process exits).
///
/// # Errors
/// [`OutputError::Busy`] when another capture holds it.
pub fn lock(root: &Dir) -> Result<Flock<File>, OutputError> {
    let path = root.path().join(LOCK_FILE);
    let fd = openat(
        root,
        LOCK_FILE,
        OFlag::O_RDWR | OFlag::O_CREAT | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(0o600),
    )
    .map_err(|e| match e {
        Errno::ELOOP => OutputError::Fs(FsError::Symlink { path: path.clone() }),
        e => OutputError::sys(&path, "open lock", e),
    })?;
    Flock::lock(File::from(fd), FlockArg::LockExclusiveNonblock).map_err(|(_, e)| match e {
        Errno::EWOULDBLOCK => OutputError::Busy { path: path.clone() },
        e => OutputError::sys(&path, "flock", e),
    })
}

/// Free bytes for an unprivileged-equivalent writer (`f_bavail`; root may
/// use the reserved blocks too, but counting on them is not safe).
///
/// # Errors
/// [`OutputError::Sys`].
pub fn free_bytes(dir: &Dir) -> Result<u64, OutputError> {
    let st =
        nix::sys::statvfs::fstatvfs(dir).map_err(|e| OutputError::sys(dir.path(), "statvfs", e))?;
    Ok((st.blocks_available() as u64).saturating_mul(st.fragment_size() as u64))
}

/// A file name safe for any file system: `[A-Za-z0-9._-]`, others `_`.
pub fn sanitize(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect();
    let s = s.trim_start_matches('.').to_string();
    if s.is_empty() { "host".into() } else { s }
}

/// Creates `<base>`, or `<base>-2`, `-3`, ... if taken.
///
/// # Errors
/// [`OutputError::Fs`].
pub fn create_capture_dir(root: &Dir, base: &str) -> Result<(Dir, String), OutputError> {
    for n in 1..1000 {
        let name = if n == 1 {
            base.to_string()
        } else {
            format!("{base}-{n}")
        };
        match root.create_dir(OsStr::new(&name)) {
            Ok(d) => return Ok((d, name)),
            Err(FsError::Exists { .. }) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(OutputError::Fs(FsError::Exists {
        path: root.path().join(base),
    }))
}

/// Creates the reserve file of `len` bytes (allocated, so the space is
/// really held).
///
/// # Errors
/// [`OutputError::Sys`] (e.g. `ENOSPC`).
pub fn reserve(dir: &Dir, len: u64) -> Result<(), OutputError> {
    let path = dir.path().join(RESERVE_FILE);
    let file = dir.create_file(OsStr::new(RESERVE_FILE))?;
    let ilen = i64::try_from(len).unwrap_or(i64::MAX);
    match nix::fcntl::fallocate(file.as_fd(), nix::fcntl::FallocateFlags::empty(), 0, ilen) {
        Ok(()) => {}
        Err(Errno::EOPNOTSUPP) => {
            // File systems without fallocate: write the zeros.
            let zeros = vec![0u8; 1 << 20];
            let mut left = len;
            let mut w = &file;
            while left > 0 {
                let n = left.min(zeros.len() as u64) as usize;
                w.write_all(&zeros[..n])
                    .map_err(|e| OutputError::sys(&path, "write reserve", e))?;
                left -= n as u64;
            }
        }
        Err(e) => {
            drop(file);
            let _ = dir.remove_file(OsStr::new(RESERVE_FILE));
            return Err(OutputError::sys(&path, "fallocate reserve", e));
        }
    }
    fv_core::fs::sync_file(&file, &path)?;
    Ok(())
}

/// Removes the reserve (idempotent).
pub fn release_reserve(dir: &Dir) {
    // Missing is fine: released already.
    let _ = dir.remove_file(OsStr::new(RESERVE_FILE));
}

/// Writes `bytes` to `name` atomically: a temporary name, fsync, rename
/// without replace, fsync of the directory. Returns the SHA-256.
///
/// # Errors
/// [`OutputError`] from any step.
pub fn write_atomic(dir: &Dir, name: &str, bytes: &[u8]) -> Result<String, OutputError> {
    let tmp: OsString = format!(".{name}.tmp").into();
    let path = dir.path().join(name);
    let mut f = dir.create_file(&tmp)?;
    f.write_all(bytes)
        .map_err(|e| OutputError::sys(&path, "write", e))?;
    fv_core::fs::sync_file(&f, &path)?;
    drop(f);
    dir.rename(&tmp, OsStr::new(name), false)?;
    dir.sync()?;
    Ok(hex(&Sha256::digest(bytes)))
}

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn volume() -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap();
        std::fs::write(
            t.path().join(MARKER_FILE),
            br#"{"toolkit":"forensics-volume","format":1}"#,
        )
        .unwrap();
        t
    }

    #[test]
    fn default_root_is_the_volumes_captures() {
        let v = volume();
        std::fs::create_dir_all(v.path().join("bin/x86_64")).unwrap();
        let exe = v.path().join("bin/x86_64/capture");
        assert_eq!(default_root(&exe).unwrap(), v.path().join("captures"));
        let other = tempfile::tempdir().unwrap();
        assert!(matches!(
            default_root(&other.path().join("capture")),
            Err(OutputError::NoVolume { .. })
        ));
    }

    #[test]
    fn root_checks() {
        let v = volume();
        // M6: a marker in a directory of the host's root filesystem is not
        // the forensics volume; nothing is created before that is known.
        assert!(matches!(
            open_root(&v.path().join("captures"), false, None),
            Err(OutputError::NotTheVolumeDevice { .. })
        ));
        assert!(!v.path().join("captures").exists());
        // captures/ is created when missing.
        let r = open_root(&v.path().join("captures"), true, None).unwrap();
        assert_eq!(r.volume.as_deref(), Some(v.path()));
        // Outside any volume: refused unless allowed.
        let other = tempfile::tempdir().unwrap();
        assert!(matches!(
            open_root(other.path(), false, None),
            Err(OutputError::NotOnVolume { .. })
        ));
        assert!(open_root(other.path(), true, None).is_ok());
        // A fake marker is not a marker.
        std::fs::write(other.path().join(MARKER_FILE), b"{\"toolkit\":\"x\"}").unwrap();
        assert!(matches!(
            open_root(other.path(), false, None),
            Err(OutputError::NotOnVolume { .. })
        ));
        // Symlinked output: refused even with --allow-any-output.
        symlink(v.path().join("captures"), v.path().join("link")).unwrap();
        let err = open_root(&v.path().join("link"), true, None).unwrap_err();
        assert!(
            matches!(err, OutputError::Fs(FsError::Symlink { .. })),
            "{err}"
        );
        assert!(matches!(
            open_root(&v.path().join("captures/../captures"), true, None),
            Err(OutputError::ParentComponent { .. })
        ));
    }

    /// Issue 23: a missing -o is said to be missing (AVML's `capture
    /// OUT.lime` habit), and no refusal offers --allow-any-output, the flag
    /// that writes onto the suspect's disks; each says what to do instead.
    #[test]
    fn refusals_say_what_to_do_and_never_offer_the_flag() {
        let v = volume();
        let missing = v.path().join("memory.lime");
        let err = open_root(&missing, false, None).unwrap_err();
        assert!(matches!(err, OutputError::Missing { .. }), "{err}");
        assert!(err.to_string().contains("does not exist"), "{err}");
        assert!(!missing.exists());
        // Even with the flag, a missing root is not created.
        assert!(matches!(
            open_root(&missing, true, None),
            Err(OutputError::Missing { .. })
        ));
        let other = tempfile::tempdir().unwrap();
        let errs = [
            open_root(other.path(), false, None).unwrap_err(),
            open_root(&v.path().join("captures"), false, None).unwrap_err(),
            OutputError::OtherFilesystem {
                path: v.path().join("captures/x"),
                volume: v.path().to_path_buf(),
            },
        ];
        for err in errs {
            let text = err.to_string();
            assert!(!text.contains("allow-any-output"), "{text}");
            assert!(text.contains("captures"), "{text}");
        }
        assert!(ON_VOLUME_HINT.contains("mount-helper"));
    }

    #[test]
    fn lock_is_exclusive() {
        let v = volume();
        let r = open_root(v.path(), true, None).unwrap();
        let held = lock(&r.dir).unwrap();
        let r2 = open_root(v.path(), true, None).unwrap();
        assert!(matches!(lock(&r2.dir), Err(OutputError::Busy { .. })));
        drop(held);
        assert!(lock(&r2.dir).is_ok());
    }

    #[test]
    fn atomic_write_and_names() {
        let v = volume();
        let d = Dir::open(v.path()).unwrap();
        let (c, name) = create_capture_dir(&d, "i-1_20260101T000000Z").unwrap();
        let (_, name2) = create_capture_dir(&d, "i-1_20260101T000000Z").unwrap();
        assert_eq!(name2, format!("{name}-2"));
        let sha = write_atomic(&c, "manifest.json", b"{}\n").unwrap();
        assert_eq!(sha.len(), 64);
        assert!(write_atomic(&c, "manifest.json", b"{}\n").is_err());
        reserve(&c, 1 << 20).unwrap();
        assert_eq!(
            std::fs::metadata(c.path().join(RESERVE_FILE))
                .unwrap()
                .len(),
            1 << 20
        );
        release_reserve(&c);
        assert!(!c.path().join(RESERVE_FILE).exists());
        assert_eq!(sanitize("ip-10-0-0-1.ec2/x y"), "ip-10-0-0-1.ec2_x_y");
        assert_eq!(sanitize("..."), "host");
    }

    /// Identify data as a test sets it (the real ioctl needs an NVMe node).
    struct FakeIdentify(Option<(String, String)>);

    impl fv_ebs::locate::IdentifySource for FakeIdentify {
        fn identify(
            &self,
            _node: &Path,
        ) -> Result<fv_ebs::identify::IdentifyController, fv_ebs::locate::IdentifyUnavailable>
        {
            match &self.0 {
                Some((serial, model)) => Ok(fv_ebs::identify::IdentifyController::parse(
                    &fv_ebs::identify::build_blob(serial, model, "sdf"),
                )
                .unwrap()),
                None => Err(fv_ebs::locate::IdentifyUnavailable {
                    vanished: false,
                    reason: "not an NVMe device node".into(),
                }),
            }
        }
    }

    /// A fixture /sys, /dev, /proc whose only disk, `name`, holds the
    /// filesystem of `dir` (its device number), NVMe `(model, serial)` or
    /// none.
    fn disk_under(dir: &Dir, name: &str, nvme: Option<(&str, &str)>) -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap();
        let st = dir.stat().unwrap();
        let b = t.path().join("sys/block").join(name);
        for d in ["holders", "slaves", "device"] {
            std::fs::create_dir_all(b.join(d)).unwrap();
        }
        let dev = format!("{}:{}\n", libc::major(st.st_dev), libc::minor(st.st_dev));
        std::fs::write(b.join("dev"), dev).unwrap();
        std::fs::write(b.join("size"), "2097152\n").unwrap();
        std::fs::write(b.join("ro"), "0\n").unwrap();
        if let Some((model, serial)) = nvme {
            std::fs::write(b.join("device/model"), format!("{model:<40}\n")).unwrap();
            std::fs::write(b.join("device/serial"), format!("{serial:<20}\n")).unwrap();
        }
        std::fs::create_dir_all(t.path().join("dev")).unwrap();
        std::fs::write(t.path().join("dev").join(name), "").unwrap();
        std::fs::create_dir_all(t.path().join("proc/self")).unwrap();
        std::fs::write(t.path().join("proc/self/mountinfo"), "").unwrap();
        t
    }

    fn roots_of(t: &tempfile::TempDir) -> fv_ebs::Roots {
        fv_ebs::Roots {
            sys: t.path().join("sys"),
            dev: t.path().join("dev"),
            proc: t.path().join("proc"),
        }
    }

    /// S12: with a volume ID, the output's disk must be that EBS volume:
    /// its NVMe serial is the ID, its model EBS's; a loop device, another
    /// volume, instance store or qemu's model (without the test override)
    /// are refused; the override admits qemu's model only, loudly.
    #[test]
    fn the_volume_id_ties_the_output_to_its_ebs_volume() {
        use fv_ebs::locate::{EBS_MODEL, QEMU_TEST_MODEL};
        let v = volume();
        let d = Dir::open(v.path()).unwrap();
        let id = fv_ebs::VolumeId::parse("vol-0123456789abcdef0").unwrap();
        let serial = id.serial();
        let confirmed = FakeIdentify(Some((serial.clone(), EBS_MODEL.to_string())));
        let check =
            |name: &str, nvme: Option<(&str, &str)>, extra: Option<&str>, ident: &FakeIdentify| {
                let t = disk_under(&d, name, nvme);
                check_volume_id(&d, &id, &roots_of(&t), extra, ident)
            };
        // The volume itself.
        assert_eq!(
            check("nvme1n1", Some((EBS_MODEL, &serial)), None, &confirmed),
            Ok(vec![])
        );
        // Identify data unavailable: sysfs alone, said.
        let w = check(
            "nvme1n1",
            Some((EBS_MODEL, &serial)),
            None,
            &FakeIdentify(None),
        )
        .unwrap();
        assert!(
            w.iter()
                .any(|w| w.contains("identified by sysfs serial alone")),
            "{w:?}"
        );
        // Another volume.
        let e = check(
            "nvme1n1",
            Some((EBS_MODEL, "vol0fedcba9876543210")),
            None,
            &confirmed,
        )
        .unwrap_err();
        assert!(
            e.contains("volume vol-0fedcba9876543210, not vol-0123456789abcdef0"),
            "{e}"
        );
        // Identify data disagrees with sysfs.
        let liar = FakeIdentify(Some(("vol0fedcba9876543210".into(), EBS_MODEL.into())));
        let e = check("nvme1n1", Some((EBS_MODEL, &serial)), None, &liar).unwrap_err();
        assert!(e.contains("does not resolve"), "{e}");
        // A loop device (the review's relabelled ext4) or any other disk.
        let e = check("loop0", None, None, &confirmed).unwrap_err();
        assert!(e.contains("loop0, which is not an NVMe device"), "{e}");
        // Instance store, and qemu's model without the override.
        let e = check(
            "nvme1n1",
            Some(("Amazon EC2 NVMe Instance Storage", &serial)),
            None,
            &confirmed,
        )
        .unwrap_err();
        assert!(e.contains("not an EBS volume"), "{e}");
        let qemu = FakeIdentify(Some((serial.clone(), QEMU_TEST_MODEL.to_string())));
        assert!(check("nvme1n1", Some((QEMU_TEST_MODEL, &serial)), None, &qemu).is_err());
        // The override: qemu's model only, and loudly.
        let w = check(
            "nvme1n1",
            Some((QEMU_TEST_MODEL, &serial)),
            Some(QEMU_TEST_MODEL),
            &qemu,
        )
        .unwrap();
        assert!(w.iter().any(|w| w.contains("TEST OVERRIDE")), "{w:?}");
        assert!(
            check(
                "nvme1n1",
                Some(("Other NVMe Ctrl", &serial)),
                Some("Other NVMe Ctrl"),
                &confirmed
            )
            .is_err()
        );
        // Xen: no volume ID to see; accepted, saying it was not checked.
        let w = check("xvdf", None, None, &confirmed).unwrap();
        assert!(w.iter().any(|w| w.contains("not checked")), "{w:?}");
    }
}
