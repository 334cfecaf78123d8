//! Mountpoints created and checked safely. The default is
//! `/run/forensics-volume/<name>` on tmpfs (nothing written to a suspect
//! disk); the base is created 0700 and must be root-owned and not writable
//! by others. A mountpoint is refused if it is a symlink, not a directory,
//! not empty, or already a mountpoint. The mount itself goes through
//! `/proc/self/fd/N` of the checked directory, so the path cannot be
//! swapped between the check and the mount.

use std::ffi::{OsStr, OsString};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use fv_core::fs::{Dir, FsError};
use fv_ebs::mountinfo::MountEntry;

/// The directory under the run root that holds default mountpoints; stage-0
/// uses the same (`/run/forensics-volume/<volume id>`).
pub const BASE_DIR: &str = "forensics-volume";

/// A mountpoint was refused.
#[derive(Debug, thiserror::Error)]
pub enum MountpointError {
    /// A symlink, not a directory, already exists, or another fs error.
    #[error("mountpoint refused: {0}")]
    Fs(#[from] FsError),
    /// Not an absolute path with a final name.
    #[error("mountpoint {0}: must be an absolute path to a directory (not / and no ..)")]
    NotAbsolute(PathBuf),
    /// Has entries.
    #[error("mountpoint {0}: is not empty (refusing to hide its contents)")]
    NotEmpty(PathBuf),
    /// Something is mounted there.
    #[error("mountpoint {0}: is already a mountpoint")]
    AlreadyMountpoint(PathBuf),
    /// The base directory is not safe.
    #[error(
        "{path}: owned by uid {uid} with mode {mode:o}: must be owned by us (root) and not writable by others"
    )]
    UnsafeBase {
        /// The base.
        path: PathBuf,
        /// Owner.
        uid: u32,
        /// Mode bits.
        mode: u32,
    },
}

/// A checked, open, empty directory to mount on.
#[derive(Debug)]
pub struct Mountpoint {
    /// Its path.
    pub path: PathBuf,
    /// The open directory (mount goes through its fd).
    pub dir: Dir,
    /// The parent and name, when we created it (removed again on failure).
    pub created: Option<(Dir, OsString)>,
}

impl Mountpoint {
    /// A path naming this directory through our fd, immune to path swaps.
    pub fn fd_path(&self) -> PathBuf {
        PathBuf::from(format!("/proc/self/fd/{}", self.dir.as_raw_fd()))
    }
}

fn is_mountpoint(path: &Path, mounts: &[MountEntry]) -> bool {
    mounts.iter().any(|m| m.mount_point == path)
}

/// Opens `parent/name`, creating it (0700) when missing, and checks it.
fn open_or_create(
    parent: Dir,
    name: &OsStr,
    mounts: &[MountEntry],
) -> Result<Mountpoint, MountpointError> {
    let path = parent.path().join(name);
    let (dir, created) = match parent.stat_child(name) {
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
            let dir = parent.create_dir(name)?;
            (dir, Some((parent, name.to_os_string())))
        }
        Err(e) => return Err(e.into()),
        Ok(_) => (parent.open_dir(name)?, None),
    };
    if created.is_none() {
        if is_mountpoint(&path, mounts) {
            return Err(MountpointError::AlreadyMountpoint(path));
        }
        // A mount in another namespace, or one mountinfo hides: the
        // directory's device differs from its parent's.
        let parent_dev = Dir::open(path.parent().unwrap_or(Path::new("/")))?
            .stat()?
            .st_dev;
        if dir.stat()?.st_dev != parent_dev {
            return Err(MountpointError::AlreadyMountpoint(path));
        }
        if !dir.is_empty()? {
            return Err(MountpointError::NotEmpty(path));
        }
    }
    Ok(Mountpoint { path, dir, created })
}

/// The default mountpoint `<run_root>/forensics-volume/<name>`, creating
/// the base (0700) when missing.
///
/// # Errors
/// [`MountpointError`].
pub fn default_mountpoint(
    run_root: &Path,
    name: &str,
    mounts: &[MountEntry],
) -> Result<Mountpoint, MountpointError> {
    let run = Dir::open(run_root)?;
    let base = match run.stat_child(OsStr::new(BASE_DIR)) {
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => run.create_dir(OsStr::new(BASE_DIR))?,
        Err(e) => return Err(e.into()),
        Ok(_) => run.open_dir(OsStr::new(BASE_DIR))?,
    };
    let st = base.stat()?;
    if st.st_uid != nix::unistd::geteuid().as_raw() || st.st_mode & 0o022 != 0 {
        return Err(MountpointError::UnsafeBase {
            path: base.path().to_path_buf(),
            uid: st.st_uid,
            mode: st.st_mode & 0o7777,
        });
    }
    open_or_create(base, OsStr::new(name), mounts)
}

