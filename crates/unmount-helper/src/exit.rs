//! Documented exit codes of `unmount-helper` (docs/unmount-helper.md).
//! SSM documents and runbooks branch on these; never renumber one.

/// Unmounted, flushed: safe to detach.
pub const OK: i32 = 0;
/// An unexpected system error not covered below.
pub const FAILURE: i32 = 1;
/// Bad command line (clap's own code).
pub const USAGE: i32 = 2;
/// Malformed volume ID.
pub const BAD_INPUT: i32 = 3;
/// Nothing of that volume / at that path is mounted.
pub const NOT_MOUNTED: i32 = 4;
/// Processes hold files on the filesystem; they are listed, nothing unmounted.
pub const BUSY: i32 = 5;
/// umount(2) failed, or the mount is still there afterwards.
pub const UNMOUNT_FAILED: i32 = 6;
/// Could not move the running executable off the volume (memfd and /run copy).
pub const REEXEC_FAILED: i32 = 7;
/// Unmounted, but the device buffers could not be flushed: do not detach yet.
pub const FLUSH_FAILED: i32 = 8;
/// The volume is mounted in several places or the mountpoint's device is
/// protected (root); refused.
pub const REFUSED: i32 = 9;
/// Unmounted, but a read-only (evidence) device's written-sector count
/// changed during the unmount.
pub const EVIDENCE_WRITTEN: i32 = 10;
/// Needs root.
pub const NEEDS_ROOT: i32 = 16;
