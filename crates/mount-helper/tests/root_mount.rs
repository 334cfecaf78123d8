//! mount-helper as root on loop devices posing as EBS NVMe namespaces:
//! superblock checks, toolkit verification, mountpoint refusals, online
//! grow, adopting stage-0's mount. Every test leaves nothing mounted or
//! attached (guards report failed clean-ups).

#![allow(clippy::unwrap_used, reason = "tests")]

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use support::{
    EBS, FakeNvme, Loop, MountGuard, UUID, ext4_image, is_mounted, require_root, run, volume_id,
    volume_tree,
};

fn helper() -> Command {
    Command::new(env!("CARGO_BIN_EXE_mount-helper"))
}

/// A loop device with a forensics volume (64 MiB ext4 in a `file_mib` file).
struct Setup {
    _tmp: tempfile::TempDir,
    lo: Loop,
    fake: FakeNvme,
    id: String,
}

fn setup(n: u32, file_mib: u64, label: &str, damage: bool) -> Setup {
    require_root();
    let tmp = tempfile::tempdir().unwrap();
    let tree = tmp.path().join("tree");
    volume_tree(&tree);
    support::add_tool(
        &tree,
        "bin/x86_64/mount-helper",
        Path::new(env!("CARGO_BIN_EXE_mount-helper")),
    );
    if damage {
        std::fs::write(
            tree.join("bin/x86_64/capture"),
            b"#!/bin/sh\necho altered\n",
        )
        .unwrap();
    }
    let img = ext4_image(tmp.path(), file_mib, 64, label, Some(&tree));
    let lo = Loop::attach(&img, false);
    let (id, serial) = volume_id(n);
    let fake = FakeNvme::new(&lo, "nvme9n1", &serial, EBS);
    Setup {
        _tmp: tmp,
        lo,
        fake,
        id,
    }
}

fn default_mp(id: &str) -> PathBuf {
    Path::new("/run/forensics-volume").join(id)
}

fn mount_cmd(s: &Setup, extra: &[&str]) -> Command {
    let mut cmd = helper();
    cmd.args(["mount", "--volume-id", &s.id, "--wait", "0", "--json"])
        .args(s.fake.root_args())
        .args(extra);
    cmd
}

fn options_of(mp: &Path) -> String {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let line = info
        .lines()
        .find(|l| l.split(' ').nth(4) == Some(&*mp.to_string_lossy()))
        .unwrap();
    line.split(' ').nth(5).unwrap().to_string()
}

/// The mount source the kernel recorded for `mp` (mountinfo field 10).
fn source_of(mp: &Path) -> String {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let line = info
        .lines()
        .find(|l| l.split(' ').nth(4) == Some(&*mp.to_string_lossy()))
        .unwrap();
    let after = line.split(" - ").nth(1).unwrap();
    after.split(' ').nth(1).unwrap().to_string()
}

/// ext4 online resize needs CAP_SYS_RESOURCE (ext4_resize_begin); some
/// container sandboxes (this project's CI among them) drop it even for root.
fn has_cap_sys_resource() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let eff = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .unwrap()
        .trim();
    let caps = u64::from_str_radix(eff, 16).unwrap();
    caps & (1 << 24) != 0 // CAP_SYS_RESOURCE (linux/capability.h)
}

#[test]
fn root_mounts_and_verifies_a_volume_that_fills_its_device() {
    let s = setup(8, 64, "FORENSICS", false);
    let mp = default_mp(&s.id);
    let _guard = MountGuard(mp.clone());
    let ran = run(&mut mount_cmd(&s, &[]));
    assert_eq!(ran.code, 0, "{ran:?}");
    let v = ran.json();
    assert_eq!(v["mounted"]["grow"]["from_bytes"], 64u64 << 20);
    assert_eq!(v["mounted"]["grow"]["to_bytes"], 64u64 << 20);
    assert_eq!(options_of(&mp), "rw,nosuid,nodev,noatime");
    // M4: mounted through the fd whose device was checked, not by a path
    // that could name another device by then.
    assert!(
        source_of(&mp).starts_with("/proc/self/fd/"),
        "{}",
        source_of(&mp)
    );
    assert!(mp.join("forensics-volume.json").is_file());
    // Mounting again: already mounted read-write, its own exit code.
    let ran = run(&mut mount_cmd(&s, &[]));
    assert_eq!(ran.code, 15, "{ran:?}");
    assert_eq!(ran.json()["error_kind"], "already_mounted");
    // Human output ends with the verdict.
    let mut cmd = helper();
    cmd.args(["locate", "--volume-id", &s.id, "--wait", "0"])
        .args(s.fake.root_args());
    let ran = run(&mut cmd);
    assert_eq!(ran.code, 0, "{ran:?}");
    assert!(
        ran.stdout.contains(&format!(
            "mounted at {} (rw,nosuid,nodev,noatime)",
            mp.display()
        )),
        "{}",
        ran.stdout
    );
}

