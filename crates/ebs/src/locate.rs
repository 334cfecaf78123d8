//! Resolving a volume ID to exactly one block device, with a report of
//! every candidate seen and why each was rejected.
//!
//! Nitro: NVMe namespaces whose model is `Amazon Elastic Block Store` and
//! whose serial is the volume ID without the dash; confirmed with NVMe
//! Identify Controller data when the kernel allows it (serial, and the
//! attached-as name against `--requested-device`). Xen: the requested name
//! as `xvdX`, `sdX` or `xvd(X+4)`, accepted only when the superblock's
//! label/UUID (and the size, when given) match, since no volume ID is
//! visible in a Xen guest.

use std::fmt;
use std::fs::File;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::identify::IdentifyController;
use crate::mountinfo::MountEntry;
use crate::protect::{Protection, StateError, SystemState};
use crate::superblock::{self, Superblock};
use crate::sysfs::{Disk, NvmeAttrs};
use crate::{DevT, RequestedDevice, Roots, VolumeId, sys};

/// The NVMe model of an EBS volume.
pub const EBS_MODEL: &str = "Amazon Elastic Block Store";
/// The NVMe model of instance store (never chosen).
pub const INSTANCE_STORE_MODEL: &str = "Amazon EC2 NVMe Instance Storage";

/// Where NVMe Identify Controller data comes from (the kernel, or blobs in tests).
pub trait IdentifySource {
    /// Identify Controller data of the NVMe device node `node`, or why it is
    /// not available.
    ///
    /// # Errors
    /// A human-readable reason (not permitted, not NVMe, vanished).
    fn identify(&self, node: &Path) -> Result<IdentifyController, IdentifyUnavailable>;
}

/// Why identify data could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentifyUnavailable {
    /// The device node is gone (detached while we looked).
    pub vanished: bool,
    /// What happened.
    pub reason: String,
}

/// Reads identify data with the NVMe admin ioctl.
#[derive(Debug, Clone, Copy, Default)]
pub struct KernelIdentify;

impl IdentifySource for KernelIdentify {
    fn identify(&self, node: &Path) -> Result<IdentifyController, IdentifyUnavailable> {
        let unavailable = |vanished: bool, reason: String| IdentifyUnavailable { vanished, reason };
        let file = File::open(node).map_err(|e| {
            let gone = matches!(
                e.raw_os_error(),
                Some(libc::ENOENT | libc::ENXIO | libc::ENODEV)
            );
            unavailable(gone, format!("cannot open {}: {e}", node.display()))
        })?;
        let blob = sys::nvme_identify_controller(&file.as_fd()).map_err(|e| {
            let why = match e {
                nix::errno::Errno::EACCES | nix::errno::Errno::EPERM => {
                    "not permitted (needs root / CAP_SYS_ADMIN)"
                }
                nix::errno::Errno::ENOTTY | nix::errno::Errno::EINVAL => "not an NVMe device node",
                _ => "the admin command failed",
            };
            unavailable(
                matches!(e, nix::errno::Errno::ENODEV | nix::errno::Errno::ENXIO),
                format!("NVMe identify on {}: {why} ({e})", node.display()),
            )
        })?;
        IdentifyController::parse(&blob).map_err(|e| unavailable(false, e.to_string()))
    }
}

/// What the filesystem on the volume must look like.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Expectation {
    /// Label.
    pub label: Option<String>,
    /// UUID (compared case-insensitively).
    pub uuid: Option<String>,
    /// Device size in bytes.
    pub size_bytes: Option<u64>,
}

impl Expectation {
    /// Checks a superblock's label and UUID.
    ///
    /// # Errors
    /// What differs, as a sentence.
    pub fn check(&self, sb: &Superblock) -> Result<(), String> {
        if let Some(label) = &self.label {
            if &sb.label != label {
                return Err(format!(
                    "filesystem label is {:?}, expected {label:?}",
                    sb.label
                ));
            }
        }
        if let Some(uuid) = &self.uuid {
            if !sb.uuid.eq_ignore_ascii_case(uuid) {
                return Err(format!("filesystem UUID is {}, expected {uuid}", sb.uuid));
            }
        }
        Ok(())
    }

