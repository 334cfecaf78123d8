//! Helpers shared by the cross-binary tests: where the workspace and the
//! built artifacts (`dist/`) are.

use std::path::PathBuf;

/// The workspace root (the directory holding `build.sh`).
pub fn workspace_root() -> PathBuf {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    here.parent().map(PathBuf::from).unwrap_or(here)
}

/// `dist/` under the workspace root, or `$FV_DIST` when set.
pub fn dist_dir() -> PathBuf {
    std::env::var_os("FV_DIST").map_or_else(|| workspace_root().join("dist"), PathBuf::from)
}