#[test]
fn root_mounts_verifies_and_grows_the_forensics_volume() {
    let s = setup(1, 256, "FORENSICS", false);
    let mp = default_mp(&s.id);
    let _guard = MountGuard(mp.clone());
    let ran = run(&mut mount_cmd(&s, &[]));
    if !has_cap_sys_resource() {
        // Without the capability the kernel refuses the grow: the helper must
        // say why, exit with its grow code and leave nothing mounted. The grow
        // itself is proven where root is whole: the VM scenarios (tests/vm).
        println!(
            "no CAP_SYS_RESOURCE here: checking the refusal; the grow is proven in the VM bench"
        );
        assert_eq!(ran.code, 12, "{ran:?}");
        assert!(ran.stderr.contains("CAP_SYS_RESOURCE"), "{}", ran.stderr);
        assert_eq!(ran.json()["error_kind"], "grow_failed");
        assert_left_alone(&s, &mp);
        return;
    }
    assert_eq!(ran.code, 0, "{ran:?}");
    let v = ran.json();
    assert_eq!(v["ok"], true);
    assert_eq!(v["mountpoint"], mp.display().to_string());
    assert_eq!(v["volume_id"], s.id);
    assert_eq!(v["located"]["device"], "nvme9n1");
    assert_eq!(v["mounted"]["adopted_stage0"], false);
    assert_eq!(v["mounted"]["filesystem"]["label"], "FORENSICS");
    assert_eq!(v["mounted"]["filesystem"]["uuid"], UUID);
    assert_eq!(v["mounted"]["toolkit"]["files"], 4);
    assert_eq!(v["mounted"]["grow"]["from_bytes"], 64u64 << 20);
    assert_eq!(v["mounted"]["grow"]["to_bytes"], 256u64 << 20);
    assert!(is_mounted(&mp));
    assert_eq!(options_of(&mp), "rw,nosuid,nodev,noatime");
    // Really grown, and writable.
    let st = nix::sys::statvfs::statvfs(&mp).unwrap();
    assert!(st.blocks() * st.fragment_size() > 200 << 20, "{st:?}");
    std::fs::write(mp.join("captures/probe"), b"x").unwrap();
    // The mountpoint is private.
    let meta = std::fs::metadata("/run/forensics-volume").unwrap();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o777,
        0o700
    );
}

fn assert_left_alone(s: &Setup, mp: &Path) {
    assert!(!is_mounted(mp), "{} still mounted", mp.display());
    assert!(!mp.exists(), "{} left behind", mp.display());
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let dev = format!(
        " {}:{} ",
        nix::sys::stat::major(s.lo.rdev),
        nix::sys::stat::minor(s.lo.rdev)
    );
    assert!(
        !info.contains(&dev),
        "the loop device is mounted somewhere:\n{info}"
    );
}

#[test]
fn root_wrong_label_or_uuid_is_refused_before_mounting() {
    let s = setup(2, 128, "OTHER", false);
    let mp = default_mp(&s.id);
    let _guard = MountGuard(mp.clone());
    let ran = run(&mut mount_cmd(&s, &[]));
    assert_eq!(ran.code, 8, "{ran:?}");
    assert!(
        ran.stderr
            .contains("filesystem label is \"OTHER\", expected \"FORENSICS\""),
        "{}",
        ran.stderr
    );
    assert_eq!(ran.json()["error_kind"], "filesystem_mismatch");
    assert_left_alone(&s, &mp);
    let ran = run(&mut mount_cmd(
        &s,
        &[
            "--expect-label",
            "OTHER",
            "--expect-uuid",
            "11111111-2222-3333-4444-555555555555",
        ],
    ));
    assert_eq!(ran.code, 8, "{ran:?}");
    assert!(
        ran.stderr.contains("filesystem UUID is 0f0e0d0c"),
        "{}",
        ran.stderr
    );
    assert_left_alone(&s, &mp);
}

