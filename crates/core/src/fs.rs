//! Evidence-safe file creation.
//!
//! Every file the tools write is created with `O_CREAT|O_EXCL|O_NOFOLLOW`
//! (mode 0600) relative to a directory fd that was opened without following
//! symlinks at any path component, so an attacker who plants a symlink where a
//! directory or file should be gets a refusal, never a write somewhere else.
//! Directories are made 0700. [`Dir::sync`] and [`sync_file`] make the result
//! durable; [`drop_cached`] releases written or read pages from the page cache
//! (which is evidence on a suspect host).

use std::ffi::OsStr;
use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, PosixFadviseAdvice, openat, posix_fadvise};
use nix::sys::stat::{FileStat, Mode, fstat, fstatat, mkdirat};
use nix::unistd::{UnlinkatFlags, fsync, unlinkat};

/// What went wrong creating or opening a path, with the path.
#[derive(Debug, thiserror::Error)]
pub enum FsError {
    /// A path component is a symbolic link; we never follow them.
    #[error("{path}: is a symbolic link (refused: a symlink where a directory or file should be)")]
    Symlink {
        /// The offending path.
        path: PathBuf,
    },
    /// A path component exists but is not a directory.
    #[error("{path}: is not a directory")]
    NotDirectory {
        /// The offending path.
        path: PathBuf,
    },
    /// The file or directory to create already exists.
    #[error("{path}: already exists (refusing to overwrite)")]
    Exists {
        /// The existing path.
        path: PathBuf,
    },
    /// Something other than a regular file where one was expected (a FIFO
    /// would block a reader for ever, a device would never end).
    #[error("{path}: is {kind}, not a regular file (refused)")]
    NotRegular {
        /// The offending path.
        path: PathBuf,
        /// What it is: `a FIFO`, `a directory`, ...
        kind: &'static str,
    },
    /// Any other system call failure.
    #[error("{path}: {op}: {source}")]
    Sys {
        /// The path the call was about.
        path: PathBuf,
        /// The operation (`open`, `mkdir`, `fsync`, ...).
        op: &'static str,
        /// The error number.
        #[source]
        source: std::io::Error,
    },
}

impl FsError {
    fn sys(path: &Path, op: &'static str, errno: Errno) -> Self {
        match errno {
            Errno::ELOOP => Self::Symlink {
                path: path.to_path_buf(),
            },
            Errno::ENOTDIR => Self::NotDirectory {
                path: path.to_path_buf(),
            },
            Errno::EEXIST => Self::Exists {
                path: path.to_path_buf(),
            },
            other => Self::Sys {
                path: path.to_path_buf(),
                op,
                source: std::io::Error::from(other),
            },
        }
    }

    /// The raw OS error, when there is one (e.g. `ENOSPC`).
    pub fn raw_os_error(&self) -> Option<i32> {
        match self {
            Self::Sys { source, .. } => source.raw_os_error(),
            Self::Symlink { .. } => Some(libc::ELOOP),
            Self::NotDirectory { .. } => Some(libc::ENOTDIR),
            Self::Exists { .. } => Some(libc::EEXIST),
            Self::NotRegular { .. } => None,
        }
    }
}

/// Result alias for this module.
pub type Result<T, E = FsError> = std::result::Result<T, E>;

/// An open directory, reached without following any symlink. All creation
/// happens relative to it, so the directory cannot be swapped underneath us.
#[derive(Debug)]
pub struct Dir {
    fd: OwnedFd,
    path: PathBuf,
}

const DIR_FLAGS: OFlag = OFlag::O_RDONLY
    .union(OFlag::O_DIRECTORY)
    .union(OFlag::O_NOFOLLOW)
    .union(OFlag::O_CLOEXEC);