    fn has_fs_identity(&self) -> bool {
        self.label.is_some() || self.uuid.is_some()
    }

    fn check_size(&self, disk: &Disk) -> Result<(), String> {
        match self.size_bytes {
            Some(want) if want != disk.size_bytes => Err(format!(
                "size is {} bytes, expected {want}",
                disk.size_bytes
            )),
            _ => Ok(()),
        }
    }
}

/// The one NVMe model the test override can add: qemu's (the VM bench's
/// emulated NVMe). No EC2 instance has it, so the override cannot widen
/// what a real instance accepts, whatever the environment says.
pub const QEMU_TEST_MODEL: &str = "QEMU NVMe Ctrl";

/// Whether `model` is admitted by the test override `extra`: only when the
/// override names qemu's model and the device is that model.
pub fn test_model_admitted(extra: Option<&str>, model: &str) -> bool {
    extra == Some(QEMU_TEST_MODEL) && model == QEMU_TEST_MODEL
}

/// What to look for.
#[derive(Clone, Copy)]
pub struct LocateOptions<'a> {
    /// The volume.
    pub volume_id: &'a VolumeId,
    /// The name it was attached as.
    pub requested: Option<&'a RequestedDevice>,
    /// Volumes never to choose.
    pub protect: &'a [VolumeId],
    /// Filesystem identity (required on Xen).
    pub expect: &'a Expectation,
    /// One more NVMe model to accept (test VMs only; reported as a warning).
    pub extra_model: Option<&'a str>,
    /// Accept a device with mounts (unmount-helper). Otherwise a mounted
    /// disk or partition is refused, except the whole device mounted
    /// read-only (stage-0's mount, which mount-helper adopts).
    pub allow_mounted: bool,
    /// Identify data source.
    pub identify: &'a dyn IdentifySource,
    /// Roots.
    pub roots: &'a Roots,
}

impl fmt::Debug for LocateOptions<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocateOptions")
            .field("volume_id", self.volume_id)
            .field("requested", &self.requested)
            .field("extra_model", &self.extra_model)
            .finish_non_exhaustive()
    }
}

/// One device looked at.
#[derive(Debug, Clone, Serialize)]
pub struct Candidate {
    /// Kernel name.
    pub device: String,
    /// Device number.
    pub dev: DevT,
    /// Size in bytes.
    pub size_bytes: u64,
    /// NVMe model.
    pub model: Option<String>,
    /// NVMe serial.
    pub serial: Option<String>,
    /// Whether it was chosen.
    pub accepted: bool,
    /// Why it was rejected, or notes on how it was accepted.
    pub reasons: Vec<String>,
}

/// Every device seen and the verdict on each.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    /// Devices looked at.
    pub candidates: Vec<Candidate>,
    /// sysfs entries skipped, with why.
    pub skipped: Vec<(String, String)>,
    /// Unresolved things worth knowing.
    pub notes: Vec<String>,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.candidates.is_empty() {
            writeln!(f, "  (no block devices seen)")?;
        }
        for c in &self.candidates {
            let ident = match (&c.model, &c.serial) {
                (Some(m), Some(s)) => format!(" model {m:?} serial {s:?}"),
                _ => String::new(),
            };
            let verdict = if c.accepted { "ACCEPTED" } else { "rejected" };
            writeln!(
                f,
                "  {} ({}, {} bytes){ident}: {verdict}: {}",
                c.device,
                c.dev,
                c.size_bytes,
                c.reasons.join("; ")
            )?;
        }
        for (name, why) in &self.skipped {
            writeln!(f, "  {name}: skipped: {why}")?;
        }
        for note in &self.notes {
            writeln!(f, "  note: {note}")?;
        }
        Ok(())
    }
}

/// How the device was identified.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    /// NVMe serial in sysfs (and identify data when available).
    NvmeSerial,
    /// Xen device name plus filesystem identity.
    XenName,
}