#[test]
fn root_a_damaged_toolkit_is_refused_and_unmounted() {
    let s = setup(3, 128, "FORENSICS", true);
    let mp = default_mp(&s.id);
    let _guard = MountGuard(mp.clone());
    let ran = run(&mut mount_cmd(&s, &[]));
    assert_eq!(ran.code, 9, "{ran:?}");
    assert!(
        ran.stderr.contains("bin/x86_64/capture: SHA-256 is"),
        "{}",
        ran.stderr
    );
    assert_left_alone(&s, &mp);
}

#[test]
fn root_mountpoint_refusals() {
    let s = setup(4, 128, "FORENSICS", false);
    let tmp = tempfile::tempdir().unwrap();
    // A symlink planted where the mountpoint goes.
    let target = tmp.path().join("target");
    std::fs::create_dir(&target).unwrap();
    let link = tmp.path().join("planted");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let ran = run(&mut mount_cmd(
        &s,
        &["--mountpoint", link.to_str().unwrap()],
    ));
    assert_eq!(ran.code, 10, "{ran:?}");
    assert!(ran.stderr.contains("symbolic link"), "{}", ran.stderr);
    assert!(!is_mounted(&target) && !is_mounted(&link));
    // Not empty.
    let full = tmp.path().join("full");
    std::fs::create_dir(&full).unwrap();
    std::fs::write(full.join("keep"), b"").unwrap();
    let ran = run(&mut mount_cmd(
        &s,
        &["--mountpoint", full.to_str().unwrap()],
    ));
    assert_eq!(ran.code, 10, "{ran:?}");
    assert!(ran.stderr.contains("is not empty"), "{}", ran.stderr);
    assert!(full.join("keep").exists() && !is_mounted(&full));
    // Already a mountpoint.
    let busy = tmp.path().join("busy");
    std::fs::create_dir(&busy).unwrap();
    nix::mount::mount(
        Some("tmpfs"),
        &busy,
        Some("tmpfs"),
        nix::mount::MsFlags::empty(),
        None::<&str>,
    )
    .unwrap();
    let busy_guard = MountGuard(busy.clone());
    let ran = run(&mut mount_cmd(
        &s,
        &["--mountpoint", busy.to_str().unwrap()],
    ));
    assert_eq!(ran.code, 10, "{ran:?}");
    assert!(
        ran.stderr.contains("already a mountpoint"),
        "{}",
        ran.stderr
    );
    drop(busy_guard);
    // A regular file.
    let file = tmp.path().join("file");
    std::fs::write(&file, b"").unwrap();
    let ran = run(&mut mount_cmd(
        &s,
        &["--mountpoint", file.to_str().unwrap()],
    ));
    assert_eq!(ran.code, 10, "{ran:?}");
    assert!(ran.stderr.contains("not a directory"), "{}", ran.stderr);
    // And a good one, created for us (0700) and mounted.
    let fresh = tmp.path().join("fresh");
    let _g = MountGuard(fresh.clone());
    let ran = run(&mut mount_cmd(
        &s,
        &["--mountpoint", fresh.to_str().unwrap(), "--no-grow"],
    ));
    assert_eq!(ran.code, 0, "{ran:?}");
    assert_eq!(ran.json()["mounted"]["created_mountpoint"], true);
    assert!(ran.json()["mounted"]["grow"].is_null());
    assert!(is_mounted(&fresh));
}

