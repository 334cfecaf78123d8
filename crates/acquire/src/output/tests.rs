//! The output root's checks, lock, names, reserve and atomic writes, and
//! the volume-ID check against fixture sysfs trees.

use std::os::unix::fs::symlink;
use std::path::Path;

use fv_core::fs::{Dir, FsError};
use fv_core::volume::MARKER_FILE;

use super::*;

fn volume() -> tempfile::TempDir {
    let t = tempfile::tempdir().unwrap();
    std::fs::write(
        t.path().join(MARKER_FILE),
        br#"{"toolkit":"forensics-volume","format":1}"#,
    )
    .unwrap();
    t
}

#[test]
fn default_root_is_the_volumes_captures() {
    let v = volume();
    std::fs::create_dir_all(v.path().join("bin/x86_64")).unwrap();
    let exe = v.path().join("bin/x86_64/capture");
    assert_eq!(default_root(&exe).unwrap(), v.path().join("captures"));
    let other = tempfile::tempdir().unwrap();
    assert!(matches!(
        default_root(&other.path().join("capture")),
        Err(OutputError::NoVolume { .. })
    ));
}

#[test]
fn root_checks() {
    let v = volume();
    // M6: a marker in a directory of the host's root filesystem is not
    // the forensics volume; nothing is created before that is known.
    assert!(matches!(
        open_root(&v.path().join("captures"), false, None),
        Err(OutputError::NotTheVolumeDevice { .. })
    ));
    assert!(!v.path().join("captures").exists());
    // captures/ is created when missing.
    let r = open_root(&v.path().join("captures"), true, None).unwrap();
    assert_eq!(r.volume.as_deref(), Some(v.path()));
    // Outside any volume: refused unless allowed.
    let other = tempfile::tempdir().unwrap();
    assert!(matches!(
        open_root(other.path(), false, None),
        Err(OutputError::NotOnVolume { .. })
    ));
    assert!(open_root(other.path(), true, None).is_ok());
    // A fake marker is not a marker.
    std::fs::write(other.path().join(MARKER_FILE), b"{\"toolkit\":\"x\"}").unwrap();
    assert!(matches!(
        open_root(other.path(), false, None),
        Err(OutputError::NotOnVolume { .. })
    ));
    // Symlinked output: refused even with --allow-any-output.
    symlink(v.path().join("captures"), v.path().join("link")).unwrap();
    let err = open_root(&v.path().join("link"), true, None).unwrap_err();
    assert!(
        matches!(err, OutputError::Fs(FsError::Symlink { .. })),
        "{err}"
    );
    assert!(matches!(
        open_root(&v.path().join("captures/../captures"), true, None),
        Err(OutputError::ParentComponent { .. })
    ));
}

/// Issue 23: a missing -o is said to be missing (AVML's `capture
/// OUT.lime` habit), and no refusal offers --allow-any-output, the flag
/// that writes onto the suspect's disks; each says what to do instead.
#[test]
fn refusals_say_what_to_do_and_never_offer_the_flag() {
    let v = volume();
    let missing = v.path().join("memory.lime");
    let err = open_root(&missing, false, None).unwrap_err();
    assert!(matches!(err, OutputError::Missing { .. }), "{err}");
    assert!(err.to_string().contains("does not exist"), "{err}");
    assert!(!missing.exists());
    // Even with the flag, a missing root is not created.
    assert!(matches!(
        open_root(&missing, true, None),
        Err(OutputError::Missing { .. })
    ));
    let other = tempfile::tempdir().unwrap();
    let errs = [
        open_root(other.path(), false, None).unwrap_err(),
        open_root(&v.path().join("captures"), false, None).unwrap_err(),
        OutputError::OtherFilesystem {
            path: v.path().join("captures/x"),
            volume: v.path().to_path_buf(),
        },
    ];
    for err in errs {
        let text = err.to_string();
        assert!(!text.contains("allow-any-output"), "{text}");
        assert!(text.contains("captures"), "{text}");
    }
    assert!(ON_VOLUME_HINT.contains("mount-helper"));
}

