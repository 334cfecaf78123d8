//! Mounting the forensics volume (verify read-only, then read-write and
//! grow), the errors and the result of every mount (the evidence mount's
//! too: [`Mounted`], with its [`EvidenceProof`]), and the undo guard both
//! use.
//!
//! The forensics volume is first mounted `ro,noload` (or stage-0's
//! read-only mount is adopted), its marker and toolkit are verified, then it
//! is unmounted and mounted read-write with its journal
//! (`nosuid,nodev,noatime`). A `remount,rw` of a `noload` mount would keep
//! running without the journal (seen on Linux 6.18: the mount stays
//! `rw,norecovery`), which risks the evidence written onto the volume.

use std::ffi::OsString;
use std::fs::File;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use fv_core::fs::Dir;
use fv_ebs::locate::{Expectation, Located};
use fv_ebs::mountinfo::{self, MountEntry, MountinfoError};
use fv_ebs::superblock::{self, FsKind, Superblock, SuperblockError};
use fv_ebs::sysfs::SysfsError;
use fv_ebs::{DevT, sys};
use nix::errno::Errno;
use nix::mount::{MntFlags, MsFlags};
use serde::Serialize;

use crate::mountpoint::{self, Mountpoint, MountpointError};
use crate::verify::{self, Verified, VerifyError};

/// Mounting failed; anything this call mounted or created was undone
/// unless [`MountError::Cleanup`] says otherwise.
#[derive(Debug, thiserror::Error)]
pub enum MountError {
    /// The device node is gone or now names another device.
    #[error("{path}: the device vanished or changed ({detail}); was the volume detached?")]
    Vanished {
        /// Device node.
        path: PathBuf,
        /// What happened.
        detail: String,
    },
    /// The device could not be opened.
    #[error("{path}: cannot open the device: {source}")]
    Open {
        /// Device node.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// No ext4/XFS superblock.
    #[error("{path}: {source}")]
    Superblock {
        /// Device node.
        path: PathBuf,
        /// Cause.
        #[source]
        source: SuperblockError,
    },
    /// Wrong filesystem identity.
    #[error("{path}: {detail}")]
    Filesystem {
        /// Device node.
        path: PathBuf,
        /// What differs.
        detail: String,
    },
    /// The mountpoint was refused.
    #[error(transparent)]
    Mountpoint(#[from] MountpointError),
    /// Already mounted in a way we do not adopt.
    #[error("{device}: {detail}")]
    AlreadyMounted {
        /// Device.
        device: String,
        /// Where and why it is not adopted.
        detail: String,
    },
    /// umount(2) of the read-only mount (stage-0's, or our own verifying
    /// one) said EBUSY: the processes holding it are named (issue 23: a
    /// shell left inside the mount by `cd` was a bare EBUSY).
    #[error(
        "umount {}: EBUSY: the volume's read-only mount is in use, so it cannot be replaced by the read-write mount; it is left mounted read-only, nothing else was changed. {}",
        mountpoint.display(),
        busy_text(mountpoint, holders)
    )]
    Busy {
        /// The read-only mount.
        mountpoint: PathBuf,
        /// Who holds it (empty when the scan found nobody).
        holders: Vec<crate::holders::Holder>,
    },
    /// mount(2)/umount(2) failed.
    #[error("{what}: {source}")]
    Sys {
        /// The call and its arguments.
        what: String,
        /// errno.
        #[source]
        source: Errno,
    },
    /// The marker or toolkit did not verify (the volume was unmounted).
    #[error("{mountpoint}: {source}")]
    Verify {
        /// Where it was mounted.
        mountpoint: PathBuf,
        /// Cause.
        #[source]
        source: VerifyError,
    },
    /// Growing failed (the volume was unmounted).
    #[error("growing the filesystem to {blocks} blocks failed: {source}{}; unmounted", grow_hint(*source))]
    Grow {
        /// Target block count.
        blocks: u64,
        /// errno.
        #[source]
        source: Errno,
    },
    /// Evidence mode: could not make the device read-only.
    #[error("{path}: cannot set the block device read-only (BLKROSET): {source}; not mounted")]
    ReadOnly {
        /// Device node.
        path: PathBuf,
        /// errno.
        #[source]
        source: Errno,
    },
    /// Evidence mode: sectors were written.
    #[error(
        "{device}: written-sector count changed from {before} to {after} while mounting: evidence may have been modified; unmounted"
    )]
    Written {
        /// Device.
        device: String,
        /// Before.
        before: u64,
        /// After.
        after: u64,
    },
    /// Evidence mode: the partition to mount is not clear.
    #[error("{device}: {detail}")]
    Partition {
        /// Device.
        device: String,
        /// What is wrong.
        detail: String,
    },
    /// sysfs.
    #[error(transparent)]
    Sysfs(#[from] SysfsError),
    /// mountinfo.
    #[error(transparent)]
    Mountinfo(#[from] MountinfoError),
    /// Failed, and undoing the mount failed too: the system is not as it was.
    #[error("{primary}\nAND THE CLEAN-UP FAILED: {cleanup}")]
    Cleanup {
        /// The original failure.
        primary: Box<MountError>,
        /// What could not be undone.
        cleanup: String,
    },
}

fn grow_hint(errno: Errno) -> &'static str {
    match errno {
        Errno::EPERM => {
            " (online resize needs CAP_SYS_RESOURCE: run as full root, not in a restricted container; or pass --no-grow)"
        }
        Errno::EOPNOTSUPP => " (this kernel cannot resize this filesystem online; pass --no-grow)",
        // jbd2 refuses a handle larger than a quarter of the journal; a
        // resize handle needs about reserved-GDT-blocks + 5 credits (seen on
        // Debian's 6.1 with resize=2^32-1 (1023 reserved GDT blocks) and a
        // 16 MiB journal).
        Errno::ENOSPC => {
            " (the kernel refused the journal credits the resize needs: the image's reserved GDT blocks exceed a quarter of its journal; build the image with a larger journal, mkfs.ext4 -J size=64, or pass --no-grow)"
        }
        _ => "",
    }
}

