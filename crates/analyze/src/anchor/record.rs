//! A per-instance custody record: what the report says about it, and its
//! reading (the capture digests it holds, the execution, account, region
//! and case it names, where its first version must be).

use std::io::Read;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::Error;
use crate::sidecar::normalise_digest;

/// A custody record is small JSON; anything larger is not one.
pub(super) const RECORD_MAX: u64 = 4 << 20;

/// What a digest is of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Subject {
    /// The bytes of `manifest.json`.
    Manifest,
    /// The compressed image file as stored (`memory.lime.zst`).
    Image,
    /// The decompressed LiME stream.
    Lime,
}

impl Subject {
    /// How the report names it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Manifest => "manifest.json",
            Self::Image => "the image file",
            Self::Lime => "the LiME stream",
        }
    }
}

/// One expected digest and where it came from.
#[derive(Debug, Clone, Serialize)]
pub struct Expected {
    /// What it is the digest of.
    pub subject: Subject,
    /// Lowercase hex.
    pub sha256: String,
    /// `command line` or the custody record's path.
    pub from: String,
}

/// The result of one comparison, as `--json` reports it.
#[derive(Debug, Clone, Serialize)]
pub struct AnchorCheck {
    /// The expectation.
    #[serde(flatten)]
    pub expected: Expected,
    /// The digest computed here (absent when it could not be computed).
    pub actual: Option<String>,
    /// Whether they are equal.
    pub matched: bool,
}

/// Where a custody record lives and whether it is its key's first and only
/// version (issue 21: a record replaced, or written again after a delete,
/// by someone holding the member account's execution role).
#[derive(Debug, Clone, Serialize)]
pub struct RecordCheck {
    /// The record file given.
    pub path: String,
    /// Its execution, account, region and case, as it names them.
    pub execution_id: String,
    /// The member account that ran the execution.
    pub account: String,
    /// Its region.
    pub region: String,
    /// The case.
    pub case_id: String,
    /// The custody bucket.
    pub bucket: String,
    /// The key the runbook writes the execution's first record to.
    pub key: String,
    /// The listing command whose output `--custody-versions` takes.
    pub command: String,
    /// `--custody-versions` given: the listing's version of the key, when
    /// it is the only one.
    pub version_id: Option<String>,
    /// Whether the listing was checked (false: not given).
    pub versions_checked: bool,
    /// What is wrong with the record or its versions (empty: nothing).
    pub problems: Vec<String>,
    /// The fleet record the record was taken from, when
    /// `--custody-record` named a fleet record (issue 24).
    pub fleet: Option<FleetCheck>,
}

/// The fleet record a custody record was taken from (issue 24): which
/// fleet, which entry, and whether the fleet record is its key's first and
/// only version.
#[derive(Debug, Clone, Serialize)]
pub struct FleetCheck {
    /// The fleet record file given.
    pub path: String,
    /// The fleet's ID.
    pub fleet_id: String,
    /// The fleet's case.
    pub case_id: String,
    /// How many entries the fleet record has.
    pub entries: usize,
    /// The entry the custody record was taken from.
    pub entry: FleetEntry,
    /// `manifest-sha256` (the capture's manifest digest found it) or
    /// `fleet-entry` (named with `--fleet-entry`).
    pub chosen_by: &'static str,
    /// Where the fleet record says it is written (absent: it does not say).
    pub bucket: Option<String>,
    /// Its key.
    pub key: Option<String>,
    /// The listing command whose output `--fleet-versions` takes.
    pub command: Option<String>,
    /// `--fleet-versions` given: the fleet record key's only version.
    pub version_id: Option<String>,
    /// Whether the fleet record's versions listing was checked.
    pub versions_checked: bool,
    /// What is wrong with the fleet record or this entry of it.
    pub problems: Vec<String>,
}

/// One entry of a fleet record, as the report names it.
#[derive(Debug, Clone, Serialize)]
pub struct FleetEntry {
    /// Its position in `entries` (from 0).
    pub index: usize,
    /// The instance.
    pub instance_id: String,
    /// Its runbook execution (absent when none started).
    pub execution_id: Option<String>,
    /// The member account.
    pub account: String,
    /// The region.
    pub region: String,
    /// The execution's final status, as the fleet record says.
    pub status: Option<String>,
    /// `complete`, `partial` or `none`, as the fleet record says.
    pub capture_status: Option<String>,
    /// The version of the custody record the fleet copied.
    pub record_version_id: Option<String>,
    /// The SHA-256 of that version's bytes, as the fleet record says.
    pub record_sha256: Option<String>,
}

/// Reads at most `max` bytes of `path`, a file the analyst names: followed
/// through symlinks, but never blocking (a FIFO is refused, not waited on).
pub(super) fn read_small(path: &Path, what: &str, max: u64) -> Result<Vec<u8>, Error> {
    let f = fv_core::fs::open_regular_following(path).map_err(|e| match e {
        fv_core::fs::FsError::Sys { source, .. } => Error::Input {
            path: path.to_path_buf(),
            source,
        },
        other => Error::Usage(format!("{}: not {what}: {other}", path.display())),
    })?;
    let mut bytes = Vec::new();
    f.take(max + 1)
        .read_to_end(&mut bytes)
        .map_err(|source| Error::Input {
            path: path.to_path_buf(),
            source,
        })?;
    if bytes.len() as u64 > max {
        return Err(Error::Usage(format!(
            "{}: not {what}: larger than {max} bytes",
            path.display()
        )));
    }
    Ok(bytes)
}

