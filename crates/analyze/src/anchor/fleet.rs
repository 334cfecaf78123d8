//! A fleet record (issue 24): fleet start's one locked record of a fleet
//! capture, with an entry per instance that embeds the instance's custody
//! record. `verify --custody-record FLEET.json` takes the digests of the
//! capture's entry from it and checks that entry's record exactly as a
//! per-instance record is checked, and the fleet record as its key's first
//! and only version.
//!
//! The entry carries the record's exact bytes (`record_json`): its
//! `sha256` and the S3 listing's `Size` are of those bytes, and a parsed
//! object re-serialised never gives them back. The parsed copy (`record`)
//! is for reading; it must say the same.
//!
//! Bound: a fleet record is at most [`FLEET_MAX`] bytes, 64 KiB for each of
//! 1000 instances (a custody record is some 5 to 20 KiB and appears twice in
//! its entry, as `record_json` and as `record`). It is parsed into typed
//! fields with the records borrowed, not into a JSON tree, so reading one
//! costs about twice its size, all of it freed before the image is read.

use std::path::Path;

use serde::Deserialize;
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};

use super::record::{
    self, Expected, FleetCheck, FleetEntry, RecordCheck, account_like, bucket_like, case_like,
    display, execution_like, region_like,
};
use super::versions::{self, Of, Place};
use crate::error::Error;
use crate::sidecar::normalise_digest;
use crate::text::printable;

/// The largest fleet record read.
pub(super) const FLEET_MAX: u64 = 64 << 20;

/// The schema name a fleet record carries.
pub(super) const SCHEMA: &str = "forensics-volume/fleet-record";

// Messages quote the fleet record's strings as they are: every message is
// made printable once, where it is printed (`crate::text`), and `--json`
// carries them escaped by JSON.

/// Entries a message lists before it counts the rest.
const LIST_MAX: usize = 20;

/// A fleet record read and checked for shape, its entries kept until the
/// capture says which is its own.
#[derive(Debug)]
pub(super) struct Fleet {
    path: String,
    len: u64,
    fleet_id: String,
    case_id: String,
    security_account: Option<String>,
    place: Option<(String, String)>,
    /// What is wrong with the fleet record as a whole.
    problems: Vec<String>,
    entries: Vec<Entry>,
}

#[derive(Debug)]
struct Entry {
    index: usize,
    /// None: a location or parent that started no instance it could name
    /// (such an entry has no custody record).
    instance_id: Option<String>,
    execution_id: Option<String>,
    account: String,
    region: String,
    status: Option<String>,
    capture_status: Option<String>,
    failure: Option<String>,
    record: Option<Copied>,
}

/// An entry's copy of its custody record.
#[derive(Debug)]
struct Copied {
    bucket: Option<String>,
    key: Option<String>,
    version_id: Option<String>,
    sha256: Option<String>,
    /// The record's exact bytes.
    json: Option<String>,
    /// `capture.manifest_sha256` of the record, for finding the entry.
    manifest_sha256: Option<String>,
    /// What disagrees inside the entry (its digest, its parsed copy).
    problems: Vec<String>,
}

#[derive(Deserialize)]
struct Doc<'a> {
    schema_version: serde_json::Value,
    fleet_id: Option<String>,
    case_id: Option<String>,
    #[serde(default)]
    security_account: Option<String>,
    #[serde(default)]
    custody_bucket: Option<String>,
    #[serde(default)]
    record_key: Option<String>,
    #[serde(borrow)]
    entries: Vec<EntryDoc<'a>>,
}

#[derive(Deserialize)]
struct EntryDoc<'a> {
    account: Option<String>,
    region: Option<String>,
    instance_id: Option<String>,
    #[serde(default)]
    execution_id: Option<String>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    capture_status: Option<String>,
    #[serde(default)]
    failure: Option<serde_json::Value>,
    #[serde(default, borrow)]
    custody_record: Option<CopyDoc<'a>>,
}

