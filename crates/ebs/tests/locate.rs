//! Locating volumes on fixture trees shaped like Nitro and Xen instances.
#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a failure is a failed test"
)]

mod fixture;

use std::time::Duration;

use fixture::{Blobs, EBS, Fixture, STORE};
use fv_ebs::locate::{Expectation, LocateError, LocateOptions, Method, locate, locate_once};
use fv_ebs::protect::Protection;
use fv_ebs::superblock::build_ext4;
use fv_ebs::{RequestedDevice, VolumeId};

const TARGET: &str = "vol-0123456789abcdef0";
const ROOT_VOL: &str = "vol0aaaaaaaaaaaaaaaa";
const OTHER_VOL: &str = "vol0bbbbbbbbbbbbbbbb";

/// A Nitro instance: root EBS (partition 1 mounted at /), two instance-store
/// disks, the target, another EBS volume.
fn nitro() -> Fixture {
    let fx = Fixture::new();
    fx.nvme("nvme0n1", "259:0", 8, EBS, ROOT_VOL);
    fx.partition("nvme0n1", "nvme0n1p1", "259:1", 1);
    fx.nvme("nvme1n1", "259:2", 900, STORE, "AWS1111111111111111");
    fx.nvme("nvme2n1", "259:3", 900, STORE, "AWS2222222222222222");
    fx.nvme("nvme3n1", "259:4", 20, EBS, "vol0123456789abcdef0");
    fx.nvme("nvme4n1", "259:5", 50, EBS, OTHER_VOL);
    fx.mountinfo(
        "22 1 259:1 / / rw,noatime shared:1 - xfs /dev/nvme0n1p1 rw,attr2\n\
         23 22 0:21 / /proc rw,nosuid - proc proc rw\n",
    );
    fx
}

struct Query {
    volume_id: VolumeId,
    requested: Option<RequestedDevice>,
    protect: Vec<VolumeId>,
    expect: Expectation,
    extra_model: Option<String>,
    allow_mounted: bool,
}

impl Query {
    fn new(volume_id: &str) -> Self {
        Self {
            volume_id: VolumeId::parse(volume_id).unwrap(),
            requested: None,
            protect: Vec::new(),
            expect: Expectation::default(),
            extra_model: None,
            allow_mounted: false,
        }
    }

    fn requested(mut self, name: &str) -> Self {
        self.requested = Some(RequestedDevice::parse(name).unwrap());
        self
    }

    fn label(mut self, label: &str) -> Self {
        self.expect.label = Some(label.to_string());
        self
    }

    fn run(&self, fx: &Fixture, blobs: &Blobs) -> Result<fv_ebs::locate::Located, LocateError> {
        locate_once(&self.opts(fx, blobs))
    }

    fn opts<'a>(&'a self, fx: &'a Fixture, blobs: &'a Blobs) -> LocateOptions<'a> {
        LocateOptions {
            volume_id: &self.volume_id,
            requested: self.requested.as_ref(),
            protect: &self.protect,
            expect: &self.expect,
            extra_model: self.extra_model.as_deref(),
            allow_mounted: self.allow_mounted,
            identify: blobs,
            roots: &fx.roots,
        }
    }
}

fn reasons_of(located: &fv_ebs::locate::Report, device: &str) -> String {
    let cand = located
        .candidates
        .iter()
        .find(|c| c.device == device)
        .unwrap();
    cand.reasons.join("; ")
}

#[test]
fn nitro_finds_the_target_and_explains_every_other_device() {
    let fx = nitro();
    let blobs = Blobs::default().with(&fx, "nvme3n1", "vol0123456789abcdef0", EBS, "sdf");
    let found = Query::new(TARGET)
        .requested("/dev/sdf")
        .run(&fx, &blobs)
        .unwrap();
    assert_eq!(found.device, "nvme3n1");
    assert_eq!(found.method, Method::NvmeSerial);
    assert_eq!(found.size_bytes, 20 << 30);
    assert_eq!(found.device_path, fx.roots.dev.join("nvme3n1"));
    assert!(found.warnings.is_empty(), "{:?}", found.warnings);
    assert!(
        found
            .identified_by
            .iter()
            .any(|s| s.contains("attached as sdf")),
        "{:?}",
        found.identified_by
    );
    let r = &found.report;
    assert!(reasons_of(r, "nvme0n1").contains("another volume (vol-0aaaaaaaaaaaaaaaa)"));
    assert!(reasons_of(r, "nvme0n1").contains("backs the root filesystem"));
    assert!(reasons_of(r, "nvme0n1").contains("nvme0n1p1 is mounted at /"));
    assert!(reasons_of(r, "nvme1n1").contains("instance store"));
    assert!(reasons_of(r, "nvme2n1").contains("instance store"));
    assert!(reasons_of(r, "nvme4n1").contains("another volume (vol-0bbbbbbbbbbbbbbbb)"));
    assert_eq!(r.candidates.iter().filter(|c| c.accepted).count(), 1);
}