/// The device found.
#[derive(Debug, Clone, Serialize)]
pub struct Located {
    /// The volume.
    pub volume_id: String,
    /// Kernel name (`nvme1n1`).
    pub device: String,
    /// Device node (`/dev/nvme1n1`).
    pub device_path: PathBuf,
    /// Device number.
    pub dev: DevT,
    /// Size in bytes.
    pub size_bytes: u64,
    /// How.
    pub method: Method,
    /// The evidence, one sentence each.
    pub identified_by: Vec<String>,
    /// Identify Controller data, when read.
    pub identify: Option<IdentifyController>,
    /// Superblock, when read (Xen).
    pub superblock: Option<Superblock>,
    /// Current mounts of the device or its partitions.
    pub mounts: Vec<MountEntry>,
    /// Things the responder must know (test overrides, unconfirmed identity).
    pub warnings: Vec<String>,
    /// Every device seen.
    pub report: Report,
}

/// Locating failed.
#[derive(Debug, thiserror::Error)]
pub enum LocateError {
    /// The volume is both the target and in `--protect`.
    #[error("{0} is both the volume to locate and a --protect volume")]
    TargetProtected(String),
    /// Nothing matched within the wait.
    #[error(
        "no device for {volume_id} {} (is it attached to this instance?). Devices seen:\n{report}",
        waited_phrase(*waited_secs)
    )]
    NotFound {
        /// The volume.
        volume_id: String,
        /// How long we waited.
        waited_secs: u64,
        /// Devices seen in the last look.
        report: Box<Report>,
    },
    /// Several devices claim the volume.
    #[error("{volume_id}: {} devices claim this volume ({}); refusing to guess. Devices seen:\n{report}", devices.len(), devices.join(", "))]
    Ambiguous {
        /// The volume.
        volume_id: String,
        /// The devices.
        devices: Vec<String>,
        /// Devices seen.
        report: Box<Report>,
    },
    /// The volume's device is protected.
    #[error("{volume_id} is {device}, which is protected: {}. Devices seen:\n{report}", reasons.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Protected {
        /// The volume.
        volume_id: String,
        /// The device.
        device: String,
        /// Why.
        reasons: Vec<Protection>,
        /// Devices seen.
        report: Box<Report>,
    },
    /// Identify data or the requested name contradict sysfs.
    #[error("{device}: identity mismatch: {detail}. Devices seen:\n{report}")]
    IdentityMismatch {
        /// The device.
        device: String,
        /// What disagrees.
        detail: String,
        /// Devices seen.
        report: Box<Report>,
    },
    /// Reading the system state failed.
    #[error(transparent)]
    State(#[from] StateError),
}

fn candidate(disk: &Disk) -> Candidate {
    Candidate {
        device: disk.name.clone(),
        dev: disk.dev,
        size_bytes: disk.size_bytes,
        model: disk.nvme.as_ref().map(|n| n.model.clone()),
        serial: disk.nvme.as_ref().map(|n| n.serial.clone()),
        accepted: false,
        reasons: Vec::new(),
    }
}

/// Protections that make the chosen device unusable. A read-only mount of
/// the whole device is stage-0's and is left to the caller to adopt;
/// `allow_mounted` lets every mount through (unmount-helper).
fn fatal(disk: &Disk, protections: &[Protection], allow_mounted: bool) -> Vec<Protection> {
    protections
        .iter()
        .filter(|p| match p {
            Protection::Mounted {
                device, read_only, ..
            } => !(allow_mounted || (*read_only && *device == disk.name)),
            _ => true,
        })
        .cloned()
        .collect()
}

fn read_superblock(node: &Path) -> Result<Superblock, String> {
    let mut file = File::open(node).map_err(|e| format!("cannot open {}: {e}", node.display()))?;
    superblock::read(&mut file).map_err(|e| format!("{}: {e}", node.display()))
}

struct Found<'s> {
    disk: &'s Disk,
    method: Method,
    superblock: Option<Superblock>,
}

/// `after waiting N s`, or `after one look` when nothing was waited (a
/// wait of 0 s, or a device that vanished): never "after waiting 0 s".
fn waited_phrase(secs: u64) -> String {
    if secs == 0 {
        "after one look, without waiting".into()
    } else {
        format!("after waiting {secs} s")
    }
}

