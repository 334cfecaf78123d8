//! Evidence mounts on analysis hosts: a volume restored from a suspect's
//! snapshot, mounted strictly read-only. The block device (and partition) is
//! set read-only with `BLKROSET` before mounting, the journal is not replayed
//! (`noload` for ext4, `norecovery,nouuid` for XFS), `nosuid,nodev,noexec`,
//! and the device's written-sector count (`/sys/block/X/stat`) is compared
//! before and after mounting.

use std::fs::File;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use fv_ebs::DevT;
use fv_ebs::locate::{Expectation, Located};
use fv_ebs::mountinfo;
use fv_ebs::superblock::FsKind;
use fv_ebs::sys;
use fv_ebs::sysfs::{self, BlockTable, Disk, Partition};
use nix::errno::Errno;
use nix::mount::MsFlags;

use crate::mountpoint;
pub use crate::ops::EvidenceProof;
use crate::ops::{
    MountError, Mounted, Undo, confirm_mounted, describe, device_fd_path, open_device,
    read_superblock, sys_mount,
};

/// What to mount an evidence volume with.
#[derive(Debug, Clone)]
pub struct EvidenceRequest {
    /// `--partition N`.
    pub partition: Option<u32>,
    /// `--mountpoint`.
    pub mountpoint: Option<PathBuf>,
    /// Label/UUID to expect, if any.
    pub expect: Expectation,
    /// `/run`.
    pub run_root: PathBuf,
    /// `/sys`.
    pub sys_root: PathBuf,
    /// `/dev`.
    pub dev_root: PathBuf,
    /// `/proc`.
    pub proc_root: PathBuf,
}

/// Flags of an evidence mount.
pub const EVIDENCE_FLAGS: MsFlags = MsFlags::MS_RDONLY
    .union(MsFlags::MS_NOSUID)
    .union(MsFlags::MS_NODEV)
    .union(MsFlags::MS_NOEXEC)
    .union(MsFlags::MS_NOATIME);

fn set_read_only(file: &File, path: &Path) -> Result<bool, MountError> {
    let ro_err = |source| MountError::ReadOnly {
        path: path.to_path_buf(),
        source,
    };
    sys::block_set_read_only(&file.as_fd(), true).map_err(ro_err)?;
    let ro = sys::block_is_read_only(&file.as_fd()).map_err(ro_err)?;
    if !ro {
        return Err(ro_err(Errno::EROFS));
    }
    Ok(ro)
}