#[test]
fn nitro_without_identify_data_warns_but_finds() {
    let fx = nitro();
    let found = Query::new(TARGET).run(&fx, &Blobs::default()).unwrap();
    assert_eq!(found.device, "nvme3n1");
    assert!(
        found.warnings.iter().any(|w| w.contains("not confirmed")),
        "{:?}",
        found.warnings
    );
}

#[test]
fn identify_data_that_disagrees_is_refused() {
    let fx = nitro();
    let wrong_serial = Blobs::default().with(&fx, "nvme3n1", OTHER_VOL, EBS, "sdf");
    let err = Query::new(TARGET).run(&fx, &wrong_serial).unwrap_err();
    assert!(matches!(err, LocateError::IdentityMismatch { .. }), "{err}");
    let other_name = Blobs::default().with(&fx, "nvme3n1", "vol0123456789abcdef0", EBS, "/dev/sdg");
    let err = Query::new(TARGET)
        .requested("sdf")
        .run(&fx, &other_name)
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("attached as \"/dev/sdg\", not --requested-device sdf"),
        "{err}"
    );
    // Without a requested name the vendor data is only recorded.
    let found = Query::new(TARGET).run(&fx, &other_name).unwrap();
    assert!(
        found
            .identified_by
            .iter()
            .any(|s| s.contains("attached as /dev/sdg"))
    );
}

#[test]
fn the_root_volume_is_refused_by_id() {
    let fx = nitro();
    let err = Query::new("vol-0aaaaaaaaaaaaaaaa")
        .run(&fx, &Blobs::default())
        .unwrap_err();
    let LocateError::Protected {
        device, reasons, ..
    } = &err
    else {
        panic!("{err}");
    };
    assert_eq!(device, "nvme0n1");
    assert!(
        reasons
            .iter()
            .any(|r| matches!(r, Protection::BacksRoot { .. })),
        "{reasons:?}"
    );
    assert!(
        reasons
            .iter()
            .any(|r| matches!(r, Protection::Mounted { .. })),
        "{reasons:?}"
    );
}

#[test]
fn root_on_lvm_protects_the_disks_underneath() {
    let fx = nitro();
    fx.disk("dm-0", "253:0", 8);
    fx.slave("dm-0", "nvme4n1");
    fx.holder(&fx.block("nvme4n1"), "dm-0");
    fx.mountinfo("22 1 253:0 / / rw - ext4 /dev/mapper/vg-root rw\n");
    let err = Query::new("vol-0bbbbbbbbbbbbbbbb")
        .run(&fx, &Blobs::default())
        .unwrap_err();
    let LocateError::Protected { reasons, .. } = &err else {
        panic!("{err}");
    };
    assert!(
        reasons
            .iter()
            .any(|r| matches!(r, Protection::BacksRoot { via } if via.starts_with("dm-0"))),
        "{reasons:?}"
    );
    assert!(
        reasons
            .iter()
            .any(|r| matches!(r, Protection::Holders { .. })),
        "{reasons:?}"
    );
}

