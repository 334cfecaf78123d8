//! What a path given to `verify`, `extract` or `info` is, told by content:
//! a capture directory (or its `manifest.json`), a seekable zstd image, a
//! plain zstd stream, or a plain LiME file.
//!
//! Everything inside a capture directory is attacker-controlled (the volume
//! was writable on a compromised host), so its files are opened relative to
//! the directory's descriptor, never through a symlink, without blocking,
//! and only if they are regular files ([`fv_core::fs::Dir::open_regular`]):
//! a `ctx -> /etc` link cannot make `verify` hash the analysis host's files,
//! and a FIFO cannot hang it. A path the analyst typed is followed as given.

use std::ffi::OsStr;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use fv_core::fs::{Dir, FsError};
use fv_evidence::inprogress::INCOMPLETE_FILE;
use fv_evidence::manifest::{CONTEXT_DIR, IMAGE_FILE, IMAGE_SHA256_FILE, MANIFEST_FILE, Manifest};
use fv_evidence::seektable::SEEKABLE_MAGIC;

use crate::error::Error;

/// zstd frame magic, little-endian.
pub const ZSTD_MAGIC: u32 = 0xFD2F_B528;
/// Skippable frames use magics `0x184D2A50..=0x184D2A5F`.
const SKIPPABLE_MASK: u32 = 0xFFFF_FFF0;
const SKIPPABLE_BASE: u32 = 0x184D_2A50;
/// A manifest larger than this is not one of ours.
const MANIFEST_MAX: u64 = 64 << 20;
/// The space reserve `capture` preallocates and removes at the end
/// (`fv_acquire::output::RESERVE_FILE`): left behind by an aborted run.
const RESERVE_FILE: &str = ".reserve";

/// A capture directory with its parsed manifest.
#[derive(Debug, Clone)]
pub struct Capture {
    /// The capture directory.
    pub dir: PathBuf,
    /// It, open: every file in it is opened relative to this descriptor.
    pub fd: Arc<Dir>,
    /// Its manifest file.
    pub manifest_path: PathBuf,
    /// The parsed manifest (schema checked; contents not yet trusted).
    pub manifest: Manifest,
    /// The raw bytes of the manifest.
    pub manifest_bytes: Vec<u8>,
    /// `dir` joined with the manifest's image file name (checked to be a
    /// plain name).
    pub image_path: PathBuf,
    /// The `INCOMPLETE` marker is still there next to the manifest (the
    /// capture was stopped after writing it).
    pub marker_left: bool,
}

impl Capture {
    /// Opens the file at `rel` (normal components only, checked by the
    /// caller) inside the capture directory: each directory component
    /// without following a symlink, the file as [`Dir::open_regular`].
    ///
    /// # Errors
    /// [`FsError`] naming the component that is a symlink, not a directory,
    /// or not a regular file.
    pub fn open_file(&self, rel: &str) -> Result<File, FsError> {
        open_under(&self.fd, rel)
    }
}

/// Opens `rel` under `dir`, component by component, never following a
/// symlink; the last component must be a regular file.
///
/// # Errors
/// As [`Capture::open_file`].
pub fn open_under(dir: &Dir, rel: &str) -> Result<File, FsError> {
    let parts: Vec<&OsStr> = Path::new(rel)
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n),
            _ => None,
        })
        .collect();
    let Some((last, dirs)) = parts.split_last() else {
        return Err(FsError::NotRegular {
            path: dir.path().join(rel),
            kind: "empty",
        });
    };
    let mut owned: Option<Dir> = None;
    for d in dirs {
        let next = owned.as_ref().unwrap_or(dir).open_dir(d)?;
        owned = Some(next);
    }
    owned.as_ref().unwrap_or(dir).open_regular(last)
}

/// Whether `dir` holds `name` (any kind of entry, not followed).
fn has(dir: &Dir, name: &str) -> bool {
    dir.stat_child(OsStr::new(name)).is_ok()
}

/// What an aborted capture left in `dir` (which has no manifest), if it
/// looks like one: the image, its sidecar, `context/`, the space reserve,
/// or the in-progress marker.
fn traces_of_capture(dir: &Dir) -> Vec<&'static str> {
    [
        INCOMPLETE_FILE,
        IMAGE_FILE,
        IMAGE_SHA256_FILE,
        CONTEXT_DIR,
        RESERVE_FILE,
    ]
    .into_iter()
    .filter(|n| has(dir, n))
    .collect()
}

