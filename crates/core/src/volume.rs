//! Names on the forensics volume, in one place for every tool and `build.sh`.
//!
//! The layout (README.md, "The volume"): the marker [`MARKER_FILE`] and
//! [`SUMS_FILE`] at the root, binaries under `bin/<arch>/`, SSM document copies
//! under `ssm/`, user-supplied LiME modules under `modules/<kernel release>/`,
//! captures under [`CAPTURES_DIR`].

/// The ext4 label of the forensics volume (at most 16 bytes).
pub const LABEL: &str = "FORENSICS";
/// The marker file at the volume root: JSON naming the toolkit build.
pub const MARKER_FILE: &str = "forensics-volume.json";
/// `sha256sum -c` list of every file the toolkit runs, relative to the root.
pub const SUMS_FILE: &str = "SHA256SUMS";
/// Binaries, one folder per architecture (`uname -m`: `x86_64`, `aarch64`).
pub const BIN_DIR: &str = "bin";
/// Copies of the rendered SSM documents.
pub const SSM_DIR: &str = "ssm";
/// `modules/<uname -r>/lime.ko`: LiME modules supplied by the user.
pub const MODULES_DIR: &str = "modules";
/// Default output root for captures.
pub const CAPTURES_DIR: &str = "captures";
/// The marker's `toolkit` value.
pub const MARKER_TOOLKIT: &str = crate::build::TOOLKIT;
/// The marker's `format` value; bumped when the layout changes incompatibly.
pub const MARKER_FORMAT: u32 = 1;