/// An online grow.
#[derive(Debug, Clone, Serialize)]
pub struct Grow {
    /// Device size.
    pub device_bytes: u64,
    /// Filesystem size before.
    pub from_bytes: u64,
    /// Filesystem size after.
    pub to_bytes: u64,
}

/// A successful mount.
#[derive(Debug, Clone, Serialize)]
pub struct Mounted {
    /// Where.
    pub mountpoint: PathBuf,
    /// Mounted device node.
    pub device_path: PathBuf,
    /// Mount options.
    pub options: String,
    /// The filesystem.
    pub filesystem: Superblock,
    /// Stage-0's read-only mount was adopted.
    pub adopted_stage0: bool,
    /// We created the mountpoint directory.
    pub created_mountpoint: bool,
    /// Marker and toolkit (forensics volume).
    pub toolkit: Option<Verified>,
    /// Online grow (forensics volume).
    pub grow: Option<Grow>,
    /// Read-only proof (evidence mode).
    pub evidence: Option<EvidenceProof>,
    /// Things to know.
    pub warnings: Vec<String>,
}

/// Proof that an evidence mount wrote nothing.
#[derive(Debug, Clone, Serialize)]
pub struct EvidenceProof {
    /// Whole device.
    pub device: String,
    /// Mounted device (partition or whole).
    pub mounted_device: String,
    /// Sectors written (whole device, `/sys/block/X/stat`) before mounting.
    pub written_sectors_before: u64,
    /// And after mounting.
    pub written_sectors_after_mount: u64,
    /// The kernel read-only flag (BLKROGET) after BLKROSET.
    pub device_read_only: bool,
}

/// Undoes a mount and a created mountpoint on failure. `finish` reports
/// what could not be undone; dropping an armed guard does the same and
/// prints the problem (never silently).
#[derive(Debug)]
pub(crate) struct Undo {
    pub(crate) mounted: Option<PathBuf>,
    pub(crate) created: Option<(Dir, OsString)>,
}

impl Undo {
    pub(crate) fn run(&mut self) -> Result<(), String> {
        let mut problems = Vec::new();
        if let Some(path) = self.mounted.take() {
            if let Err(e) = nix::mount::umount2(&path, MntFlags::empty()) {
                problems.push(format!(
                    "umount {}: {e}; unmount it by hand",
                    path.display()
                ));
            }
        }
        if problems.is_empty() {
            if let Some(created) = self.created.take() {
                if let Err(e) = mountpoint::remove_created(&created) {
                    problems.push(format!("rmdir: {e}"));
                }
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("; "))
        }
    }

    pub(crate) fn fail(&mut self, primary: MountError) -> MountError {
        match self.run() {
            Ok(()) => primary,
            Err(cleanup) => MountError::Cleanup {
                primary: Box::new(primary),
                cleanup,
            },
        }
    }