#[test]
fn mounted_partition_swap_and_holders_protect_the_target() {
    let fx = nitro();
    fx.partition("nvme3n1", "nvme3n1p1", "259:6", 1);
    fx.mountinfo("22 1 259:1 / / rw - xfs /dev/nvme0n1p1 rw\n40 22 259:6 / /data rw - ext4 /dev/nvme3n1p1 rw\n");
    let err = Query::new(TARGET).run(&fx, &Blobs::default()).unwrap_err();
    assert!(
        err.to_string().contains("nvme3n1p1 is mounted at /data"),
        "{err}"
    );
    // unmount-helper accepts a mounted device.
    let mut q = Query::new(TARGET);
    q.allow_mounted = true;
    let found = q.run(&fx, &Blobs::default()).unwrap();
    assert_eq!(found.mounts.len(), 1);

    let fx = nitro();
    fx.partition("nvme3n1", "nvme3n1p2", "259:7", 2);
    fx.swaps("/dev/nvme3n1p2                          partition\t1048572\t\t0\t\t-2\n");
    let err = Query::new(TARGET).run(&fx, &Blobs::default()).unwrap_err();
    assert!(
        matches!(&err, LocateError::Protected { reasons, .. } if reasons == &[Protection::Swap { device: "/dev/nvme3n1p2".into() }]),
        "{err}"
    );

    let fx = nitro();
    let part = fx.partition("nvme3n1", "nvme3n1p1", "259:6", 1);
    fx.holder(&part, "md0");
    let err = Query::new(TARGET).run(&fx, &Blobs::default()).unwrap_err();
    assert!(
        err.to_string().contains("has holders: md0 (of nvme3n1p1)"),
        "{err}"
    );
}

#[test]
fn a_read_only_whole_device_mount_is_left_to_adopt() {
    let fx = nitro();
    fx.mountinfo(
        "22 1 259:1 / / rw - xfs /dev/nvme0n1p1 rw\n\
         41 22 259:4 / /run/forensics-volume/vol-0123456789abcdef0 ro,nosuid,nodev - ext4 /dev/nvme3n1 ro,noload\n",
    );
    let found = Query::new(TARGET).run(&fx, &Blobs::default()).unwrap();
    assert_eq!(found.mounts.len(), 1);
    assert!(found.mounts[0].read_only());
    // Read-write is not stage-0's: refused.
    fx.mountinfo(
        "22 1 259:1 / / rw - xfs /dev/nvme0n1p1 rw\n41 22 259:4 / /mnt rw - ext4 /dev/nvme3n1 rw\n",
    );
    let err = Query::new(TARGET).run(&fx, &Blobs::default()).unwrap_err();
    assert!(matches!(err, LocateError::Protected { .. }), "{err}");
}

#[test]
fn protect_list() {
    let fx = nitro();
    let mut q = Query::new(TARGET);
    q.protect = vec![VolumeId::parse("vol-0bbbbbbbbbbbbbbbb").unwrap()];
    let found = q.run(&fx, &Blobs::default()).unwrap();
    assert!(
        reasons_of(&found.report, "nvme4n1")
            .contains("protected by --protect vol-0bbbbbbbbbbbbbbbb")
    );
    q.protect.push(VolumeId::parse(TARGET).unwrap());
    let err = q.run(&fx, &Blobs::default()).unwrap_err();
    assert!(matches!(err, LocateError::TargetProtected(_)), "{err}");
}

#[test]
fn legacy_eight_hex_serial() {
    let fx = nitro();
    fx.nvme("nvme5n1", "259:8", 4, EBS, "vol1a2b3c4d");
    let found = Query::new("vol-1a2b3c4d")
        .run(&fx, &Blobs::default())
        .unwrap();
    assert_eq!(found.device, "nvme5n1");
}

#[test]
fn hidden_multipath_nodes_are_skipped() {
    let fx = nitro();
    fx.nvme("nvme3c3n1", "0:0", 20, EBS, "vol0123456789abcdef0");
    let found = Query::new(TARGET).run(&fx, &Blobs::default()).unwrap();
    assert_eq!(found.device, "nvme3n1");
    assert!(
        found
            .report
            .skipped
            .iter()
            .any(|(n, why)| n == "nvme3c3n1" && why.contains("multipath"))
    );
}

#[test]
fn two_devices_with_the_same_serial_are_ambiguous() {
    let fx = nitro();
    fx.nvme("nvme5n1", "259:8", 20, EBS, "vol0123456789abcdef0");
    let err = Query::new(TARGET).run(&fx, &Blobs::default()).unwrap_err();
    let LocateError::Ambiguous { devices, .. } = &err else {
        panic!("{err}");
    };
    assert_eq!(devices, &["nvme3n1", "nvme5n1"]);
}