#[derive(Deserialize)]
struct CopyDoc<'a> {
    #[serde(default)]
    bucket: Option<String>,
    #[serde(default)]
    key: Option<String>,
    #[serde(default)]
    version_id: Option<String>,
    #[serde(default)]
    sha256: Option<String>,
    #[serde(default)]
    record_json: Option<String>,
    #[serde(default, borrow)]
    record: Option<&'a RawValue>,
}

/// Whether `bytes` (a JSON object) says it is a fleet record; `Err` for a
/// schema that is neither a fleet record's nor a custody record's.
pub(super) fn is_fleet(bytes: &[u8], path: &Path) -> Result<bool, Error> {
    #[derive(Deserialize)]
    struct Head {
        #[serde(default)]
        schema: Option<serde_json::Value>,
    }
    // Only an object has a schema (serde would read an array as a struct).
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Ok(false);
    }
    let Ok(head) = serde_json::from_slice::<Head>(bytes) else {
        return Ok(false);
    };
    match head.schema {
        None => Ok(false),
        Some(serde_json::Value::String(s)) if s == SCHEMA => Ok(true),
        Some(serde_json::Value::String(s)) if s == "forensics-volume/custody-record" => Ok(false),
        Some(other) => Err(Error::Usage(format!(
            "{}: neither a custody record nor a fleet record: its schema is {}",
            path.display(),
            other
                .as_str()
                .map_or_else(|| other.to_string(), |x| format!("\"{x}\""))
        ))),
    }
}

/// Reads the fleet record `bytes` (from `path`).
///
/// # Errors
/// [`Error::Usage`] for anything fleet start does not write.
pub(super) fn parse(bytes: &[u8], path: &Path) -> Result<Fleet, Error> {
    let label = display(path);
    let bad = |why: String| Error::Usage(format!("{label}: not a fleet record: {why}"));
    let doc: Doc<'_> = serde_json::from_slice(bytes).map_err(|e| bad(e.to_string()))?;
    if doc.schema_version.as_u64() != Some(1) {
        return Err(bad(format!(
            "schema_version {} (this capture reads version 1)",
            doc.schema_version
        )));
    }
    let fleet_id = valid(doc.fleet_id.as_deref(), "fleet_id", fleet_like, &bad)?;
    let case_id = valid(doc.case_id.as_deref(), "case_id", case_like, &bad)?;
    let security_account = doc
        .security_account
        .as_deref()
        .map(|a| valid(Some(a), "security_account", account_like, &bad))
        .transpose()?;
    // Where fleet start writes it: fleet/CASE/FLEET_ID.json in the custody
    // bucket (named, or the security account's), as a custody record's key
    // follows from its execution, account, region and case.
    let bucket = match (doc.custody_bucket.as_deref(), &security_account) {
        (Some(b), _) => Some(valid(Some(b), "custody_bucket", bucket_like, &bad)?),
        (None, Some(a)) => Some(format!("forensics-custody-{a}")),
        (None, None) => None,
    };
    let key = format!("fleet/{case_id}/{fleet_id}.json");
    let mut problems = Vec::new();
    if let Some(k) = doc.record_key.as_deref()
        && k != key
    {
        problems.push(format!(
            "it says it was written to {k}, but fleet start writes fleet {fleet_id} of case {case_id} to {key}"
        ));
    }
    let place = bucket.map(|b| (b, key));
    let mut entries = Vec::with_capacity(doc.entries.len());
    for (index, e) in doc.entries.into_iter().enumerate() {
        entries.push(entry(index, e, &bad)?);
    }
    Ok(Fleet {
        path: label.clone(),
        len: bytes.len() as u64,
        fleet_id,
        case_id,
        security_account,
        place,
        problems,
        entries,
    })
}

