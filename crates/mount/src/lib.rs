//! Mounting and unmounting EBS volumes without harming a suspect host.
//!
//! - [`mountpoint`]: mountpoints under `/run/forensics-volume/` (tmpfs),
//!   created 0700; symlinks, non-directories, non-empty directories and
//!   existing mountpoints are refused.
//! - [`verify`]: the forensics-volume marker and the toolkit's
//!   `SHA256SUMS`, checked on the read-only mount before anything runs.
//! - [`ops`]: the forensics volume's mount (adopting stage-0's read-only
//!   mount, journaled read-write mount, online grow with
//!   `EXT4_IOC_RESIZE_FS`), and the mount errors.
//! - [`evidence`]: evidence mounts (BLKROSET, `ro,noload` /
//!   `ro,norecovery,nouuid`, written-sector proof from `/sys/block/X/stat`).
//! - [`hooks`]: the helpers' hidden test options, compiled only with the
//!   `test-hooks` feature (tests), never into the shipped binaries.
//! - [`holders`]: which processes hold a filesystem (`/proc/*/{fd,cwd,root,exe,maps}`).
//! - [`reexec`]: running from a memfd (or a deleted copy under `/run`) so
//!   the helper's own executable does not hold the volume it unmounts.
//! - [`unmount`]: syncfs, quiescence check, umount, confirmation in every
//!   mount namespace, BLKFLSBUF, mountpoint removal.
//!
//! Every operation that fails undoes what it did, and says so when it cannot.

pub mod evidence;
pub mod holders;
pub mod hooks;
pub mod mountpoint;
pub mod ops;
pub mod reexec;
pub mod unmount;
pub mod verify;
