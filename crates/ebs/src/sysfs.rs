//! Block devices as sysfs shows them (`/sys/block/<disk>/{dev,size,ro,stat,
//! holders,slaves,<partition>/,device/{serial,model}}`), scanned into a
//! [`BlockTable`]. NVMe multipath hides per-path nodes `nvmeXcYnZ`: they are
//! skipped, the head node `nvmeXnY` stands for the namespace.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::DevT;

/// Reading sysfs failed in a way that is not a device coming or going.
#[derive(Debug, thiserror::Error)]
pub enum SysfsError {
    /// The block directory could not be listed.
    #[error("{path}: cannot list block devices: {source}")]
    List {
        /// The directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// An attribute could not be read or parsed.
    #[error("{path}: {detail}")]
    Attribute {
        /// The attribute file.
        path: PathBuf,
        /// What was wrong.
        detail: String,
    },
}

/// NVMe identity attributes of a namespace's controller (or subsystem).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NvmeAttrs {
    /// The controller (`nvme1`), when `device` is a link to one.
    pub controller: Option<String>,
    /// `serial`, trimmed.
    pub serial: String,
    /// `model`, trimmed.
    pub model: String,
}

/// A partition of a disk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Partition {
    /// Kernel name (`nvme1n1p1`).
    pub name: String,
    /// Device number.
    pub dev: DevT,
    /// Partition number.
    pub number: u32,
    /// `holders/` of the partition.
    pub holders: Vec<String>,
}

/// A whole block device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Disk {
    /// Kernel name (`nvme1n1`, `xvdf`, `dm-0`).
    pub name: String,
    /// Device number.
    pub dev: DevT,
    /// Size in bytes (`size` is in 512-byte sectors whatever the block size).
    pub size_bytes: u64,
    /// The kernel's read-only flag (`ro`).
    pub read_only: bool,
    /// Partitions.
    pub partitions: Vec<Partition>,
    /// `holders/` of the disk itself (dm, md, bcache on the whole disk).
    pub holders: Vec<String>,
    /// `slaves/`: what a dm/md device is built on.
    pub slaves: Vec<String>,
    /// NVMe attributes, for `nvme*` namespaces.
    pub nvme: Option<NvmeAttrs>,
}

impl Disk {
    /// Holders of the disk and of each partition, as `holder (of part)`.
    pub fn all_holders(&self) -> Vec<String> {
        let mut all = self.holders.clone();
        for part in &self.partitions {
            all.extend(
                part.holders
                    .iter()
                    .map(|h| format!("{h} (of {})", part.name)),
            );
        }
        all
    }
}

/// Every block device, from one scan.
#[derive(Debug, Clone, Default, Serialize)]
pub struct BlockTable {
    /// Disks in name order.
    pub disks: Vec<Disk>,
    /// Entries skipped, with why (hidden multipath nodes, vanished devices).
    pub skipped: Vec<(String, String)>,
}

