//! Where `extract` writes: a new file created `O_EXCL|O_NOFOLLOW` (0600)
//! under a temporary name in the target directory (opened without following
//! symlinks), renamed into place only when complete, never over an existing
//! file unless `--force`, and never over the evidence itself. Or stdout.
//!
//! Padded output is sparse: all-zero 4 KiB blocks are skipped (left as
//! holes), never written as zeros.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};

use fv_core::fs::{Dir, FsError, sync_file};

use crate::error::Error;

/// Block size for hole detection in padded output: the page size of every
/// architecture we ship, and what file systems allocate by.
pub const BLOCK: usize = 4096;

/// An output file being written under a temporary name.
#[derive(Debug)]
pub struct OutFile {
    dir: Dir,
    tmp: OsString,
    name: OsString,
    path: PathBuf,
    file: File,
    replace: bool,
    committed: bool,
}

/// The capture directory an input belongs to, if any: the directory of a
/// capture, or the directory holding an image next to a `manifest.json`.
pub fn evidence_dirs(input: &crate::input::Input) -> Vec<PathBuf> {
    if let crate::input::Input::Capture(c) = input {
        return vec![c.dir.clone()];
    }
    match input.data_path().parent() {
        Some(p) if p.join(fv_evidence::manifest::MANIFEST_FILE).exists() => {
            vec![if p.as_os_str().is_empty() {
                PathBuf::from(".")
            } else {
                p.to_path_buf()
            }]
        }
        _ => vec![],
    }
}

/// [`Error::OutputInEvidence`] when `path` would be in one of
/// `evidence_dirs` or below one (checked before long work; [`OutFile::create`]
/// checks again).
///
/// # Errors
/// As said.
pub fn not_in_evidence(path: &Path, evidence_dirs: &[PathBuf]) -> Result<(), Error> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let (Some(name), Ok(dir)) = (path.file_name(), Dir::open(parent)) else {
        return Ok(()); // creating the output will fail with its own message
    };
    refuse_evidence_dir(path, parent, &dir, name, evidence_dirs)
}

/// [`Error::OutputInEvidence`] when `parent` (open as `dir`) is one of
/// `evidence_dirs` or below one: the same directory (device and inode, so a
/// bind mount or another spelling is caught) or, resolved, a path inside it.
fn refuse_evidence_dir(
    path: &Path,
    parent: &Path,
    dir: &Dir,
    name: &OsStr,
    evidence_dirs: &[PathBuf],
) -> Result<(), Error> {
    let here = dir.stat().ok().map(|st| (st.st_dev, st.st_ino));
    let real_parent = std::fs::canonicalize(parent).ok();
    for ev in evidence_dirs {
        let same = here.is_some() && identity(ev) == here;
        let below = match (&real_parent, std::fs::canonicalize(ev)) {
            (Some(p), Ok(e)) => p.starts_with(&e),
            _ => false,
        };
        if same || below {
            let outside = std::fs::canonicalize(ev)
                .ok()
                .and_then(|e| e.parent().map(Path::to_path_buf))
                .unwrap_or_else(|| PathBuf::from(".."));
            return Err(Error::OutputInEvidence {
                path: path.to_path_buf(),
                dir: ev.clone(),
                suggestion: outside.join(name),
            });
        }
    }
    Ok(())
}

