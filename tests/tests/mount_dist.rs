//! The shipped helpers (`dist/volume/bin/<arch>/`) on the shipped image
//! (`dist/forensics-volume.img`), as root on a loop device posing as the EBS
//! volume: stage-0's read-only mount, then `mount-helper` run from that
//! mount (it verifies the real marker and SHA256SUMS, replaces the mount by
//! a read-write one), a file written, `unmount-helper` run from the volume
//! itself, and `e2fsck -fn` clean afterwards.
//!
//! Needs `./build.sh` first (`./build.sh test` does that) and root.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const VOLUME_ID: &str = "vol-0fa11ed0000d15700";
const SERIAL: &str = "vol0fa11ed0000d15700";

fn require_root() {
    let status = fs::read_to_string("/proc/self/status").unwrap();
    let uid = status.lines().find_map(|l| l.strip_prefix("Uid:")).unwrap();
    assert_eq!(
        uid.split_whitespace().nth(1),
        Some("0"),
        "needs root: loop devices and mount(2) (CI runs these as root)"
    );
}

fn tool(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn mounted(path: &Path) -> bool {
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .any(|l| l.split(' ').nth(4) == Some(&*path.to_string_lossy()))
}

/// Detaches the loop device (unmounting what is left) on drop, reporting failures.
struct Loop(PathBuf, PathBuf);

impl Drop for Loop {
    fn drop(&mut self) {
        let mut problems = Vec::new();
        if mounted(&self.1) {
            let out = Command::new("umount").arg(&self.1).output();
            if !out.as_ref().is_ok_and(|o| o.status.success()) {
                problems.push(format!("umount {}: {out:?}", self.1.display()));
            }
        }
        if self.1.is_dir() && fs::remove_dir(&self.1).is_err() {
            problems.push(format!("rmdir {}", self.1.display()));
        }
        // BLKROSET (evidence mode) outlives a detach: clear it so the next
        // user of this loop device is not read-only.
        let out = Command::new("blockdev")
            .arg("--setrw")
            .arg(&self.0)
            .output();
        if !out.as_ref().is_ok_and(|o| o.status.success()) {
            problems.push(format!("blockdev --setrw {}: {out:?}", self.0.display()));
        }
        let out = Command::new("losetup").arg("-d").arg(&self.0).output();
        if !out.as_ref().is_ok_and(|o| o.status.success()) {
            problems.push(format!("losetup -d {}: {out:?}", self.0.display()));
        }
        if !problems.is_empty() {
            eprintln!("CLEAN-UP FAILED: {}", problems.join("; "));
            assert!(
                std::thread::panicking(),
                "clean-up failed: {}",
                problems.join("; ")
            );
        }
    }
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not one JSON object ({e}); status {}\nstdout: {}\nstderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// A fixture sysfs/dev in which loop device `lo` is EBS NVMe namespace
/// `nvme4n1` with `serial` (real `stat`, real device node); returns the
/// `--sysfs-root/--dev-root` arguments.
fn pose_as_ebs(lo: &Path, root: &Path, serial: &str) -> [String; 4] {
    let name = lo.file_name().unwrap().to_str().unwrap();
    let real = Path::new("/sys/block").join(name);
    let fake = root.join("sys/block/nvme4n1");
    fs::create_dir_all(fake.join("device")).unwrap();
    fs::create_dir_all(fake.join("holders")).unwrap();
    fs::copy(real.join("dev"), fake.join("dev")).unwrap();
    fs::copy(real.join("size"), fake.join("size")).unwrap();
    std::os::unix::fs::symlink(real.join("stat"), fake.join("stat")).unwrap();
    fs::write(
        fake.join("device/model"),
        format!("{:<40}\n", "Amazon Elastic Block Store"),
    )
    .unwrap();
    fs::write(fake.join("device/serial"), format!("{serial:<20}\n")).unwrap();
    let dev = root.join("dev");
    fs::create_dir_all(&dev).unwrap();
    let numbers = fs::read_to_string(real.join("dev")).unwrap();
    let (major, minor) = numbers.trim().split_once(':').unwrap();
    tool(
        Command::new("mknod")
            .arg(dev.join("nvme4n1"))
            .args(["b", major, minor]),
    );
    [
        "--sysfs-root".to_string(),
        root.join("sys").display().to_string(),
        "--dev-root".to_string(),
        dev.display().to_string(),
    ]
}

fn sha256(path: &Path) -> String {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    std::io::copy(&mut fs::File::open(path).unwrap(), &mut hasher).unwrap();
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn attach(image: &Path) -> PathBuf {
    PathBuf::from(
        String::from_utf8(
            tool(
                Command::new("losetup")
                    .args(["--find", "--show"])
                    .arg(image),
            )
            .stdout,
        )
        .unwrap()
        .trim(),
    )
}

fn written_sectors(lo: &Path) -> u64 {
    let name = lo.file_name().unwrap().to_str().unwrap();
    let stat = fs::read_to_string(Path::new("/sys/block").join(name).join("stat")).unwrap();
    stat.split_whitespace().nth(6).unwrap().parse().unwrap()
}

#[test]
fn root_shipped_helpers_adopt_verify_and_unmount_the_shipped_image() {
    require_root();
    let dist = fv_tests::dist_dir();
    let image = dist.join("forensics-volume.img");
    assert!(
        image.is_file(),
        "{} missing: run ./build.sh first",
        image.display()
    );
    let arch = String::from_utf8(tool(Command::new("uname").arg("-m")).stdout)
        .unwrap()
        .trim()
        .to_string();
    let tmp = tempfile::tempdir().unwrap();
    let copy = tmp.path().join("volume.img");
    fs::copy(&image, &copy).unwrap();

    let lo = attach(&copy);
    let mp = Path::new("/run/forensics-volume").join(VOLUME_ID);
    let guard = Loop(lo.clone(), mp.clone());
    let roots = pose_as_ebs(&lo, tmp.path(), SERIAL);
    let dev = tmp.path().join("dev");

    // Stage-0: read-only, no journal replay, on /run/forensics-volume/<id>.
    fs::create_dir_all(&mp).unwrap();
    tool(
        Command::new("mount")
            .args(["-t", "ext4", "-o", "ro,noload,nosuid,nodev"])
            .arg(dev.join("nvme4n1"))
            .arg(&mp),
    );
    let sums = fs::read_to_string(mp.join("SHA256SUMS"))
        .unwrap()
        .lines()
        .count();

    // mount-helper from the volume, as the mount document runs it.
    let out = Command::new(mp.join("bin").join(&arch).join("mount-helper"))
        .args([
            "mount",
            "--volume-id",
            VOLUME_ID,
            "--wait",
            "0",
            "--json",
            "--mountpoint",
        ])
        .arg(&mp)
        .args(&roots)
        .current_dir("/")
        .output()
        .unwrap();
    let v = json(&out);
    assert_eq!(out.status.code(), Some(0), "{v}");
    assert_eq!(v["mounted"]["adopted_stage0"], true);
    assert_eq!(v["mounted"]["toolkit"]["files"], sums);
    assert_eq!(v["mounted"]["filesystem"]["label"], "FORENSICS");
    assert_eq!(v["mounted"]["options"], "rw,nosuid,nodev,noatime");
    assert_ne!(v["ran_from"], "original");
    fs::write(mp.join("captures/written-by-test"), b"evidence goes here\n").unwrap();

    // unmount-helper from the volume it unmounts.
    let out = Command::new(mp.join("bin").join(&arch).join("unmount-helper"))
        .args(["--mountpoint"])
        .arg(&mp)
        .arg("--json")
        .args(&roots)
        .current_dir("/")
        .output()
        .unwrap();
    let v = json(&out);
    assert_eq!(out.status.code(), Some(0), "{v}");
    assert_eq!(v["safe_to_detach"], true);
    assert_eq!(v["volume_id"], VOLUME_ID);
    assert_eq!(v["unmounted"]["mountpoint_removed"], true);
    assert!(!mounted(&mp) && !mp.exists());
    drop(guard);

    // The filesystem is clean and holds what was written.
    tool(Command::new("e2fsck").arg("-fn").arg(&copy));
    let cat = tool(
        Command::new("debugfs")
            .args(["-R", "cat /captures/written-by-test"])
            .arg(&copy),
    );
    assert_eq!(cat.stdout, b"evidence goes here\n");
}

#[test]
fn root_shipped_helpers_mount_evidence_read_only_and_prove_it() {
    require_root();
    let dist = fv_tests::dist_dir();
    let image = dist.join("forensics-volume.img");
    assert!(
        image.is_file(),
        "{} missing: run ./build.sh first",
        image.display()
    );
    let arch = String::from_utf8(tool(Command::new("uname").arg("-m")).stdout)
        .unwrap()
        .trim()
        .to_string();
    let bin = dist.join("volume/bin").join(&arch);
    // Any ext4 volume stands in for a suspect's restored volume.
    let tmp = tempfile::tempdir().unwrap();
    let copy = tmp.path().join("suspect.img");
    fs::copy(&image, &copy).unwrap();
    let before_image = sha256(&copy);
    let lo = attach(&copy);
    let id = "vol-0e1de11ce0000beef";
    let mp = Path::new("/run/forensics-volume").join(format!("evidence-{id}"));
    let guard = Loop(lo.clone(), mp.clone());
    let roots = pose_as_ebs(&lo, tmp.path(), "vol0e1de11ce0000beef");
    let start = written_sectors(&lo);

    let out = Command::new(bin.join("mount-helper"))
        .args([
            "mount",
            "--evidence",
            "--volume-id",
            id,
            "--wait",
            "0",
            "--json",
        ])
        .args(&roots)
        .output()
        .unwrap();
    let v = json(&out);
    assert_eq!(out.status.code(), Some(0), "{v}");
    assert_eq!(
        v["mounted"]["options"],
        "ro,nosuid,nodev,noexec,noatime,noload"
    );
    assert_eq!(v["mounted"]["evidence"]["device_read_only"], true);
    assert_eq!(
        v["mounted"]["evidence"]["written_sectors_before"],
        v["mounted"]["evidence"]["written_sectors_after_mount"]
    );
    assert!(mp.join("forensics-volume.json").is_file());

    let out = Command::new(bin.join("unmount-helper"))
        .args(["--volume-id", id, "--json"])
        .args(&roots)
        .current_dir("/")
        .output()
        .unwrap();
    let v = json(&out);
    assert_eq!(out.status.code(), Some(0), "{v}");
    assert_eq!(v["unmounted"]["device_read_only"], true);
    assert_eq!(
        v["unmounted"]["written_sectors_before"],
        v["unmounted"]["written_sectors_after"]
    );
    assert!(!mounted(&mp) && !mp.exists());
    assert_eq!(
        written_sectors(&lo),
        start,
        "the evidence device was written to"
    );
    drop(guard);
    assert_eq!(sha256(&copy), before_image, "the evidence image changed");
}
