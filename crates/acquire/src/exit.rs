//! Documented exit codes of a `capture` acquisition (docs/capture.md). SSM
//! documents and runbooks branch on these; never renumber one. Codes 20-29
//! mean a valid, finalized PARTIAL image and its manifest exist.
//! (`capture verify|extract|info` have their own codes, 0-4, see fv-analyze.)

/// Complete capture: image, sidecar and manifest written.
pub const OK: u8 = 0;
/// An unexpected system error not covered below.
pub const FAILURE: u8 = 1;
/// Bad command line (clap's own code).
pub const USAGE: u8 = 2;
/// Not running as root: nothing was written.
pub const NOT_ROOT: u8 = 10;
/// No memory source could be used (each reason is printed).
pub const NO_SOURCE: u8 = 11;
/// Malformed input before any memory was captured: LiME stream, kcore ELF
/// header, `/proc/iomem` (hidden addresses, no RAM).
pub const BAD_INPUT: u8 = 12;
/// The kernel refused to load the LiME module (signature, lockdown, wrong
/// kernel) or the module never served its dump.
pub const MODULE_REFUSED: u8 = 13;
/// The output root was refused: outside the forensics volume, a symlink,
/// not a directory, on another file system, or cannot be created.
pub const OUTPUT_REFUSED: u8 = 14;
/// Another capture is running on this output root.
pub const BUSY: u8 = 15;
/// Free space is clearly too small to start (see `--allow-partial`).
pub const NO_SPACE: u8 = 16;
/// Interrupted (SIGINT, SIGTERM, SIGHUP) before any memory was captured:
/// nothing kept.
pub const INTERRUPTED_EARLY: u8 = 17;
/// Partial: stopped by SIGINT, SIGTERM or SIGHUP.
pub const PARTIAL_INTERRUPTED: u8 = 20;
/// Partial: the output file system filled up.
pub const PARTIAL_NO_SPACE: u8 = 21;
/// Partial: the source ended early, stalled or failed mid-stream.
pub const PARTIAL_SOURCE: u8 = 22;
/// Partial: writing the image failed (other than a full disk).
pub const PARTIAL_WRITE: u8 = 23;
/// The image could not be finalized (no valid image; the directory holds
/// no manifest).
pub const FINALIZE_FAILED: u8 = 30;
