//! Why a LiME source could not be opened ([`LimeSourceError`]).

use std::io;
use std::path::{Path, PathBuf};

use nix::errno::Errno;

/// [`LimeSourceError::NoStream`]'s message: never "within 0 s".
fn no_stream(path: &Path, fifo: &str, waited: u64) -> String {
    if waited == 0 {
        format!(
            "{} was loaded, and its init_module returned without writing a dump into {fifo}: is it LiME, built for this kernel, and not already loaded (lsmod | grep lime; rmmod lime)?",
            path.display()
        )
    } else {
        format!(
            "{} was loaded but never wrote its dump into {fifo} within {waited} s",
            path.display()
        )
    }
}

/// Why a LiME source could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum LimeSourceError {
    /// The file cannot be opened.
    #[error("{path}: {source}")]
    Open {
        /// Path.
        path: PathBuf,
        /// Cause.
        #[source]
        source: io::Error,
    },
    /// `lime-module:auto`: the volume has no module for this kernel.
    #[error(
        "lime-module:auto: no LiME module for kernel {release} on this forensics volume: {path}: {source}. Build LiME for exactly this kernel (LiME's source, or Debian/Ubuntu's lime-forensics-dkms, against the headers of {release}) on a machine running the same kernel, copy lime.ko to {path} and run again; or give --source lime-module:PATH; or, without a module, --source auto (/proc/kcore, /dev/crash, /dev/mem)"
    )]
    NoModule {
        /// Where the module was looked for.
        path: PathBuf,
        /// `uname -r`.
        release: String,
        /// Why it could not be opened.
        #[source]
        source: io::Error,
    },
    /// Nothing listened within the timeout.
    #[error(
        "{addr}: no LiME module listening {} ({source}); is the module loaded with path=tcp:PORT?",
        if *waited == 0 { "(tried once, without waiting)".to_string() } else { format!("after {waited} s") }
    )]
    Connect {
        /// Address.
        addr: String,
        /// Seconds waited.
        waited: u64,
        /// Last error.
        #[source]
        source: io::Error,
    },
    /// A stop signal came while connecting.
    #[error("interrupted by {0} before the LiME stream started")]
    Interrupted(String),
    /// The kernel refused the module.
    #[error("the kernel refused {path}: {errno}: {explanation}")]
    Refused {
        /// Module path.
        path: PathBuf,
        /// The errno.
        errno: Errno,
        /// What that means and what to do.
        explanation: String,
    },
    /// The module loaded but its stream never came (`waited` 0: its
    /// `init_module` returned before it wrote anything).
    #[error("{}", no_stream(path, fifo, *waited))]
    NoStream {
        /// Module path.
        path: PathBuf,
        /// Where it was to write.
        fifo: String,
        /// Seconds waited.
        waited: u64,
    },
    /// The TCP peer is a process, not LiME's kernel socket.
    #[error(
        "{addr}: the peer is {owner}, not LiME's kernel socket: it could be feeding a fabricated dump (or LiME's port was taken first). Refused; use lime-module, or --trust-lime-peer if you started that process yourself"
    )]
    UserPeer {
        /// Address.
        addr: String,
        /// `pid N (comm)`.
        owner: String,
    },
    /// The FIFO for the module could not be made.
    #[error("making the FIFO for the LiME module under {dir}: {source}")]
    Fifo {
        /// The directory.
        dir: PathBuf,
        /// Cause.
        #[source]
        source: io::Error,
    },
}

impl LimeSourceError {
    /// Whether the kernel refused the module.
    pub fn is_module_refusal(&self) -> bool {
        matches!(self, Self::Refused { .. } | Self::NoStream { .. })
    }
}