/// Looks once.
///
/// # Errors
/// [`LocateError`]; `NotFound` carries `waited_secs = 0`.
pub fn locate_once(opts: &LocateOptions<'_>) -> Result<Located, LocateError> {
    if opts.protect.contains(opts.volume_id) {
        return Err(LocateError::TargetProtected(opts.volume_id.to_string()));
    }
    let state = SystemState::scan(opts.roots)?;
    let mut report = Report {
        skipped: state.table.skipped.clone(),
        notes: state.notes.clone(),
        ..Report::default()
    };
    let mut warnings = override_warnings(opts.extra_model);
    let xen_names = opts
        .requested
        .map(RequestedDevice::xen_candidates)
        .unwrap_or_default();
    let mut found: Vec<Found<'_>> = Vec::new();
    for disk in &state.table.disks {
        let (mut cand, hit) = judge(disk, opts, &xen_names);
        found.extend(hit);
        cand.reasons.extend(
            state
                .protections_of(&disk.name)
                .iter()
                .map(ToString::to_string),
        );
        report.candidates.push(cand);
    }

    let volume_id = opts.volume_id.to_string();
    let chosen = match found.as_slice() {
        [] => {
            return Err(LocateError::NotFound {
                volume_id,
                waited_secs: 0,
                report: Box::new(report),
            });
        }
        [one] => one,
        many => {
            return Err(LocateError::Ambiguous {
                volume_id,
                devices: many.iter().map(|f| f.disk.name.clone()).collect(),
                report: Box::new(report),
            });
        }
    };
    let disk = chosen.disk;
    let reasons = fatal(disk, state.protections_of(&disk.name), opts.allow_mounted);
    if !reasons.is_empty() {
        return Err(LocateError::Protected {
            volume_id,
            device: disk.name.clone(),
            reasons,
            report: Box::new(report),
        });
    }
    if let Err(why) = opts.expect.check_size(disk) {
        return Err(mismatch(disk, why, &mut report));
    }
    let node = opts.roots.dev.join(&disk.name);
    let (identified_by, identify) = match chosen.method {
        Method::NvmeSerial => {
            confirm_nvme(opts, disk, &node, &volume_id, &mut warnings, &mut report)?
        }
        Method::XenName => (confirm_xen(opts, chosen), None),
    };
    Ok(Located {
        volume_id,
        device: disk.name.clone(),
        device_path: node,
        dev: disk.dev,
        size_bytes: disk.size_bytes,
        method: chosen.method,
        identified_by,
        identify,
        superblock: chosen.superblock.clone(),
        mounts: state.mounts_of(&disk.name),
        warnings,
        report,
    })
}

/// What the test-only NVMe model override says about itself.
fn override_warnings(extra_model: Option<&str>) -> Vec<String> {
    match extra_model {
        Some(QEMU_TEST_MODEL) => vec![format!(
            "TEST OVERRIDE: NVMe model {QEMU_TEST_MODEL:?} is accepted as well as {EBS_MODEL:?} (FV_TEST_ACCEPT_NVME_MODEL); never set this on a real instance"
        )],
        Some(model) => vec![format!(
            "FV_TEST_ACCEPT_NVME_MODEL={model:?} ignored: the override admits qemu's model {QEMU_TEST_MODEL:?} only"
        )],
        None => Vec::new(),
    }
}

/// One disk's verdict (its protections aside): the candidate with its
/// reasons, and the disk if it is the volume asked for.
fn judge<'s>(
    disk: &'s Disk,
    opts: &LocateOptions<'_>,
    xen_names: &[String],
) -> (Candidate, Option<Found<'s>>) {
    let mut cand = candidate(disk);
    let hit = if let Some(nvme) = &disk.nvme {
        judge_nvme(disk, nvme, opts, &mut cand)
    } else if xen_names.contains(&disk.name) {
        judge_xen(disk, opts, &mut cand)
    } else {
        if disk.size_bytes == 0 {
            cand.reasons.push("no medium (size 0)".to_string());
        } else {
            cand.reasons
                .push("not NVMe and not a Xen name for the requested device".to_string());
        }
        None
    };
    (cand, hit)
}

