//! Moving the running executable off the volume before unmounting it.
//!
//! Both helpers run from the forensics volume (stage-0 starts mount-helper
//! from its read-only mount, which mount-helper replaces; unmount-helper
//! unmounts the volume it lives on), so their own text mapping would keep
//! the filesystem busy. They copy `/proc/self/exe` into a sealed memfd and
//! re-execute from there (`fexecve`); where memfds are missing (kernels
//! before 3.17) or not executable (`vm.memfd_noexec`), they copy themselves
//! to `/run/fv-<program>.<pid>` (tmpfs), exec that copy, and the new process
//! deletes it at once. The new process is marked by [`REEXEC_ENV`] so it
//! does not loop.

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

/// Set in the re-executed process: `memfd`, or `copy:<path to delete>`.
pub const REEXEC_ENV: &str = "FV_HELPER_REEXEC";
/// Prefix of the fallback copy's name under the run root (`fv-<program>.<pid>`).
const COPY_PREFIX: &str = "fv-";

/// How the executable leaves the volume. Both helpers take it as their hidden
/// `--reexec` option (tests only), so it is a clap value here, once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// memfd, falling back to a copy under the run root.
    Auto,
    /// memfd only.
    Memfd,
    /// A copy under the run root, deleted once running.
    Copy,
    /// Do not re-exec.
    Never,
}

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

fn via_memfd(program: &str, argv: &[CString]) -> Result<std::convert::Infallible, ReexecError> {
    // The memfd's name is what the kernel shows as the process's name
    // (`memfd:<name>`): the program's own, so logs name the right tool.
    let name = CString::new(program).map_err(|_| ReexecError::Nul)?;
    let fd = memfd_create(
        name.as_c_str(),
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

fn via_copy(
    run_root: &Path,
    program: &str,
    argv: &[CString],
) -> Result<std::convert::Infallible, ReexecError> {
    let copy_err = |e: String| ReexecError::Copy(e);
    let name = format!("{COPY_PREFIX}{program}.{}", std::process::id());
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
    /// Not re-executed ([`Mode::Never`]).
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
fn finish_copy(marker: &OsStr, run_root: &Path, program: &str) -> Result<Origin, ReexecError> {
    let path = PathBuf::from(marker.to_string_lossy().trim_start_matches("copy:"));
    let prefix = format!("{COPY_PREFIX}{program}.");
    let ours = path.parent() == Some(run_root)
        && path.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
            n.strip_prefix(&prefix)
                .is_some_and(|pid| !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()))
        });
    if !ours {
        // Never delete a path someone else put in our environment.
        return Err(ReexecError::Copy(format!(
            "{REEXEC_ENV}={} does not name a copy of ours under {}",
            marker.to_string_lossy(),
            run_root.display()
        )));
    }
    let name = path.file_name().unwrap_or_default();
    Dir::open(run_root)
        .and_then(|d| d.remove_file(name))
        .map_err(|e: FsError| ReexecError::Copy(format!("removing the copy: {e}")))?;
    Ok(Origin::Copy(path))
}

/// Whether `/proc/self/exe` names a memfd: the kernel shows an executable
/// memfd as `/memfd:<name> (deleted)`.
fn is_memfd(exe: &Path) -> bool {
    exe.as_os_str().as_bytes().starts_with(b"/memfd:")
}

/// Makes sure the process no longer runs from its original file: returns
/// in the re-executed process (or at once with [`Mode::Never`]). `program`
/// names the fallback copy (`<run_root>/fv-<program>.<pid>`). Call it before
/// starting threads: the process image is replaced.
///
/// # Errors
/// [`ReexecError`] when neither a memfd nor a copy could be executed.
pub fn ensure(mode: Mode, run_root: &Path, program: &str) -> Result<Origin, ReexecError> {
    if let Some(marker) = std::env::var_os(REEXEC_ENV) {
        // The marker is believed only when `/proc/self/exe` agrees: anyone
        // can set it in the environment of a helper started from the
        // volume, and a helper that skipped its re-exec would keep the
        // volume busy while reporting `ran_from: memfd`. A marker that does
        // not match where we run is ignored (and dropped from the
        // re-executed process's environment).
        let exe = std::fs::read_link("/proc/self/exe").ok();
        if marker == "memfd" && exe.as_deref().is_some_and(is_memfd) {
            return Ok(Origin::Memfd);
        }
        let copy = marker
            .as_bytes()
            .strip_prefix(b"copy:")
            .map(OsStr::from_bytes);
        if copy.is_some_and(|c| exe.as_deref() == Some(Path::new(c))) {
            return finish_copy(&marker, run_root, program);
        }
    }
    let argv = cstrings(std::env::args_os())?;
    match mode {
        Mode::Never => Ok(Origin::Original),
        Mode::Memfd => via_memfd(program, &argv).map(|never| match never {}),
        Mode::Copy => via_copy(run_root, program, &argv).map(|never| match never {}),
        Mode::Auto => match via_memfd(program, &argv) {
            // No memfd_create (ENOSYS before 3.17), or exec from memfds
            // forbidden (vm.memfd_noexec): fall back to the tmpfs copy.
            Err(ReexecError::Memfd(_)) => {
                via_copy(run_root, program, &argv).map(|never| match never {})
            }
            Err(e) => Err(e),
            Ok(never) => match never {},
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_our_own_copy_is_deleted() {
        let run = tempfile::tempdir().unwrap();
        let ours = run.path().join("fv-unmount-helper.4242");
        std::fs::write(&ours, b"x").unwrap();
        let marker = OsString::from(format!("copy:{}", ours.display()));
        assert_eq!(
            finish_copy(&marker, run.path(), "unmount-helper").unwrap(),
            Origin::Copy(ours.clone())
        );
        assert!(!ours.exists());
        for foreign in [
            run.path().join("victim"),
            run.path().join("fv-unmount-helper."),
            run.path().join("fv-mount-helper.1"),
            run.path().join("sub/fv-unmount-helper.1"),
        ] {
            if let Some(parent) = foreign.parent() {
                std::fs::create_dir_all(parent).unwrap();
            }
            std::fs::write(&foreign, b"keep").unwrap();
            let marker = OsString::from(format!("copy:{}", foreign.display()));
            assert!(
                finish_copy(&marker, run.path(), "unmount-helper").is_err(),
                "{}",
                foreign.display()
            );
            assert!(foreign.exists(), "{}", foreign.display());
        }
    }
}