/// A mountpoint the responder named: absolute, no symlink at any
/// component, created (0700) when missing.
///
/// # Errors
/// [`MountpointError`].
pub fn given_mountpoint(path: &Path, mounts: &[MountEntry]) -> Result<Mountpoint, MountpointError> {
    let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(MountpointError::NotAbsolute(path.to_path_buf()));
    };
    if !path.is_absolute()
        || path
            .components()
            .any(|c| matches!(c, std::path::Component::ParentDir))
    {
        return Err(MountpointError::NotAbsolute(path.to_path_buf()));
    }
    open_or_create(Dir::open(parent)?, name, mounts)
}

/// Removes a directory we created (after unmounting).
///
/// # Errors
/// [`FsError`] (e.g. not empty because the unmount failed).
pub fn remove_created(created: &(Dir, OsString)) -> Result<(), FsError> {
    created.0.remove_dir(&created.1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn entry(mount_point: &Path) -> MountEntry {
        fv_ebs::mountinfo::parse(
            &format!(
                "40 22 7:0 / {} rw - ext4 /dev/loop0 rw",
                mount_point.display()
            ),
            Path::new("m"),
        )
        .unwrap()
        .remove(0)
    }

    #[test]
    fn creates_private_default_and_refuses_reuse_of_nonempty() {
        let run = tempfile::tempdir().unwrap();
        let mp = default_mountpoint(run.path(), "vol-1", &[]).unwrap();
        assert!(mp.created.is_some());
        assert_eq!(mp.path, run.path().join("forensics-volume/vol-1"));
        let mode = |p: &Path| {
            std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(p).unwrap().permissions())
                & 0o777
        };
        assert_eq!(mode(&mp.path), 0o700);
        assert_eq!(mode(&run.path().join(BASE_DIR)), 0o700);
        std::fs::write(mp.path.join("planted"), b"x").unwrap();
        let err = default_mountpoint(run.path(), "vol-1", &[]).unwrap_err();
        assert!(matches!(err, MountpointError::NotEmpty(_)), "{err}");
        std::fs::remove_file(mp.path.join("planted")).unwrap();
        // An existing empty directory is used, but not removed later.
        let again = default_mountpoint(run.path(), "vol-1", &[]).unwrap();
        assert!(again.created.is_none());
        remove_created(mp.created.as_ref().unwrap()).unwrap();
        assert!(!mp.path.exists());
    }

    #[test]
    fn refuses_symlinks_files_and_mountpoints() {
        let run = tempfile::tempdir().unwrap();
        let base = run.path().join(BASE_DIR);
        std::fs::create_dir(&base).unwrap();
        let elsewhere = tempfile::tempdir().unwrap();
        symlink(elsewhere.path(), base.join("vol-1")).unwrap();
        let err = default_mountpoint(run.path(), "vol-1", &[]).unwrap_err();
        assert!(
            matches!(err, MountpointError::Fs(FsError::Symlink { .. })),
            "{err}"
        );
        std::fs::write(base.join("vol-2"), b"").unwrap();
        let err = default_mountpoint(run.path(), "vol-2", &[]).unwrap_err();
        assert!(
            matches!(err, MountpointError::Fs(FsError::NotDirectory { .. })),
            "{err}"
        );
        std::fs::create_dir(base.join("vol-3")).unwrap();
        let err =
            default_mountpoint(run.path(), "vol-3", &[entry(&base.join("vol-3"))]).unwrap_err();
        assert!(
            matches!(err, MountpointError::AlreadyMountpoint(_)),
            "{err}"
        );
        // A symlinked base is refused too.
        std::fs::remove_dir_all(&base).unwrap();
        symlink(elsewhere.path(), &base).unwrap();
        let err = default_mountpoint(run.path(), "vol-4", &[]).unwrap_err();
        assert!(
            matches!(err, MountpointError::Fs(FsError::Symlink { .. })),
            "{err}"
        );
    }

    #[test]
    fn given_paths() {
        let tmp = tempfile::tempdir().unwrap();
        let mp = given_mountpoint(&tmp.path().join("m"), &[]).unwrap();
        assert!(mp.created.is_some());
        for bad in ["relative", "/", "/tmp/../etc"] {
            let err = given_mountpoint(Path::new(bad), &[]).unwrap_err();
            assert!(
                matches!(err, MountpointError::NotAbsolute(_)),
                "{bad}: {err}"
            );
        }
        std::fs::create_dir(tmp.path().join("real")).unwrap();
        symlink(tmp.path().join("real"), tmp.path().join("link")).unwrap();
        let err = given_mountpoint(&tmp.path().join("link/m"), &[]).unwrap_err();
        assert!(
            matches!(err, MountpointError::Fs(FsError::Symlink { .. })),
            "{err}"
        );
    }
}
