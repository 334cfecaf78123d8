//! Documented exit codes of `mount-helper` (docs/mount-helper.md). SSM
//! documents and runbooks branch on these; never renumber one.

/// The volume was located (and mounted, for `mount`).
pub const OK: i32 = 0;
/// An unexpected system error (I/O, permission) not covered below.
pub const FAILURE: i32 = 1;
/// Bad command line (clap's own code).
pub const USAGE: i32 = 2;
/// Malformed volume ID or device name.
pub const BAD_INPUT: i32 = 3;
/// No device with this volume ID appeared within `--wait`.
pub const NOT_FOUND: i32 = 4;
/// More than one device claims this volume ID.
pub const AMBIGUOUS: i32 = 5;
/// The volume's device is protected (root, swap, holders, mounted
/// partitions, instance store, `--protect`).
pub const PROTECTED: i32 = 6;
/// The NVMe identify data or the requested device name contradict sysfs.
pub const IDENTITY_MISMATCH: i32 = 7;
/// Superblock check failed: not ext4/xfs, wrong label or UUID, wrong size.
pub const FILESYSTEM_MISMATCH: i32 = 8;
/// The forensics-volume marker or the toolkit's SHA256SUMS did not verify.
pub const TOOLKIT_UNVERIFIED: i32 = 9;
/// The mountpoint was refused (symlink, not a directory, not empty,
/// already a mountpoint) or could not be created safely.
pub const MOUNTPOINT_REFUSED: i32 = 10;
/// mount(2) or the remount read-write failed.
pub const MOUNT_FAILED: i32 = 11;
/// Growing the filesystem failed (it was unmounted again).
pub const GROW_FAILED: i32 = 12;
/// Evidence mode: the device could not be set read-only, or its written
/// sector count changed.
pub const EVIDENCE_WRITE: i32 = 13;
/// The device disappeared while it was being checked or mounted.
pub const DEVICE_VANISHED: i32 = 14;
/// The volume is already mounted in a way that cannot be adopted.
pub const ALREADY_MOUNTED: i32 = 15;
/// Needs root (CAP_SYS_ADMIN) for identify, mount or ioctls.
pub const NEEDS_ROOT: i32 = 16;
