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

use std::io::Read;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::Error;
use crate::sidecar::normalise_digest;

/// A custody record is small JSON; anything larger is not one.
const RECORD_MAX: u64 = 4 << 20;

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
}

/// Every anchor given: digests, and the custody record's own check.
#[derive(Debug, Clone, Default)]
pub struct Anchors {
    /// The digests expected.
    pub expected: Vec<Expected>,
    /// The custody record, when given.
    pub record: Option<RecordCheck>,
}

/// The expected digests of the command line and of a custody record file,
/// and the record's check against its versions listing (`versions`).
///
/// # Errors
/// [`Error::Usage`] for a malformed digest, a custody record without
/// digests or without its execution, account, region and case, a later
/// (disks) record, or `versions` without a record; [`Error::Input`] when a
/// file cannot be read.
pub fn expected(
    manifest: Option<&str>,
    image: Option<&str>,
    lime: Option<&str>,
    record: Option<&Path>,
    versions: Option<&Path>,
) -> Result<Anchors, Error> {
    let mut out = Anchors::default();
    for (subject, given) in [
        (Subject::Manifest, manifest),
        (Subject::Image, image),
        (Subject::Lime, lime),
    ] {
        if let Some(hex) = given {
            out.expected.push(Expected {
                subject,
                sha256: normalise_digest(hex).map_err(Error::Usage)?,
                from: "command line".into(),
            });
        }
    }
    match (record, versions) {
        (Some(path), _) => {
            let (digests, mut check, len) = from_record(path)?;
            out.expected.extend(digests);
            if let Some(v) = versions {
                check_versions(&mut check, len, v)?;
            }
            out.record = Some(check);
        }
        (None, Some(_)) => {
            return Err(Error::Usage(
                "--custody-versions is the versions listing of a custody record: give the record with --custody-record".into(),
            ));
        }
        (None, None) => {}
    }
    Ok(out)
}

/// Reads at most [`RECORD_MAX`] bytes of `path`.
fn read_small(path: &Path, what: &str) -> Result<Vec<u8>, Error> {
    let input = |source| Error::Input {
        path: path.to_path_buf(),
        source,
    };
    let f = std::fs::File::open(path).map_err(input)?;
    let mut bytes = Vec::new();
    f.take(RECORD_MAX + 1)
        .read_to_end(&mut bytes)
        .map_err(input)?;
    if bytes.len() as u64 > RECORD_MAX {
        return Err(Error::Usage(format!(
            "{}: not {what}: larger than {RECORD_MAX} bytes",
            path.display()
        )));
    }
    Ok(bytes)
}