impl Dir {
    /// Opens `path`, refusing a symlink at any component (`/` itself aside).
    ///
    /// # Errors
    /// [`FsError::Symlink`] or [`FsError::NotDirectory`] naming the component,
    /// or [`FsError::Sys`] for anything else (missing, permission).
    pub fn open(path: &Path) -> Result<Self> {
        let start: &Path = if path.is_absolute() {
            Path::new("/")
        } else {
            Path::new(".")
        };
        let fd = nix::fcntl::open(start, DIR_FLAGS, Mode::empty())
            .map_err(|e| FsError::sys(start, "open", e))?;
        let mut dir = Self {
            fd,
            path: start.to_path_buf(),
        };
        for component in path.components() {
            match component {
                Component::RootDir | Component::CurDir => {}
                Component::Prefix(_) => {}
                Component::ParentDir => {
                    dir = dir.open_dir(OsStr::new(".."))?;
                }
                Component::Normal(name) => {
                    dir = dir.open_dir(name)?;
                }
            }
        }
        dir.path = path.to_path_buf();
        Ok(dir)
    }

    /// Opens `path` as the caller named it, following symlinks on the way:
    /// for a directory an operator typed (a capture to verify), where
    /// refusing `/data -> /mnt/data` would help no one. Everything below it
    /// is then reached with [`Dir::open_dir`] and [`Dir::open_regular`],
    /// which never follow a link.
    ///
    /// # Errors
    /// [`FsError::NotDirectory`], or [`FsError::Sys`] (missing, permission).
    pub fn open_following(path: &Path) -> Result<Self> {
        let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
        let fd = nix::fcntl::open(path, flags, Mode::empty())
            .map_err(|e| FsError::sys(path, "open", e))?;
        Ok(Self {
            fd,
            path: path.to_path_buf(),
        })
    }

    /// The path this directory was opened as (for messages).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Another handle on the same directory (a duplicated descriptor, not
    /// a new lookup of the path), e.g. for another thread.
    ///
    /// # Errors
    /// [`FsError::Sys`] if the descriptor cannot be duplicated.
    pub fn try_clone(&self) -> Result<Self> {
        let fd = self.fd.try_clone().map_err(|e| FsError::Sys {
            path: self.path.clone(),
            op: "dup",
            source: e,
        })?;
        Ok(Self {
            fd,
            path: self.path.clone(),
        })
    }

    /// Opens the child directory `name` without following a symlink.
    ///
    /// # Errors
    /// As [`Dir::open`].
    pub fn open_dir(&self, name: &OsStr) -> Result<Self> {
        let path = self.path.join(name);
        let fd = openat(&self.fd, name, DIR_FLAGS, Mode::empty()).map_err(|e| {
            // O_DIRECTORY|O_NOFOLLOW on a symlink fails with ENOTDIR, not
            // ELOOP: look at the entry to name the real problem.
            if e == Errno::ENOTDIR && self.is_symlink(name) {
                FsError::Symlink { path: path.clone() }
            } else {
                FsError::sys(&path, "open", e)
            }
        })?;
        Ok(Self { fd, path })
    }

    /// Creates the child directory `name` with mode 0700 and opens it.
    ///
    /// # Errors
    /// [`FsError::Exists`] if anything (file, directory, symlink) is there.
    pub fn create_dir(&self, name: &OsStr) -> Result<Self> {
        let path = self.path.join(name);
        mkdirat(&self.fd, name, Mode::from_bits_truncate(0o700))
            .map_err(|e| FsError::sys(&path, "mkdir", e))?;
        self.open_dir(name)
    }

    /// Creates the new file `name` (mode 0600, `O_EXCL|O_NOFOLLOW`), for writing.
    ///
    /// # Errors
    /// [`FsError::Exists`] if anything is already there.
    pub fn create_file(&self, name: &OsStr) -> Result<File> {
        let path = self.path.join(name);
        let flags =
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let fd = openat(&self.fd, name, flags, Mode::from_bits_truncate(0o600))
            .map_err(|e| FsError::sys(&path, "create", e))?;
        Ok(File::from(fd))
    }

    /// Opens the existing regular file `name` read-only, refusing a symlink.
    ///
    /// # Errors
    /// [`FsError::Symlink`], or [`FsError::Sys`] (missing, permission).
    pub fn open_file(&self, name: &OsStr) -> Result<File> {
        let path = self.path.join(name);
        let flags = OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let fd = openat(&self.fd, name, flags, Mode::empty())
            .map_err(|e| FsError::sys(&path, "open", e))?;
        Ok(File::from(fd))
    }