/// What stage-0 does: ro,noload,nosuid,nodev on /run/forensics-volume/<id>.
fn stage0_mount(s: &Setup) -> PathBuf {
    let mp = default_mp(&s.id);
    std::fs::create_dir_all(&mp).unwrap();
    let flags = nix::mount::MsFlags::MS_RDONLY
        | nix::mount::MsFlags::MS_NOSUID
        | nix::mount::MsFlags::MS_NODEV;
    nix::mount::mount(Some(&s.lo.path), &mp, Some("ext4"), flags, Some("noload")).unwrap();
    mp
}

/// mount-helper as stage-0 starts it: from the read-only mount it replaces.
fn from_stage0(s: &Setup, mp: &Path, extra: &[&str]) -> support::Ran {
    let mut cmd = Command::new(mp.join("bin/x86_64/mount-helper"));
    cmd.args([
        "mount",
        "--volume-id",
        &s.id,
        "--wait",
        "0",
        "--json",
        "--mountpoint",
        mp.to_str().unwrap(),
    ])
    .args(s.fake.root_args())
    .args(extra)
    .current_dir("/");
    run(&mut cmd)
}

#[test]
fn root_adopts_the_stage0_mount() {
    let s = setup(5, 128, "FORENSICS", false);
    let mp = stage0_mount(&s);
    let _guard = MountGuard(mp.clone());
    // Another mountpoint than stage-0's: refused, stage-0's mount untouched.
    let ran = run(&mut mount_cmd(&s, &["--mountpoint", "/run/elsewhere"]));
    assert_eq!(ran.code, 15, "{ran:?}");
    assert!(ran.stderr.contains("pass --mountpoint"), "{}", ran.stderr);
    assert!(is_mounted(&mp));
    // Run from stage-0's mount, as the SSM document does.
    let ran = from_stage0(&s, &mp, &["--no-grow"]);
    assert_eq!(ran.code, 0, "{ran:?}");
    let v = ran.json();
    assert_eq!(v["ran_from"], "memfd");
    assert_eq!(v["mounted"]["adopted_stage0"], true);
    assert_eq!(v["mounted"]["created_mountpoint"], false);
    assert_eq!(v["mounted"]["toolkit"]["files"], 4);
    assert_eq!(options_of(&mp), "rw,nosuid,nodev,noatime");
    // The journal is in use again (a remount of noload would say norecovery).
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !info
            .lines()
            .any(|l| l.contains(&*mp.to_string_lossy()) && l.contains("norecovery")),
        "{info}"
    );
}

#[test]
fn root_run_from_the_stage0_mount_without_reexec_it_cannot_replace_it() {
    let s = setup(9, 64, "FORENSICS", false);
    let mp = stage0_mount(&s);
    let _guard = MountGuard(mp.clone());
    let ran = from_stage0(&s, &mp, &["--reexec", "never"]);
    assert_eq!(ran.code, 11, "{ran:?}");
    assert!(ran.stderr.contains("EBUSY"), "{}", ran.stderr);
    // The holder is named: mount-helper's own executable, on the volume.
    assert!(
        ran.stderr.contains("(mount-helper): exe "),
        "{}",
        ran.stderr
    );
    assert!(is_mounted(&mp), "stage-0's mount is left as it was");
    // With the /run copy instead of a memfd it works.
    let ran = from_stage0(&s, &mp, &["--reexec", "copy"]);
    assert_eq!(ran.code, 0, "{ran:?}");
    let from = ran.json()["ran_from"].as_str().unwrap().to_string();
    assert!(from.starts_with("copy:/run/fv-mount-helper."), "{from}");
    assert!(!Path::new(from.trim_start_matches("copy:")).exists());
}