/// `nvme<ctrl>c<ctrl>n<ns>`: a hidden per-path node of NVMe multipath.
pub fn is_hidden_multipath(name: &str) -> bool {
    let Some(rest) = name.strip_prefix("nvme") else {
        return false;
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    match rest
        .split_once('c')
        .and_then(|(a, b)| Some((a, b.split_once('n')?)))
    {
        Some((a, (b, c))) => digits(a) && digits(b) && digits(c),
        None => false,
    }
}

fn read_attr(path: &Path) -> std::io::Result<String> {
    std::fs::read_to_string(path).map(|s| s.trim_end_matches(['\n', ' ', '\0']).to_string())
}

fn list_names(path: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(path) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn read_dev(dir: &Path) -> Result<DevT, SysfsError> {
    let path = dir.join("dev");
    let text = read_attr(&path).map_err(|e| SysfsError::Attribute {
        path: path.clone(),
        detail: e.to_string(),
    })?;
    DevT::parse(&text).ok_or_else(|| SysfsError::Attribute {
        path,
        detail: format!("not major:minor: {text:?}"),
    })
}

fn read_u64(path: &Path) -> Result<u64, SysfsError> {
    let text = read_attr(path).map_err(|e| SysfsError::Attribute {
        path: path.to_path_buf(),
        detail: e.to_string(),
    })?;
    text.parse().map_err(|_| SysfsError::Attribute {
        path: path.to_path_buf(),
        detail: format!("not a number: {text:?}"),
    })
}

fn read_nvme(dir: &Path) -> Option<NvmeAttrs> {
    let device = dir.join("device");
    let serial = read_attr(&device.join("serial")).ok()?;
    let model = read_attr(&device.join("model")).ok()?;
    let controller = std::fs::read_link(&device)
        .ok()
        .and_then(|t| t.file_name().map(|n| n.to_string_lossy().into_owned()))
        .filter(|n| n.starts_with("nvme") && !n.starts_with("nvme-subsys"));
    Some(NvmeAttrs {
        controller,
        serial,
        model,
    })
}

fn read_disk(sys_block: &Path, name: &str) -> Result<Disk, SysfsError> {
    let dir = sys_block.join(name);
    let dev = read_dev(&dir)?;
    let size_bytes = read_u64(&dir.join("size"))?.saturating_mul(512);
    let read_only = read_attr(&dir.join("ro")).is_ok_and(|s| s == "1");
    let mut partitions = Vec::new();
    for child in list_names(&dir) {
        let part_dir = dir.join(&child);
        if !part_dir.join("partition").is_file() {
            continue;
        }
        let number = u32::try_from(read_u64(&part_dir.join("partition"))?).map_err(|_| {
            SysfsError::Attribute {
                path: part_dir.join("partition"),
                detail: "partition number out of range".to_string(),
            }
        })?;
        partitions.push(Partition {
            dev: read_dev(&part_dir)?,
            holders: list_names(&part_dir.join("holders")),
            name: child,
            number,
        });
    }
    Ok(Disk {
        name: name.to_string(),
        dev,
        size_bytes,
        read_only,
        partitions,
        holders: list_names(&dir.join("holders")),
        slaves: list_names(&dir.join("slaves")),
        nvme: if name.starts_with("nvme") {
            read_nvme(&dir)
        } else {
            None
        },
    })
}

impl BlockTable {
    /// Scans `<sys_root>/block`. A device that vanishes during the scan is
    /// listed in `skipped`, not an error (attach and detach are asynchronous).
    ///
    /// # Errors
    /// [`SysfsError::List`] when the directory cannot be read.
    pub fn scan(sys_root: &Path) -> Result<Self, SysfsError> {
        let sys_block = sys_root.join("block");
        let entries = std::fs::read_dir(&sys_block).map_err(|source| SysfsError::List {
            path: sys_block.clone(),
            source,
        })?;
        let mut names: Vec<String> = entries
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        let mut table = Self::default();
        for name in names {
            if is_hidden_multipath(&name) {
                table.skipped.push((
                    name,
                    "hidden NVMe multipath path (its head node is used)".into(),
                ));
                continue;
            }
            match read_disk(&sys_block, &name) {
                Ok(disk) => table.disks.push(disk),
                Err(e) => table.skipped.push((name, format!("unreadable ({e})"))),
            }
        }
        Ok(table)
    }

    /// The disk with this kernel name.
    pub fn disk(&self, name: &str) -> Option<&Disk> {
        self.disks.iter().find(|d| d.name == name)
    }

    /// The disk (and partition) with this device number.
    pub fn by_dev(&self, dev: DevT) -> Option<(&Disk, Option<&Partition>)> {
        self.disks.iter().find_map(|d| {
            if d.dev == dev {
                Some((d, None))
            } else {
                d.partitions
                    .iter()
                    .find(|p| p.dev == dev)
                    .map(|p| (d, Some(p)))
            }
        })
    }

    /// The disk (and partition) with this kernel name.
    pub fn by_name(&self, name: &str) -> Option<(&Disk, Option<&Partition>)> {
        self.disks.iter().find_map(|d| {
            if d.name == name {
                Some((d, None))
            } else {
                d.partitions
                    .iter()
                    .find(|p| p.name == name)
                    .map(|p| (d, Some(p)))
            }
        })
    }

    /// Whole disks under `name` through `slaves/` (dm/md stacks), including
    /// `name`'s own disk; cycles are cut.
    pub fn underlying_disks(&self, name: &str) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        let mut todo = vec![name.to_string()];
        while let Some(next) = todo.pop() {
            let Some((disk, _)) = self.by_name(&next) else {
                continue;
            };
            if out.contains(&disk.name) {
                continue;
            }
            out.push(disk.name.clone());
            todo.extend(disk.slaves.iter().cloned());
        }
        out
    }
}

/// Sectors written to the device since boot (field 7 of
/// `/sys/block/<disk>[/<part>]/stat`, Documentation/block/stat.rst).
///
/// # Errors
/// [`SysfsError::Attribute`].
pub fn written_sectors(
    sys_root: &Path,
    disk: &str,
    partition: Option<&str>,
) -> Result<u64, SysfsError> {
    let mut path = sys_root.join("block").join(disk);
    if let Some(part) = partition {
        path.push(part);
    }
    path.push("stat");
    let text = read_attr(&path).map_err(|e| SysfsError::Attribute {
        path: path.clone(),
        detail: e.to_string(),
    })?;
    text.split_whitespace()
        .nth(6)
        .and_then(|f| f.parse().ok())
        .ok_or_else(|| SysfsError::Attribute {
            path,
            detail: format!("no sectors-written field in {text:?}"),
        })
}
