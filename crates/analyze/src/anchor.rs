//! Capture-time digests recorded outside the forensics volume, and the
//! check of a capture against them (`verify --expect-manifest-sha256`,
//! `--expect-sha256`, `--expect-lime-sha256`, `--custody-record`,
//! `--custody-versions`).
//!
//! Why: the image, its sidecar and `manifest.json` are all written on the
//! volume that was mounted read-write on the suspect host, so anyone who can
//! write that volume (or a later copy) can change memory and recompute every
//! digest and frame checksum next to it; `verify` alone then proves only
//! that the capture agrees with itself (security review H3). `capture`
//! prints the SHA-256 of `manifest.json`, of the compressed image and of the
//! LiME stream in its final stdout line, which Systems Manager keeps and the
//! runbook copies into its outputs, the snapshot's tags and the custody
//! record in the security account. Comparing against those anchors the
//! capture against tampering after the capture. The SSM output comes from
//! the suspect's own agent, so it does not anchor against a suspect that
//! was already lying while the capture ran.
//!
//! A fleet record (fleet start's record of many instances, issue 24) given
//! as `--custody-record` holds each instance's custody record; the
//! capture's own is found by its manifest digest (or `--fleet-entry`) and
//! checked as a per-instance record is (`fleet`).

use std::path::Path;

use crate::error::Error;
use crate::sidecar::normalise_digest;

mod fleet;
mod record;
mod versions;

pub use record::{
    AnchorCheck, Expected, FleetCheck, FleetEntry, RecordCheck, Subject, from_record,
};

/// What the command line gives.
#[derive(Debug, Clone, Copy, Default)]
pub struct Given<'a> {
    /// `--expect-manifest-sha256`.
    pub manifest: Option<&'a str>,
    /// `--expect-sha256`.
    pub image: Option<&'a str>,
    /// `--expect-lime-sha256`.
    pub lime: Option<&'a str>,
    /// `--custody-record`: a custody record or a fleet record.
    pub record: Option<&'a Path>,
    /// `--custody-versions`: the custody record key's versions listing.
    pub versions: Option<&'a Path>,
    /// `--fleet-versions`: the fleet record key's versions listing.
    pub fleet_versions: Option<&'a Path>,
    /// `--fleet-entry`: the fleet entry's instance or execution ID.
    pub fleet_entry: Option<&'a str>,
}

/// Every anchor given: digests, and the custody record's own check.
#[derive(Debug, Clone, Default)]
pub struct Anchors {
    /// The digests expected.
    pub expected: Vec<Expected>,
    /// The custody record, when given.
    pub record: Option<RecordCheck>,
}

/// The anchors read, before the capture says which fleet entry is its own.
#[derive(Debug)]
pub struct Pending {
    anchors: Anchors,
    fleet: Option<fleet::Fleet>,
    versions: Option<std::path::PathBuf>,
    fleet_versions: Option<std::path::PathBuf>,
    fleet_entry: Option<String>,
}

/// The expected digests of the command line and of a custody record file,
/// and the record's check against its versions listing; a fleet record is
/// read and kept until [`Pending::resolve`] knows the capture.
///
/// # Errors
/// [`Error::Usage`] for a malformed digest, a custody record without
/// digests or without its execution, account, region and case, a later
/// (disks) record, a file that is neither a custody record nor a fleet
/// record, a listing without a record, or a fleet flag without a fleet
/// record; [`Error::Input`] when a file cannot be read.
pub fn expected(given: &Given<'_>) -> Result<Pending, Error> {
    let mut anchors = Anchors::default();
    for (subject, hex) in [
        (Subject::Manifest, given.manifest),
        (Subject::Image, given.image),
        (Subject::Lime, given.lime),
    ] {
        if let Some(hex) = hex {
            anchors.expected.push(Expected {
                subject,
                sha256: normalise_digest(hex).map_err(Error::Usage)?,
                from: "command line".into(),
            });
        }
    }
    let mut pending = Pending {
        anchors,
        fleet: None,
        versions: given.versions.map(Path::to_path_buf),
        fleet_versions: given.fleet_versions.map(Path::to_path_buf),
        fleet_entry: given.fleet_entry.map(str::to_string),
    };
    let Some(path) = given.record else {
        if given.versions.is_some() {
            return Err(Error::Usage(
                "--custody-versions is the versions listing of a custody record: give the record with --custody-record".into(),
            ));
        }
        return Ok(pending);
    };
    let bytes = record::read_small(
        path,
        "a custody record nor a fleet record",
        fleet::FLEET_MAX,
    )?;
    if fleet::is_fleet(&bytes, path)? {
        pending.fleet = Some(fleet::parse(&bytes, path)?);
        return Ok(pending);
    }
    for (flag, given) in [
        ("--fleet-versions", given.fleet_versions.is_some()),
        ("--fleet-entry", given.fleet_entry.is_some()),
    ] {
        if given {
            return Err(Error::Usage(format!(
                "{flag} is for a fleet record, and {} is a custody record (of one execution)",
                path.display()
            )));
        }
    }
    let (digests, mut check) = record::parse(&bytes, &record::display(path))?;
    pending.anchors.expected.extend(digests);
    if let Some(v) = given.versions {
        let listed = versions::check(
            &versions::Place {
                of: versions::Of::Record,
                bucket: &check.bucket,
                key: &check.key,
                len: bytes.len() as u64,
            },
            v,
        )?;
        check.versions_checked = true;
        check.version_id = listed.version_id;
        check.problems.extend(listed.problems);
    }
    pending.anchors.record = Some(check);
    Ok(pending)
}

impl Pending {
    /// The anchors for the capture whose `manifest.json` has SHA-256
    /// `manifest_sha256` (`None`: no readable manifest): for a fleet
    /// record, those of the capture's entry.
    ///
    /// # Errors
    /// As [`expected`], and [`Error::Usage`] when the fleet record has no
    /// entry, or several, for the capture (or for `--fleet-entry`), or the
    /// entry has no custody record.
    pub fn resolve(self, manifest_sha256: Option<&str>) -> Result<Anchors, Error> {
        let mut anchors = self.anchors;
        if let Some(fleet) = &self.fleet {
            let (digests, check) = fleet.anchors(
                self.fleet_entry.as_deref(),
                manifest_sha256,
                self.versions.as_deref(),
                self.fleet_versions.as_deref(),
            )?;
            anchors.expected.extend(digests);
            anchors.record = Some(check);
        }
        Ok(anchors)
    }
}
