//! Verifying that a mounted filesystem is the forensics volume and that its
//! toolkit is intact: the marker `forensics-volume.json` and every file in
//! `SHA256SUMS` (`sha256sum -c` format), read back from the read-only mount
//! before anything runs from it or writes to it.

use std::ffi::OsStr;
use std::io::Read;
use std::path::{Component, Path, PathBuf};

use fv_core::fs::{Dir, FsError};
use fv_core::volume::{LABEL, MARKER_FILE, MARKER_FORMAT, MARKER_TOOLKIT, SUMS_FILE};
use serde::Serialize;
use sha2::{Digest, Sha256};

/// Largest marker or sums file read (both are small text files).
const MAX_META: u64 = 1 << 20;

/// Verification failed.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// A file could not be opened or read (missing, symlink, I/O).
    #[error("{0}")]
    Fs(#[from] FsError),
    /// Reading failed.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The marker is not the forensics volume's.
    #[error("{path}: not a forensics-volume marker: {detail}")]
    Marker {
        /// The marker path.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// A line of SHA256SUMS is malformed or names an unsafe path.
    #[error("{path}: line {line}: {detail}")]
    Sums {
        /// The sums file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// What is wrong.
        detail: String,
    },
    /// A toolkit file's hash differs.
    #[error(
        "{path}: SHA-256 is {actual}, SHA256SUMS says {expected}: the toolkit on this volume is damaged or altered"
    )]
    Mismatch {
        /// The file.
        path: PathBuf,
        /// Listed hash.
        expected: String,
        /// Computed hash.
        actual: String,
    },
}

/// The marker's fields we report.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct Marker {
    /// Always `forensics-volume`.
    pub toolkit: String,
    /// Toolkit version.
    pub version: String,
    /// Git commit of the build.
    #[serde(default)]
    pub git_commit: String,
    /// Build time.
    #[serde(default)]
    pub build_time: String,
    /// Filesystem label the volume was made with.
    #[serde(default)]
    pub label: Option<String>,
    /// Layout format.
    pub format: u32,
}

/// What was verified.
#[derive(Debug, Clone, Serialize)]
pub struct Verified {
    /// The marker.
    pub marker: Marker,
    /// Files whose hash matched.
    pub files: usize,
    /// Their total size.
    pub bytes: u64,
}

/// One `SHA256SUMS` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SumEntry {
    /// Lowercase hex digest.
    pub sha256: String,
    /// Relative path (normal components only).
    pub path: PathBuf,
}

/// Parses `sha256sum` output: `<64 hex><space><space or *><path>`. Paths
/// must be relative with normal components only.
///
/// # Errors
/// [`VerifyError::Sums`] for the first bad line, or an empty list.
pub fn parse_sums(text: &str, file: &Path) -> Result<Vec<SumEntry>, VerifyError> {
    let bad = |line: usize, detail: &str| VerifyError::Sums {
        path: file.to_path_buf(),
        line,
        detail: detail.to_string(),
    };
    let mut entries = Vec::new();
    for (n, line) in text.lines().enumerate().filter(|(_, l)| !l.is_empty()) {
        let (hash, rest) = line
            .split_at_checked(64)
            .ok_or_else(|| bad(n + 1, "too short"))?;
        if !hash
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(bad(n + 1, "not a lowercase SHA-256 hex digest"));
        }
        let path = rest
            .strip_prefix("  ")
            .or_else(|| rest.strip_prefix(" *"))
            .ok_or_else(|| bad(n + 1, "expected two spaces (or \" *\") after the digest"))?;
        let path = PathBuf::from(path);
        if path.as_os_str().is_empty()
            || !path.components().all(|c| matches!(c, Component::Normal(_)))
        {
            return Err(bad(
                n + 1,
                "path must be relative, without . or .. components",
            ));
        }
        entries.push(SumEntry {
            sha256: hash.to_string(),
            path,
        });
    }
    if entries.is_empty() {
        return Err(bad(0, "lists no files"));
    }
    Ok(entries)
}

fn read_small(root: &Dir, name: &str) -> Result<String, VerifyError> {
    let path = root.path().join(name);
    let file = root.open_file(OsStr::new(name))?;
    let mut text = String::new();
    file.take(MAX_META)
        .read_to_string(&mut text)
        .map_err(|source| VerifyError::Read { path, source })?;
    Ok(text)
}

/// Checks the marker's content.
///
/// # Errors
/// [`VerifyError::Marker`].
pub fn parse_marker(text: &str, path: &Path) -> Result<Marker, VerifyError> {
    let bad = |detail: String| VerifyError::Marker {
        path: path.to_path_buf(),
        detail,
    };
    let marker: Marker =
        serde_json::from_str(text).map_err(|e| bad(format!("invalid JSON: {e}")))?;
    if marker.toolkit != MARKER_TOOLKIT {
        return Err(bad(format!(
            "toolkit is {:?}, expected {MARKER_TOOLKIT:?}",
            marker.toolkit
        )));
    }
    if marker.format != MARKER_FORMAT {
        return Err(bad(format!(
            "layout format {} is not {MARKER_FORMAT} (a newer or older toolkit: use its own helpers)",
            marker.format
        )));
    }
    if let Some(label) = marker.label.as_deref().filter(|l| *l != LABEL) {
        return Err(bad(format!("label {label:?} is not {LABEL:?}")));
    }
    Ok(marker)
}