#[test]
fn a_test_model_needs_the_override_and_is_reported() {
    let fx = Fixture::new();
    fx.nvme(
        "nvme0n1",
        "259:0",
        1,
        "QEMU NVMe Ctrl",
        "vol0123456789abcdef0",
    );
    let err = Query::new(TARGET).run(&fx, &Blobs::default()).unwrap_err();
    assert!(
        err.to_string()
            .contains("NVMe model \"QEMU NVMe Ctrl\" is not EBS"),
        "{err}"
    );
    let mut q = Query::new(TARGET);
    q.extra_model = Some("QEMU NVMe Ctrl".into());
    let found = q.run(&fx, &Blobs::default()).unwrap();
    assert!(
        found.warnings.iter().any(|w| w.contains("TEST OVERRIDE")),
        "{:?}",
        found.warnings
    );
}

fn xen(shifted: bool) -> Fixture {
    let fx = Fixture::new();
    let (root, target) = if shifted {
        ("xvde", "xvdj")
    } else {
        ("xvda", "xvdf")
    };
    fx.disk(root, "202:0", 8);
    fx.partition(root, &format!("{root}1"), "202:1", 1);
    fx.disk(target, "202:80", 20);
    fx.disk("xvdg", "202:96", 20);
    fx.mountinfo(&format!("22 1 202:1 / / rw - ext4 /dev/{root}1 rw\n"));
    let uuid = [7u8; 16];
    fx.dev_node(target, &build_ext4("FORENSICS", uuid, 2, 5 << 18));
    fx.dev_node("xvdg", &build_ext4("OTHER", uuid, 2, 5 << 18));
    fx
}

#[test]
fn xen_by_requested_name_and_label() {
    for shifted in [false, true] {
        let fx = xen(shifted);
        let mut q = Query::new(TARGET).requested("sdf").label("FORENSICS");
        q.expect.size_bytes = Some(20 << 30);
        let found = q.run(&fx, &Blobs::default()).unwrap();
        assert_eq!(found.device, if shifted { "xvdj" } else { "xvdf" });
        assert_eq!(found.method, Method::XenName);
        assert_eq!(found.superblock.as_ref().unwrap().label, "FORENSICS");
    }
}