#[test]
fn lock_is_exclusive() {
    let v = volume();
    let r = open_root(v.path(), true, None).unwrap();
    let held = lock(&r.dir).unwrap();
    let r2 = open_root(v.path(), true, None).unwrap();
    assert!(matches!(lock(&r2.dir), Err(OutputError::Busy { .. })));
    drop(held);
    assert!(lock(&r2.dir).is_ok());
}

#[test]
fn atomic_write_and_names() {
    let v = volume();
    let d = Dir::open(v.path()).unwrap();
    let (c, name) = create_capture_dir(&d, "i-1_20260101T000000Z").unwrap();
    let (_, name2) = create_capture_dir(&d, "i-1_20260101T000000Z").unwrap();
    assert_eq!(name2, format!("{name}-2"));
    let sha = write_atomic(&c, "manifest.json", b"{}\n").unwrap();
    assert_eq!(sha.len(), 64);
    assert!(write_atomic(&c, "manifest.json", b"{}\n").is_err());
    reserve(&c, 1 << 20).unwrap();
    assert_eq!(
        std::fs::metadata(c.path().join(RESERVE_FILE))
            .unwrap()
            .len(),
        1 << 20
    );
    release_reserve(&c);
    assert!(!c.path().join(RESERVE_FILE).exists());
    assert_eq!(sanitize("ip-10-0-0-1.ec2/x y"), "ip-10-0-0-1.ec2_x_y");
    assert_eq!(sanitize("..."), "host");
}

/// Identify data as a test sets it (the real ioctl needs an NVMe node).
struct FakeIdentify(Option<(String, String)>);

impl fv_ebs::locate::IdentifySource for FakeIdentify {
    fn identify(
        &self,
        _node: &Path,
    ) -> Result<fv_ebs::identify::IdentifyController, fv_ebs::locate::IdentifyUnavailable> {
        match &self.0 {
            Some((serial, model)) => Ok(fv_ebs::identify::IdentifyController::parse(
                &fv_ebs::identify::build_blob(serial, model, "sdf"),
            )
            .unwrap()),
            None => Err(fv_ebs::locate::IdentifyUnavailable {
                vanished: false,
                reason: "not an NVMe device node".into(),
            }),
        }
    }
}

/// A fixture /sys, /dev, /proc whose only disk, `name`, holds the
/// filesystem of `dir` (its device number), NVMe `(model, serial)` or
/// none.
fn disk_under(dir: &Dir, name: &str, nvme: Option<(&str, &str)>) -> tempfile::TempDir {
    let t = tempfile::tempdir().unwrap();
    let st = dir.stat().unwrap();
    let b = t.path().join("sys/block").join(name);
    for d in ["holders", "slaves", "device"] {
        std::fs::create_dir_all(b.join(d)).unwrap();
    }
    let dev = format!("{}:{}\n", libc::major(st.st_dev), libc::minor(st.st_dev));
    std::fs::write(b.join("dev"), dev).unwrap();
    std::fs::write(b.join("size"), "2097152\n").unwrap();
    std::fs::write(b.join("ro"), "0\n").unwrap();
    if let Some((model, serial)) = nvme {
        std::fs::write(b.join("device/model"), format!("{model:<40}\n")).unwrap();
        std::fs::write(b.join("device/serial"), format!("{serial:<20}\n")).unwrap();
    }
    std::fs::create_dir_all(t.path().join("dev")).unwrap();
    std::fs::write(t.path().join("dev").join(name), "").unwrap();
    std::fs::create_dir_all(t.path().join("proc/self")).unwrap();
    std::fs::write(t.path().join("proc/self/mountinfo"), "").unwrap();
    t
}

