//! The helpers' test hooks (security review L10): hidden options that point
//! `mount-helper` and `unmount-helper` at fixture `/sys`, `/dev` and `/proc`
//! trees and choose how they re-execute.
//!
//! They exist only with this crate's cargo feature `test-hooks`, which the
//! helpers' own tests enable through a dev-dependency (so the binary under
//! test, `CARGO_BIN_EXE_…`, has them) and `./build.sh build` never does: the
//! shipped binaries reject these options as unknown and always read the
//! host's own trees and re-execute from a memfd (or a deleted copy) before
//! touching the volume. Both helpers flatten these types into their command
//! lines and read them through the accessors, so neither needs a `cfg`.

#[cfg(feature = "test-hooks")]
use std::path::PathBuf;

use fv_ebs::Roots;

use crate::reexec::Mode;

/// Where `/sys`, `/dev` and `/proc` are.
#[derive(Debug, Clone, clap::Args)]
pub struct RootArgs {
    /// sysfs root (tests only).
    #[cfg(feature = "test-hooks")]
    #[arg(long, hide = true, value_name = "DIR", default_value = "/sys")]
    pub sysfs_root: PathBuf,
    /// devtmpfs root (tests only).
    #[cfg(feature = "test-hooks")]
    #[arg(long, hide = true, value_name = "DIR", default_value = "/dev")]
    pub dev_root: PathBuf,
    /// procfs root (tests only).
    #[cfg(feature = "test-hooks")]
    #[arg(long, hide = true, value_name = "DIR", default_value = "/proc")]
    pub proc_root: PathBuf,
}

impl RootArgs {
    /// The roots to read: the host's own unless a test build was given others.
    pub fn roots(&self) -> Roots {
        #[cfg(feature = "test-hooks")]
        {
            Roots {
                sys: self.sysfs_root.clone(),
                dev: self.dev_root.clone(),
                proc: self.proc_root.clone(),
            }
        }
        #[cfg(not(feature = "test-hooks"))]
        {
            Roots::default()
        }
    }
}

/// How the helper moves its executable off the volume.
#[derive(Debug, Clone, clap::Args)]
pub struct ReexecArg {
    /// How to move the executable off the volume (tests only).
    #[cfg(feature = "test-hooks")]
    #[arg(long, hide = true, value_enum, default_value_t = Mode::Auto)]
    pub reexec: Mode,
}

impl ReexecArg {
    /// [`Mode::Auto`] unless a test build chose another mode.
    pub fn mode(&self) -> Mode {
        #[cfg(feature = "test-hooks")]
        {
            self.reexec
        }
        #[cfg(not(feature = "test-hooks"))]
        {
            Mode::Auto
        }
    }
}