fn sha256_of(root: &Path, rel: &Path) -> Result<(String, u64), VerifyError> {
    let full = root.join(rel);
    let parent = Dir::open(full.parent().unwrap_or(root))?;
    let name = full.file_name().unwrap_or_default();
    let mut file = parent.open_file(name)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = file.read(&mut buf).map_err(|source| VerifyError::Read {
            path: full.clone(),
            source,
        })?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        total += n as u64;
    }
    // The volume's pages are not evidence, but the suspect's page cache is:
    // do not let the toolkit displace it.
    fv_core::fs::drop_cached(&file, 0, 0);
    let hex = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    Ok((hex, total))
}

/// Verifies the marker and every file listed in `SHA256SUMS` under `root`.
///
/// # Errors
/// [`VerifyError`] naming the first problem.
pub fn verify_toolkit(root: &Path) -> Result<Verified, VerifyError> {
    let dir = Dir::open(root)?;
    let marker = parse_marker(&read_small(&dir, MARKER_FILE)?, &root.join(MARKER_FILE))?;
    let sums = parse_sums(&read_small(&dir, SUMS_FILE)?, &root.join(SUMS_FILE))?;
    let mut bytes = 0;
    for entry in &sums {
        let (actual, size) = sha256_of(root, &entry.path)?;
        if actual != entry.sha256 {
            return Err(VerifyError::Mismatch {
                path: root.join(&entry.path),
                expected: entry.sha256.clone(),
                actual,
            });
        }
        bytes += size;
    }
    Ok(Verified {
        marker,
        files: sums.len(),
        bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(data: &[u8]) -> String {
        Sha256::digest(data)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// A volume tree like build.sh's, built in code.
    pub(crate) fn volume(root: &Path) {
        std::fs::create_dir_all(root.join("bin/x86_64")).unwrap();
        std::fs::write(root.join("bin/x86_64/capture"), b"capture binary").unwrap();
        std::fs::write(root.join("README.txt"), b"break glass").unwrap();
        std::fs::write(
            root.join(MARKER_FILE),
            r#"{"toolkit":"forensics-volume","version":"0.1.0","git_commit":"abc","build_time":"now","targets":["x86_64-unknown-linux-musl"],"label":"FORENSICS","format":1}"#,
        )
        .unwrap();
        std::fs::write(
            root.join(SUMS_FILE),
            format!(
                "{}  bin/x86_64/capture\n{} *README.txt\n",
                hex(b"capture binary"),
                hex(b"break glass")
            ),
        )
        .unwrap();
    }

    #[test]
    fn verifies_a_good_volume() {
        let tmp = tempfile::tempdir().unwrap();
        volume(tmp.path());
        let v = verify_toolkit(tmp.path()).unwrap();
        assert_eq!(v.files, 2);
        assert_eq!(v.bytes, 25);
        assert_eq!(v.marker.version, "0.1.0");
    }

    #[test]
    fn a_changed_byte_is_caught() {
        let tmp = tempfile::tempdir().unwrap();
        volume(tmp.path());
        std::fs::write(tmp.path().join("bin/x86_64/capture"), b"capture binarY").unwrap();
        let err = verify_toolkit(tmp.path()).unwrap_err();
        assert!(matches!(err, VerifyError::Mismatch { .. }), "{err}");
        assert!(err.to_string().contains("bin/x86_64/capture"), "{err}");
    }

    #[test]
    fn symlinked_toolkit_files_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        volume(tmp.path());
        std::fs::rename(tmp.path().join("README.txt"), tmp.path().join("elsewhere")).unwrap();
        std::os::unix::fs::symlink("elsewhere", tmp.path().join("README.txt")).unwrap();
        let err = verify_toolkit(tmp.path()).unwrap_err();
        assert!(matches!(err, VerifyError::Fs(_)), "{err}");
    }

    #[test]
    fn markers() {
        let p = Path::new("m");
        assert!(parse_marker(r#"{"toolkit":"x","version":"1","format":1}"#, p).is_err());
        assert!(
            parse_marker(
                r#"{"toolkit":"forensics-volume","version":"1","format":2}"#,
                p
            )
            .is_err()
        );
        assert!(
            parse_marker(
                r#"{"toolkit":"forensics-volume","version":"1","format":1,"label":"X"}"#,
                p
            )
            .is_err()
        );
        assert!(parse_marker("not json", p).is_err());
        assert!(
            parse_marker(
                r#"{"toolkit":"forensics-volume","version":"1","format":1}"#,
                p
            )
            .is_ok()
        );
    }

    #[test]
    fn sums_lines() {
        let h = "a".repeat(64);
        let p = Path::new("S");
        assert_eq!(
            parse_sums(&format!("{h}  a/b\n"), p).unwrap()[0].path,
            Path::new("a/b")
        );
        for bad in [
            format!("{h}  /etc/passwd"),
            format!("{h}  ../x"),
            format!("{h}  a/../../x"),
            format!("{h} x"),
            format!("{}  x", "A".repeat(64)),
            "abc  x".to_string(),
            String::new(),
        ] {
            assert!(parse_sums(&bad, p).is_err(), "{bad:?}");
        }
    }
}
