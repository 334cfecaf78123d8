//! Unmounting so the volume is safe to detach: `syncfs`, refuse while any
//! process holds the filesystem (listed, never killed), `umount(2)` without
//! force or lazy detach, confirm it is gone from every mount namespace,
//! flush the device's buffers (`BLKFLSBUF`), remove the mountpoint stage-0
//! or mount-helper created under `/run/forensics-volume/`.

use std::collections::BTreeSet;
use std::fs::File;
use std::os::fd::AsFd;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use fv_core::fs::Dir;
use fv_ebs::locate::INSTANCE_STORE_MODEL;
use fv_ebs::mountinfo::{self, MountEntry, MountinfoError};
use fv_ebs::sysfs::{self, BlockTable, SysfsError};
use fv_ebs::{DevT, Roots, VolumeId, sys};
use nix::errno::Errno;
use nix::mount::MntFlags;
use serde::Serialize;

use crate::holders::{self, Holder};
use crate::mountpoint::BASE_DIR;

/// Unmounting failed; what is said in each variant is the state left.
#[derive(Debug, thiserror::Error)]
pub enum UnmountError {
    /// Nothing mounted there.
    #[error("{0}: nothing is mounted there")]
    NotMounted(PathBuf),
    /// The volume is not mounted.
    #[error("{0} is not mounted")]
    VolumeNotMounted(String),
    /// Mounted at several places: which one is meant?
    #[error("{device} is mounted at several places ({}); unmount each with --mountpoint", places.join(", "))]
    SeveralMounts {
        /// Device.
        device: String,
        /// Mountpoints.
        places: Vec<String>,
    },
    /// Refused: the root filesystem or a device we do not manage.
    #[error("{0}: refusing to unmount this (it is the root filesystem or not on a block device)")]
    Refused(PathBuf),
    /// `--volume-id` with `--mountpoint`: something else is mounted there.
    #[error(
        "{mountpoint}: refusing to unmount it: what is mounted there ({found}) is not {volume_id}. Nothing was unmounted"
    )]
    NotTheVolume {
        /// The mountpoint.
        mountpoint: PathBuf,
        /// The volume asked for.
        volume_id: String,
        /// The mount's source.
        found: String,
    },
    /// Processes hold the filesystem.
    #[error("{mountpoint} is busy; nothing was unmounted. Processes holding it (stop them, or cd out of it, then retry):\n{}", holders.iter().map(|h| format!("  {h}")).collect::<Vec<_>>().join("\n"))]
    Busy {
        /// Mountpoint.
        mountpoint: PathBuf,
        /// Who.
        holders: Vec<Holder>,
    },
    /// The kernel said busy though no process was found.
    #[error(
        "{mountpoint}: umount: {source}; no process holds it: look for a loop device, swap file, bind mount or NFS export on it. Nothing was unmounted"
    )]
    KernelBusy {
        /// Mountpoint.
        mountpoint: PathBuf,
        /// errno.
        #[source]
        source: Errno,
    },
    /// A system call failed.
    #[error("{what}: {source}")]
    Sys {
        /// The call.
        what: String,
        /// errno.
        #[source]
        source: Errno,
    },
    /// Still mounted after umount.
    #[error("{device} is still mounted after umount: {}. Do NOT detach", places.join("; "))]
    StillMounted {
        /// Device.
        device: String,
        /// Where (and in which process's namespace).
        places: Vec<String>,
    },
    /// Unmounted, but the buffers could not be flushed.
    #[error(
        "{device}: unmounted, but flushing the device buffers failed: {detail}. Do NOT detach yet; run sync and retry"
    )]
    Flush {
        /// Device node.
        device: PathBuf,
        /// What failed.
        detail: String,
    },
    /// mountinfo.
    #[error(transparent)]
    Mountinfo(#[from] MountinfoError),
    /// sysfs.
    #[error(transparent)]
    Sysfs(#[from] SysfsError),
}

/// What to unmount.
#[derive(Debug, Clone)]
pub enum Target {
    /// `--mountpoint`.
    Mountpoint(PathBuf),
    /// `--mountpoint` with `--volume-id`: the mountpoint, which must be a
    /// mount of this volume; anything else mounted there is refused.
    MountpointOf {
        /// The mountpoint.
        mountpoint: PathBuf,
        /// Volume ID.
        volume_id: String,
        /// The volume's current mounts (from `locate`).
        mounts: Vec<MountEntry>,
    },
    /// The mounts of this device (from `locate`), for `--volume-id`.
    Device {
        /// Volume ID.
        volume_id: String,
        /// Its mounts.
        mounts: Vec<MountEntry>,
    },
}

/// A finished unmount.
#[derive(Debug, Clone, Serialize)]
pub struct Unmounted {
    /// The mountpoint.
    pub mountpoint: PathBuf,
    /// Device name (`nvme1n1`, or `nvme1n1p1`).
    pub device: String,
    /// Device node.
    pub device_path: PathBuf,
    /// The EBS volume ID when the device shows one.
    pub volume_id: Option<String>,
    /// Filesystem type.
    pub fs_type: String,
    /// Sectors written to the whole device before and after umount.
    pub written_sectors_before: u64,
    /// After umount and flush.
    pub written_sectors_after: u64,
    /// The device's kernel read-only flag (an evidence mount).
    pub device_read_only: bool,
    /// The mountpoint directory was removed.
    pub mountpoint_removed: bool,
    /// Notes (e.g. why the mountpoint was kept).
    pub notes: Vec<String>,
    /// Always true in a returned value.
    pub safe_to_detach: bool,
}

fn normalize(path: &Path) -> PathBuf {
    path.components().collect()
}

/// The one mount entry to unmount.
fn pick(target: &Target, mounts: &[MountEntry]) -> Result<MountEntry, UnmountError> {
    match target {
        Target::Mountpoint(path) => {
            let want = normalize(path);
            mounts
                .iter()
                .rev()
                .find(|m| m.mount_point == want)
                .cloned()
                .ok_or(UnmountError::NotMounted(want))
        }
        Target::MountpointOf {
            mountpoint,
            volume_id,
            mounts: of_volume,
        } => {
            let m = pick(&Target::Mountpoint(mountpoint.clone()), mounts)?;
            if of_volume.iter().any(|v| v.dev == m.dev) {
                Ok(m)
            } else {
                Err(UnmountError::NotTheVolume {
                    mountpoint: m.mount_point,
                    volume_id: volume_id.clone(),
                    found: m.source,
                })
            }
        }
        Target::Device { volume_id, mounts } => {
            let places: BTreeSet<&Path> = mounts.iter().map(|m| m.mount_point.as_path()).collect();
            match (mounts.first(), places.len()) {
                (None, _) => Err(UnmountError::VolumeNotMounted(volume_id.clone())),
                (Some(m), 1) => Ok(m.clone()),
                (Some(m), _) => Err(UnmountError::SeveralMounts {
                    device: m.source.clone(),
                    places: places.iter().map(|p| p.display().to_string()).collect(),
                }),
            }
        }
    }
}

/// Mounts of `dev` in any mount namespace under `proc_root` (one process
/// per namespace is read).
fn mounted_anywhere(proc_root: &Path, dev: DevT) -> Vec<String> {
    let mut seen = BTreeSet::new();
    let mut places = Vec::new();
    let Ok(entries) = std::fs::read_dir(proc_root) else {
        return places;
    };
    for entry in entries.filter_map(Result::ok) {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let dir = entry.path();
        let Ok(ns) = std::fs::read_link(dir.join("ns/mnt")) else {
            continue;
        };
        if !seen.insert(ns.clone()) {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(dir.join("mountinfo")) else {
            continue;
        };
        let Ok(list) = mountinfo::parse(&text, &dir.join("mountinfo")) else {
            continue;
        };
        for m in list.iter().filter(|m| m.dev == dev) {
            places.push(format!(
                "{} (mount namespace {} of pid {pid})",
                m.mount_point.display(),
                ns.display()
            ));
        }
    }
    places
}

fn volume_id_of(table: &BlockTable, disk: &str) -> Option<String> {
    let nvme = table.disk(disk)?.nvme.as_ref()?;
    if nvme.model == INSTANCE_STORE_MODEL {
        return None;
    }
    // EBS, or a test VM's model whose serial is a volume ID.
    VolumeId::from_serial(&nvme.serial).map(|v| v.to_string())
}

/// Unmounts `target` so the volume is safe to detach.
///
/// # Errors
/// [`UnmountError`]; `Busy`, `NotMounted` and `Refused` leave everything
/// as it was.
pub fn unmount(target: &Target, roots: &Roots, run_root: &Path) -> Result<Unmounted, UnmountError> {
    let mounts = mountinfo::read(&roots.proc)?;
    let entry = pick(target, &mounts)?;
    let mountpoint = entry.mount_point.clone();
    let table = BlockTable::scan(&roots.sys)?;
    let Some((disk, part)) = table.by_dev(entry.dev) else {
        return Err(UnmountError::Refused(mountpoint));
    };
    if mountpoint == Path::new("/") {
        return Err(UnmountError::Refused(mountpoint));
    }
    let device = part.map_or(&disk.name, |p| &p.name).clone();
    let device_path = roots.dev.join(&device);

    // 1. Flush this filesystem, then make sure nobody holds it.
    sync_idle(&mountpoint, &roots.proc, entry.dev)?;
    let before = sysfs::written_sectors(&roots.sys, &disk.name, None)?;

    // 2. Unmount (no MNT_FORCE, no MNT_DETACH: a lazy unmount would report
    //    success while the filesystem stays alive).
    umount(&mountpoint, &roots.proc, entry.dev)?;

    // 3. Gone everywhere?
    let places = mounted_anywhere(&roots.proc, entry.dev);
    if !places.is_empty() {
        return Err(UnmountError::StillMounted { device, places });
    }

    // 4. Write back and drop the device's buffers.
    let device_read_only = flush_device(&device_path, entry.dev)?;
    let after = sysfs::written_sectors(&roots.sys, &disk.name, None)?;

    // 5. Remove the mountpoint stage-0 or mount-helper made.
    let mut notes = Vec::new();
    let mountpoint_removed = remove_mountpoint(&mountpoint, run_root, &mut notes);
    Ok(Unmounted {
        volume_id: volume_id_of(&table, &disk.name).or(match target {
            Target::Device { volume_id, .. } | Target::MountpointOf { volume_id, .. } => {
                Some(volume_id.clone())
            }
            Target::Mountpoint(_) => None,
        }),
        mountpoint,
        device,
        device_path,
        fs_type: entry.fs_type,
        written_sectors_before: before,
        written_sectors_after: after,
        device_read_only,
        mountpoint_removed,
        notes,
        safe_to_detach: true,
    })
}

/// `syncfs` on the filesystem at `mountpoint`, then [`UnmountError::Busy`]
/// if any process still holds it.
fn sync_idle(mountpoint: &Path, proc_root: &Path, dev: DevT) -> Result<(), UnmountError> {
    let dir = Dir::open(mountpoint).map_err(|e| UnmountError::Sys {
        what: format!("open {}", mountpoint.display()),
        source: Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
    })?;
    nix::unistd::syncfs(&dir).map_err(|source| UnmountError::Sys {
        what: format!("syncfs {}", mountpoint.display()),
        source,
    })?;
    drop(dir);
    let holders = holders::scan(proc_root, dev);
    if !holders.is_empty() {
        return Err(UnmountError::Busy {
            mountpoint: mountpoint.to_path_buf(),
            holders,
        });
    }
    Ok(())
}

/// `umount2` without flags; `EBUSY` says who holds it, if anyone can be
/// found.
fn umount(mountpoint: &Path, proc_root: &Path, dev: DevT) -> Result<(), UnmountError> {
    nix::mount::umount2(mountpoint, MntFlags::empty()).map_err(|source| match source {
        Errno::EBUSY => {
            let holders = holders::scan(proc_root, dev);
            if holders.is_empty() {
                UnmountError::KernelBusy {
                    mountpoint: mountpoint.to_path_buf(),
                    source,
                }
            } else {
                UnmountError::Busy {
                    mountpoint: mountpoint.to_path_buf(),
                    holders,
                }
            }
        }
        _ => UnmountError::Sys {
            what: format!("umount {}", mountpoint.display()),
            source,
        },
    })
}

/// Writes back and drops the buffers of the block device `device_path`
/// (checked to be `dev`); returns whether it is read-only.
fn flush_device(device_path: &Path, dev: DevT) -> Result<bool, UnmountError> {
    let flush_err = |detail: String| UnmountError::Flush {
        device: device_path.to_path_buf(),
        detail,
    };
    let node = File::open(device_path).map_err(|e| flush_err(format!("open: {e}")))?;
    let meta = node
        .metadata()
        .map_err(|e| flush_err(format!("stat: {e}")))?;
    if !meta.file_type().is_block_device() || DevT::from_raw(meta.rdev()) != dev {
        return Err(flush_err(format!(
            "{} is not block device {}",
            device_path.display(),
            dev
        )));
    }
    node.sync_all()
        .map_err(|e| flush_err(format!("fsync: {e}")))?;
    sys::block_flush_buffers(&node.as_fd()).map_err(|e| flush_err(format!("BLKFLSBUF: {e}")))?;
    Ok(sys::block_is_read_only(&node.as_fd()).unwrap_or(false))
}

/// Removes `mountpoint` if stage-0 or mount-helper made it (a directory
/// under `run_root`'s base directory); says in `notes` why not otherwise.
fn remove_mountpoint(mountpoint: &Path, run_root: &Path, notes: &mut Vec<String>) -> bool {
    let base = run_root.join(BASE_DIR);
    match (mountpoint.parent(), mountpoint.file_name()) {
        (Some(parent), Some(name)) if parent == base => {
            match Dir::open(parent).and_then(|d| d.remove_dir(name)) {
                Ok(()) => true,
                Err(e) => {
                    notes.push(format!("mountpoint kept: {e}"));
                    false
                }
            }
        }
        _ => {
            notes.push(format!(
                "mountpoint {} kept (only directories under {} are removed)",
                mountpoint.display(),
                base.display()
            ));
            false
        }
    }
}