/// An NVMe disk is the volume when it is EBS and its serial is the volume ID.
fn judge_nvme<'s>(
    disk: &'s Disk,
    nvme: &NvmeAttrs,
    opts: &LocateOptions<'_>,
    cand: &mut Candidate,
) -> Option<Found<'s>> {
    let want_serial = opts.volume_id.serial();
    if nvme.model == INSTANCE_STORE_MODEL {
        cand.reasons.push(Protection::InstanceStore.to_string());
    } else if nvme.model != EBS_MODEL && !test_model_admitted(opts.extra_model, &nvme.model) {
        cand.reasons
            .push(format!("NVMe model {:?} is not EBS", nvme.model));
    } else if nvme.serial != want_serial {
        match VolumeId::from_serial(&nvme.serial) {
            Some(other) if opts.protect.contains(&other) => cand.reasons.push(format!(
                "another volume ({other}); {}",
                Protection::ProtectedVolume {
                    volume_id: other.to_string()
                }
            )),
            Some(other) => cand.reasons.push(format!("another volume ({other})")),
            None => cand
                .reasons
                .push(format!("serial {:?} is not {want_serial}", nvme.serial)),
        }
    } else {
        cand.accepted = true;
        cand.reasons
            .push(format!("NVMe serial {} = {}", nvme.serial, opts.volume_id));
        return Some(Found {
            disk,
            method: Method::NvmeSerial,
            superblock: None,
        });
    }
    None
}

/// A disk with a Xen name for the requested device is the volume when its
/// size and filesystem identity are what the caller expects (Xen shows no
/// volume ID).
fn judge_xen<'s>(
    disk: &'s Disk,
    opts: &LocateOptions<'_>,
    cand: &mut Candidate,
) -> Option<Found<'s>> {
    let node = opts.roots.dev.join(&disk.name);
    if !opts.expect.has_fs_identity() {
        cand.reasons.push(
            "Xen name matches, but no volume ID is visible on Xen: pass --expect-label or --expect-uuid".to_string(),
        );
    } else if opts.expect.size_bytes.is_none() {
        cand.reasons.push(
            "Xen name matches, but no size to check it against: pass --expect-size-gib (required on Xen, where a label alone is too little evidence)".to_string(),
        );
    } else if let Err(why) = opts.expect.check_size(disk) {
        cand.reasons.push(format!("Xen name matches, but {why}"));
    } else {
        match read_superblock(&node).and_then(|sb| opts.expect.check(&sb).map(|()| sb)) {
            Ok(sb) => {
                cand.accepted = true;
                cand.reasons.push(format!(
                    "Xen name for {}; label {:?}, UUID {}",
                    opts.requested.map_or("", RequestedDevice::given),
                    sb.label,
                    sb.uuid
                ));
                return Some(Found {
                    disk,
                    method: Method::XenName,
                    superblock: Some(sb),
                });
            }
            Err(why) => cand.reasons.push(format!("Xen name matches, but {why}")),
        }
    }
    None
}

fn mismatch(disk: &Disk, detail: String, report: &mut Report) -> LocateError {
    LocateError::IdentityMismatch {
        device: disk.name.clone(),
        detail,
        report: Box::new(std::mem::take(report)),
    }
}

/// Confirms a disk found by its sysfs serial with the controller's own
/// identify data, and the attached-as name when one was requested. Returns
/// what identified it, and the identify data.
fn confirm_nvme(
    opts: &LocateOptions<'_>,
    disk: &Disk,
    node: &Path,
    volume_id: &str,
    warnings: &mut Vec<String>,
    report: &mut Report,
) -> Result<(Vec<String>, Option<IdentifyController>), LocateError> {
    let want_serial = opts.volume_id.serial();
    let mut identified_by = vec![format!("sysfs NVMe serial {want_serial}")];
    let data = match opts.identify.identify(node) {
        Ok(data) => data,
        Err(e) if e.vanished => {
            report
                .notes
                .push(format!("{} vanished: {}", disk.name, e.reason));
            return Err(LocateError::NotFound {
                volume_id: volume_id.to_string(),
                waited_secs: 0,
                report: Box::new(std::mem::take(report)),
            });
        }
        Err(e) => {
            warnings.push(format!(
                "identity not confirmed with NVMe identify data ({}); identified by sysfs serial alone",
                e.reason
            ));
            return Ok((identified_by, None));
        }
    };
    if data.model != EBS_MODEL && !test_model_admitted(opts.extra_model, &data.model) {
        return Err(mismatch(
            disk,
            format!(
                "sysfs says EBS but NVMe identify says model {:?}",
                data.model
            ),
            report,
        ));
    }
    if data.serial != want_serial {
        return Err(mismatch(
            disk,
            format!(
                "sysfs serial is {want_serial} but NVMe identify says {:?}",
                data.serial
            ),
            report,
        ));
    }
    identified_by.push(format!("NVMe identify controller serial {}", data.serial));
    match (opts.requested, data.attached_as.as_str()) {
        (Some(req), "") => warnings.push(format!(
            "the NVMe identify data carries no attached-as device name; --requested-device {req} not confirmed"
        )),
        (Some(req), name) if !req.matches(name) => {
            return Err(mismatch(
                disk,
                format!("the volume is attached as {name:?}, not --requested-device {req}"),
                report,
            ));
        }
        (Some(_), name) => identified_by.push(format!("attached as {name} (NVMe vendor data)")),
        (None, "") => {}
        (None, name) => identified_by.push(format!("attached as {name} (NVMe vendor data)")),
    }
    Ok((identified_by, Some(data)))
}