    /// Opens the existing child `name` read-only for reading untrusted
    /// content: never through a symlink, without blocking (`O_NONBLOCK`, so a
    /// FIFO planted under the name cannot hang the open) and only if it is a
    /// regular file (a FIFO, device or socket could block or never end).
    ///
    /// # Errors
    /// [`FsError::Symlink`], [`FsError::NotRegular`], or [`FsError::Sys`].
    pub fn open_regular(&self, name: &OsStr) -> Result<File> {
        let path = self.path.join(name);
        let flags = OFlag::O_RDONLY
            | OFlag::O_NOFOLLOW
            | OFlag::O_NONBLOCK
            | OFlag::O_NOCTTY
            | OFlag::O_CLOEXEC;
        let fd = openat(&self.fd, name, flags, Mode::empty())
            .map_err(|e| FsError::sys(&path, "open", e))?;
        regular(fd, &path)
    }

    /// `lstat` of the child `name` (does not follow a symlink).
    ///
    /// # Errors
    /// [`FsError::Sys`], e.g. `ENOENT`.
    pub fn stat_child(&self, name: &OsStr) -> Result<FileStat> {
        fstatat(&self.fd, name, AtFlags::AT_SYMLINK_NOFOLLOW)
            .map_err(|e| FsError::sys(&self.path.join(name), "stat", e))
    }

    fn is_symlink(&self, name: &OsStr) -> bool {
        self.stat_child(name)
            .is_ok_and(|st| st.st_mode & libc::S_IFMT == libc::S_IFLNK)
    }

    /// `fstat` of the directory itself.
    ///
    /// # Errors
    /// [`FsError::Sys`].
    pub fn stat(&self) -> Result<FileStat> {
        fstat(&self.fd).map_err(|e| FsError::sys(&self.path, "stat", e))
    }

    /// Renames `from` to `to` within this directory, failing if `to` exists
    /// (atomically, by link + unlink), unless `replace` is set.
    ///
    /// # Errors
    /// [`FsError::Exists`] when `to` exists and `replace` is false.
    pub fn rename(&self, from: &OsStr, to: &OsStr, replace: bool) -> Result<()> {
        let path = self.path.join(to);
        if replace {
            return nix::fcntl::renameat(&self.fd, from, &self.fd, to)
                .map_err(|e| FsError::sys(&path, "rename", e));
        }
        // No RENAME_NOREPLACE on musl (nix exposes renameat2 for glibc only):
        // link(2) refuses an existing target atomically, then drop the old name.
        nix::unistd::linkat(&self.fd, from, &self.fd, to, AtFlags::empty())
            .map_err(|e| FsError::sys(&path, "link", e))?;
        self.remove_file(from)
    }

    /// Removes the file `name` (not a directory).
    ///
    /// # Errors
    /// [`FsError::Sys`].
    pub fn remove_file(&self, name: &OsStr) -> Result<()> {
        unlinkat(&self.fd, name, UnlinkatFlags::NoRemoveDir)
            .map_err(|e| FsError::sys(&self.path.join(name), "unlink", e))
    }

    /// Removes the empty directory `name`.
    ///
    /// # Errors
    /// [`FsError::Sys`], e.g. `ENOTEMPTY`.
    pub fn remove_dir(&self, name: &OsStr) -> Result<()> {
        unlinkat(&self.fd, name, UnlinkatFlags::RemoveDir)
            .map_err(|e| FsError::sys(&self.path.join(name), "rmdir", e))
    }

    /// Makes the directory's entries durable (`fsync` on the directory fd).
    ///
    /// # Errors
    /// [`FsError::Sys`].
    pub fn sync(&self) -> Result<()> {
        fsync(&self.fd).map_err(|e| FsError::sys(&self.path, "fsync", e))
    }