/// For an image file given on its own: when its directory holds the
/// in-progress marker and no manifest, the capture that wrote it was
/// aborted, and the image is an unfinished prefix however clean it looks.
/// Returns the marker's path then.
pub fn aborted_marker_near(file: &Path) -> Option<PathBuf> {
    let parent = match file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let dir = Dir::open_following(parent).ok()?;
    (has(&dir, INCOMPLETE_FILE) && !has(&dir, MANIFEST_FILE)).then(|| parent.join(INCOMPLETE_FILE))
}

/// An input, by what its bytes are.
#[derive(Debug, Clone)]
pub enum Input {
    /// A capture directory.
    Capture(Box<Capture>),
    /// A seekable zstd file without a manifest.
    Seekable(PathBuf),
    /// A zstd stream without a seek table.
    PlainZstd(PathBuf),
    /// An uncompressed LiME file.
    PlainLime(PathBuf),
}

impl Input {
    /// Looks at `path` and decides what it is.
    ///
    /// # Errors
    /// [`Error::Input`] if it cannot be read, [`Error::Unrecognised`] if it
    /// is none of the above, [`Error::Aborted`] for a capture directory
    /// without a manifest, [`Error::Manifest`] or [`Error::ManifestInvalid`]
    /// for a manifest we cannot use.
    pub fn open(path: &Path) -> Result<Self, Error> {
        let meta = std::fs::metadata(path).map_err(|source| Error::Input {
            path: path.to_path_buf(),
            source,
        })?;
        if meta.is_dir() {
            let fd = Dir::open_following(path).map_err(|e| Error::input_fs(path, e))?;
            if !has(&fd, MANIFEST_FILE) {
                let traces = traces_of_capture(&fd);
                if !traces.is_empty() {
                    return Err(Error::Aborted {
                        path: path.to_path_buf(),
                        found: traces.join(", "),
                    });
                }
                return Err(Error::Unrecognised {
                    path: path.to_path_buf(),
                    reason: format!(
                        "is a directory without {MANIFEST_FILE}: not a capture directory (pass an image file to check it alone)"
                    ),
                });
            }
            return Self::capture(path.to_path_buf(), fd, OsStr::new(MANIFEST_FILE));
        }
        let mut f = open_read(path)?;
        let len = f
            .metadata()
            .map_err(|source| Error::Input {
                path: path.to_path_buf(),
                source,
            })?
            .len();
        let mut head = [0u8; 4];
        let n = read_up_to(&mut f, &mut head).map_err(|source| Error::Input {
            path: path.to_path_buf(),
            source,
        })?;
        if n == 0 {
            return Err(Error::Unrecognised {
                path: path.to_path_buf(),
                reason: "is empty".into(),
            });
        }
        let magic = u32::from_le_bytes(head);
        if n == 4 && &head == b"EMiL" {
            return Ok(Self::PlainLime(path.to_path_buf()));
        }
        if n == 4 && (magic == ZSTD_MAGIC || magic & SKIPPABLE_MASK == SKIPPABLE_BASE) {
            let mut tail = [0u8; 4];
            let seekable = len >= 17
                && f.seek(SeekFrom::End(-4)).is_ok()
                && f.read_exact(&mut tail).is_ok()
                && u32::from_le_bytes(tail) == SEEKABLE_MAGIC;
            return Ok(if seekable {
                Self::Seekable(path.to_path_buf())
            } else {
                Self::PlainZstd(path.to_path_buf())
            });
        }
        if head[..n]
            .iter()
            .find(|b| !b.is_ascii_whitespace())
            .is_some_and(|&b| b == b'{')
        {
            let dir = match path.parent() {
                Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
                _ => PathBuf::from("."),
            };
            let fd = Dir::open_following(&dir).map_err(|e| Error::input_fs(&dir, e))?;
            let name = path.file_name().unwrap_or(OsStr::new(MANIFEST_FILE));
            return Self::capture(dir, fd, name);
        }
        if n == 4 && magic == fv_formats::avml::MAGIC {
            return Err(Error::Unrecognised {
                path: path.to_path_buf(),
                reason: format!(
                    "is AVML's compressed format (`avml --compress`, its \"LiME version 2\": snappy-framed blocks), not LiME: repackage it into a capture, which checks every block and records the file's SHA-256: `capture --source lime:{} --foreign-lime --output DIR --allow-any-output` (as root; drop --foreign-lime on the host it was taken from), then verify, extract or symbols that capture",
                    path.display()
                ),
            });
        }
        Err(Error::Unrecognised {
            path: path.to_path_buf(),
            reason: format!(
                "not a capture directory, manifest, seekable zstd image, zstd or LiME file (starts with {})",
                crate::hex(&head[..n])
            ),
        })
    }

