//! Finding an attached EBS volume's block device by its volume ID, and
//! refusing every device that must not be touched.
//!
//! - [`volume_id`]: [`VolumeId`] (`vol-` + 17 or legacy 8 hex) and
//!   [`RequestedDevice`] (`sdf`, `/dev/sdf`, `xvdf`).
//! - [`sysfs`]: [`sysfs::BlockTable`], one scan of `/sys/block`; hidden NVMe
//!   multipath nodes (`nvmeXcYnZ`) are skipped.
//! - [`mountinfo`]: `/proc/self/mountinfo` parsing.
//! - [`identify`]: NVMe Identify Controller data (serial @4, model @24,
//!   EBS's attached-as device name @3072), parsed from the 4096-byte blob.
//! - [`superblock`]: ext4 (magic 0xEF53 @1080, UUID @1128, label @1144) and
//!   XFS identity without mounting.
//! - [`protect`]: the devices never chosen: whatever backs `/`, disks with a
//!   mounted partition, swap, holders (LVM/md/dm), instance store, `--protect`.
//! - [`locate`]: the whole resolution with a report of every candidate and
//!   why it was rejected.
//! - [`sys`]: the ioctls (NVMe admin command 0xC0484E41, BLKGETSIZE64,
//!   BLKROSET/BLKROGET, BLKFLSBUF, EXT4_IOC_RESIZE_FS); the only `unsafe`.
//!
//! Facts relied on (AWS "Amazon EBS and NVMe", amazon-ec2-utils `ebsnvme-id`,
//! linux drivers/nvme/host/sysfs.c): on Nitro the NVMe serial is the volume ID
//! without the dash and the model is `Amazon Elastic Block Store`; instance
//! store has the same PCI vendor but the model `Amazon EC2 NVMe Instance
//! Storage`; on Xen no volume ID is visible in the guest. `/dev/disk/by-id`
//! links are hints only; sysfs and identify data decide.
//!
//! Every root (`/sys`, `/dev`, `/proc`) is a parameter ([`Roots`]) so tests
//! run on fixture trees.

use std::fmt;
use std::path::PathBuf;

use serde::Serialize;

pub mod identify;
pub mod locate;
pub mod mountinfo;
pub mod protect;
pub mod superblock;
pub mod sys;
pub mod sysfs;
pub mod volume_id;

pub use volume_id::{InputError, RequestedDevice, VolumeId};

/// Where sysfs, devtmpfs and procfs are (fixture trees in tests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Roots {
    /// `/sys`.
    pub sys: PathBuf,
    /// `/dev`.
    pub dev: PathBuf,
    /// `/proc`.
    pub proc: PathBuf,
}

impl Default for Roots {
    fn default() -> Self {
        Self {
            sys: PathBuf::from("/sys"),
            dev: PathBuf::from("/dev"),
            proc: PathBuf::from("/proc"),
        }
    }
}

/// A device number, `major:minor`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DevT {
    /// Major number.
    pub major: u32,
    /// Minor number.
    pub minor: u32,
}

impl DevT {
    /// Parses `259:0`.
    pub fn parse(text: &str) -> Option<Self> {
        let (major, minor) = text.trim().split_once(':')?;
        Some(Self {
            major: major.parse().ok()?,
            minor: minor.parse().ok()?,
        })
    }

    /// From a `st_dev`/`st_rdev` value.
    pub fn from_raw(raw: u64) -> Self {
        Self {
            major: libc::major(raw),
            minor: libc::minor(raw),
        }
    }
}

impl fmt::Display for DevT {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.major, self.minor)
    }
}

impl Serialize for DevT {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}
