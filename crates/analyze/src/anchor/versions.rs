//! A record's key in the security account's custody bucket, checked
//! against `aws s3api list-object-versions --output json`: exactly one
//! version, the latest, of the record file's size, no delete marker, and no
//! other object claiming the key's prefix (issue 21). Used for the
//! per-instance custody record and for a fleet record (issue 24).

use std::path::Path;

use super::record::{RECORD_MAX, display, read_small};
use crate::error::Error;
use crate::text::printable;

/// Whose key it is: the messages say who writes it and what may share its
/// prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Of {
    /// A per-instance custody record (the runbook's Custody step).
    Record,
    /// A fleet record (fleet start, in the security account).
    Fleet,
}

/// The key and file compared with a listing.
pub(super) struct Place<'a> {
    /// Whose.
    pub of: Of,
    /// The bucket.
    pub bucket: &'a str,
    /// The key; ends in `.json`.
    pub key: &'a str,
    /// The size of the file the analyst holds.
    pub len: u64,
}

/// What the listing says about the key.
#[derive(Debug, Default)]
pub(super) struct Listed {
    /// The key's version, when it has exactly one.
    pub version_id: Option<String>,
    /// What is wrong (empty: nothing).
    pub problems: Vec<String>,
}

/// Checks the listing `path` for `place`.
///
/// # Errors
/// [`Error::Usage`] when the file is not a listing; [`Error::Input`] when
/// it cannot be read.
pub(super) fn check(place: &Place<'_>, path: &Path) -> Result<Listed, Error> {
    let bytes = read_small(path, "a versions listing", RECORD_MAX)?;
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
                .filter(|e| e.get("Key").and_then(serde_json::Value::as_str) == Some(place.key))
                .cloned()
                .collect()),
            Some(_) => Err(bad(format!("{field} is not a list"))),
        }
    };
    let versions = of_key("Versions")?;
    let markers = of_key("DeleteMarkers")?;
    let mut out = Listed::default();
    let at = format!("s3://{}/{}", place.bucket, place.key);
    let claims = claims(place, &v);
    if !claims.is_empty() {
        out.problems.push(match place.of {
            Of::Record => format!(
                "another record claims this execution: {} (the runbook writes one first record; when someone wrote {} before the run could, the run wrote its own under .contested- and failed): two claims, so neither anchors; treat the account as tampering with custody",
                claims.join(", "),
                place.key
            ),
            Of::Fleet => format!(
                "another object claims this fleet record's key: {} (fleet start writes one fleet record per fleet, once): two claims, so neither can be trusted; treat it as tampering with custody",
                claims.join(", ")
            ),
        });
    }
    if versions.is_empty() {
        out.problems.push(format!(
            "the versions listing {} has no version of {at}: it is the listing of another key or bucket, or {}",
            display(path),
            match place.of {
                Of::Record => {
                    "the record is not where its execution, account, region and case put it"
                }
                Of::Fleet => "the fleet record is not where it says it was written",
            }
        ));
    } else if versions.len() > 1 {
        out.problems.push(format!(
            "{at} has {} versions ({}): {}",
            versions.len(),
            written(&versions),
            match place.of {
                Of::Record => {
                    "the runbook writes each record once (If-None-Match), so it was replaced or written again; only the first can be the run's, and it may be forged too: treat the account as tampering with custody"
                }
                Of::Fleet => {
                    "fleet start writes the fleet record once (If-None-Match), so it was replaced or written again: treat it as tampering with custody"
                }
            }
        ));
    } else {
        only_version(place, &versions[0], &at, &mut out);
    }
    if !markers.is_empty() {
        out.problems.push(format!(
            "{at} has {} delete marker(s): someone deleted it, and a record written after that would not be the first",
            markers.len()
        ));
    }
    Ok(out)
}

/// Other keys under the key's prefix. The runbook writes one first record
/// (KEY) and, for the disks' round, KEY-without-.json.disks-*.json; when
/// someone wrote KEY before the run could, custody.py writes the run's own
/// under .contested-*.json and fails. Anything else under the execution's
/// prefix is a second claim on it; a fleet record shares its prefix with
/// nothing.
fn claims(place: &Place<'_>, v: &serde_json::Value) -> Vec<String> {
    let stem = &place.key[..place.key.len() - "json".len()];
    let mut claims: Vec<String> = Vec::new();
    for field in ["Versions", "DeleteMarkers"] {
        if let Some(serde_json::Value::Array(a)) = v.get(field) {
            for e in a {
                let Some(k) = e.get("Key").and_then(serde_json::Value::as_str) else {
                    continue;
                };
                let disks = place.of == Of::Record
                    && k.strip_prefix(stem)
                        .is_some_and(|rest| rest.starts_with("disks-") && rest.ends_with(".json"));
                if k.starts_with(stem) && k != place.key && !disks {
                    let k = printable(k).into_owned();
                    if !claims.contains(&k) {
                        claims.push(k);
                    }
                }
            }
        }
    }
    claims
}

/// `VERSION written WHEN, ...`, sorted.
fn written(versions: &[serde_json::Value]) -> String {
    let field = |e: &serde_json::Value, f: &str| {
        printable(e.get(f).and_then(serde_json::Value::as_str).unwrap_or("?")).into_owned()
    };
    let mut when: Vec<String> = versions
        .iter()
        .map(|e| {
            format!(
                "{} written {}",
                field(e, "VersionId"),
                field(e, "LastModified")
            )
        })
        .collect();
    when.sort();
    when.join(", ")
}

/// The key's only version: of the file's size, and the latest.
fn only_version(place: &Place<'_>, only: &serde_json::Value, at: &str, out: &mut Listed) {
    let size = only.get("Size").and_then(serde_json::Value::as_u64);
    if size != Some(place.len) {
        out.problems.push(format!(
            "the {}record file is {} bytes, the only version of {at} is {}: this file is not that version",
            if place.of == Of::Fleet { "fleet " } else { "" },
            place.len,
            size.map_or_else(|| "of unknown size".to_string(), |s| format!("{s} bytes"))
        ));
    }
    if only.get("IsLatest").and_then(serde_json::Value::as_bool) != Some(true) {
        out.problems
            .push(format!("the only version of {at} is not its latest"));
    }
    out.version_id = only
        .get("VersionId")
        .and_then(serde_json::Value::as_str)
        .map(|x| printable(x).into_owned());
}
