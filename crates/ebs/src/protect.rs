//! The devices that must never be chosen, and why: whatever backs `/`
//! (mountinfo major:minor -> `/sys/dev/block`, up through dm/md `slaves/` to
//! the whole disks), any disk with a mounted partition, swap (`/proc/swaps`),
//! `holders/` (LVM, md, dm). Instance store and `--protect` are decided where
//! the device's identity is known ([`crate::locate`]).

use std::collections::BTreeMap;
use std::os::unix::fs::FileTypeExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::mountinfo::{self, MountEntry, MountinfoError};
use crate::sysfs::{BlockTable, SysfsError};
use crate::{DevT, Roots};

/// One reason a disk is protected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Protection {
    /// The root filesystem lives on it (directly or under dm/md).
    BacksRoot {
        /// The device `/` is mounted from.
        via: String,
    },
    /// It or one of its partitions is mounted.
    Mounted {
        /// Disk or partition name.
        device: String,
        /// Where.
        mount_point: PathBuf,
        /// Mounted read-only.
        read_only: bool,
        /// Filesystem type.
        fs_type: String,
    },
    /// It or one of its partitions is active swap.
    Swap {
        /// As listed in /proc/swaps.
        device: String,
    },
    /// Something is built on it (LVM, md, dm-crypt, bcache).
    Holders {
        /// `holder (of partition)`.
        holders: Vec<String>,
    },
    /// Its NVMe model is instance store (ephemeral, never ours).
    InstanceStore,
    /// Named with `--protect`.
    ProtectedVolume {
        /// The volume ID.
        volume_id: String,
    },
}

impl std::fmt::Display for Protection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::BacksRoot { via } => write!(f, "backs the root filesystem (/ on {via})"),
            Self::Mounted {
                device,
                mount_point,
                read_only,
                fs_type,
            } => write!(
                f,
                "{device} is mounted at {} ({fs_type}, {})",
                mount_point.display(),
                if *read_only { "ro" } else { "rw" }
            ),
            Self::Swap { device } => write!(f, "active swap ({device})"),
            Self::Holders { holders } => write!(f, "has holders: {}", holders.join(", ")),
            Self::InstanceStore => f.write_str("instance store (never chosen)"),
            Self::ProtectedVolume { volume_id } => write!(f, "protected by --protect {volume_id}"),
        }
    }
}

