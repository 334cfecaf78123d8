//! Moving the running executable off the volume before unmounting it.
//!
//! unmount-helper runs from the forensics volume, so its own text mapping
//! would keep the filesystem busy. It copies `/proc/self/exe` into a sealed
//! memfd and re-executes itself from there (`fexecve`); on kernels without
//! `memfd_create` (before 3.17) it copies itself to `/run` (tmpfs), execs
//! that copy, and the new process deletes it at once. The new process is
//! marked by [`REEXEC_ENV`] so it does not loop.

use std::ffi::{CString, OsStr, OsString};
use std::fs::File;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use fv_core::fs::{Dir, FsError};
use nix::errno::Errno;
use nix::fcntl::{FcntlArg, SealFlag};
use nix::sys::memfd::{MFdFlags, memfd_create};

use crate::cli::Reexec;

/// Set in the re-executed process: `memfd`, or `copy:<path to delete>`.
pub const REEXEC_ENV: &str = "FV_UNMOUNT_HELPER_REEXEC";
/// Prefix of the fallback copy's name under the run root.
const COPY_PREFIX: &str = "fv-unmount-helper.";

/// Re-executing failed; nothing was unmounted.
#[derive(Debug, thiserror::Error)]
pub enum ReexecError {
    /// Reading our own executable.
    #[error("cannot read /proc/self/exe: {0}")]
    ReadSelf(#[source] std::io::Error),
    /// memfd path failed (and the copy was not tried or failed too).
    #[error("re-exec from a memfd failed: {0}")]
    Memfd(#[source] Errno),
    /// The copy under /run failed.
    #[error("re-exec from a copy under /run failed: {0}")]
    Copy(String),
    /// An argument or environment entry contains a NUL byte.
    #[error("argument or environment contains a NUL byte")]
    Nul,
}

fn cstrings(items: impl Iterator<Item = OsString>) -> Result<Vec<CString>, ReexecError> {
    items
        .map(|s| CString::new(s.as_bytes()).map_err(|_| ReexecError::Nul))
        .collect()
}

fn environment(marker: &str) -> Result<Vec<CString>, ReexecError> {
    let mut env: Vec<OsString> = std::env::vars_os()
        .filter(|(k, _)| k != REEXEC_ENV)
        .map(|(k, v)| {
            let mut kv = k;
            kv.push("=");
            kv.push(v);
            kv
        })
        .collect();
    env.push(OsString::from(format!("{REEXEC_ENV}={marker}")));
    cstrings(env.into_iter())
}

fn via_memfd(argv: &[CString]) -> Result<std::convert::Infallible, ReexecError> {
    let fd = memfd_create(
        c"unmount-helper",
        MFdFlags::MFD_CLOEXEC | MFdFlags::MFD_ALLOW_SEALING,
    )
    .map_err(ReexecError::Memfd)?;
    let mut memfd = File::from(fd);
    let mut exe = File::open("/proc/self/exe").map_err(ReexecError::ReadSelf)?;
    std::io::copy(&mut exe, &mut memfd).map_err(ReexecError::ReadSelf)?;
    drop(exe);
    let seals = SealFlag::F_SEAL_SHRINK
        | SealFlag::F_SEAL_GROW
        | SealFlag::F_SEAL_WRITE
        | SealFlag::F_SEAL_SEAL;
    nix::fcntl::fcntl(&memfd, FcntlArg::F_ADD_SEALS(seals)).map_err(ReexecError::Memfd)?;
    let env = environment("memfd")?;
    nix::unistd::fexecve(&memfd, argv, &env).map_err(ReexecError::Memfd)
}

fn via_copy(run_root: &Path, argv: &[CString]) -> Result<std::convert::Infallible, ReexecError> {
    let copy_err = |e: String| ReexecError::Copy(e);
    let name = format!("{COPY_PREFIX}{}", std::process::id());
    let dir = Dir::open(run_root).map_err(|e| copy_err(e.to_string()))?;
    let path = run_root.join(&name);
    {
        let mut file = dir
            .create_file(OsStr::new(&name))
            .map_err(|e| copy_err(e.to_string()))?;
        let mut exe = File::open("/proc/self/exe").map_err(ReexecError::ReadSelf)?;
        let copied = std::io::copy(&mut exe, &mut file)
            .and_then(|_| file.flush())
            .and_then(|()| file.set_permissions(std::fs::Permissions::from_mode(0o700)));
        if let Err(e) = copied {
            let _ = dir.remove_file(OsStr::new(&name));
            return Err(copy_err(format!("{}: {e}", path.display())));
        }
    }
    let env = environment(&format!("copy:{}", path.display()))?;
    let c_path = CString::new(path.as_os_str().as_bytes()).map_err(|_| ReexecError::Nul)?;
    let err = match nix::unistd::execve(&c_path, argv, &env) {
        Err(e) => e,
        Ok(never) => match never {},
    };
    let removed = dir.remove_file(OsStr::new(&name));
    Err(copy_err(format!(
        "execve {}: {err}{}",
        path.display(),
        removed
            .err()
            .map(|e| format!(" (and removing it failed: {e})"))
            .unwrap_or_default()
    )))
}

/// What the process was re-executed from, once running again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// Not re-executed (`--reexec never`).
    Original,
    /// From a memfd.
    Memfd,
    /// From a copy under /run, now deleted.
    Copy(PathBuf),
}

/// In the re-executed process: deletes the fallback copy.
///
/// # Errors
/// [`FsError`] if the copy cannot be removed.
fn finish_copy(marker: &OsStr, run_root: &Path) -> Result<Origin, FsError> {
    let path = PathBuf::from(marker.to_string_lossy().trim_start_matches("copy:"));
    let valid = path.parent() == Some(run_root)
        && path.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
            n.strip_prefix(COPY_PREFIX)
                .is_some_and(|pid| pid.bytes().all(|b| b.is_ascii_digit()))
        });
    if valid {
        let name = path.file_name().unwrap_or_default();
        Dir::open(run_root)?.remove_file(name)?;
    }
    Ok(Origin::Copy(path))
}

/// Makes sure the process no longer runs from its original file: returns
/// in the re-executed process (or at once with [`Reexec::Never`]).
///
/// # Errors
/// [`ReexecError`] when neither a memfd nor a copy could be executed.
pub fn ensure(mode: Reexec, run_root: &Path) -> Result<Origin, ReexecError> {
    if let Some(marker) = std::env::var_os(REEXEC_ENV) {
        let origin = if marker == "memfd" {
            Origin::Memfd
        } else {
            finish_copy(&marker, run_root)
                .map_err(|e| ReexecError::Copy(format!("removing the copy: {e}")))?
        };
        return Ok(origin);
    }
    let argv = cstrings(std::env::args_os())?;
    match mode {
        Reexec::Never => Ok(Origin::Original),
        Reexec::Memfd => via_memfd(&argv).map(|never| match never {}),
        Reexec::Copy => via_copy(run_root, &argv).map(|never| match never {}),
        Reexec::Auto => match via_memfd(&argv) {
            // No memfd_create (ENOSYS before 3.17), or exec from memfds
            // forbidden (vm.memfd_noexec): fall back to the tmpfs copy.
            Err(ReexecError::Memfd(_)) => via_copy(run_root, &argv).map(|never| match never {}),
            Err(e) => Err(e),
            Ok(never) => match never {},
        },
    }
}