/// A field the record must name, in the shape the runbook writes it.
pub(super) fn named(
    v: &serde_json::Value,
    key: &str,
    ok: fn(&str) -> bool,
    bad: &dyn Fn(String) -> Error,
) -> Result<String, Error> {
    match v.get(key).and_then(serde_json::Value::as_str) {
        Some(x) if ok(x) => Ok(x.to_string()),
        Some(x) => Err(bad(format!(
            "its {key} {:?} is not one the runbook writes",
            crate::text::printable(x)
        ))),
        None => Err(bad(format!(
            "it does not name its {key} (records name their execution, account, region and case)"
        ))),
    }
}

pub(super) fn account_like(x: &str) -> bool {
    x.len() == 12 && x.bytes().all(|b| b.is_ascii_digit())
}

pub(super) fn execution_like(x: &str) -> bool {
    (1..=64).contains(&x.len()) && x.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-')
}

pub(super) fn region_like(x: &str) -> bool {
    (1..=32).contains(&x.len())
        && x.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

pub(super) fn case_like(x: &str) -> bool {
    (1..=64).contains(&x.len())
        && x.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

pub(super) fn bucket_like(x: &str) -> bool {
    (3..=63).contains(&x.len())
        && x.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b".-".contains(&b))
}

/// The digests in a custody record file: its `capture` object's
/// `manifest_sha256`, `image_sha256` and `lime_sha256` (docs/deploy.md);
/// the record's identity; its length.
///
/// # Errors
/// [`Error::Usage`] for a file that is not a first custody record (see
/// [`crate::anchor::expected`]); [`Error::Input`] when it cannot be read.
pub fn from_record(path: &Path) -> Result<(Vec<Expected>, RecordCheck, u64), Error> {
    let bytes = read_small(path, "a custody record", RECORD_MAX)?;
    let (digests, check) = parse(&bytes, &display(path))?;
    Ok((digests, check, bytes.len() as u64))
}

/// [`from_record`] of a record's bytes; `label` names it in messages (the
/// file, or a fleet record's entry).
pub(super) fn parse(bytes: &[u8], label: &str) -> Result<(Vec<Expected>, RecordCheck), Error> {
    let bad = |why: String| Error::Usage(format!("{label}: not a custody record: {why}"));
    if bytes.len() as u64 > RECORD_MAX {
        return Err(bad(format!("larger than {RECORD_MAX} bytes")));
    }
    let v: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| bad(e.to_string()))?;
    let capture = v
        .get("capture")
        .ok_or_else(|| bad("no \"capture\" object".into()))?;
    if let Some(first) = v.get("first_record").and_then(serde_json::Value::as_str) {
        return Err(Error::Usage(format!(
            "{label}: a later custody record (the disks' round) of its execution: the capture's digests are those of its first record {}; verify against that one",
            crate::text::printable(first)
        )));
    }
    let execution_id = named(&v, "execution_id", execution_like, &bad)?;
    let account = named(&v, "account", account_like, &bad)?;
    let region = named(&v, "region", region_like, &bad)?;
    let case_id = named(&v, "case_id", case_like, &bad)?;
    let key = format!("custody/{account}/{region}/{case_id}/{execution_id}.json");
    let bucket = match (
        v.get("custody_bucket").and_then(serde_json::Value::as_str),
        v.get("security_account")
            .and_then(serde_json::Value::as_str),
    ) {
        (Some(b), _) if bucket_like(b) => b.to_string(),
        (None, Some(a)) if account_like(a) => format!("forensics-custody-{a}"),
        _ => return Err(bad("it names no custody bucket nor security account".into())),
    };
    let mut problems = Vec::new();
    match v.get("record_key").and_then(serde_json::Value::as_str) {
        Some(k) if k != key => problems.push(format!(
            "it says it was written to {}, but its execution, account, region and case put the first record at {key}",
            crate::text::printable(k)
        )),
        _ => {}
    }
    // Every key of the execution: its first record, its disks' records and
    // any record someone else wrote for it.
    let command = format!(
        "aws s3api list-object-versions --bucket {bucket} --prefix {} --output json > custody-versions.json",
        &key[..key.len() - "json".len()]
    );
    let mut out = Vec::new();
    for (subject, field) in [
        (Subject::Manifest, "manifest_sha256"),
        (Subject::Image, "image_sha256"),
        (Subject::Lime, "lime_sha256"),
    ] {
        match capture.get(field).and_then(serde_json::Value::as_str) {
            Some(hex) if !hex.is_empty() => out.push(Expected {
                subject,
                sha256: normalise_digest(hex).map_err(|e| bad(format!("capture.{field}: {e}")))?,
                from: label.to_string(),
            }),
            _ => {}
        }
    }
    if out.is_empty() {
        return Err(bad(
            "its capture object has no digest (the capture's final line was not recorded)".into(),
        ));
    }
    let check = RecordCheck {
        path: label.to_string(),
        execution_id,
        account,
        region,
        case_id,
        bucket,
        key,
        command,
        version_id: None,
        versions_checked: false,
        problems,
        fleet: None,
    };
    Ok((out, check))
}

/// A path as messages show it.
pub(super) fn display(p: &Path) -> String {
    PathBuf::from(p).display().to_string()
}
