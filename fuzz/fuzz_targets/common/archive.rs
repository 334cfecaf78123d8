//! The archive the directory targets (`capture_dir`, `symbols_dir`) unpack
//! into a fresh capture directory: entries of `kind u8, name_len u8, name,
//! data_len u16 LE, data`; kind % 4: 0 file, 1 directory, 2 symlink to
//! `data` (`@fifo`: a FIFO outside the directory), 3 FIFO. Names are
//! `/`-separated relative paths; entries that would leave the directory are
//! skipped.

use std::os::unix::fs::symlink;
use std::path::{Component, Path, PathBuf};
use std::sync::OnceLock;

pub fn scratch() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("fv-fuzz-capdir-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        // A FIFO outside the capture: following a symlink to it would hang.
        let _ = nix::unistd::mkfifo(
            &dir.join("outside-fifo"),
            nix::sys::stat::Mode::from_bits_truncate(0o600),
        );
        dir
    })
}

fn safe(name: &str) -> bool {
    !name.is_empty()
        && Path::new(name)
            .components()
            .all(|c| matches!(c, Component::Normal(_)))
}

pub fn unpack(data: &[u8], root: &Path) {
    let mut at = 0usize;
    let mut entries = 0;
    while at + 4 <= data.len() && entries < 64 {
        entries += 1;
        let kind = data[at] % 4;
        let name_len = usize::from(data[at + 1]);
        at += 2;
        let Some(name) = data.get(at..at + name_len) else {
            return;
        };
        at += name_len;
        let Some(len) = data.get(at..at + 2) else {
            return;
        };
        let len = usize::from(u16::from_le_bytes([len[0], len[1]]));
        at += 2;
        let Some(body) = data.get(at..at + len) else {
            return;
        };
        at += len;
        let Ok(name) = std::str::from_utf8(name) else {
            continue;
        };
        if !safe(name) {
            continue;
        }
        let path = root.join(name);
        if let Some(parent) = path.parent() {
            let _ = std::fs::create_dir_all(parent);
        }
        let _ = match kind {
            0 => std::fs::write(&path, body),
            1 => std::fs::create_dir_all(&path),
            2 => {
                let target = String::from_utf8_lossy(body).into_owned();
                // Targets anywhere, and the FIFO outside.
                let target = if target == "@fifo" {
                    scratch().join("outside-fifo").display().to_string()
                } else {
                    target
                };
                symlink(target, &path)
            }
            _ => nix::unistd::mkfifo(&path, nix::sys::stat::Mode::from_bits_truncate(0o600))
                .map_err(std::io::Error::from),
        };
    }
}

pub fn printable(bytes: &[u8]) {
    for c in String::from_utf8_lossy(bytes).chars() {
        assert!(c == '\n' || !c.is_control(), "control character in output");
    }
}