/// One entry, its names checked and its record's copy compared with itself.
fn entry(index: usize, e: EntryDoc<'_>, bad: &dyn Fn(String) -> Error) -> Result<Entry, Error> {
    let field = |name: &str| format!("entries[{index}].{name}");
    let instance_id = e
        .instance_id
        .as_deref()
        .map(|x| valid(Some(x), &field("instance_id"), instance_like, bad))
        .transpose()?;
    let account = valid(e.account.as_deref(), &field("account"), account_like, bad)?;
    let region = valid(e.region.as_deref(), &field("region"), region_like, bad)?;
    let execution_id = e
        .execution_id
        .as_deref()
        .map(|x| valid(Some(x), &field("execution_id"), execution_like, bad))
        .transpose()?;
    let failure = match e.failure {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(s)) => Some(s),
        Some(other) => Some(other.to_string()),
    };
    let record = match (e.custody_record, &instance_id) {
        (None, _) => None,
        (Some(c), Some(id)) => Some(copied(c, id)),
        (Some(_), None) => {
            return Err(bad(format!(
                "{} has a custody record but no instance_id",
                field("custody_record")
            )));
        }
    };
    Ok(Entry {
        index,
        instance_id,
        execution_id,
        account,
        region,
        status: e.status,
        capture_status: e.capture_status,
        failure,
        record,
    })
}

/// An entry's record copy: its bytes against its `sha256` and its parsed
/// `record`, and the manifest digest it anchors.
fn copied(c: CopyDoc<'_>, instance: &str) -> Copied {
    let mut problems = Vec::new();
    let sha256 = c.sha256.as_deref().map(|h| {
        normalise_digest(h).unwrap_or_else(|e| {
            problems.push(format!(
                "entry {instance}: its custody_record.sha256 is not a SHA-256: {e}"
            ));
            h.to_string()
        })
    });
    let parsed = c
        .record_json
        .as_deref()
        .and_then(|j| serde_json::from_str::<serde_json::Value>(j).ok());
    if let (Some(json), Some(want)) = (&c.record_json, &sha256) {
        let got = crate::hex(&Sha256::digest(json.as_bytes()));
        if &got != want {
            problems.push(format!(
                "entry {instance}: its record's bytes (record_json) have SHA-256 {got}, the entry says {want}: the fleet record was changed after it was written, or its copy is not the record it names"
            ));
        }
    }
    if let (Some(raw), Some(json)) = (c.record, &parsed) {
        let same = serde_json::from_str::<serde_json::Value>(raw.get()).is_ok_and(|r| &r == json);
        if !same {
            problems.push(format!(
                "entry {instance}: its record and its record_json say different things: the fleet record was changed after it was written"
            ));
        }
    }
    // Without the exact bytes: the parsed copy written again as custody.py
    // writes a record is those bytes when, and only when, it hashes to the
    // entry's sha256.
    let mut json = c.record_json;
    if let (None, Some(raw), Some(want)) = (&json, c.record, &sha256) {
        json = serde_json::from_str::<serde_json::Value>(raw.get())
            .ok()
            .and_then(|v| as_custody_py_writes(&v))
            .filter(|again| &crate::hex(&Sha256::digest(again.as_bytes())) == want);
    }
    // The entry is found by the digest its exact bytes hold; without them,
    // by the parsed copy (and then refused for want of the bytes).
    let manifest_sha256 = match (&parsed, c.record) {
        (Some(v), _) => manifest_digest(v),
        (None, Some(raw)) => serde_json::from_str::<serde_json::Value>(raw.get())
            .ok()
            .and_then(|v| manifest_digest(&v)),
        (None, None) => None,
    };
    Copied {
        bucket: c.bucket,
        key: c.key,
        version_id: c.version_id,
        sha256,
        json,
        manifest_sha256,
        problems,
    }
}

/// `record` as deploy/scripts/custody.py writes a custody record:
/// `json.dumps(record, indent=2, sort_keys=True) + "\n"`, which escapes
/// every character outside printable ASCII as `\uXXXX` (UTF-16 units,
/// lowercase hex). Only ever trusted when it hashes to the digest of the
/// bytes written, so a difference (a float printed otherwise) costs a
/// refusal, never a wrong answer.
fn as_custody_py_writes(record: &serde_json::Value) -> Option<String> {
    // serde_json's objects keep their keys sorted, and its pretty printer
    // indents by two with ": " and "," as Python's does.
    let pretty = serde_json::to_string_pretty(record).ok()?;
    let mut out = String::with_capacity(pretty.len() + 1);
    for c in pretty.chars() {
        if c.is_ascii() && c != '\u{7f}' {
            out.push(c);
        } else {
            let mut units = [0u16; 2];
            for u in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{u:04x}"));
            }
        }
    }
    out.push('\n');
    Some(out)
}

