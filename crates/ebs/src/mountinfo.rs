//! `/proc/<pid>/mountinfo` (proc(5)): which device is mounted where, with
//! what options. Parsing is pure; [`read`] takes the proc root.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::DevT;

/// One line of mountinfo.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MountEntry {
    /// Mount ID.
    pub id: u32,
    /// Device of the filesystem (`major:minor`; major 0 for virtual and
    /// some multi-device filesystems).
    pub dev: DevT,
    /// Root of the mount within the filesystem.
    pub root: PathBuf,
    /// Where it is mounted.
    pub mount_point: PathBuf,
    /// Per-mount options (`ro`/`rw`, `nosuid`, ...).
    pub options: Vec<String>,
    /// Filesystem type.
    pub fs_type: String,
    /// Mount source (`/dev/nvme1n1`).
    pub source: String,
    /// Superblock options.
    pub super_options: Vec<String>,
}

impl MountEntry {
    /// Whether the mount is read-only.
    pub fn read_only(&self) -> bool {
        self.options.iter().any(|o| o == "ro")
    }
}

/// A line that does not follow the mountinfo format.
#[derive(Debug, thiserror::Error)]
pub enum MountinfoError {
    /// Malformed line.
    #[error("{path}: line {line}: malformed mountinfo entry: {text:?}")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// The line.
        text: String,
    },
    /// Could not read the file.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// Undoes mountinfo's octal escapes (`\040` for space, `\011`, `\012`, `\134`).
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 3 < bytes.len() {
            let oct = &bytes[i + 1..i + 4];
            if oct.iter().all(|b| (b'0'..=b'7').contains(b)) {
                let value = oct
                    .iter()
                    .fold(0u32, |acc, b| acc * 8 + u32::from(b - b'0'));
                if let Ok(byte) = u8::try_from(value) {
                    out.push(byte);
                    i += 4;
                    continue;
                }
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn parse_line(line: &str) -> Option<MountEntry> {
    let (left, right) = line.split_once(" - ")?;
    let mut l = left.split(' ');
    let id = l.next()?.parse().ok()?;
    let _parent = l.next()?;
    let dev = DevT::parse(l.next()?)?;
    let root = PathBuf::from(unescape(l.next()?));
    let mount_point = PathBuf::from(unescape(l.next()?));
    let options = l.next()?.split(',').map(str::to_string).collect();
    let mut r = right.split(' ');
    let fs_type = unescape(r.next()?);
    let source = unescape(r.next()?);
    let super_options = r
        .next()
        .unwrap_or("")
        .split(',')
        .map(str::to_string)
        .collect();
    Some(MountEntry {
        id,
        dev,
        root,
        mount_point,
        options,
        fs_type,
        source,
        super_options,
    })
}

/// Parses mountinfo text; `path` only names the file in errors.
///
/// # Errors
/// [`MountinfoError::Malformed`] for the first line that does not parse.
pub fn parse(text: &str, path: &Path) -> Result<Vec<MountEntry>, MountinfoError> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(n, line)| {
            parse_line(line).ok_or_else(|| MountinfoError::Malformed {
                path: path.to_path_buf(),
                line: n + 1,
                text: line.to_string(),
            })
        })
        .collect()
}

/// Reads `<proc_root>/self/mountinfo`.
///
/// # Errors
/// [`MountinfoError`].
pub fn read(proc_root: &Path) -> Result<Vec<MountEntry>, MountinfoError> {
    let path = proc_root.join("self/mountinfo");
    let text = std::fs::read_to_string(&path).map_err(|source| MountinfoError::Io {
        path: path.clone(),
        source,
    })?;
    parse(&text, &path)
}

/// The mount that `/` resolves to: the last entry for `/` (later mounts
/// stack over earlier ones).
pub fn root_mount(entries: &[MountEntry]) -> Option<&MountEntry> {
    entries
        .iter()
        .rev()
        .find(|e| e.mount_point == Path::new("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
22 1 259:2 / / rw,noatime shared:1 - xfs /dev/nvme0n1p1 rw,attr2,inode64
23 22 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:5 - proc proc rw
40 22 259:5 / /run/forensics\\040volume ro,nosuid,nodev,noatime - ext4 /dev/nvme2n1 ro,noload
";

    #[test]
    fn parses_entries() {
        let entries = parse(SAMPLE, Path::new("mountinfo")).unwrap();
        assert_eq!(entries.len(), 3);
        assert_eq!(
            entries[0].dev,
            DevT {
                major: 259,
                minor: 2
            }
        );
        assert_eq!(entries[0].fs_type, "xfs");
        assert_eq!(entries[0].source, "/dev/nvme0n1p1");
        assert!(!entries[0].read_only());
        assert_eq!(entries[2].mount_point, Path::new("/run/forensics volume"));
        assert!(entries[2].read_only());
        assert_eq!(entries[2].super_options, ["ro", "noload"]);
        assert_eq!(root_mount(&entries).unwrap().id, 22);
    }

    #[test]
    fn optional_fields_and_escapes() {
        let line = "36 35 98:0 /mnt1 /mnt/a\\011b rw,noatime master:1 propagate_from:2 - ext3 /dev/root rw,errors=continue";
        let entries = parse(line, Path::new("m")).unwrap();
        assert_eq!(entries[0].root, Path::new("/mnt1"));
        assert_eq!(entries[0].mount_point, Path::new("/mnt/a\tb"));
        assert_eq!(unescape("a\\134b\\"), "a\\b\\");
    }

    #[test]
    fn malformed_lines_are_named() {
        let err = parse("22 1 259:2 / /\n", Path::new("mi")).unwrap_err();
        assert!(err.to_string().contains("line 1"), "{err}");
        let err = parse(&format!("{SAMPLE}x y z - a b\n"), Path::new("mi")).unwrap_err();
        assert!(err.to_string().contains("line 4"), "{err}");
    }
}
