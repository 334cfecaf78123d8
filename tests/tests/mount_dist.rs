//! The shipped helpers (`dist/volume/bin/<arch>/`) on the shipped image
//! (`dist/forensics-volume.img`), as root on a loop device, through their
//! shipped command line only: they have no option that points them at
//! fixture `/sys`, `/dev` or `/proc` trees (security review L10;
//! `dist_artifacts.rs` checks they reject them), so they see this host as it
//! is. `mount-helper` finds no EBS volume here (a loop device is not one)
//! and says so; `unmount-helper --mountpoint`, run from the volume itself,
//! unmounts a read-write mount of the shipped image (re-exec off the volume,
//! holder scan of the real `/proc`, flush) and a read-only evidence mount
//! without writing to it, and `e2fsck -fn` is clean afterwards.
//!
//! Locating a volume by its EBS serial and mounting it (stage-0 adoption,
//! evidence mounts) need a device that is EBS NVMe: the crate tests of
//! `mount-helper` (`root_mount.rs`, `root_evidence.rs`) pose a loop device
//! as one in fixture trees with the test build, and the VM bench runs these
//! shipped binaries against qemu's NVMe device.
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

fn arch() -> String {
    String::from_utf8(tool(Command::new("uname").arg("-m")).stdout)
        .unwrap()
        .trim()
        .to_string()
}

fn shipped_image() -> PathBuf {
    let image = fv_tests::dist_dir().join("forensics-volume.img");
    assert!(
        image.is_file(),
        "{} missing: run ./build.sh first",
        image.display()
    );
    image
}

#[test]
fn root_shipped_mount_helper_finds_no_ebs_volume_on_this_host() {
    require_root();
    let bin = fv_tests::dist_dir().join("volume/bin").join(arch());
    let out = Command::new(bin.join("mount-helper"))
        .args(["locate", "--volume-id", VOLUME_ID, "--wait", "0", "--json"])
        .output()
        .unwrap();
    let v = json(&out);
    assert_eq!(out.status.code(), Some(4), "{v}");
    assert_eq!(v["ok"], false);
    assert_eq!(v["error_kind"], "not_found", "{v}");
}

#[test]
fn root_shipped_unmount_helper_unmounts_the_shipped_image_from_itself() {
    require_root();
    let image = shipped_image();
    let arch = arch();
    let tmp = tempfile::tempdir().unwrap();
    let copy = tmp.path().join("volume.img");
    fs::copy(&image, &copy).unwrap();

    let lo = attach(&copy);
    let mp = Path::new("/run/forensics-volume").join(VOLUME_ID);
    let guard = Loop(lo.clone(), mp.clone());
    // A read-write mount as mount-helper makes it (the shipped mount-helper
    // cannot take a loop device: it mounts EBS volumes only).
    fs::create_dir_all(&mp).unwrap();
    tool(
        Command::new("mount")
            .args(["-t", "ext4", "-o", "rw,nosuid,nodev,noatime"])
            .arg(&lo)
            .arg(&mp),
    );
    let sums = fs::read_to_string(mp.join("SHA256SUMS")).unwrap();
    let helper = format!("./bin/{arch}/unmount-helper");
    assert!(
        sums.lines()
            .any(|l| l.ends_with(&format!("  bin/{arch}/unmount-helper"))),
        "SHA256SUMS does not list {helper}"
    );
    fs::write(mp.join("captures/written-by-test"), b"evidence goes here\n").unwrap();

    // unmount-helper from the volume it unmounts: it must move itself off.
    let out = Command::new(mp.join("bin").join(&arch).join("unmount-helper"))
        .args(["--mountpoint"])
        .arg(&mp)
        .arg("--json")
        .current_dir("/")
        .output()
        .unwrap();
    let v = json(&out);
    assert_eq!(out.status.code(), Some(0), "{v}");
    assert_eq!(v["safe_to_detach"], true, "{v}");
    assert_ne!(v["ran_from"], "original", "{v}");
    assert_eq!(v["unmounted"]["mountpoint_removed"], true, "{v}");
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
fn root_shipped_unmount_helper_leaves_an_evidence_mount_unwritten() {
    require_root();
    let image = shipped_image();
    let bin = fv_tests::dist_dir().join("volume/bin").join(arch());
    // Any ext4 volume stands in for a suspect's restored volume.
    let tmp = tempfile::tempdir().unwrap();
    let copy = tmp.path().join("suspect.img");
    fs::copy(&image, &copy).unwrap();
    let before_image = sha256(&copy);
    let lo = attach(&copy);
    let mp = Path::new("/run/forensics-volume").join("evidence-vol-0e1de11ce0000beef");
    let guard = Loop(lo.clone(), mp.clone());
    let start = written_sectors(&lo);
    // As mount-helper --evidence leaves it: device read-only, no replay.
    tool(Command::new("blockdev").arg("--setro").arg(&lo));
    fs::create_dir_all(&mp).unwrap();
    tool(
        Command::new("mount")
            .args(["-t", "ext4", "-o", "ro,nosuid,nodev,noexec,noatime,noload"])
            .arg(&lo)
            .arg(&mp),
    );
    assert!(mp.join("forensics-volume.json").is_file());

    let out = Command::new(bin.join("unmount-helper"))
        .args(["--mountpoint"])
        .arg(&mp)
        .arg("--json")
        .current_dir("/")
        .output()
        .unwrap();
    let v = json(&out);
    assert_eq!(out.status.code(), Some(0), "{v}");
    assert_eq!(v["unmounted"]["device_read_only"], true, "{v}");
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