/// A field the record must name, in the shape the runbook writes it.
fn named(
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

fn account_like(x: &str) -> bool {
    x.len() == 12 && x.bytes().all(|b| b.is_ascii_digit())
}

fn execution_like(x: &str) -> bool {
    (1..=64).contains(&x.len()) && x.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-')
}

fn region_like(x: &str) -> bool {
    (1..=32).contains(&x.len())
        && x.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

fn case_like(x: &str) -> bool {
    (1..=64).contains(&x.len())
        && x.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

fn bucket_like(x: &str) -> bool {
    (3..=63).contains(&x.len())
        && x.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b".-".contains(&b))
}

/// Checks `aws s3api list-object-versions` output (`path`) for the
/// record's key: exactly one version, the latest, of the record file's
/// size, and no delete marker.
fn check_versions(check: &mut RecordCheck, len: u64, path: &Path) -> Result<(), Error> {
    let bytes = read_small(path, "a versions listing")?;
    let bad = |why: String| {
        Error::Usage(format!(
            "{}: not the output of `aws s3api list-object-versions --output json`: {why}",
            path.display()
        ))
    };
    let v: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| bad(e.to_string()))?;
    if !v.is_object() {
        return Err(bad("not a JSON object".into()));
    }
    let of_key = |field: &str| -> Result<Vec<serde_json::Value>, Error> {
        match v.get(field) {
            None | Some(serde_json::Value::Null) => Ok(Vec::new()),
            Some(serde_json::Value::Array(a)) => Ok(a
                .iter()
                .filter(|e| e.get("Key").and_then(serde_json::Value::as_str) == Some(&check.key))
                .cloned()
                .collect()),
            Some(_) => Err(bad(format!("{field} is not a list"))),
        }
    };
    let versions = of_key("Versions")?;
    let markers = of_key("DeleteMarkers")?;
    check.versions_checked = true;
    let place = format!("s3://{}/{}", check.bucket, check.key);
    // Other records claiming the execution: the runbook writes one first
    // record (KEY) and, for the disks' round, KEY-without-.json.disks-*.json;
    // when someone wrote KEY before the run could, custody.py writes the
    // run's own under .contested-*.json and fails. Anything else under the
    // execution's prefix is a second claim on it.
    let stem = &check.key[..check.key.len() - "json".len()];
    let mut claims: Vec<String> = Vec::new();
    for field in ["Versions", "DeleteMarkers"] {
        if let Some(serde_json::Value::Array(a)) = v.get(field) {
            for e in a {
                let Some(k) = e.get("Key").and_then(serde_json::Value::as_str) else {
                    continue;
                };
                let disks = k
                    .strip_prefix(stem)
                    .is_some_and(|rest| rest.starts_with("disks-") && rest.ends_with(".json"));
                if k.starts_with(stem) && k != check.key && !disks {
                    let k = crate::text::printable(k).into_owned();
                    if !claims.contains(&k) {
                        claims.push(k);
                    }
                }
            }
        }
    }
    if !claims.is_empty() {
        check.problems.push(format!(
            "another record claims this execution: {} (the runbook writes one first record; when someone wrote {} before the run could, the run wrote its own under .contested- and failed): two claims, so neither anchors; treat the account as tampering with custody",
            claims.join(", "),
            check.key
        ));
    }
    if versions.is_empty() {
        check.problems.push(format!(
            "the versions listing {} has no version of {place}: it is the listing of another key or bucket, or the record is not where its execution, account, region and case put it",
            display(path)
        ));
    } else if versions.len() > 1 {
        let mut when: Vec<String> = versions
            .iter()
            .map(|e| {
                format!(
                    "{} written {}",
                    crate::text::printable(
                        e.get("VersionId")
                            .and_then(serde_json::Value::as_str)
                            .unwrap_or("?")
                    ),
                    crate::text::printable(
                        e.get("LastModified")
                            .and_then(serde_json::Value::as_str)
                            .unwrap_or("?")
                    )
                )
            })
            .collect();
        when.sort();
        check.problems.push(format!(
            "{place} has {} versions ({}): the runbook writes each record once (If-None-Match), so it was replaced or written again; only the first can be the run's, and it may be forged too: treat the account as tampering with custody",
            versions.len(),
            when.join(", ")
        ));
    } else {
        let only = &versions[0];
        let size = only.get("Size").and_then(serde_json::Value::as_u64);
        if size != Some(len) {
            check.problems.push(format!(
                "the record file is {len} bytes, the only version of {place} is {}: this file is not that version",
                size.map_or_else(|| "of unknown size".to_string(), |s| format!("{s} bytes"))
            ));
        }
        if only.get("IsLatest").and_then(serde_json::Value::as_bool) != Some(true) {
            check
                .problems
                .push(format!("the only version of {place} is not its latest"));
        }
        check.version_id = only
            .get("VersionId")
            .and_then(serde_json::Value::as_str)
            .map(|x| crate::text::printable(x).into_owned());
    }
    if !markers.is_empty() {
        check.problems.push(format!(
            "{place} has {} delete marker(s): someone deleted it, and a record written after that would not be the first",
            markers.len()
        ));
    }
    Ok(())
}

/// The digests in a custody record: its `capture` object's
/// `manifest_sha256`, `image_sha256` and `lime_sha256` (docs/deploy.md);
/// the record's identity; its length.
///
/// # Errors
/// As [`expected`].
pub fn from_record(path: &Path) -> Result<(Vec<Expected>, RecordCheck, u64), Error> {
    let bytes = read_small(path, "a custody record")?;
    let bad =
        |why: String| Error::Usage(format!("{}: not a custody record: {why}", path.display()));
    let v: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| bad(e.to_string()))?;
    let capture = v
        .get("capture")
        .ok_or_else(|| bad("no \"capture\" object".into()))?;
    if let Some(first) = v.get("first_record").and_then(serde_json::Value::as_str) {
        return Err(Error::Usage(format!(
            "{}: a later custody record (the disks' round) of its execution: the capture's digests are those of its first record {}; verify against that one",
            path.display(),
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
    let from = display(path);
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
                from: from.clone(),
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
        path: from,
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
    };
    Ok((out, check, bytes.len() as u64))
}

fn display(p: &Path) -> String {
    PathBuf::from(p).display().to_string()
}