    pub(crate) fn disarm(mut self) {
        self.mounted = None;
        self.created = None;
    }
}

impl Drop for Undo {
    fn drop(&mut self) {
        if let Err(e) = self.run() {
            eprintln!("mount-helper: clean-up after an error failed: {e}");
        }
    }
}

/// Opens a device node read-only and checks it is the block device `dev`.
pub(crate) fn open_device(path: &Path, dev: DevT) -> Result<File, MountError> {
    let file = File::open(path).map_err(|source| match source.raw_os_error() {
        Some(libc::ENOENT | libc::ENXIO | libc::ENODEV) => MountError::Vanished {
            path: path.to_path_buf(),
            detail: source.to_string(),
        },
        _ => MountError::Open {
            path: path.to_path_buf(),
            source,
        },
    })?;
    check_device(&file, path, dev)?;
    Ok(file)
}

/// The path that names a checked device through our own fd, given to
/// mount(2) as its source: the kernel's `lookup_bdev` follows the magic
/// link to the very inode we checked, so a device node swapped after the
/// check (mknod over `/dev/nvme…`) is never what gets mounted. The cost:
/// `/proc/mounts` shows this path as the mount's source.
pub(crate) fn device_fd_path(file: &File) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", file.as_raw_fd()))
}

pub(crate) fn check_device(file: &File, path: &Path, dev: DevT) -> Result<(), MountError> {
    let meta = file.metadata().map_err(|source| MountError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    let found = DevT::from_raw(meta.rdev());
    if !meta.file_type().is_block_device() || found != dev {
        return Err(MountError::Vanished {
            path: path.to_path_buf(),
            detail: format!("expected block device {dev}, found {found}"),
        });
    }
    Ok(())
}

pub(crate) fn read_superblock(file: &mut File, path: &Path) -> Result<Superblock, MountError> {
    superblock::read(file).map_err(|source| MountError::Superblock {
        path: path.to_path_buf(),
        source,
    })
}

pub(crate) fn sys_mount(
    source: &Path,
    target: &Path,
    fstype: &str,
    flags: MsFlags,
    data: &str,
    shown: &Path,
) -> Result<(), MountError> {
    let data = (!data.is_empty()).then_some(data);
    nix::mount::mount(Some(source), target, Some(fstype), flags, data).map_err(|e| {
        MountError::Sys {
            what: format!(
                "mount -t {fstype} -o {} {} {}",
                describe(flags, data.unwrap_or("")),
                source.display(),
                shown.display()
            ),
            source: e,
        }
    })
}

fn busy_text(mountpoint: &Path, holders: &[crate::holders::Holder]) -> String {
    if holders.is_empty() {
        return format!(
            "No process was found holding it (something mounted inside {}, a loop device or swap file on it?); free it, then run mount-helper again",
            mountpoint.display()
        );
    }
    format!(
        "Holding it (a shell whose current directory is inside it counts: `cd /`; or stop the process), then run mount-helper again: {}",
        holders
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ")
    )
}

/// umount(2) of a read-only mount of `dev` at `path`; EBUSY names the
/// processes holding it ([`crate::holders::scan`]).
fn umount_naming_holders(path: &Path, dev: DevT, proc_root: &Path) -> Result<(), MountError> {
    match nix::mount::umount2(path, MntFlags::empty()) {
        Ok(()) => Ok(()),
        Err(Errno::EBUSY) => Err(MountError::Busy {
            mountpoint: path.to_path_buf(),
            holders: crate::holders::scan(proc_root, dev),
        }),
        Err(e) => Err(MountError::Sys {
            what: format!("umount {}", path.display()),
            source: e,
        }),
    }
}

pub(crate) fn sys_umount(path: &Path) -> Result<(), MountError> {
    nix::mount::umount2(path, MntFlags::empty()).map_err(|e| MountError::Sys {
        what: format!("umount {}", path.display()),
        source: e,
    })
}

/// `mount -o` style text for flags and data.
pub fn describe(flags: MsFlags, data: &str) -> String {
    let mut parts = vec![if flags.contains(MsFlags::MS_RDONLY) {
        "ro"
    } else {
        "rw"
    }];
    for (flag, name) in [
        (MsFlags::MS_NOSUID, "nosuid"),
        (MsFlags::MS_NODEV, "nodev"),
        (MsFlags::MS_NOEXEC, "noexec"),
        (MsFlags::MS_NOATIME, "noatime"),
    ] {
        if flags.contains(flag) {
            parts.push(name);
        }
    }
    if !data.is_empty() {
        parts.push(data);
    }
    parts.join(",")
}

/// Confirms the filesystem at `path` is on `dev`.
pub(crate) fn confirm_mounted(path: &Path, dev: DevT) -> Result<(), MountError> {
    let st = Dir::open(path)
        .and_then(|d| d.stat())
        .map_err(|e| MountError::Vanished {
            path: path.to_path_buf(),
            detail: e.to_string(),
        })?;
    let found = DevT::from_raw(st.st_dev);
    if found != dev {
        return Err(MountError::Vanished {
            path: path.to_path_buf(),
            detail: format!("the filesystem mounted there is on {found}, not {dev}"),
        });
    }
    Ok(())
}

/// What to mount the forensics volume with.
#[derive(Debug, Clone)]
pub struct ForensicsRequest {
    /// `--mountpoint`.
    pub mountpoint: Option<PathBuf>,
    /// Label (FORENSICS) and UUID to expect.
    pub expect: Expectation,
    /// Grow to fill the device.
    pub grow: bool,
    /// `/run`.
    pub run_root: PathBuf,
    /// `/proc` (for mountinfo).
    pub proc_root: PathBuf,
}

/// Flags of the forensics volume's read-write mount.
pub const FORENSICS_FLAGS: MsFlags = MsFlags::MS_NOSUID
    .union(MsFlags::MS_NODEV)
    .union(MsFlags::MS_NOATIME);

/// The stage-0 mount to adopt, if any (read-only, whole device, once).
fn stage0<'a>(
    loc: &'a Located,
    wanted: Option<&Path>,
) -> Result<Option<&'a MountEntry>, MountError> {
    let already = |detail: String| MountError::AlreadyMounted {
        device: loc.device.clone(),
        detail,
    };
    match loc.mounts.as_slice() {
        [] => Ok(None),
        [m] if m.dev == loc.dev && m.read_only() && m.fs_type == "ext4" => match wanted {
            Some(want) if want != m.mount_point => Err(already(format!(
                "is mounted read-only at {}, not at --mountpoint {}; pass --mountpoint {} to adopt it",
                m.mount_point.display(),
                want.display(),
                m.mount_point.display()
            ))),
            _ => Ok(Some(m)),
        },
        many => Err(already(format!(
            "is already mounted ({}); only one read-only mount of the whole device (stage-0's) is adopted",
            many.iter()
                .map(|m| format!(
                    "{} at {} ({})",
                    m.source,
                    m.mount_point.display(),
                    m.options.join(",")
                ))
                .collect::<Vec<_>>()
                .join("; ")
        ))),
    }
}