/// What identified a disk found by its Xen name.
fn confirm_xen(opts: &LocateOptions<'_>, chosen: &Found<'_>) -> Vec<String> {
    let disk = chosen.disk;
    let mut identified_by = vec![format!(
        "Xen device name {} for the requested device",
        disk.name
    )];
    if let Some(sb) = &chosen.superblock {
        identified_by.push(format!("superblock label {:?}, UUID {}", sb.label, sb.uuid));
    }
    if opts.expect.size_bytes.is_some() {
        identified_by.push(format!("size {} bytes as expected", disk.size_bytes));
    }
    identified_by
}

/// Looks until the volume appears or `wait` passes, polling every second
/// (attaching is asynchronous). Only "not found" is retried.
///
/// # Errors
/// As [`locate_once`]; `NotFound` says how long it waited.
pub fn locate(opts: &LocateOptions<'_>, wait: Duration) -> Result<Located, LocateError> {
    locate_watching(opts, wait, |_| {})
}

/// One look that found nothing while [`locate_watching`] waits.
#[derive(Debug)]
pub struct Waiting<'a> {
    /// Time waited so far.
    pub elapsed: Duration,
    /// How long it waits in all.
    pub wait: Duration,
    /// What it looks for, e.g. `an NVMe disk with serial vol0123…`.
    pub looking_for: String,
    /// The devices seen on this look.
    pub report: &'a Report,
}

/// What [`locate`] looks for, as a phrase for messages.
pub fn looking_for(opts: &LocateOptions<'_>) -> String {
    let mut s = format!(
        "an EBS NVMe disk with serial {} (Nitro)",
        opts.volume_id.serial()
    );
    if let Some(req) = opts.requested {
        s.push_str(&format!(
            ", or a Xen disk named {} (requested {req})",
            req.xen_candidates().join(" or ")
        ));
    }
    s
}

/// [`locate`], calling `on_wait` after every look that found nothing while
/// there is time left to wait (not after the last one, whose result is the
/// error), so that a caller can say at once what it waits for and show
/// progress (issue 23: a wrong volume ID was 120 silent seconds).
///
/// # Errors
/// As [`locate`].
pub fn locate_watching(
    opts: &LocateOptions<'_>,
    wait: Duration,
    mut on_wait: impl FnMut(&Waiting<'_>),
) -> Result<Located, LocateError> {
    let start = Instant::now();
    let what = looking_for(opts);
    loop {
        match locate_once(opts) {
            Err(LocateError::NotFound {
                volume_id, report, ..
            }) => {
                let elapsed = start.elapsed();
                if elapsed >= wait {
                    return Err(LocateError::NotFound {
                        volume_id,
                        waited_secs: elapsed.as_secs(),
                        report,
                    });
                }
                on_wait(&Waiting {
                    elapsed,
                    wait,
                    looking_for: what.clone(),
                    report: &report,
                });
                std::thread::sleep((wait - elapsed).min(Duration::from_secs(1)));
            }
            other => return other,
        }
    }
}