/// Mounts a suspect's volume strictly read-only, proving nothing was written.
///
/// # Errors
/// [`MountError`]; on error nothing stays mounted (the device stays
/// read-only: that is never a harm).
pub fn mount_evidence(loc: &Located, req: &EvidenceRequest) -> Result<Mounted, MountError> {
    if let Some(m) = loc.mounts.first() {
        return Err(MountError::AlreadyMounted {
            device: loc.device.clone(),
            detail: format!(
                "{} is already mounted at {}: unmount it first",
                m.source,
                m.mount_point.display()
            ),
        });
    }
    let table = BlockTable::scan(&req.sys_root)?;
    let disk = table
        .disk(&loc.device)
        .ok_or_else(|| MountError::Vanished {
            path: loc.device_path.clone(),
            detail: "gone from sysfs".into(),
        })?;
    let part = pick_partition(disk, req.partition)?;
    let whole = open_device(&loc.device_path, loc.dev)?;
    let before = sysfs::written_sectors(&req.sys_root, &disk.name, None)?;
    let mut target = open_read_only(loc, disk, part, whole, &req.dev_root)?;
    let sb = read_superblock(&mut target.file, &target.path)?;
    req.expect
        .check(&sb)
        .map_err(|detail| MountError::Filesystem {
            path: target.path.clone(),
            detail,
        })?;
    let mounts = mountinfo::read(&req.proc_root)?;
    let name = match req.partition {
        Some(n) => format!("evidence-{}-p{n}", loc.volume_id),
        None => format!("evidence-{}", loc.volume_id),
    };
    let mut mp = match &req.mountpoint {
        Some(p) => mountpoint::given_mountpoint(p, &mounts)?,
        None => mountpoint::default_mountpoint(&req.run_root, &name, &mounts)?,
    };
    let mut undo = Undo {
        mounted: None,
        created: mp.created.take(),
    };
    let data = match sb.kind {
        FsKind::Ext4 => "noload",
        FsKind::Xfs => "norecovery,nouuid",
    };
    sys_mount(
        &device_fd_path(&target.file),
        &mp.fd_path(),
        sb.kind.mount_type(),
        EVIDENCE_FLAGS,
        data,
        &mp.path,
    )
    .map_err(|e| undo.fail(e))?;
    undo.mounted = Some(mp.path.clone());
    confirm_mounted(&mp.path, target.dev).map_err(|e| undo.fail(e))?;
    let after =
        sysfs::written_sectors(&req.sys_root, &disk.name, None).map_err(|e| undo.fail(e.into()))?;
    if after != before {
        return Err(undo.fail(MountError::Written {
            device: disk.name.clone(),
            before,
            after,
        }));
    }
    let mut warnings = Vec::new();
    if sb.needs_recovery {
        warnings.push("the ext4 journal needs recovery (unclean shutdown); it was NOT replayed (noload), so recent changes may be missing or inconsistent in this view".into());
    }
    let created_mountpoint = undo.created.is_some();
    undo.disarm();
    Ok(Mounted {
        mountpoint: mp.path.clone(),
        device_path: target.path,
        options: describe(EVIDENCE_FLAGS, data),
        filesystem: sb,
        adopted_stage0: false,
        created_mountpoint,
        toolkit: None,
        grow: None,
        evidence: Some(EvidenceProof {
            device: disk.name.clone(),
            mounted_device: target.name,
            written_sectors_before: before,
            written_sectors_after_mount: after,
            device_read_only: target.read_only,
        }),
        warnings,
    })
}

/// The partition asked for, or the whole disk when it has none; a disk
/// with partitions needs `--partition N`.
fn pick_partition(disk: &Disk, partition: Option<u32>) -> Result<Option<&Partition>, MountError> {
    let numbers = || {
        disk.partitions
            .iter()
            .map(|p| p.number.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let part =
        match (partition, disk.partitions.is_empty()) {
            (None, true) => None,
            (None, false) => {
                return Err(MountError::Partition {
                    device: disk.name.clone(),
                    detail: format!("has partitions ({}): pass --partition N", numbers()),
                });
            }
            (Some(n), _) => Some(disk.partitions.iter().find(|p| p.number == n).ok_or_else(
                || MountError::Partition {
                    device: disk.name.clone(),
                    detail: format!(
                        "has no partition {n} (partitions: {})",
                        if disk.partitions.is_empty() {
                            "none".into()
                        } else {
                            numbers()
                        }
                    ),
                },
            )?),
        };
    Ok(part)
}

/// The device to mount, opened and set read-only (the whole disk always,
/// and the partition too when one is mounted).
struct Target {
    file: File,
    path: PathBuf,
    dev: DevT,
    name: String,
    /// BLKROGET says read-only for each device set read-only.
    read_only: bool,
}

/// Sets the whole disk (`whole`, opened) read-only, then opens and sets
/// the partition read-only if one is mounted.
fn open_read_only(
    loc: &Located,
    disk: &Disk,
    part: Option<&Partition>,
    whole: File,
    dev_root: &Path,
) -> Result<Target, MountError> {
    let mut read_only = set_read_only(&whole, &loc.device_path)?;
    let target = match part {
        Some(p) => {
            let node = dev_root.join(&p.name);
            let file = open_device(&node, p.dev)?;
            read_only &= set_read_only(&file, &node)?;
            Target {
                file,
                path: node,
                dev: p.dev,
                name: p.name.clone(),
                read_only,
            }
        }
        None => Target {
            file: whole,
            path: loc.device_path.clone(),
            dev: loc.dev,
            name: disk.name.clone(),
            read_only,
        },
    };
    Ok(target)
}