/// Locates nothing: mounts the already located forensics volume.
///
/// # Errors
/// [`MountError`]; on error nothing of ours stays mounted or created (and
/// an adopted stage-0 mount is unmounted).
pub fn mount_forensics(loc: &Located, req: &ForensicsRequest) -> Result<Mounted, MountError> {
    let mut device = open_device(&loc.device_path, loc.dev)?;
    let sb = read_superblock(&mut device, &loc.device_path)?;
    let path = &loc.device_path;
    if sb.kind != FsKind::Ext4 {
        return Err(MountError::Filesystem {
            path: path.clone(),
            detail: "the forensics volume is ext4; this is XFS".into(),
        });
    }
    req.expect
        .check(&sb)
        .map_err(|detail| MountError::Filesystem {
            path: path.clone(),
            detail,
        })?;
    let adopted = stage0(loc, req.mountpoint.as_deref())?;
    let mut undo = Undo {
        mounted: None,
        created: None,
    };
    let toolkit;
    let mut mp: Mountpoint;
    if let Some(entry) = adopted {
        // Stage-0's mount: verify there, then replace it by a journaled
        // read-write mount on the same directory.
        undo.mounted = Some(entry.mount_point.clone());
        if let Err(e) = confirm_mounted(&entry.mount_point, loc.dev) {
            return Err(undo.fail(e));
        }
        toolkit = verify::verify_toolkit(&entry.mount_point).map_err(|source| {
            undo.fail(MountError::Verify {
                mountpoint: entry.mount_point.clone(),
                source,
            })
        })?;
        if let Err(e) = umount_naming_holders(&entry.mount_point, entry.dev, &req.proc_root) {
            if matches!(e, MountError::Busy { .. }) {
                // Stage-0's mount stays as it is: unmounting it fails for
                // the same reason, and the responder frees it and runs
                // mount-helper again.
                undo.mounted = None;
            }
            return Err(undo.fail(e));
        }
        undo.mounted = None;
        let mounts = mountinfo::read(&req.proc_root)?;
        mp = mountpoint::given_mountpoint(&entry.mount_point, &mounts)?;
    } else {
        let mounts = mountinfo::read(&req.proc_root)?;
        mp = match &req.mountpoint {
            Some(p) => mountpoint::given_mountpoint(p, &mounts)?,
            None => mountpoint::default_mountpoint(&req.run_root, &loc.volume_id, &mounts)?,
        };
        undo.created = mp.created.take();
        let ro = FORENSICS_FLAGS | MsFlags::MS_RDONLY;
        sys_mount(
            &device_fd_path(&device),
            &mp.fd_path(),
            "ext4",
            ro,
            "noload",
            &mp.path,
        )
        .map_err(|e| undo.fail(e))?;
        undo.mounted = Some(mp.path.clone());
        confirm_mounted(&mp.path, loc.dev).map_err(|e| undo.fail(e))?;
        toolkit = verify::verify_toolkit(&mp.path).map_err(|source| {
            undo.fail(MountError::Verify {
                mountpoint: mp.path.clone(),
                source,
            })
        })?;
        sys_umount(&mp.path).map_err(|e| undo.fail(e))?;
        undo.mounted = None;
    }
    // Still the same device and filesystem?
    check_device(&device, path, loc.dev).map_err(|e| undo.fail(e))?;
    let again = read_superblock(&mut device, path).map_err(|e| undo.fail(e))?;
    if again.uuid != sb.uuid {
        return Err(undo.fail(MountError::Vanished {
            path: path.clone(),
            detail: format!("filesystem UUID changed from {} to {}", sb.uuid, again.uuid),
        }));
    }
    sys_mount(
        &device_fd_path(&device),
        &mp.fd_path(),
        "ext4",
        FORENSICS_FLAGS,
        "",
        &mp.path,
    )
    .map_err(|e| undo.fail(e))?;
    undo.mounted = Some(mp.path.clone());
    confirm_mounted(&mp.path, loc.dev).map_err(|e| undo.fail(e))?;
    let mut warnings = Vec::new();
    let grow = if req.grow {
        Some(grow_ext4(&device, &mp.path, &again, &mut warnings).map_err(|e| undo.fail(e))?)
    } else {
        None
    };
    let created_mountpoint = undo.created.is_some();
    undo.disarm();
    Ok(Mounted {
        mountpoint: mp.path.clone(),
        device_path: path.clone(),
        options: describe(FORENSICS_FLAGS, ""),
        filesystem: sb,
        adopted_stage0: adopted.is_some(),
        created_mountpoint,
        toolkit: Some(toolkit),
        grow,
        evidence: None,
        warnings,
    })
}