#[test]
fn xen_refuses_without_identity_or_with_the_wrong_one() {
    let fx = xen(false);
    let err = Query::new(TARGET)
        .requested("sdf")
        .run(&fx, &Blobs::default())
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("pass --expect-label or --expect-uuid"),
        "{err}"
    );
    let mut q = Query::new(TARGET).requested("sdg").label("FORENSICS");
    q.expect.size_bytes = Some(20 << 30);
    let err = q.run(&fx, &Blobs::default()).unwrap_err();
    assert!(matches!(err, LocateError::NotFound { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("filesystem label is \"OTHER\", expected \"FORENSICS\""),
        "{err}"
    );
    let mut q = Query::new(TARGET).requested("sdf").label("FORENSICS");
    q.expect.size_bytes = Some(30 << 30);
    let err = q.run(&fx, &Blobs::default()).unwrap_err();
    assert!(err.to_string().contains("expected 32212254720"), "{err}");
    // Requesting the root device's name finds it protected.
    let fx = xen(false);
    fx.dev_node("xvda", &build_ext4("FORENSICS", [1; 16], 2, 8 << 18));
    let mut q = Query::new(TARGET).requested("sda").label("FORENSICS");
    q.expect.size_bytes = Some(8 << 30);
    let err = q.run(&fx, &Blobs::default()).unwrap_err();
    assert!(matches!(err, LocateError::Protected { .. }), "{err}");
}

/// L4: on Xen the label is not enough: the size the CLI documents as
/// required evidence must be given.
#[test]
fn xen_needs_the_size_as_well_as_the_label() {
    let fx = xen(false);
    let err = Query::new(TARGET)
        .requested("sdf")
        .label("FORENSICS")
        .run(&fx, &Blobs::default())
        .unwrap_err();
    assert!(matches!(err, LocateError::NotFound { .. }), "{err}");
    assert!(err.to_string().contains("--expect-size-gib"), "{err}");
}

/// L4: NVMe identify's model is compared as well as its serial.
#[test]
fn identify_model_must_be_ebs_too() {
    let fx = nitro();
    let blobs = Blobs::default().with(&fx, "nvme3n1", "vol0123456789abcdef0", STORE, "sdf");
    let err = Query::new(TARGET).run(&fx, &blobs).unwrap_err();
    assert!(matches!(err, LocateError::IdentityMismatch { .. }), "{err}");
    assert!(
        err.to_string().contains("NVMe identify says model"),
        "{err}"
    );
}

/// L10: the test override admits qemu's model only, whatever it names.
#[test]
fn the_test_override_admits_qemus_model_only() {
    let fx = Fixture::new();
    fx.nvme(
        "nvme0n1",
        "259:0",
        1,
        "Some Other NVMe",
        "vol0123456789abcdef0",
    );
    let mut q = Query::new(TARGET);
    q.extra_model = Some("Some Other NVMe".into());
    let err = q.run(&fx, &Blobs::default()).unwrap_err();
    assert!(
        err.to_string()
            .contains("NVMe model \"Some Other NVMe\" is not EBS"),
        "{err}"
    );
}

/// Issue 23: a wait shorter than a second (or none) is not reported as
/// "after waiting 0 s".
#[test]
fn no_wait_is_not_called_waiting_0_s() {
    let fx = Fixture::new();
    let q = Query::new(TARGET);
    let blobs = Blobs::default();
    let err = locate(&q.opts(&fx, &blobs), Duration::ZERO).unwrap_err();
    let text = err.to_string();
    assert!(!text.contains("after waiting 0 s"), "{text}");
    assert!(text.contains("after one look, without waiting"), "{text}");
}

#[test]
fn waits_for_the_volume_to_appear() {
    let fx = Fixture::new();
    let q = Query::new(TARGET);
    let blobs = Blobs::default();
    let err = locate(&q.opts(&fx, &blobs), Duration::from_millis(1200)).unwrap_err();
    assert!(
        matches!(err, LocateError::NotFound { waited_secs: 1, .. }),
        "{err}"
    );
    let sys = fx.roots.sys.clone();
    let attach = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(700));
        let fx2 = Fixture {
            tmp: tempfile::tempdir().unwrap(),
            roots: fv_ebs::Roots {
                sys,
                dev: "/nonexistent".into(),
                proc: "/nonexistent".into(),
            },
        };
        fx2.nvme("nvme1n1", "259:9", 1, EBS, "vol0123456789abcdef0");
    });
    let found = locate(&q.opts(&fx, &blobs), Duration::from_secs(10)).unwrap();
    attach.join().unwrap();
    assert_eq!(found.device, "nvme1n1");
}

#[test]
fn nitro_size_must_match_when_given() {
    let fx = nitro();
    let mut q = Query::new(TARGET);
    q.expect.size_bytes = Some(20 << 30);
    assert_eq!(q.run(&fx, &Blobs::default()).unwrap().device, "nvme3n1");
    q.expect.size_bytes = Some(30 << 30);
    let err = q.run(&fx, &Blobs::default()).unwrap_err();
    assert!(matches!(err, LocateError::IdentityMismatch { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("size is 21474836480 bytes, expected 32212254720"),
        "{err}"
    );
}

#[test]
fn swap_on_a_mapper_path_resolves_through_dev() {
    let fx = nitro();
    fx.disk("dm-1", "253:1", 2);
    fx.slave("dm-1", "nvme4n1");
    fx.holder(&fx.block("nvme4n1"), "dm-1");
    // /dev/mapper/vg-swap is not a block node in a fixture: resolved by name.
    fx.swaps("/dev/dm-1 partition 2097148 0 -2\n");
    let err = Query::new("vol-0bbbbbbbbbbbbbbbb")
        .run(&fx, &Blobs::default())
        .unwrap_err();
    let LocateError::Protected { reasons, .. } = &err else {
        panic!("{err}");
    };
    assert!(
        reasons.contains(&Protection::Swap {
            device: "/dev/dm-1".into()
        }),
        "{reasons:?}"
    );
}
