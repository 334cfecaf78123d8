//! Which processes hold a filesystem: open files (`/proc/<pid>/fd/*`),
//! working directory and root, and mapped files including the executable
//! (`maps`).
//!
//! Nothing here ever calls into another filesystem: a process holding a
//! file on a hung FUSE or dead NFS mount must not hang `unmount-helper`
//! (a `stat` through `/proc/<pid>/fd/N` asks that filesystem for the
//! file's attributes, and may wait for ever). So files are matched by mount
//! ID (`/proc/<pid>/fdinfo/N` `mnt_id:` against the IDs of every mount of
//! the device, from each mount namespace's `mountinfo`), mapped files by
//! the device number `maps` prints, and cwd/root by `readlink` and the
//! longest mount point of our own `mountinfo` that contains the path. Every
//! one of those is text the kernel makes from its own structures.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use fv_ebs::DevT;
use fv_ebs::mountinfo::{self, MountEntry};
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

/// The `mnt_id:` of an `fdinfo` file's text.
pub fn fdinfo_mnt_id(text: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix("mnt_id:"))
        .and_then(|v| v.trim().parse().ok())
}

/// Whether `path` (as `readlink` of a process's cwd or root shows it, in
/// our view) lies on a mount of `dev`: the longest mount point of
/// `mounts` containing it (the last one of equal length: later mounts stack
/// over earlier ones) decides.
pub fn path_on_dev(path: &Path, mounts: &[MountEntry], dev: DevT) -> bool {
    let mut best: Option<&MountEntry> = None;
    for m in mounts {
        if path.starts_with(&m.mount_point)
            && best
                .is_none_or(|b| m.mount_point.as_os_str().len() >= b.mount_point.as_os_str().len())
        {
            best = Some(m);
        }
    }
    best.is_some_and(|m| m.dev == dev)
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
/// `dev`. Processes that exit while we look are skipped. Reads only
/// `/proc` text and magic-link targets: never a `stat` that would reach
/// the held file's filesystem.
pub fn scan(proc_root: &Path, dev: DevT) -> Vec<Holder> {
    let Ok(entries) = std::fs::read_dir(proc_root) else {
        return Vec::new();
    };
    let mut pids: Vec<u32> = entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect();
    pids.sort_unstable();
    let ours = mountinfo::read(proc_root).unwrap_or_default();
    // Mount IDs are unique across mount namespaces: gather every mount of
    // `dev`, reading each namespace's mountinfo once.
    let mut ids: BTreeSet<u64> = ours
        .iter()
        .filter(|m| m.dev == dev)
        .map(|m| m.id.into())
        .collect();
    let mut namespaces: BTreeSet<PathBuf> = BTreeSet::new();
    for pid in &pids {
        let dir = proc_root.join(pid.to_string());
        let Ok(ns) = std::fs::read_link(dir.join("ns/mnt")) else {
            continue;
        };
        if !namespaces.insert(ns) {
            continue;
        }
        let path = dir.join("mountinfo");
        if let Ok(text) = std::fs::read_to_string(&path)
            && let Ok(list) = mountinfo::parse(&text, &path)
        {
            ids.extend(
                list.iter()
                    .filter(|m| m.dev == dev)
                    .map(|m| u64::from(m.id)),
            );
        }
    }
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
        for link in ["cwd", "root"] {
            if let Ok(target) = std::fs::read_link(dir.join(link))
                && path_on_dev(&target, &ours, dev)
            {
                add(link.to_string(), target.to_string_lossy().into_owned());
            }
        }
        // The executable is mapped: `maps` (with its device numbers) says
        // whether it is on `dev`; readlink names it.
        let mapped = std::fs::read_to_string(dir.join("maps"))
            .map(|maps| mapped_on(&maps, dev))
            .unwrap_or_default();
        let exe = link_text(&dir.join("exe"));
        if mapped.contains(&exe) {
            add("exe".to_string(), exe.clone());
        }
        if let Ok(fds) = std::fs::read_dir(dir.join("fd")) {
            let mut fds: Vec<u32> = fds
                .filter_map(Result::ok)
                .filter_map(|e| e.file_name().to_str()?.parse().ok())
                .collect();
            fds.sort_unstable();
            for fd in fds {
                let on = std::fs::read_to_string(dir.join(format!("fdinfo/{fd}")))
                    .ok()
                    .and_then(|t| fdinfo_mnt_id(&t))
                    .is_some_and(|id| ids.contains(&id));
                if on {
                    add(format!("fd {fd}"), link_text(&dir.join(format!("fd/{fd}"))));
                }
            }
        }
        for path in mapped.into_iter().filter(|p| *p != exe) {
            add("map".to_string(), path);
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
        let dev = DevT::from_raw(std::os::unix::fs::MetadataExt::dev(
            &file.metadata().unwrap(),
        ));
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

    #[test]
    fn fdinfo_and_paths() {
        assert_eq!(
            fdinfo_mnt_id("pos:\t0\nflags:\t02100000\nmnt_id:\t42\nino:\t7\n"),
            Some(42)
        );
        assert_eq!(fdinfo_mnt_id("pos:\t0\n"), None);
        let mounts = mountinfo::parse(
            "22 1 259:2 / / rw - xfs /dev/nvme0n1p1 rw\n\
             40 22 259:5 / /run/fv rw - ext4 /dev/nvme2n1 rw\n\
             41 40 0:50 / /run/fv/sub rw - tmpfs tmpfs rw\n",
            Path::new("m"),
        )
        .unwrap();
        let vol = DevT {
            major: 259,
            minor: 5,
        };
        assert!(path_on_dev(Path::new("/run/fv/bin"), &mounts, vol));
        assert!(path_on_dev(Path::new("/run/fv"), &mounts, vol));
        assert!(!path_on_dev(Path::new("/run/fv/sub/x"), &mounts, vol));
        assert!(!path_on_dev(Path::new("/run/fvx"), &mounts, vol));
    }

    /// M5: a process (this one) holding a file on a FUSE mount whose server
    /// never answers must not hang the scan. Before, the scan `stat`ed
    /// through `/proc/<pid>/fd/N`, which waits for the server for ever.
    #[test]
    fn root_a_hung_fuse_mount_does_not_hang_the_scan() {
        use std::os::fd::AsRawFd;
        let fuse = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/fuse")
            .expect("root tests need /dev/fuse and root");
        let tmp = tempfile::tempdir().unwrap();
        let mp = tmp.path().join("hung");
        std::fs::create_dir(&mp).unwrap();
        let opts = format!(
            "fd={},rootmode=40000,user_id=0,group_id=0",
            fuse.as_raw_fd()
        );
        nix::mount::mount(
            Some("fv-hung"),
            &mp,
            Some("fuse"),
            nix::mount::MsFlags::empty(),
            Some(opts.as_str()),
        )
        .unwrap();
        // An O_PATH fd on its root: opening it asks the server nothing.
        let held = nix::fcntl::open(
            &mp,
            nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .unwrap();
        let dev = mountinfo::read(Path::new("/proc"))
            .unwrap()
            .iter()
            .find(|m| m.mount_point == mp)
            .unwrap()
            .dev;
        let (tx, rx) = std::sync::mpsc::channel();
        let scanner = std::thread::spawn(move || {
            let _ = tx.send(scan(Path::new("/proc"), dev));
        });
        let got = rx.recv_timeout(std::time::Duration::from_secs(20));
        // Clean up first: detaching the mount and closing the device end
        // the connection and wake anything waiting on it.
        let _ = nix::mount::umount2(&mp, nix::mount::MntFlags::MNT_DETACH);
        drop(fuse);
        drop(held);
        let _ = scanner.join();
        let holders = got.expect("the holder scan hung on an unanswering FUSE mount");
        assert!(
            holders
                .iter()
                .any(|h| h.pid == std::process::id() && h.how.starts_with("fd ")),
            "{holders:?}"
        );
    }
}
