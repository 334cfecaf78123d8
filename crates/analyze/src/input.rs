//! What a path given to `verify`, `extract` or `info` is, told by content:
//! a capture directory (or its `manifest.json`), a seekable zstd image, a
//! plain zstd stream, or a plain LiME file.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Component, Path, PathBuf};

use fv_evidence::manifest::{MANIFEST_FILE, Manifest};
use fv_evidence::seektable::SEEKABLE_MAGIC;

use crate::error::Error;

/// zstd frame magic, little-endian.
pub const ZSTD_MAGIC: u32 = 0xFD2F_B528;
/// Skippable frames use magics `0x184D2A50..=0x184D2A5F`.
const SKIPPABLE_MASK: u32 = 0xFFFF_FFF0;
const SKIPPABLE_BASE: u32 = 0x184D_2A50;
/// A manifest larger than this is not one of ours.
const MANIFEST_MAX: u64 = 64 << 20;

/// A capture directory with its parsed manifest.
#[derive(Debug, Clone)]
pub struct Capture {
    /// The capture directory.
    pub dir: PathBuf,
    /// Its manifest file.
    pub manifest_path: PathBuf,
    /// The parsed manifest (schema checked; contents not yet trusted).
    pub manifest: Manifest,
    /// The raw bytes of the manifest.
    pub manifest_bytes: Vec<u8>,
    /// `dir` joined with the manifest's image file name (checked to be a
    /// plain name).
    pub image_path: PathBuf,
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
    /// is none of the above, [`Error::Manifest`] or
    /// [`Error::ManifestInvalid`] for a manifest we cannot use.
    pub fn open(path: &Path) -> Result<Self, Error> {
        let meta = std::fs::metadata(path).map_err(|source| Error::Input {
            path: path.to_path_buf(),
            source,
        })?;
        if meta.is_dir() {
            let manifest_path = path.join(MANIFEST_FILE);
            if !manifest_path.exists() {
                return Err(Error::Unrecognised {
                    path: path.to_path_buf(),
                    reason: format!(
                        "is a directory without {MANIFEST_FILE}: not a capture directory (pass an image file to check it alone)"
                    ),
                });
            }
            return Self::capture(path.to_path_buf(), manifest_path);
        }
        let mut f = open_read(path)?;
        let len = meta.len();
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
            return Self::capture(dir, path.to_path_buf());
        }
        Err(Error::Unrecognised {
            path: path.to_path_buf(),
            reason: format!(
                "not a capture directory, manifest, seekable zstd image, zstd or LiME file (starts with {})",
                crate::hex(&head[..n])
            ),
        })
    }

    fn capture(dir: PathBuf, manifest_path: PathBuf) -> Result<Self, Error> {
        let f = open_read(&manifest_path)?;
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
        Ok(Self::Capture(Box::new(Capture {
            dir,
            manifest_path,
            manifest,
            manifest_bytes: bytes,
            image_path,
        })))
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

/// Opens a file for reading (never for writing: evidence is not modified).
///
/// # Errors
/// [`Error::Input`].
pub fn open_read(path: &Path) -> Result<File, Error> {
    File::open(path).map_err(|source| Error::Input {
        path: path.to_path_buf(),
        source,
    })
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