/// Reading the system's state failed.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// sysfs.
    #[error(transparent)]
    Sysfs(#[from] SysfsError),
    /// mountinfo.
    #[error(transparent)]
    Mountinfo(#[from] MountinfoError),
    /// /proc/swaps.
    #[error("{path}: {source}")]
    Swaps {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// One consistent look at block devices, mounts and swap.
#[derive(Debug, Clone)]
pub struct SystemState {
    /// Block devices.
    pub table: BlockTable,
    /// Mounts (of this process's namespace).
    pub mounts: Vec<MountEntry>,
    /// Swap devices and files, as listed.
    pub swaps: Vec<String>,
    /// Protections per disk name.
    pub protections: BTreeMap<String, Vec<Protection>>,
    /// Things the scan could not resolve (said in the report, not fatal).
    pub notes: Vec<String>,
}

/// Undoes the octal escapes /proc/swaps uses for spaces.
fn unescape_swaps(field: &str) -> String {
    field
        .replace("\\040", " ")
        .replace("\\011", "\t")
        .replace("\\012", "\n")
        .replace("\\134", "\\")
}

/// Parses `/proc/swaps` (header line, then `Filename Type Size Used Priority`).
pub fn parse_swaps(text: &str) -> Vec<String> {
    text.lines()
        .skip(1)
        .filter_map(|line| line.split_whitespace().next())
        .map(unescape_swaps)
        .collect()
}

impl SystemState {
    /// Scans sysfs, mountinfo and swaps under `roots`.
    ///
    /// # Errors
    /// [`StateError`] when sysfs, mountinfo or /proc/swaps cannot be read
    /// (a missing /proc/swaps means no swap support and is not an error).
    pub fn scan(roots: &Roots) -> Result<Self, StateError> {
        let table = BlockTable::scan(&roots.sys)?;
        let mounts = mountinfo::read(&roots.proc)?;
        let swaps_path = roots.proc.join("swaps");
        let swaps = match std::fs::read_to_string(&swaps_path) {
            Ok(text) => parse_swaps(&text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(source) => {
                return Err(StateError::Swaps {
                    path: swaps_path,
                    source,
                });
            }
        };
        Ok(Self::from_parts(table, mounts, swaps, &roots.dev))
    }

    /// Computes protections from already-read parts.
    pub fn from_parts(
        table: BlockTable,
        mounts: Vec<MountEntry>,
        swaps: Vec<String>,
        dev_root: &Path,
    ) -> Self {
        let mut state = Self {
            table,
            mounts,
            swaps,
            protections: BTreeMap::new(),
            notes: Vec::new(),
        };
        state.compute(dev_root);
        state
    }

    /// The kernel name (disk or partition) of `/dev/...` or a mount's device.
    fn resolve(&self, dev: Option<DevT>, source: &str, dev_root: &Path) -> Option<String> {
        if let Some(dev) = dev.filter(|d| d.major != 0) {
            if let Some((disk, part)) = self.table.by_dev(dev) {
                return Some(part.map_or(&disk.name, |p| &p.name).clone());
            }
        }
        let rel = source.strip_prefix("/dev/")?;
        // Follow /dev/mapper/x, /dev/disk/by-*/... to the node's device number.
        if let Ok(meta) = std::fs::metadata(dev_root.join(rel)) {
            if meta.file_type().is_block_device() {
                if let Some((disk, part)) = self.table.by_dev(DevT::from_raw(meta.rdev())) {
                    return Some(part.map_or(&disk.name, |p| &p.name).clone());
                }
            }
        }
        let base = Path::new(rel).file_name()?.to_str()?;
        self.table
            .by_name(base)
            .map(|(disk, part)| part.map_or(&disk.name, |p| &p.name).clone())
    }

    fn protect(&mut self, name: &str, reason: Protection) {
        let Some((disk, _)) = self.table.by_name(name) else {
            return;
        };
        let list = self.protections.entry(disk.name.clone()).or_default();
        if !list.contains(&reason) {
            list.push(reason);
        }
    }

    fn compute(&mut self, dev_root: &Path) {
        if let Some(root) = mountinfo::root_mount(&self.mounts).cloned() {
            match self.resolve(Some(root.dev), &root.source, dev_root) {
                Some(name) => {
                    let via = format!("{name}, {}", root.fs_type);
                    for disk in self.table.underlying_disks(&name) {
                        self.protect(&disk, Protection::BacksRoot { via: via.clone() });
                    }
                }
                None => self.notes.push(format!(
                    "the root filesystem ({} from {:?}, {}) is not on a block device listed in sysfs",
                    root.fs_type, root.source, root.dev
                )),
            }
        }
        for entry in self.mounts.clone() {
            if entry.dev.major == 0 && !entry.source.starts_with("/dev/") {
                continue;
            }
            if let Some(name) = self.resolve(Some(entry.dev), &entry.source, dev_root) {
                let reason = Protection::Mounted {
                    device: name.clone(),
                    mount_point: entry.mount_point.clone(),
                    read_only: entry.read_only(),
                    fs_type: entry.fs_type.clone(),
                };
                self.protect(&name, reason);
            }
        }
        for swap in self.swaps.clone() {
            if let Some(name) = self.resolve(None, &swap, dev_root) {
                for disk in self.table.underlying_disks(&name) {
                    self.protect(
                        &disk,
                        Protection::Swap {
                            device: swap.clone(),
                        },
                    );
                }
            }
        }
        for disk in self.table.disks.clone() {
            let holders = disk.all_holders();
            if !holders.is_empty() {
                self.protect(&disk.name, Protection::Holders { holders });
            }
        }
    }

    /// Protections of the disk `name` (empty if none).
    pub fn protections_of(&self, name: &str) -> &[Protection] {
        self.protections.get(name).map_or(&[], Vec::as_slice)
    }

    /// Mounts of the disk `name` or any of its partitions.
    pub fn mounts_of(&self, name: &str) -> Vec<MountEntry> {
        let Some(disk) = self.table.disk(name) else {
            return Vec::new();
        };
        self.mounts
            .iter()
            .filter(|m| m.dev == disk.dev || disk.partitions.iter().any(|p| p.dev == m.dev))
            .cloned()
            .collect()
    }
}
