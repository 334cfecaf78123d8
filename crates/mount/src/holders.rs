//! Which processes hold a filesystem: open files (`/proc/<pid>/fd/*`),
//! working directory, root, executable and mapped files (`maps`), matched
//! by the filesystem's device number (so it works across mount and pid
//! namespaces and whatever path the process used).

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use fv_ebs::DevT;
use serde::Serialize;

/// One process holding the filesystem.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Holder {
    /// Process ID.
    pub pid: u32,
    /// `comm`.
    pub command: String,
    /// `fd 3`, `cwd`, `root`, `exe` or `map`.
    pub how: String,
    /// The path as the process sees it.
    pub path: String,
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "pid {} ({}): {} {}",
            self.pid, self.command, self.how, self.path
        )
    }
}

fn link_text(path: &Path) -> String {
    std::fs::read_link(path).map_or_else(|_| "?".to_string(), |t| t.to_string_lossy().into_owned())
}

fn on_dev(path: &Path, dev: DevT) -> bool {
    std::fs::metadata(path).is_ok_and(|m| DevT::from_raw(m.dev()) == dev)
}

/// Parses the device field of a `maps` line (`fd:01`, hex).
fn maps_dev(field: &str) -> Option<DevT> {
    let (major, minor) = field.split_once(':')?;
    Some(DevT {
        major: u32::from_str_radix(major, 16).ok()?,
        minor: u32::from_str_radix(minor, 16).ok()?,
    })
}

/// Mapped files of one process on `dev`, from `maps` text.
pub fn mapped_on(maps: &str, dev: DevT) -> Vec<String> {
    let mut paths: Vec<String> = Vec::new();
    for line in maps.lines() {
        let mut fields = line.splitn(6, ' ');
        let (Some(_), Some(_), Some(_), Some(devf), Some(inode), Some(rest)) = (
            fields.next(),
            fields.next(),
            fields.next(),
            fields.next(),
            fields.next(),
            fields.next(),
        ) else {
            continue;
        };
        if inode == "0" || maps_dev(devf) != Some(dev) {
            continue;
        }
        let path = rest.trim_start().to_string();
        if !paths.contains(&path) {
            paths.push(path);
        }
    }
    paths
}

/// Every process under `proc_root` holding something on the filesystem
/// `dev`. Processes that exit while we look are skipped.
pub fn scan(proc_root: &Path, dev: DevT) -> Vec<Holder> {
    let Ok(entries) = std::fs::read_dir(proc_root) else {
        return Vec::new();
    };
    let mut pids: Vec<u32> = entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect();
    pids.sort_unstable();
    let mut holders = Vec::new();
    for pid in pids {
        let dir = proc_root.join(pid.to_string());
        let command = std::fs::read_to_string(dir.join("comm"))
            .map_or_else(|_| "?".into(), |c| c.trim_end().to_string());
        let mut add = |how: String, path: String| {
            holders.push(Holder {
                pid,
                command: command.clone(),
                how,
                path,
            });
        };
        for link in ["cwd", "root", "exe"] {
            let p = dir.join(link);
            if on_dev(&p, dev) {
                add(link.to_string(), link_text(&p));
            }
        }
        if let Ok(fds) = std::fs::read_dir(dir.join("fd")) {
            let mut fds: Vec<(u32, std::path::PathBuf)> = fds
                .filter_map(Result::ok)
                .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path())))
                .collect();
            fds.sort();
            for (fd, p) in fds {
                if on_dev(&p, dev) {
                    add(format!("fd {fd}"), link_text(&p));
                }
            }
        }
        if let Ok(maps) = std::fs::read_to_string(dir.join("maps")) {
            for path in mapped_on(&maps, dev) {
                add("map".to_string(), path);
            }
        }
    }
    holders
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_lines() {
        let maps = "\
55d0c0a00000-55d0c0a02000 r--p 00000000 07:00 12   /run/forensics-volume/vol-1/bin/x86_64/capture
55d0c0a02000-55d0c0a04000 r-xp 00002000 07:00 12   /run/forensics-volume/vol-1/bin/x86_64/capture
7f0000000000-7f0000001000 rw-p 00000000 00:00 0 
7f0000001000-7f0000002000 r--p 00000000 103:01 99  /usr/lib/libc.so.6
7f0000003000-7f0000004000 r--p 00000000 07:00 13   /run/forensics-volume/vol-1/a file (deleted)
";
        let on = mapped_on(maps, DevT { major: 7, minor: 0 });
        assert_eq!(
            on,
            [
                "/run/forensics-volume/vol-1/bin/x86_64/capture",
                "/run/forensics-volume/vol-1/a file (deleted)"
            ]
        );
        assert_eq!(
            mapped_on(
                maps,
                DevT {
                    major: 259,
                    minor: 1
                }
            ),
            ["/usr/lib/libc.so.6"]
        );
        assert!(mapped_on(maps, DevT { major: 0, minor: 0 }).is_empty());
    }

    #[test]
    fn finds_our_own_open_file_and_cwd() {
        let tmp = tempfile::tempdir().unwrap();
        let file = std::fs::File::create(tmp.path().join("held")).unwrap();
        let dev = DevT::from_raw(file.metadata().unwrap().dev());
        let me = std::process::id();
        let holders: Vec<Holder> = scan(Path::new("/proc"), dev)
            .into_iter()
            .filter(|h| h.pid == me)
            .collect();
        assert!(
            holders
                .iter()
                .any(|h| h.how.starts_with("fd ") && h.path.ends_with("/held")),
            "{holders:?}"
        );
    }
}