/// Issue 23: the old break-glass text (`cd` into the read-only mount to
/// run `sha256sum -c`) left the shell inside it, and mount-helper then
/// failed with a bare EBUSY. The error now names the holder (pid, command,
/// cwd) and leaves stage-0's read-only mount as it was; once the shell has
/// left, the same command succeeds.
#[test]
fn root_a_shell_inside_the_stage0_mount_is_named() {
    let s = setup(10, 64, "FORENSICS", false);
    let mp = stage0_mount(&s);
    let _guard = MountGuard(mp.clone());
    let mut shell = Command::new("sh")
        .args(["-c", "read -r _"])
        .current_dir(&mp)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let ran = from_stage0(&s, &mp, &["--no-grow"]);
    let pid = shell.id();
    drop(shell.stdin.take());
    shell.wait().unwrap();
    assert_eq!(ran.code, 11, "{ran:?}");
    let want = format!("pid {pid} (sh): cwd {}", mp.display());
    assert!(ran.stderr.contains("EBUSY"), "{}", ran.stderr);
    assert!(ran.stderr.contains(&want), "{}", ran.stderr);
    assert!(ran.stderr.contains("cd /"), "{}", ran.stderr);
    assert!(!ran.stderr.contains("CLEAN-UP FAILED"), "{}", ran.stderr);
    let v = ran.json();
    assert_eq!(v["error_kind"], "mount_failed");
    assert_eq!(v["holders"][0]["pid"], pid);
    assert_eq!(v["holders"][0]["how"], "cwd");
    assert!(is_mounted(&mp));
    assert!(options_of(&mp).starts_with("ro,"), "{}", options_of(&mp));
    // The shell has gone: the same command adopts the mount.
    let ran = from_stage0(&s, &mp, &["--no-grow"]);
    assert_eq!(ran.code, 0, "{ran:?}");
    assert_eq!(ran.json()["mounted"]["adopted_stage0"], true);
}

#[test]
fn root_a_stage0_mount_that_fails_verification_is_unmounted() {
    let s = setup(6, 128, "FORENSICS", true);
    let mp = stage0_mount(&s);
    let _guard = MountGuard(mp.clone());
    let ran = run(&mut mount_cmd(&s, &["--mountpoint", mp.to_str().unwrap()]));
    assert_eq!(ran.code, 9, "{ran:?}");
    assert!(
        !is_mounted(&mp),
        "stage-0's mount must be undone on failure"
    );
}

#[test]
fn root_the_test_model_needs_the_override() {
    require_root();
    let tmp = tempfile::tempdir().unwrap();
    let img = ext4_image(tmp.path(), 64, 64, "FORENSICS", None);
    let lo = Loop::attach(&img, false);
    let (id, serial) = volume_id(7);
    let fake = FakeNvme::new(&lo, "nvme3n1", &serial, "QEMU NVMe Ctrl");
    let mut cmd = helper();
    cmd.args(["locate", "--volume-id", &id, "--wait", "0"])
        .args(fake.root_args());
    let ran = run(&mut cmd);
    assert_eq!(ran.code, 4, "{ran:?}");
    assert!(
        ran.stderr.contains("\"QEMU NVMe Ctrl\" is not EBS"),
        "{}",
        ran.stderr
    );
    let out = cmd
        .env("FV_TEST_ACCEPT_NVME_MODEL", "QEMU NVMe Ctrl")
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(stderr.contains("TEST OVERRIDE"), "{stderr}");
    assert!(stdout.contains("WARNING: TEST OVERRIDE"), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "OK: {id} is {}",
            fake.dev().join("nvme3n1").display()
        )),
        "{stdout}"
    );
    // The loop device answers the NVMe identify ioctl with ENOTTY: said, not hidden.
    assert!(
        stdout.contains("not confirmed with NVMe identify data"),
        "{stdout}"
    );
}

#[test]
fn root_a_device_node_that_is_not_the_sysfs_device_is_refused() {
    let s = setup(10, 64, "FORENSICS", false);
    let node = s.fake.dev().join("nvme9n1");
    std::fs::remove_file(&node).unwrap();
    // Gone: reported as not found (with why), after the wait.
    let ran = run(&mut mount_cmd(&s, &[]));
    assert_eq!(ran.code, 4, "{ran:?}");
    assert!(ran.stderr.contains("nvme9n1 vanished"), "{}", ran.stderr);
    // Replaced by another device: refused before anything is read from it.
    std::os::unix::fs::symlink("/dev/null", &node).unwrap();
    let ran = run(&mut mount_cmd(&s, &[]));
    assert_eq!(ran.code, 14, "{ran:?}");
    assert_eq!(ran.json()["error_kind"], "device_vanished");
    assert!(
        ran.stderr.contains("expected block device"),
        "{}",
        ran.stderr
    );
    assert!(!default_mp(&s.id).exists());
}
