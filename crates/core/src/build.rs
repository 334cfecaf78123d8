//! Build identity.
//!
//! `build.sh` sets `FV_GIT_COMMIT` (the commit being built) and
//! `SOURCE_DATE_EPOCH` (that commit's time); both are baked in at compile time
//! so two builds of one commit are byte-identical and say which commit they are.

/// The toolkit's name, as it appears in the volume marker and in manifests.
pub const TOOLKIT: &str = "forensics-volume";

/// The toolkit version (the workspace version).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The git commit this binary was built from, or `unknown` for a build outside
/// `build.sh` (e.g. `cargo test`).
pub const GIT_COMMIT: &str = match option_env!("FV_GIT_COMMIT") {
    Some(commit) => commit,
    None => "unknown",
};

/// The string `--version` prints: `0.1.0 (commit 0123abcd…)`.
pub const LONG_VERSION: &str = const_format_version();

const fn const_format_version() -> &'static str {
    // `concat!` needs literals; `option_env!` in a const cannot be concatenated,
    // so the long form is assembled by the build when the commit is known.
    match option_env!("FV_LONG_VERSION") {
        Some(v) => v,
        None => concat!(env!("CARGO_PKG_VERSION"), " (commit unknown)"),
    }
}