/// The `(device, inode)` of a path, if it exists.
pub fn identity(path: &Path) -> Option<(u64, u64)> {
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

impl OutFile {
    /// Creates the temporary file for `path`. `inputs` are the evidence
    /// files: the output may never be one of them; `evidence_dirs` are
    /// capture directories: the output may not be in one (or below it).
    ///
    /// # Errors
    /// [`Error::OutputExists`], [`Error::OutputIsInput`],
    /// [`Error::OutputInEvidence`], [`Error::OutputFs`].
    pub fn create(
        path: &Path,
        force: bool,
        inputs: &[(u64, u64)],
        evidence_dirs: &[PathBuf],
    ) -> Result<Self, Error> {
        let name = path
            .file_name()
            .ok_or_else(|| Error::Output {
                path: path.to_path_buf(),
                source: std::io::Error::other("not a file name"),
            })?
            .to_os_string();
        let parent = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let dir = Dir::open(parent)?;
        let existing = dir.stat_child(&name);
        if let Ok(st) = &existing
            && inputs.contains(&(st.st_dev, st.st_ino))
        {
            return Err(Error::OutputIsInput {
                path: path.to_path_buf(),
            });
        }
        refuse_evidence_dir(path, parent, &dir, &name, evidence_dirs)?;
        match existing {
            Ok(st) => {
                if !force {
                    return Err(Error::OutputExists {
                        path: path.to_path_buf(),
                    });
                }
                if st.st_mode & libc_s_ifmt() != libc_s_ifreg() {
                    return Err(Error::Output {
                        path: path.to_path_buf(),
                        source: std::io::Error::other(
                            "exists and is not a regular file; --force only replaces files",
                        ),
                    });
                }
            }
            Err(FsError::Sys { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
        let mut tmp = OsString::from(".");
        tmp.push(&name);
        tmp.push(format!(".partial-{}", std::process::id()));
        let file = dir.create_file(&tmp)?;
        Ok(Self {
            dir,
            tmp,
            name,
            path: path.to_path_buf(),
            file,
            replace: force,
            committed: false,
        })
    }

    /// The file being written.
    pub fn file(&self) -> &File {
        &self.file
    }

    /// The final path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Makes the data durable and renames it into place.
    ///
    /// # Errors
    /// [`Error::OutputFs`] ([`FsError::Exists`] if the name was taken
    /// meanwhile and `--force` was not given).
    pub fn commit(mut self) -> Result<PathBuf, Error> {
        sync_file(&self.file, &self.path)?;
        self.dir.rename(&self.tmp, &self.name, self.replace)?;
        self.committed = true;
        self.dir.sync()?;
        Ok(self.path.clone())
    }
}

impl Drop for OutFile {
    fn drop(&mut self) {
        if !self.committed {
            // Best effort: an incomplete output must not be left looking like
            // a result. Its name (`.NAME.partial-PID`) says what it is if
            // removal fails.
            let _ = self.dir.remove_file(&self.tmp);
        }
    }
}

const fn libc_s_ifmt() -> u32 {
    0o170_000
}

const fn libc_s_ifreg() -> u32 {
    0o100_000
}

/// Where extracted bytes go.
pub enum Sink<'w> {
    /// A file, written at offsets.
    File {
        /// The file.
        out: OutFile,
        /// Skip all-zero blocks (padded format).
        sparse: bool,
        /// Bytes of data written (holes excluded).
        written: u64,
    },
    /// Standard output (the command's `out` stream), written in order.
    Stream(&'w mut dyn Write),
}

impl std::fmt::Debug for Sink<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::File {
                out,
                sparse,
                written,
            } => f
                .debug_struct("File")
                .field("out", out)
                .field("sparse", sparse)
                .field("written", written)
                .finish(),
            Self::Stream(_) => f.write_str("Stream"),
        }
    }
}

impl Sink<'_> {
    /// Writes `data` at output offset `at` (stdout: `at` must be the current
    /// end, which the extract loop guarantees).
    ///
    /// # Errors
    /// [`Error::Output`].
    pub fn write_at(&mut self, at: u64, data: &[u8]) -> Result<(), Error> {
        match self {
            Self::File {
                out,
                sparse,
                written,
            } => {
                let err = |source| Error::Output {
                    path: out.path.clone(),
                    source,
                };
                if !*sparse {
                    out.file.write_all_at(data, at).map_err(err)?;
                    *written += data.len() as u64;
                    return Ok(());
                }
                // Cut at block boundaries of the output so holes align.
                let mut pos = 0usize;
                while pos < data.len() {
                    let off = at + pos as u64;
                    let to_boundary = BLOCK - (off % BLOCK as u64) as usize;
                    let n = to_boundary.min(data.len() - pos);
                    let chunk = &data[pos..pos + n];
                    if chunk.iter().any(|&b| b != 0) {
                        out.file.write_all_at(chunk, off).map_err(err)?;
                        *written += n as u64;
                    }
                    pos += n;
                }
                Ok(())
            }
            Self::Stream(s) => s.write_all(data).map_err(|source| Error::Output {
                path: PathBuf::from("-"),
                source,
            }),
        }
    }

    /// Sets the final length (padded output ends in a hole up to the last
    /// address), makes it durable and renames it into place. Returns the
    /// output's path (`-` for stdout).
    ///
    /// # Errors
    /// [`Error::Output`], [`Error::OutputFs`].
    pub fn finish(self, len: u64) -> Result<PathBuf, Error> {
        match self {
            Self::File { out, .. } => {
                out.file.set_len(len).map_err(|source| Error::Output {
                    path: out.path.clone(),
                    source,
                })?;
                out.commit()
            }
            Self::Stream(s) => {
                s.flush().map_err(|source| Error::Output {
                    path: PathBuf::from("-"),
                    source,
                })?;
                Ok(PathBuf::from("-"))
            }
        }
    }
}