fn manifest_digest(record: &serde_json::Value) -> Option<String> {
    record
        .get("capture")?
        .get("manifest_sha256")?
        .as_str()
        .and_then(|h| normalise_digest(h).ok())
}

fn valid(
    x: Option<&str>,
    name: &str,
    ok: fn(&str) -> bool,
    bad: &dyn Fn(String) -> Error,
) -> Result<String, Error> {
    match x {
        Some(x) if ok(x) => Ok(x.to_string()),
        Some(x) => Err(bad(format!(
            "its {name} \"{x}\" is not one fleet start writes"
        ))),
        None => Err(bad(format!("it does not name its {name}"))),
    }
}

fn fleet_like(x: &str) -> bool {
    (1..=128).contains(&x.len())
        && x.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

fn instance_like(x: &str) -> bool {
    (1..=64).contains(&x.len())
        && x.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

impl Fleet {
    /// The entry of the capture whose `manifest.json` has SHA-256
    /// `manifest` (`None`: no readable manifest), or the one `named` (an
    /// instance or execution ID).
    ///
    /// # Errors
    /// [`Error::Usage`] when none or several match.
    fn choose(&self, named: Option<&str>, manifest: Option<&str>) -> Result<&Entry, Error> {
        let found: Vec<&Entry> = match (named, manifest) {
            (Some(n), _) => self
                .entries
                .iter()
                .filter(|e| {
                    e.instance_id.as_deref() == Some(n) || e.execution_id.as_deref() == Some(n)
                })
                .collect(),
            (None, Some(m)) => self
                .entries
                .iter()
                .filter(|e| {
                    e.record
                        .as_ref()
                        .is_some_and(|r| r.manifest_sha256.as_deref() == Some(m))
                })
                .collect(),
            (None, None) => {
                return Err(Error::Usage(format!(
                    "{}: the capture has no readable manifest.json, so its entry in fleet {} cannot be found by its digest: name it with --fleet-entry INSTANCE_ID (entries: {})",
                    self.path,
                    self.fleet_id,
                    self.listing()
                )));
            }
        };
        match (found.as_slice(), named, manifest) {
            ([one], _, _) => Ok(one),
            ([], Some(n), _) => Err(Error::Usage(format!(
                "{}: fleet {} has no entry for {} (entries: {})",
                self.path,
                self.fleet_id,
                n,
                self.listing()
            ))),
            ([], None, m) => Err(Error::Usage(format!(
                "{}: no entry of fleet {} ({} entries, {} with a custody record) holds this capture's manifest.json SHA-256 {}: the capture is not of this fleet, or its manifest.json was changed after the capture; to check it against an entry anyway, name the entry with --fleet-entry INSTANCE_ID (entries: {})",
                self.path,
                self.fleet_id,
                self.entries.len(),
                self.entries.iter().filter(|e| e.record.is_some()).count(),
                m.unwrap_or("?"),
                self.listing()
            ))),
            (many, named, _) => Err(Error::Usage(format!(
                "{}: {} entries of fleet {} match {}: {}; name one with --fleet-entry {}",
                self.path,
                many.len(),
                self.fleet_id,
                named.map_or_else(
                    || "this capture's manifest.json SHA-256".to_string(),
                    str::to_string
                ),
                many.iter()
                    .map(|e| describe(e))
                    .collect::<Vec<_>>()
                    .join(", "),
                if named.is_some() {
                    "EXECUTION_ID"
                } else {
                    "INSTANCE_ID (or EXECUTION_ID)"
                }
            ))),
        }
    }

    /// The entries, as a usage message lists them.
    fn listing(&self) -> String {
        let mut out: Vec<String> = self.entries.iter().take(LIST_MAX).map(describe).collect();
        if self.entries.len() > LIST_MAX {
            out.push(format!("and {} more", self.entries.len() - LIST_MAX));
        }
        if out.is_empty() {
            "none".into()
        } else {
            out.join(", ")
        }
    }

    /// The digests and record check of the chosen entry (`named`, or the
    /// one holding `manifest`), checked against the custody record's
    /// versions listing (`versions`) and the fleet record's own
    /// (`fleet_versions`).
    ///
    /// # Errors
    /// [`Error::Usage`] for no or several entries, an entry without a
    /// custody record or without its bytes, an embedded record that is not
    /// a first custody record, or a listing that is not one.
    pub(super) fn anchors(
        &self,
        named: Option<&str>,
        manifest: Option<&str>,
        versions: Option<&Path>,
        fleet_versions: Option<&Path>,
    ) -> Result<(Vec<Expected>, RecordCheck), Error> {
        let e = self.choose(named, manifest)?;
        let copy = self.copy_of(e)?;
        let json = copy.json.as_deref().unwrap_or_default();
        let label = format!("{} entry {}", self.path, e.name());
        let (expected, mut check) = record::parse(json.as_bytes(), &label)?;
        let mut fleet = FleetCheck {
            path: self.path.clone(),
            fleet_id: self.fleet_id.clone(),
            case_id: self.case_id.clone(),
            entries: self.entries.len(),
            entry: FleetEntry {
                index: e.index,
                instance_id: e.name(),
                execution_id: e.execution_id.clone(),
                account: e.account.clone(),
                region: e.region.clone(),
                status: e.status.clone(),
                capture_status: e.capture_status.clone(),
                record_version_id: copy.version_id.clone(),
                record_sha256: copy.sha256.clone(),
            },
            chosen_by: if named.is_some() {
                "fleet-entry"
            } else {
                "manifest-sha256"
            },
            bucket: self.place.as_ref().map(|p| p.0.clone()),
            key: self.place.as_ref().map(|p| p.1.clone()),
            command: self.place.as_ref().map(|(b, k)| {
                format!(
                    "aws s3api list-object-versions --bucket {b} --prefix {} --output json > fleet-versions.json",
                    &k[..k.len() - "json".len()]
                )
            }),
            version_id: None,
            versions_checked: false,
            problems: self.problems.iter().chain(&copy.problems).cloned().collect(),
        };
        self.agree(e, copy, json, &check, &mut fleet.problems);
        if let Some(v) = versions {
            let listed = versions::check(
                &Place {
                    of: Of::Record,
                    bucket: &check.bucket,
                    key: &check.key,
                    len: json.len() as u64,
                },
                v,
            )?;
            if let (Some(theirs), Some(only)) = (&copy.version_id, &listed.version_id) {
                if printable(theirs) != only.as_str() {
                    check.problems.push(format!(
                        "the fleet entry copied version {} of s3://{}/{}, but its only version is {only}: the fleet's copy is not that record",
                        theirs,
                        check.bucket,
                        check.key
                    ));
                }
            }
            check.versions_checked = true;
            check.version_id = listed.version_id;
            check.problems.extend(listed.problems);
        }
        if let Some(v) = fleet_versions {
            let Some((bucket, key)) = &self.place else {
                return Err(Error::Usage(format!(
                    "{}: --fleet-versions: the fleet record names neither its custody_bucket nor its security_account, so there is no bucket to check its versions listing against",
                    self.path
                )));
            };
            let listed = versions::check(
                &Place {
                    of: Of::Fleet,
                    bucket,
                    key,
                    len: self.len,
                },
                v,
            )?;
            fleet.versions_checked = true;
            fleet.version_id = listed.version_id;
            fleet.problems.extend(listed.problems);
        }
        check.fleet = Some(fleet);
        Ok((expected, check))
    }

    /// The chosen entry's record copy, with its exact bytes.
    fn copy_of<'e>(&self, e: &'e Entry) -> Result<&'e Copied, Error> {
        let Some(copy) = &e.record else {
            return Err(Error::Usage(format!(
                "{}: entry {} of fleet {} has no custody record (status {}{}): nothing in the fleet record anchors this capture",
                self.path,
                e.name(),
                self.fleet_id,
                e.status.as_deref().unwrap_or("not given"),
                e.failure
                    .as_deref()
                    .map(|f| format!("; failure: {f}"))
                    .unwrap_or_default()
            )));
        };
        if copy.json.is_none() {
            return Err(Error::Usage(format!(
                "{}: entry {} of fleet {} does not carry its custody record's exact bytes (record_json), and its parsed record written again as custody.py writes one does not hash to the entry's sha256, so the record's SHA-256 and size cannot be checked: download the record (aws s3api get-object --bucket {} --key {} --version-id {} custody.json) and verify with --custody-record custody.json",
                self.path,
                e.name(),
                self.fleet_id,
                copy.bucket.as_deref().unwrap_or("BUCKET"),
                copy.key.as_deref().unwrap_or("KEY"),
                copy.version_id.as_deref().unwrap_or("VERSION"),
            )));
        }
        Ok(copy)
    }

    /// The entry's names against its record's, the fleet's case against
    /// the record's.
    fn agree(
        &self,
        e: &Entry,
        copy: &Copied,
        json: &str,
        check: &RecordCheck,
        problems: &mut Vec<String>,
    ) {
        let v: serde_json::Value = serde_json::from_str(json).unwrap_or_default();
        let says = |f: &str| {
            v.get(f)
                .and_then(serde_json::Value::as_str)
                .map(str::to_string)
        };
        let mut differ = |what: &str, entry: Option<&str>, record: Option<String>| {
            if let Some(entry) = entry
                && record.as_deref() != Some(entry)
            {
                problems.push(format!(
                    "entry {}: the entry says {what} {}, its record {}: the entry is not this record's",
                    e.name(),
                    entry,
                    record.as_deref().unwrap_or("names none")
                ));
            }
        };
        differ("instance", e.instance_id.as_deref(), says("instance_id"));
        differ("account", Some(&e.account), Some(check.account.clone()));
        differ("region", Some(&e.region), Some(check.region.clone()));
        differ(
            "execution",
            e.execution_id.as_deref(),
            Some(check.execution_id.clone()),
        );
        differ("bucket", copy.bucket.as_deref(), Some(check.bucket.clone()));
        differ("key", copy.key.as_deref(), Some(check.key.clone()));
        differ("case", Some(&self.case_id), Some(check.case_id.clone()));
        differ(
            "security account",
            self.security_account.as_deref(),
            says("security_account"),
        );
    }
}