    /// Whether the directory has no entries besides `.` and `..`.
    ///
    /// # Errors
    /// [`FsError::Sys`] if it cannot be listed.
    pub fn is_empty(&self) -> Result<bool> {
        let fd = openat(&self.fd, ".", DIR_FLAGS, Mode::empty())
            .map_err(|e| FsError::sys(&self.path, "open", e))?;
        let mut listing =
            nix::dir::Dir::from_fd(fd).map_err(|e| FsError::sys(&self.path, "opendir", e))?;
        for entry in listing.iter() {
            let entry = entry.map_err(|e| FsError::sys(&self.path, "readdir", e))?;
            let name = entry.file_name().to_bytes();
            if name != b"." && name != b".." {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

impl AsFd for Dir {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsRawFd for Dir {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.fd.as_raw_fd()
    }
}

/// Opens the file `path` read-only as the caller named it (following
/// symlinks, like [`Dir::open_following`]) but, as [`Dir::open_regular`],
/// without blocking and only if it is a regular file.
///
/// # Errors
/// [`FsError::NotRegular`], or [`FsError::Sys`].
pub fn open_regular_following(path: &Path) -> Result<File> {
    let flags = OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_NOCTTY | OFlag::O_CLOEXEC;
    let fd =
        nix::fcntl::open(path, flags, Mode::empty()).map_err(|e| FsError::sys(path, "open", e))?;
    regular(fd, path)
}

/// Keeps `fd` only if it is a regular file, and makes its reads blocking
/// again (they never block on a regular file; this keeps `O_NONBLOCK` from
/// surprising a later reader).
fn regular(fd: OwnedFd, path: &Path) -> Result<File> {
    let st = fstat(&fd).map_err(|e| FsError::sys(path, "stat", e))?;
    let kind = match st.st_mode & libc::S_IFMT {
        libc::S_IFREG => None,
        libc::S_IFIFO => Some("a FIFO"),
        libc::S_IFDIR => Some("a directory"),
        libc::S_IFCHR => Some("a character device"),
        libc::S_IFBLK => Some("a block device"),
        libc::S_IFSOCK => Some("a socket"),
        _ => Some("not a file"),
    };
    if let Some(kind) = kind {
        return Err(FsError::NotRegular {
            path: path.to_path_buf(),
            kind,
        });
    }
    nix::fcntl::fcntl(&fd, nix::fcntl::FcntlArg::F_SETFL(OFlag::empty()))
        .map_err(|e| FsError::sys(path, "fcntl", e))?;
    Ok(File::from(fd))
}

/// `fsync` a file, naming it in the error.
///
/// # Errors
/// [`FsError::Sys`].
pub fn sync_file(file: &File, path: &Path) -> Result<()> {
    file.sync_all().map_err(|source| FsError::Sys {
        path: path.to_path_buf(),
        op: "fsync",
        source,
    })
}

/// Releases `[offset, offset + len)` of `file` from the page cache
/// (`posix_fadvise(POSIX_FADV_DONTNEED)`; `len` 0 means to the end). Written
/// pages must be on disk first (`sync_file_range` or `fsync`) or the kernel
/// keeps the dirty ones. Advisory: an error here never stops a capture.
pub fn drop_cached(file: &impl AsFd, offset: u64, len: u64) {
    let (Ok(offset), Ok(len)) = (i64::try_from(offset), i64::try_from(len)) else {
        return;
    };
    // Advice only; the kernel may ignore it and nothing depends on it.
    let _ = posix_fadvise(
        file.as_fd(),
        offset,
        len,
        PosixFadviseAdvice::POSIX_FADV_DONTNEED,
    );
}

/// A name as bytes, for building names from parts without lossy conversion.
pub fn name_bytes(name: &OsStr) -> &[u8] {
    name.as_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::unix::fs::{MetadataExt, symlink};

    #[test]
    fn creates_files_and_dirs_with_private_modes() {
        let tmp = tempfile::tempdir().unwrap();
        let root = Dir::open(tmp.path()).unwrap();
        let sub = root.create_dir(OsStr::new("case")).unwrap();
        let mut f = sub.create_file(OsStr::new("memory")).unwrap();
        f.write_all(b"x").unwrap();
        sync_file(&f, Path::new("memory")).unwrap();
        sub.sync().unwrap();
        let dmode = std::fs::metadata(tmp.path().join("case")).unwrap().mode() & 0o777;
        let fmode = std::fs::metadata(tmp.path().join("case/memory"))
            .unwrap()
            .mode()
            & 0o777;
        assert_eq!(dmode, 0o700);
        assert_eq!(fmode, 0o600);
    }

    #[test]
    fn refuses_to_overwrite() {
        let tmp = tempfile::tempdir().unwrap();
        let root = Dir::open(tmp.path()).unwrap();
        root.create_file(OsStr::new("a")).unwrap();
        assert!(matches!(
            root.create_file(OsStr::new("a")),
            Err(FsError::Exists { .. })
        ));
        root.create_dir(OsStr::new("d")).unwrap();
        assert!(matches!(
            root.create_dir(OsStr::new("d")),
            Err(FsError::Exists { .. })
        ));
    }

    #[test]
    fn refuses_symlinks_at_every_component() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir(tmp.path().join("real")).unwrap();
        symlink(tmp.path().join("real"), tmp.path().join("link")).unwrap();
        let err = Dir::open(&tmp.path().join("link")).unwrap_err();
        assert!(matches!(err, FsError::Symlink { .. }), "{err}");
        std::fs::create_dir(tmp.path().join("real/inner")).unwrap();
        let err = Dir::open(&tmp.path().join("link/inner")).unwrap_err();
        assert!(matches!(err, FsError::Symlink { .. }), "{err}");
        // A symlink planted where the output file goes is refused, and its
        // target is untouched.
        std::fs::write(tmp.path().join("victim"), b"keep").unwrap();
        symlink(tmp.path().join("victim"), tmp.path().join("real/out")).unwrap();
        let real = Dir::open(&tmp.path().join("real")).unwrap();
        assert!(real.create_file(OsStr::new("out")).is_err());
        assert!(real.open_file(OsStr::new("out")).is_err());
        assert_eq!(std::fs::read(tmp.path().join("victim")).unwrap(), b"keep");
    }

    #[test]
    fn open_regular_refuses_fifos_links_and_directories_without_blocking() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("file"), b"data").unwrap();
        nix::unistd::mkfifo(&tmp.path().join("fifo"), Mode::from_bits_truncate(0o600)).unwrap();
        symlink(tmp.path().join("file"), tmp.path().join("link")).unwrap();
        std::fs::create_dir(tmp.path().join("sub")).unwrap();
        let dir = Dir::open_following(tmp.path()).unwrap();
        let mut text = String::new();
        std::io::Read::read_to_string(
            &mut dir.open_regular(OsStr::new("file")).unwrap(),
            &mut text,
        )
        .unwrap();
        assert_eq!(text, "data");
        // No writer on the FIFO: a blocking open would hang here.
        let err = dir.open_regular(OsStr::new("fifo")).unwrap_err();
        assert!(
            matches!(err, FsError::NotRegular { kind: "a FIFO", .. }),
            "{err}"
        );
        let err = dir.open_regular(OsStr::new("link")).unwrap_err();
        assert!(matches!(err, FsError::Symlink { .. }), "{err}");
        let err = dir.open_regular(OsStr::new("sub")).unwrap_err();
        assert!(matches!(err, FsError::NotRegular { .. }), "{err}");
        let err = open_regular_following(&tmp.path().join("fifo")).unwrap_err();
        assert!(matches!(err, FsError::NotRegular { .. }), "{err}");
        assert!(open_regular_following(&tmp.path().join("link")).is_ok());
    }

    #[test]
    fn not_a_directory_is_named() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("file"), b"").unwrap();
        let err = Dir::open(&tmp.path().join("file")).unwrap_err();
        assert!(matches!(err, FsError::NotDirectory { .. }), "{err}");
    }

    #[test]
    fn rename_does_not_replace_unless_asked() {
        let tmp = tempfile::tempdir().unwrap();
        let root = Dir::open(tmp.path()).unwrap();
        root.create_file(OsStr::new("tmp")).unwrap();
        root.create_file(OsStr::new("final")).unwrap();
        assert!(matches!(
            root.rename(OsStr::new("tmp"), OsStr::new("final"), false),
            Err(FsError::Exists { .. })
        ));
        root.rename(OsStr::new("tmp"), OsStr::new("final"), true)
            .unwrap();
        assert!(root.is_empty().is_ok_and(|e| !e));
        root.remove_file(OsStr::new("final")).unwrap();
        assert!(root.is_empty().unwrap());
    }
}
