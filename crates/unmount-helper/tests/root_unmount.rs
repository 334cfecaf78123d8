//! unmount-helper as root on loop devices: it unmounts the very filesystem
//! its binary lives on (memfd and /run-copy re-exec), refuses while a
//! process holds the filesystem and lists it, and finds a volume by ID.

#![allow(clippy::unwrap_used, reason = "tests")]

#[path = "../../mount-helper/tests/support/mod.rs"]
mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use support::{
    EBS, FakeNvme, Loop, MountGuard, Ran, ext4_image, is_mounted, require_root, run, volume_id,
    volume_tree,
};

struct Mounted {
    _tmp: tempfile::TempDir,
    lo: Loop,
    fake: FakeNvme,
    id: String,
    mp: PathBuf,
}

/// A forensics volume mounted read-write where mount-helper puts it, with
/// the unmount-helper binary copied onto it.
fn mounted(n: u32, flags: nix::mount::MsFlags, data: Option<&str>) -> Mounted {
    require_root();
    let tmp = tempfile::tempdir().unwrap();
    let tree = tmp.path().join("tree");
    volume_tree(&tree);
    std::fs::create_dir_all(tree.join("bin/x86_64")).unwrap();
    std::fs::copy(
        env!("CARGO_BIN_EXE_unmount-helper"),
        tree.join("bin/x86_64/unmount-helper"),
    )
    .unwrap();
    std::fs::set_permissions(
        tree.join("bin/x86_64/unmount-helper"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    let img = ext4_image(tmp.path(), 64, 64, "FORENSICS", Some(&tree));
    let lo = Loop::attach(&img, false);
    let (id, serial) = volume_id(n);
    let fake = FakeNvme::new(&lo, "nvme5n1", &serial, EBS);
    let mp = Path::new("/run/forensics-volume").join(&id);
    std::fs::create_dir_all(&mp).unwrap();
    nix::mount::mount(Some(&lo.path), &mp, Some("ext4"), flags, data).unwrap();
    Mounted {
        _tmp: tmp,
        lo,
        fake,
        id,
        mp,
    }
}

fn rw() -> nix::mount::MsFlags {
    nix::mount::MsFlags::MS_NOSUID | nix::mount::MsFlags::MS_NODEV | nix::mount::MsFlags::MS_NOATIME
}

/// Runs the copy of unmount-helper that lives on the volume.
fn from_volume(m: &Mounted, extra: &[&str]) -> Ran {
    let mut cmd = Command::new(m.mp.join("bin/x86_64/unmount-helper"));
    cmd.args(["--mountpoint", m.mp.to_str().unwrap(), "--json"])
        .args(m.fake.root_args())
        .args(extra)
        .current_dir("/");
    run(&mut cmd)
}

#[test]
fn root_unmounts_the_filesystem_it_runs_from_via_memfd() {
    let m = mounted(1, rw(), None);
    let _guard = MountGuard(m.mp.clone());
    std::fs::write(m.mp.join("captures/evidence"), b"unsynced data").unwrap();
    let ran = from_volume(&m, &[]);
    assert_eq!(ran.code, 0, "{ran:?}");
    let v = ran.json();
    assert_eq!(v["ok"], true);
    assert_eq!(v["safe_to_detach"], true);
    assert_eq!(v["ran_from"], "memfd");
    assert_eq!(v["volume_id"], m.id);
    assert_eq!(
        v["device"],
        m.fake.dev().join("nvme5n1").display().to_string()
    );
    assert_eq!(v["unmounted"]["mountpoint_removed"], true);
    assert!(!is_mounted(&m.mp));
    assert!(!m.mp.exists());
    // The data reached the device: mount it again and read it back.
    let check = tempfile::tempdir().unwrap();
    nix::mount::mount(
        Some(&m.lo.path),
        check.path(),
        Some("ext4"),
        nix::mount::MsFlags::MS_RDONLY,
        Some("noload"),
    )
    .unwrap();
    let back = std::fs::read(check.path().join("captures/evidence"));
    nix::mount::umount2(check.path(), nix::mount::MntFlags::empty()).unwrap();
    assert_eq!(back.unwrap(), b"unsynced data");
}

/// A re-exec marker planted in the environment must not make the helper
/// skip its re-exec: it would keep the volume busy while claiming to run
/// from a memfd.
#[test]
fn root_a_planted_reexec_marker_is_not_believed() {
    for (n, planted) in [(9, "memfd"), (10, "copy:/run/fv-unmount-helper.1")] {
        let m = mounted(n, rw(), None);
        let _guard = MountGuard(m.mp.clone());
        let mut cmd = Command::new(m.mp.join("bin/x86_64/unmount-helper"));
        cmd.args(["--mountpoint", m.mp.to_str().unwrap(), "--json"])
            .args(m.fake.root_args())
            .env("FV_HELPER_REEXEC", planted)
            .current_dir("/");
        let ran = run(&mut cmd);
        assert_eq!(ran.code, 0, "{planted}: {ran:?}");
        assert_eq!(ran.json()["ran_from"], "memfd", "{planted}");
        assert!(!is_mounted(&m.mp), "{planted}");
    }
}

#[test]
fn root_unmounts_the_filesystem_it_runs_from_via_a_run_copy() {
    let m = mounted(2, rw(), None);
    let _guard = MountGuard(m.mp.clone());
    let ran = from_volume(&m, &["--reexec", "copy"]);
    assert_eq!(ran.code, 0, "{ran:?}");
    let from = ran.json()["ran_from"].as_str().unwrap().to_string();
    let copy = from.strip_prefix("copy:").unwrap();
    assert!(copy.starts_with("/run/fv-unmount-helper."), "{from}");
    assert!(
        !Path::new(copy).exists(),
        "the copy under /run must be deleted"
    );
    assert!(!is_mounted(&m.mp));
}

#[test]
fn root_without_reexec_its_own_executable_holds_the_volume() {
    let m = mounted(3, rw(), None);
    let _guard = MountGuard(m.mp.clone());
    let ran = from_volume(&m, &["--reexec", "never"]);
    assert_eq!(ran.code, 5, "{ran:?}");
    assert!(
        ran.stderr.contains("(unmount-helper): exe"),
        "{}",
        ran.stderr
    );
    assert!(is_mounted(&m.mp));
}

#[test]
fn root_refuses_while_a_process_holds_the_filesystem() {
    let m = mounted(4, rw(), None);
    let _guard = MountGuard(m.mp.clone());
    std::fs::write(m.mp.join("captures/open"), b"x").unwrap();
    let mut sleeper = Command::new("sleep")
        .arg("300")
        .current_dir(&m.mp)
        .spawn()
        .unwrap();
    let mut reader = Command::new("sh")
        .args(["-c", "exec 7<\"$1\"; exec sleep 300", "sh"])
        .arg(m.mp.join("captures/open"))
        .current_dir("/")
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let ran = from_volume(&m, &[]);
    sleeper.kill().unwrap();
    reader.kill().unwrap();
    sleeper.wait().unwrap();
    reader.wait().unwrap();
    assert_eq!(ran.code, 5, "{ran:?}");
    let v = ran.json();
    assert_eq!(v["error_kind"], "busy");
    assert_eq!(v["safe_to_detach"], false);
    let holders = v["holders"].as_array().unwrap();
    assert!(
        holders
            .iter()
            .any(|h| h["pid"] == sleeper.id() && h["how"] == "cwd" && h["command"] == "sleep"),
        "{holders:?}"
    );
    assert!(
        holders.iter().any(|h| h["pid"] == reader.id()
            && h["how"] == "fd 7"
            && h["path"].as_str().unwrap().ends_with("captures/open")),
        "{holders:?}"
    );
    assert!(
        ran.stderr.contains(&format!(
            "pid {} (sleep): cwd {}",
            sleeper.id(),
            m.mp.display()
        )),
        "{}",
        ran.stderr
    );
    assert!(
        is_mounted(&m.mp),
        "a refused unmount must leave the volume mounted"
    );
    // Once they are gone it succeeds.
    let ran = from_volume(&m, &[]);
    assert_eq!(ran.code, 0, "{ran:?}");
}

#[test]
fn root_finds_the_mount_by_volume_id_and_reports_a_read_only_device() {
    let m = mounted(5, rw() | nix::mount::MsFlags::MS_RDONLY, Some("noload"));
    let _guard = MountGuard(m.mp.clone());
    let node = std::fs::File::open(&m.lo.path).unwrap();
    fv_ebs::sys::block_set_read_only(&node, true).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_unmount-helper"));
    cmd.args(["--volume-id", &m.id, "--json"])
        .args(m.fake.root_args());
    let ran = run(&mut cmd);
    fv_ebs::sys::block_set_read_only(&node, false).unwrap();
    assert_eq!(ran.code, 0, "{ran:?}");
    let v = ran.json();
    assert_eq!(v["unmounted"]["device_read_only"], true);
    assert_eq!(
        v["unmounted"]["written_sectors_before"],
        v["unmounted"]["written_sectors_after"]
    );
    assert!(!is_mounted(&m.mp));
    // Nothing mounted any more: a second run says so with its own code.
    let ran = run(&mut cmd);
    assert_eq!(ran.code, 4, "{ran:?}");
    assert!(ran.stderr.contains("is not mounted"), "{}", ran.stderr);
}

#[test]
fn root_refuses_the_root_filesystem_and_unmounted_paths() {
    require_root();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_unmount-helper"));
    let ran = run(cmd.args(["--mountpoint", "/", "--reexec", "never"]));
    assert!(ran.code == 9, "{ran:?}");
    let tmp = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_unmount-helper"));
    let ran = run(cmd.args([
        "--mountpoint",
        tmp.path().to_str().unwrap(),
        "--reexec",
        "never",
    ]));
    assert_eq!(ran.code, 4, "{ran:?}");
    assert!(
        ran.stderr.contains("nothing is mounted there"),
        "{}",
        ran.stderr
    );
}

/// L5: with --volume-id, a --mountpoint where something else is mounted (a
/// suspect's /home, say) is refused and left mounted; the volume's own
/// mountpoint is unmounted.
#[test]
fn root_volume_id_and_mountpoint_must_agree() {
    let m = mounted(6, rw(), None);
    let _guard = MountGuard(m.mp.clone());
    // Another block-backed filesystem, mounted elsewhere.
    let other_tmp = tempfile::tempdir().unwrap();
    let img = ext4_image(other_tmp.path(), 16, 16, "OTHER", None);
    let other_lo = Loop::attach(&img, false);
    let other_mp = other_tmp.path().join("mnt");
    std::fs::create_dir_all(&other_mp).unwrap();
    nix::mount::mount(
        Some(&other_lo.path),
        &other_mp,
        Some("ext4"),
        rw(),
        None::<&str>,
    )
    .unwrap();
    let _other_guard = MountGuard(other_mp.clone());
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_unmount-helper"));
    cmd.args([
        "--volume-id",
        &m.id,
        "--mountpoint",
        other_mp.to_str().unwrap(),
        "--json",
        "--reexec",
        "never",
    ])
    .args(m.fake.root_args());
    let ran = run(&mut cmd);
    assert_eq!(ran.code, 9, "{ran:?}");
    assert!(ran.stderr.contains("is not vol-"), "{}", ran.stderr);
    assert!(
        is_mounted(&other_mp),
        "the other filesystem must stay mounted"
    );
    assert!(is_mounted(&m.mp));
    // The volume's own mountpoint with its ID: unmounted.
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_unmount-helper"));
    cmd.args([
        "--volume-id",
        &m.id,
        "--mountpoint",
        m.mp.to_str().unwrap(),
        "--json",
        "--reexec",
        "never",
    ])
    .args(m.fake.root_args())
    .current_dir("/");
    let ran = run(&mut cmd);
    assert_eq!(ran.code, 0, "{ran:?}");
    assert!(!is_mounted(&m.mp));
}