fn roots_of(t: &tempfile::TempDir) -> fv_ebs::Roots {
    fv_ebs::Roots {
        sys: t.path().join("sys"),
        dev: t.path().join("dev"),
        proc: t.path().join("proc"),
    }
}

/// S12: with a volume ID, the output's disk must be that EBS volume:
/// its NVMe serial is the ID, its model EBS's; a loop device, another
/// volume, instance store or qemu's model (without the test override)
/// are refused; the override admits qemu's model only, loudly.
#[test]
fn the_volume_id_ties_the_output_to_its_ebs_volume() {
    use fv_ebs::locate::{EBS_MODEL, QEMU_TEST_MODEL};
    let v = volume();
    let d = Dir::open(v.path()).unwrap();
    let id = fv_ebs::VolumeId::parse("vol-0123456789abcdef0").unwrap();
    let serial = id.serial();
    let confirmed = FakeIdentify(Some((serial.clone(), EBS_MODEL.to_string())));
    let check =
        |name: &str, nvme: Option<(&str, &str)>, extra: Option<&str>, ident: &FakeIdentify| {
            let t = disk_under(&d, name, nvme);
            check_volume_id(&d, &id, &roots_of(&t), extra, ident)
        };
    // The volume itself.
    assert_eq!(
        check("nvme1n1", Some((EBS_MODEL, &serial)), None, &confirmed),
        Ok(vec![])
    );
    // Identify data unavailable: sysfs alone, said.
    let w = check(
        "nvme1n1",
        Some((EBS_MODEL, &serial)),
        None,
        &FakeIdentify(None),
    )
    .unwrap();
    assert!(
        w.iter()
            .any(|w| w.contains("identified by sysfs serial alone")),
        "{w:?}"
    );
    // Another volume.
    let e = check(
        "nvme1n1",
        Some((EBS_MODEL, "vol0fedcba9876543210")),
        None,
        &confirmed,
    )
    .unwrap_err();
    assert!(
        e.contains("volume vol-0fedcba9876543210, not vol-0123456789abcdef0"),
        "{e}"
    );
    // Identify data disagrees with sysfs.
    let liar = FakeIdentify(Some(("vol0fedcba9876543210".into(), EBS_MODEL.into())));
    let e = check("nvme1n1", Some((EBS_MODEL, &serial)), None, &liar).unwrap_err();
    assert!(e.contains("does not resolve"), "{e}");
    // A loop device (the review's relabelled ext4) or any other disk.
    let e = check("loop0", None, None, &confirmed).unwrap_err();
    assert!(e.contains("loop0, which is not an NVMe device"), "{e}");
    // Instance store, and qemu's model without the override.
    let e = check(
        "nvme1n1",
        Some(("Amazon EC2 NVMe Instance Storage", &serial)),
        None,
        &confirmed,
    )
    .unwrap_err();
    assert!(e.contains("not an EBS volume"), "{e}");
    let qemu = FakeIdentify(Some((serial.clone(), QEMU_TEST_MODEL.to_string())));
    assert!(check("nvme1n1", Some((QEMU_TEST_MODEL, &serial)), None, &qemu).is_err());
    // The override: qemu's model only, and loudly.
    let w = check(
        "nvme1n1",
        Some((QEMU_TEST_MODEL, &serial)),
        Some(QEMU_TEST_MODEL),
        &qemu,
    )
    .unwrap();
    assert!(w.iter().any(|w| w.contains("TEST OVERRIDE")), "{w:?}");
    assert!(
        check(
            "nvme1n1",
            Some(("Other NVMe Ctrl", &serial)),
            Some("Other NVMe Ctrl"),
            &confirmed
        )
        .is_err()
    );
    // Xen: no volume ID to see; accepted, saying it was not checked.
    let w = check("xvdf", None, None, &confirmed).unwrap();
    assert!(w.iter().any(|w| w.contains("not checked")), "{w:?}");
}