fn grow_ext4(
    device: &File,
    mountpoint: &Path,
    sb: &Superblock,
    warnings: &mut Vec<String>,
) -> Result<Grow, MountError> {
    let device_bytes =
        sys::block_size_bytes(&device.as_fd()).map_err(|source| MountError::Sys {
            what: "BLKGETSIZE64".into(),
            source,
        })?;
    let mut blocks = device_bytes / sb.block_size;
    if !sb.bit64 && blocks > u64::from(u32::MAX) {
        warnings.push(format!(
            "the device ({device_bytes} bytes) is larger than this filesystem (without the 64bit feature) can address; grown to {} blocks",
            u32::MAX
        ));
        blocks = u64::from(u32::MAX);
    }
    let from_bytes = sb.size_bytes();
    if blocks <= sb.blocks {
        return Ok(Grow {
            device_bytes,
            from_bytes,
            to_bytes: from_bytes,
        });
    }
    let root = Dir::open(mountpoint).map_err(|e| MountError::Vanished {
        path: mountpoint.to_path_buf(),
        detail: e.to_string(),
    })?;
    sys::ext4_resize(&root, blocks).map_err(|source| MountError::Grow { blocks, source })?;
    Ok(Grow {
        device_bytes,
        from_bytes,
        to_bytes: blocks * sb.block_size,
    })
}