impl Entry {
    /// The instance, or which entry it is when it names none.
    fn name(&self) -> String {
        self.instance_id
            .clone()
            .unwrap_or_else(|| format!("entries[{}] (no instance)", self.index))
    }
}

/// `INSTANCE (EXECUTION, STATUS)` for a usage message.
fn describe(e: &Entry) -> String {
    format!(
        "{} ({}, {})",
        e.name(),
        e.execution_id.as_deref().unwrap_or("no execution"),
        e.status.as_deref().unwrap_or("status not given")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What Python 3 prints for json.dumps(v, indent=2, sort_keys=True) +
    /// "\n" of this value (ASCII escapes, a surrogate pair, DEL, empty
    /// containers, nesting).
    #[test]
    fn a_record_is_written_again_as_custody_py_writes_it() {
        let v: serde_json::Value = serde_json::from_str(
            r#"{"b":[],"a":{},"c":"x\u00e9\ud83d\ude00\u001b\u007f\n\"\\/","d":[1,{"z":null,"y":true}],"e":-5}"#,
        )
        .unwrap_or_default();
        let python = "{\n  \"a\": {},\n  \"b\": [],\n  \"c\": \"x\\u00e9\\ud83d\\ude00\\u001b\\u007f\\n\\\"\\\\/\",\n  \"d\": [\n    1,\n    {\n      \"y\": true,\n      \"z\": null\n    }\n  ],\n  \"e\": -5\n}\n";
        assert_eq!(as_custody_py_writes(&v).as_deref(), Some(python));
    }
}