    fn capture(dir: PathBuf, fd: Dir, manifest_name: &OsStr) -> Result<Self, Error> {
        let manifest_path = dir.join(manifest_name);
        let f = fd
            .open_regular(manifest_name)
            .map_err(|e| Error::input_fs(&manifest_path, e))?;
        let mut bytes = Vec::new();
        f.take(MANIFEST_MAX + 1)
            .read_to_end(&mut bytes)
            .map_err(|source| Error::Input {
                path: manifest_path.clone(),
                source,
            })?;
        if bytes.len() as u64 > MANIFEST_MAX {
            return Err(Error::ManifestInvalid {
                path: manifest_path,
                reason: format!("is larger than {MANIFEST_MAX} bytes: not a capture manifest"),
            });
        }
        let manifest = Manifest::from_json(&bytes).map_err(|source| Error::Manifest {
            path: manifest_path.clone(),
            source,
        })?;
        if !is_plain_name(&manifest.image.file) {
            return Err(Error::ManifestInvalid {
                path: manifest_path,
                reason: format!(
                    "image.file {:?} is not a plain file name in the capture directory",
                    manifest.image.file
                ),
            });
        }
        let image_path = dir.join(&manifest.image.file);
        let marker_left = has(&fd, INCOMPLETE_FILE);
        Ok(Self::Capture(Box::new(Capture {
            dir,
            fd: Arc::new(fd),
            manifest_path,
            manifest,
            manifest_bytes: bytes,
            image_path,
            marker_left,
        })))
    }

    /// Opens the file holding the memory image: for a capture, relative to
    /// its directory as [`Capture::open_file`]; otherwise the path given, as
    /// [`open_read`].
    ///
    /// # Errors
    /// [`Error::Input`] or [`Error::InputFs`].
    pub fn open_data(&self) -> Result<File, Error> {
        match self {
            Self::Capture(c) => c
                .open_file(&c.manifest.image.file)
                .map_err(|e| Error::input_fs(&c.image_path, e)),
            Self::Seekable(p) | Self::PlainZstd(p) | Self::PlainLime(p) => open_read(p),
        }
    }

    /// The file holding the memory image.
    pub fn data_path(&self) -> &Path {
        match self {
            Self::Capture(c) => &c.image_path,
            Self::Seekable(p) | Self::PlainZstd(p) | Self::PlainLime(p) => p,
        }
    }

    /// What kind of input this is, for reports.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Capture(_) => "capture",
            Self::Seekable(_) => "seekable-zstd",
            Self::PlainZstd(_) => "zstd",
            Self::PlainLime(_) => "lime",
        }
    }
}

/// Opens a file the analyst named for reading (never for writing: evidence
/// is not modified): following the path as given, but without blocking and
/// only if it is a regular file, so a FIFO or device cannot hang a command.
///
/// # Errors
/// [`Error::Input`] or [`Error::InputFs`].
pub fn open_read(path: &Path) -> Result<File, Error> {
    fv_core::fs::open_regular_following(path).map_err(|e| Error::input_fs(path, e))
}

fn read_up_to(f: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// A single normal path component: no `/`, `.`, `..`, or empty name.
pub fn is_plain_name(name: &str) -> bool {
    let mut parts = Path::new(name).components();
    matches!(parts.next(), Some(Component::Normal(_)))
        && parts.next().is_none()
        && !name.contains('/')
}

/// A relative path of normal components only (no `..`, no absolute path).
pub fn is_safe_relative(path: &str) -> bool {
    !path.is_empty()
        && Path::new(path)
            .components()
            .all(|c| matches!(c, Component::Normal(_)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_from_a_manifest_cannot_escape_the_directory() {
        assert!(is_plain_name("memory.lime.zst"));
        assert!(!is_plain_name("../memory.lime.zst"));
        assert!(!is_plain_name("/etc/passwd"));
        assert!(!is_plain_name("a/b"));
        assert!(!is_plain_name(".."));
        assert!(!is_plain_name(""));
        assert!(is_safe_relative("context/kallsyms"));
        assert!(!is_safe_relative("context/../../x"));
        assert!(!is_safe_relative("/x"));
        assert!(!is_safe_relative(""));
    }
}