/// The default output name for `image` in the current directory.
pub fn default_name(
    image: &Path,
    format: crate::Format,
    range: Option<crate::range::PhysRange>,
) -> PathBuf {
    let file = image
        .file_name()
        .map_or_else(|| OsStr::new("memory").to_os_string(), OsStr::to_os_string);
    let file = file.to_string_lossy();
    let stem = file.strip_suffix(".zst").unwrap_or(&file);
    let stem = stem.strip_suffix(".lime").unwrap_or(stem);
    let stem = if stem.is_empty() { "memory" } else { stem };
    let mut name = stem.to_string();
    if let Some(r) = range {
        name.push_str(&format!(".{r}"));
    }
    name.push('.');
    name.push_str(format.name());
    PathBuf::from(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Format;
    use crate::range::PhysRange;

    #[test]
    fn default_names() {
        let p = Path::new("/case/cap/memory.lime.zst");
        assert_eq!(
            default_name(p, Format::Lime, None),
            PathBuf::from("memory.lime")
        );
        assert_eq!(
            default_name(p, Format::Padded, None),
            PathBuf::from("memory.padded")
        );
        assert_eq!(
            default_name(
                p,
                Format::Raw,
                Some(PhysRange {
                    start: 0x1000,
                    end: 0x1fff
                })
            ),
            PathBuf::from("memory.0x1000-0x1fff.raw")
        );
        assert_eq!(
            default_name(Path::new("dump.lime"), Format::Raw, None),
            PathBuf::from("dump.raw")
        );
    }

    #[test]
    fn refuses_existing_and_the_input_and_cleans_up() {
        let tmp = tempfile::tempdir().unwrap();
        let existing = tmp.path().join("out");
        std::fs::write(&existing, b"keep").unwrap();
        let err = OutFile::create(&existing, false, &[], &[]).unwrap_err();
        assert!(matches!(err, Error::OutputExists { .. }), "{err}");
        let id = identity(&existing).unwrap();
        let err = OutFile::create(&existing, true, &[id], &[]).unwrap_err();
        assert!(matches!(err, Error::OutputIsInput { .. }), "{err}");
        assert_eq!(std::fs::read(&existing).unwrap(), b"keep");

        // Dropped before commit: no temporary left, nothing at the name.
        let fresh = tmp.path().join("fresh");
        let out = OutFile::create(&fresh, false, &[], &[]).unwrap();
        drop(out);
        assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 1);

        // --force replaces a file.
        let mut sink = Sink::File {
            out: OutFile::create(&existing, true, &[], &[]).unwrap(),
            sparse: false,
            written: 0,
        };
        sink.write_at(0, b"new").unwrap();
        sink.finish(3).unwrap();
        assert_eq!(std::fs::read(&existing).unwrap(), b"new");
    }
}
