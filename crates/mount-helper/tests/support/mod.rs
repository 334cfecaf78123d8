//! Loop-device harness for the root tests of mount-helper and
//! unmount-helper: images made with mkfs.ext4, loop devices from losetup,
//! and a fixture sysfs/dev tree in which a loop device poses as an EBS NVMe
//! namespace (its `stat` is the real one, its device node a real mknod), so
//! the binaries run end to end against the real kernel.
//!
//! Every guard cleans up in Drop and reports a failed clean-up (and fails
//! the test when it is not already failing) instead of swallowing it.

#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test harness: a failure is a failed test"
)]

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use sha2::{Digest, Sha256};

pub const EBS: &str = "Amazon Elastic Block Store";

/// Fails the test unless running as root.
pub fn require_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "needs root: loop devices and mount(2) need CAP_SYS_ADMIN (CI runs these as root; run `sudo cargo test`)"
    );
}

fn report_cleanup(what: &str, problem: Option<String>) {
    if let Some(problem) = problem {
        eprintln!("CLEAN-UP FAILED: {what}: {problem}");
        if !std::thread::panicking() {
            panic!("clean-up failed: {what}: {problem}");
        }
    }
}

fn run_tool(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Whether something is mounted at `path` in our namespace.
pub fn is_mounted(path: &Path) -> bool {
    let info = fs::read_to_string("/proc/self/mountinfo").unwrap();
    let want = path.to_string_lossy().replace(' ', "\\040");
    info.lines()
        .any(|l| l.split(' ').nth(4) == Some(want.as_str()))
}

/// A loop device, detached on drop.
pub struct Loop {
    pub path: PathBuf,
    pub name: String,
    pub rdev: u64,
}

impl Loop {
    pub fn attach(image: &Path, partitions: bool) -> Self {
        let mut cmd = Command::new("losetup");
        cmd.arg("--find").arg("--show");
        if partitions {
            cmd.arg("--partscan");
        }
        let out = run_tool(cmd.arg(image));
        let path = PathBuf::from(String::from_utf8(out.stdout).unwrap().trim());
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let rdev = fs::metadata(&path).unwrap().rdev();
        // BLKROSET outlives a detach: an evidence test's flag must not make
        // the next user of this loop device read-only.
        fv_ebs::sys::block_set_read_only(&fs::File::open(&path).unwrap(), false).unwrap();
        Self { path, name, rdev }
    }

    /// Makes sure partition `n` exists: the kernel's partition scan when it
    /// has an MBR parser, else `addpart` (BLKPG), which works on any kernel.
    pub fn ensure_partition(&self, n: u32, start: u64, sectors: u64) {
        if !self.sys().join(format!("{}p{n}", self.name)).is_dir() {
            run_tool(Command::new("addpart").arg(&self.path).args([
                n.to_string(),
                start.to_string(),
                sectors.to_string(),
            ]));
        }
        assert!(
            self.sys().join(format!("{}p{n}", self.name)).is_dir(),
            "partition {n} of {} missing",
            self.path.display()
        );
    }

    /// `/sys/block/loopN`.
    pub fn sys(&self) -> PathBuf {
        Path::new("/sys/block").join(&self.name)
    }

    pub fn written_sectors(&self) -> u64 {
        let stat = fs::read_to_string(self.sys().join("stat")).unwrap();
        stat.split_whitespace().nth(6).unwrap().parse().unwrap()
    }
}

impl Drop for Loop {
    fn drop(&mut self) {
        // Anything still mounted from it or its partitions first (a failed
        // test's leftovers).
        let mut devs = vec![format!(
            "{}:{}",
            nix::sys::stat::major(self.rdev),
            nix::sys::stat::minor(self.rdev)
        )];
        for entry in fs::read_dir(self.sys())
            .into_iter()
            .flatten()
            .filter_map(Result::ok)
        {
            if entry.path().join("partition").is_file() {
                devs.push(
                    fs::read_to_string(entry.path().join("dev"))
                        .unwrap_or_default()
                        .trim()
                        .to_string(),
                );
            }
        }
        let info = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let mut problems = Vec::new();
        for line in info.lines() {
            let f: Vec<&str> = line.split(' ').collect();
            if f.len() > 4 && devs.iter().any(|d| d == f[2]) {
                let mp = f[4].replace("\\040", " ");
                if let Err(e) = nix::mount::umount2(Path::new(&mp), nix::mount::MntFlags::empty()) {
                    problems.push(format!("umount {mp}: {e}"));
                }
            }
        }
        let cleared = fs::File::open(&self.path)
            .map_err(|e| e.to_string())
            .and_then(|f| fv_ebs::sys::block_set_read_only(&f, false).map_err(|e| e.to_string()));
        if let Err(e) = cleared {
            problems.push(format!("BLKROSET 0 on {}: {e}", self.path.display()));
        }
        // Detach in any case (autoclear if still busy), then report.
        match Command::new("losetup").arg("-d").arg(&self.path).output() {
            Ok(o) if o.status.success() => {}
            Ok(o) => problems.push(format!(
                "losetup -d {}: {}",
                self.path.display(),
                String::from_utf8_lossy(&o.stderr).trim()
            )),
            Err(e) => problems.push(format!("losetup -d {}: {e}", self.path.display())),
        }
        report_cleanup(
            &self.path.display().to_string(),
            (!problems.is_empty()).then(|| problems.join("; ")),
        );
    }
}

/// A directory that must be unmounted (if still mounted) and removed.
pub struct MountGuard(pub PathBuf);

impl Drop for MountGuard {
    fn drop(&mut self) {
        if is_mounted(&self.0) {
            let r = nix::mount::umount2(&self.0, nix::mount::MntFlags::empty());
            report_cleanup(
                &format!("umount {}", self.0.display()),
                r.err().map(|e| e.to_string()),
            );
        }
        if self.0.is_dir() {
            let r = fs::remove_dir(&self.0);
            report_cleanup(
                &format!("rmdir {}", self.0.display()),
                r.err().map(|e| e.to_string()),
            );
        }
    }
}

fn hex(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A forensics-volume tree like build.sh's: marker, SHA256SUMS, toolkit.
pub fn volume_tree(root: &Path) {
    fs::create_dir_all(root.join("bin/x86_64")).unwrap();
    fs::create_dir_all(root.join("captures")).unwrap();
    let tool = b"#!/bin/sh\necho toolkit\n";
    fs::write(root.join("bin/x86_64/capture"), tool).unwrap();
    fs::set_permissions(
        root.join("bin/x86_64/capture"),
        fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    fs::write(root.join("README.txt"), b"break glass\n").unwrap();
    fs::write(
        root.join("forensics-volume.json"),
        r#"{"toolkit":"forensics-volume","version":"0.1.0","git_commit":"test","build_time":"2026-01-01T00:00:00Z","targets":["x86_64-unknown-linux-musl"],"label":"FORENSICS","format":1}"#,
    )
    .unwrap();
    write_sums(root);
}

/// Adds an executable to the tree and lists it in SHA256SUMS.
pub fn add_tool(root: &Path, rel: &str, from: &Path) {
    let dest = root.join(rel);
    fs::create_dir_all(dest.parent().unwrap()).unwrap();
    fs::copy(from, &dest).unwrap();
    fs::set_permissions(&dest, fs::Permissions::from_mode(0o755)).unwrap();
    write_sums(root);
}

/// `sha256sum` of every file but SHA256SUMS itself, as build.sh makes it.
fn write_sums(root: &Path) {
    fn walk(dir: &Path, root: &Path, out: &mut Vec<String>) {
        let mut entries: Vec<_> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for path in entries {
            if path.is_dir() {
                walk(&path, root, out);
            } else if path.file_name().unwrap() != "SHA256SUMS" {
                let rel = path.strip_prefix(root).unwrap().display().to_string();
                out.push(format!("{}  {rel}", hex(&fs::read(&path).unwrap())));
            }
        }
    }
    let mut lines = Vec::new();
    walk(root, root, &mut lines);
    fs::write(root.join("SHA256SUMS"), lines.join("\n") + "\n").unwrap();
}

pub const UUID: &str = "0f0e0d0c-0b0a-4908-8706-050403020100";

/// An image file of `file_mib` with an ext4 of `fs_mib` (label, UUID,
/// populated from `tree` if given), made like build.sh makes the volume.
pub fn ext4_image(
    dir: &Path,
    file_mib: u64,
    fs_mib: u64,
    label: &str,
    tree: Option<&Path>,
) -> PathBuf {
    let img = dir.join("volume.img");
    let f = fs::File::create(&img).unwrap();
    f.set_len(file_mib << 20).unwrap();
    let mut cmd = Command::new("mkfs.ext4");
    cmd.args([
        "-q",
        "-F",
        "-L",
        label,
        "-U",
        UUID,
        "-O",
        "^metadata_csum,^64bit",
        "-E",
        "root_owner=0:0",
    ]);
    if let Some(tree) = tree {
        cmd.arg("-d").arg(tree);
    }
    run_tool(cmd.arg(&img).arg(format!("{fs_mib}M")));
    img
}

/// A fixture sysfs and dev tree in which `lo` poses as NVMe namespace
/// `name` with this serial and model.
pub struct FakeNvme {
    pub tmp: tempfile::TempDir,
    pub name: String,
}

impl FakeNvme {
    pub fn new(lo: &Loop, name: &str, serial: &str, model: &str) -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let fx = Self {
            tmp,
            name: name.to_string(),
        };
        let block = fx.sys().join("block").join(name);
        fs::create_dir_all(block.join("holders")).unwrap();
        fs::create_dir_all(block.join("slaves")).unwrap();
        fs::create_dir_all(block.join("device")).unwrap();
        fs::create_dir_all(fx.dev()).unwrap();
        let real = lo.sys();
        fs::write(block.join("dev"), fs::read(real.join("dev")).unwrap()).unwrap();
        fs::write(block.join("size"), fs::read(real.join("size")).unwrap()).unwrap();
        fs::write(block.join("ro"), "0\n").unwrap();
        std::os::unix::fs::symlink(real.join("stat"), block.join("stat")).unwrap();
        fs::write(block.join("device/model"), format!("{model:<40}\n")).unwrap();
        fs::write(block.join("device/serial"), format!("{serial:<20}\n")).unwrap();
        fx.mknod(name, lo.rdev);
        // Partitions the kernel found, under the fake name.
        for entry in fs::read_dir(&real).unwrap().filter_map(Result::ok) {
            let part = entry.path();
            if !part.join("partition").is_file() {
                continue;
            }
            let number = fs::read_to_string(part.join("partition"))
                .unwrap()
                .trim()
                .to_string();
            let pname = format!("{name}p{number}");
            let pdir = block.join(&pname);
            fs::create_dir_all(pdir.join("holders")).unwrap();
            fs::write(pdir.join("partition"), format!("{number}\n")).unwrap();
            fs::write(pdir.join("dev"), fs::read(part.join("dev")).unwrap()).unwrap();
            std::os::unix::fs::symlink(part.join("stat"), pdir.join("stat")).unwrap();
            let prdev = fs::metadata(Path::new("/dev").join(entry.file_name()))
                .unwrap()
                .rdev();
            fx.mknod(&pname, prdev);
        }
        fx
    }

    fn mknod(&self, name: &str, rdev: u64) {
        nix::sys::stat::mknod(
            &self.dev().join(name),
            nix::sys::stat::SFlag::S_IFBLK,
            nix::sys::stat::Mode::from_bits_truncate(0o600),
            rdev,
        )
        .unwrap();
    }

    pub fn sys(&self) -> PathBuf {
        self.tmp.path().join("sys")
    }

    pub fn dev(&self) -> PathBuf {
        self.tmp.path().join("dev")
    }

    /// `--sysfs-root … --dev-root …`.
    pub fn root_args(&self) -> Vec<String> {
        vec![
            "--sysfs-root".into(),
            self.sys().display().to_string(),
            "--dev-root".into(),
            self.dev().display().to_string(),
        ]
    }
}

/// The result of running a binary.
#[derive(Debug)]
pub struct Ran {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Ran {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not one JSON object ({e}): {self:?}"))
    }
}

pub fn run(cmd: &mut Command) -> Ran {
    let out = cmd
        .env_remove("FV_TEST_ACCEPT_NVME_MODEL")
        .output()
        .unwrap();
    Ran {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A fresh volume ID per test (tests run in parallel and the default
/// mountpoint is named after it).
pub fn volume_id(n: u32) -> (String, String) {
    let hex = format!(
        "{:017x}",
        u64::from(std::process::id()) << 20 | u64::from(n)
    );
    (format!("vol-{hex}"), format!("vol{hex}"))
}
