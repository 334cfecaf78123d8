//! Evidence mode as root on a partitioned loop device posing as a suspect's
//! EBS volume: BLKROSET before mounting, ro,noload,nosuid,nodev,noexec, and
//! the written-sector count unchanged after mounting and after unmounting.

#![allow(clippy::unwrap_used, reason = "tests")]

mod support;

use std::os::unix::fs::FileExt;
use std::path::Path;
use std::process::Command;

use support::{EBS, FakeNvme, Loop, MountGuard, is_mounted, require_root, run, volume_id};

const START_LBA: u32 = 2048;
const PART_MIB: u32 = 48;

/// An 64 MiB image with an MBR and one Linux partition holding an ext4
/// (label SUSPECT) with a file, like a restored root volume.
fn partitioned_image(dir: &Path) -> std::path::PathBuf {
    let tree = dir.join("suspect");
    std::fs::create_dir_all(tree.join("home")).unwrap();
    std::fs::write(tree.join("home/secret.txt"), b"the attacker was here\n").unwrap();
    let img = dir.join("suspect.img");
    std::fs::File::create(&img)
        .unwrap()
        .set_len(64 << 20)
        .unwrap();
    let out = Command::new("mkfs.ext4")
        .args([
            "-q",
            "-F",
            "-L",
            "SUSPECT",
            "-E",
            &format!("offset={}", u64::from(START_LBA) * 512),
            "-d",
        ])
        .arg(&tree)
        .arg(&img)
        .arg(format!("{PART_MIB}M"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut mbr = [0u8; 512];
    let entry = &mut mbr[446..462];
    entry[4] = 0x83;
    entry[8..12].copy_from_slice(&START_LBA.to_le_bytes());
    entry[12..16].copy_from_slice(&(PART_MIB * 2048).to_le_bytes());
    mbr[510] = 0x55;
    mbr[511] = 0xaa;
    let file = std::fs::OpenOptions::new().write(true).open(&img).unwrap();
    std::os::unix::fs::FileExt::write_all_at(&file, &mbr, 0).unwrap();
    img
}

#[test]
fn root_evidence_mount_is_read_only_and_proves_it() {
    require_root();
    let tmp = tempfile::tempdir().unwrap();
    let img = partitioned_image(tmp.path());
    let lo = Loop::attach(&img, true);
    lo.ensure_partition(1, START_LBA.into(), u64::from(PART_MIB) * 2048);
    let (id, serial) = volume_id(20);
    let fake = FakeNvme::new(&lo, "nvme7n1", &serial, EBS);
    let mp = Path::new("/run/forensics-volume").join(format!("evidence-{id}-p1"));
    let _guard = MountGuard(mp.clone());
    let mut base = Command::new(env!("CARGO_BIN_EXE_mount-helper"));
    base.args([
        "mount",
        "--evidence",
        "--volume-id",
        &id,
        "--wait",
        "0",
        "--json",
    ])
    .args(fake.root_args());
    let written_at_start = lo.written_sectors();

    // A partitioned volume needs --partition; a missing one is named.
    let ran = run(&mut base);
    assert_eq!(ran.code, 3, "{ran:?}");
    assert!(
        ran.stderr
            .contains("has partitions (1): pass --partition N"),
        "{}",
        ran.stderr
    );
    let ran = run(Command::new(env!("CARGO_BIN_EXE_mount-helper"))
        .args([
            "mount",
            "--evidence",
            "--partition",
            "2",
            "--volume-id",
            &id,
            "--wait",
            "0",
        ])
        .args(fake.root_args()));
    assert_eq!(ran.code, 3, "{ran:?}");
    assert!(ran.stderr.contains("has no partition 2"), "{}", ran.stderr);
    // The wrong label is refused, and nothing is mounted.
    let ran = run(Command::new(env!("CARGO_BIN_EXE_mount-helper"))
        .args([
            "mount",
            "--evidence",
            "--partition",
            "1",
            "--expect-label",
            "OTHER",
            "--volume-id",
            &id,
            "--wait",
            "0",
        ])
        .args(fake.root_args()));
    assert_eq!(ran.code, 8, "{ran:?}");
    assert!(!is_mounted(&mp));

    let ran = run(base.args(["--partition", "1", "--expect-label", "SUSPECT"]));
    assert_eq!(ran.code, 0, "{ran:?}");
    let v = ran.json();
    assert_eq!(v["command"], "mount-evidence");
    assert_eq!(v["mountpoint"], mp.display().to_string());
    // M4: the source is the checked fd, not a path looked up again.
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let line = info
        .lines()
        .find(|l| l.split(' ').nth(4) == Some(&*mp.to_string_lossy()))
        .unwrap();
    let source = line.split(" - ").nth(1).unwrap().split(' ').nth(1).unwrap();
    assert!(source.starts_with("/proc/self/fd/"), "{line}");
    let proof = &v["mounted"]["evidence"];
    assert_eq!(proof["device"], "nvme7n1");
    assert_eq!(proof["mounted_device"], "nvme7n1p1");
    assert_eq!(proof["device_read_only"], true);
    assert_eq!(
        proof["written_sectors_before"],
        proof["written_sectors_after_mount"]
    );
    assert_eq!(
        v["mounted"]["options"],
        "ro,nosuid,nodev,noexec,noatime,noload"
    );

    // What the kernel says, independently of mount-helper.
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let line = info
        .lines()
        .find(|l| l.split(' ').nth(4) == Some(&*mp.to_string_lossy()))
        .unwrap();
    assert!(line.contains(" ro,nosuid,nodev,noexec,noatime "), "{line}");
    assert_eq!(
        std::fs::read(mp.join("home/secret.txt")).unwrap(),
        b"the attacker was here\n"
    );
    assert!(std::fs::write(mp.join("home/new"), b"x").is_err());
    // BLKROSET: a write to the device fails (the kernel lets the open
    // through and refuses the write). Rewrite the sector's own bytes, so a
    // failure of this check changes nothing either.
    let mut sector = [0u8; 512];
    let dev = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&lo.path);
    if let Ok(dev) = dev {
        dev.read_exact_at(&mut sector, 0).unwrap();
        let write = dev.write_all_at(&sector, 0).and_then(|()| dev.sync_all());
        assert!(write.is_err(), "BLKROSET must refuse writes");
    }
    assert_eq!(
        std::fs::read_to_string(lo.sys().join("ro")).unwrap().trim(),
        "1"
    );
    assert_eq!(
        lo.written_sectors(),
        written_at_start,
        "mounting wrote to the evidence"
    );

    nix::mount::umount2(&mp, nix::mount::MntFlags::empty()).unwrap();
    assert_eq!(
        lo.written_sectors(),
        written_at_start,
        "unmounting wrote to the evidence"
    );
}

#[test]
fn root_evidence_refuses_a_mounted_volume() {
    require_root();
    let tmp = tempfile::tempdir().unwrap();
    let img = support::ext4_image(tmp.path(), 32, 32, "SUSPECT", None);
    let lo = Loop::attach(&img, false);
    let (id, serial) = volume_id(21);
    let fake = FakeNvme::new(&lo, "nvme8n1", &serial, EBS);
    let elsewhere = tmp.path().join("mnt");
    std::fs::create_dir(&elsewhere).unwrap();
    nix::mount::mount(
        Some(&lo.path),
        &elsewhere,
        Some("ext4"),
        nix::mount::MsFlags::MS_RDONLY,
        Some("noload"),
    )
    .unwrap();
    let _guard = MountGuard(elsewhere.clone());
    let ran = run(Command::new(env!("CARGO_BIN_EXE_mount-helper"))
        .args(["mount", "--evidence", "--volume-id", &id, "--wait", "0"])
        .args(fake.root_args()));
    assert_eq!(ran.code, 15, "{ran:?}");
    assert!(ran.stderr.contains("already mounted"), "{}", ran.stderr);
}
