//! The capture-time anchors applied to a report: every given digest
//! compared, the custody record's findings added, and the summary line
//! saying what was anchored (see `crate::anchor` for where they come from).

use sha2::{Digest, Sha256};

use super::report::{Problem, Report};
use crate::anchor::{AnchorCheck, Anchors, FleetCheck, RecordCheck, Subject};
use crate::input::Input;

/// Compares `report` (and the manifest bytes `input` was read from) with
/// the expected digests, adds an `anchor` problem for every mismatch, and
/// rewrites the summary: `VERIFIED` stays only when every given digest
/// matches; without any, the line says the check was of self-consistency
/// only.
pub fn apply(report: &mut Report, input: Option<&Input>, anchors: &Anchors) {
    let expected = &anchors.expected[..];
    let manifest_sha = match input {
        Some(Input::Capture(c)) => Some(crate::hex(&Sha256::digest(&c.manifest_bytes))),
        _ => None,
    };
    if let Some(rec) = &anchors.record {
        record_findings(report, input, rec);
    }
    for e in expected {
        let actual = match e.subject {
            Subject::Manifest => manifest_sha.clone(),
            Subject::Image => report.file_sha256.clone(),
            Subject::Lime => report.lime_sha256.clone(),
        };
        let matched = actual.as_deref() == Some(e.sha256.as_str());
        if !matched {
            report.problems.push(Problem {
                check: "anchor",
                file: match e.subject {
                    Subject::Manifest => "manifest.json".into(),
                    _ => report.image.clone(),
                },
                frame: None,
                affects: Vec::new(),
                message: format!(
                    "the SHA-256 of {} is {}, not the capture-time {} (from {}): this is not the evidence that was captured, or it was changed after the capture",
                    e.subject.name(),
                    actual.as_deref().unwrap_or("not computable here"),
                    e.sha256,
                    e.from
                ),
            });
        }
        report.anchors.push(AnchorCheck {
            expected: e.clone(),
            actual,
            matched,
        });
    }
    if report.verified && !report.problems.is_empty() {
        report.verified = false;
        report.summary = format!(
            "NOT VERIFIED {}: {} problem(s) found (listed above; exit code 1)",
            report.path,
            report.problems.len()
        );
        return;
    }
    if !report.verified {
        return;
    }
    if expected.is_empty() {
        if report.digest_matched.is_none() {
            report.summary.push_str(
                "; SELF-CONSISTENCY ONLY: no capture-time digest was given (--expect-manifest-sha256, --expect-sha256 or --custody-record), so this does not prove the evidence is what was captured",
            );
        }
    } else {
        let mut what: Vec<&str> = Vec::new();
        for s in [Subject::Manifest, Subject::Image, Subject::Lime] {
            if expected.iter().any(|e| e.subject == s) {
                what.push(s.name());
            }
        }
        report.summary.push_str(&format!(
            "; ANCHORED: {} match the capture-time digests given",
            what.join(", ")
        ));
    }
    if let Some(rec) = &anchors.record {
        if rec.versions_checked {
            report.summary.push_str(&format!(
                "; the custody record is the first and only version ({}) of s3://{}/{}",
                rec.version_id.as_deref().unwrap_or("?"),
                rec.bucket,
                rec.key
            ));
        } else {
            report.summary.push_str(
                "; CUSTODY RECORD NOT CHECKED as its key's only version (give --custody-versions: see the note)",
            );
        }
        if let Some(fleet) = &rec.fleet {
            report.summary.push_str(&fleet_summary(fleet));
        }
    }
}

/// The custody record's findings (and its fleet record's), and the note
/// with the listing command when its versions were not checked.
fn record_findings(report: &mut Report, input: Option<&Input>, rec: &RecordCheck) {
    let mut problems = rec.problems.clone();
    if let Some(Input::Capture(c)) = input {
        if let Some(case) = c.manifest.case.case_id.as_deref() {
            if case != rec.case_id {
                problems.push(format!(
                    "the record is of case {}, the capture's manifest of case {}: this record is not this capture's",
                    rec.case_id,
                    crate::text::printable(case)
                ));
            }
        }
    }
    for message in problems {
        report.problems.push(Problem {
            check: "custody-record",
            file: rec.path.clone(),
            frame: None,
            affects: Vec::new(),
            message,
        });
    }
    if let Some(fleet) = &rec.fleet {
        fleet_findings(report, fleet);
    }
    if !rec.versions_checked {
        report.notes.push(format!(
            "the custody record is not yet checked as the first and only version of s3://{}/{} (a record replaced or written again by someone with the member account's execution role would look the same): in the security account run\n  {}\nand verify again with --custody-versions custody-versions.json",
            rec.bucket, rec.key, rec.command
        ));
    }
    report.custody_record = Some(rec.clone());
}

/// A fleet record's findings and, when its versions were not checked, the
/// command that lists them.
fn fleet_findings(report: &mut Report, fleet: &FleetCheck) {
    for message in &fleet.problems {
        report.problems.push(Problem {
            check: "fleet-record",
            file: fleet.path.clone(),
            frame: None,
            affects: Vec::new(),
            message: message.clone(),
        });
    }
    match (&fleet.command, fleet.versions_checked) {
        (Some(command), false) => report.notes.push(format!(
            "the fleet record is not yet checked as the first and only version of s3://{}/{}: in the security account run\n  {command}\nand verify again with --fleet-versions fleet-versions.json",
            fleet.bucket.as_deref().unwrap_or("?"),
            fleet.key.as_deref().unwrap_or("?"),
        )),
        (None, _) => report.notes.push(
            "the fleet record names neither its custody_bucket nor its security_account: it cannot be checked as its key's only version".into(),
        ),
        _ => {}
    }
}

/// What the summary line adds for a record taken from a fleet record.
fn fleet_summary(fleet: &FleetCheck) -> String {
    let from = format!(
        "; taken from fleet {}'s entry {}",
        fleet.fleet_id, fleet.entry.instance_id
    );
    if fleet.versions_checked {
        format!(
            "{from}; the fleet record is the first and only version ({}) of s3://{}/{}",
            fleet.version_id.as_deref().unwrap_or("?"),
            fleet.bucket.as_deref().unwrap_or("?"),
            fleet.key.as_deref().unwrap_or("?"),
        )
    } else if fleet.command.is_some() {
        format!(
            "{from}; FLEET RECORD NOT CHECKED as its key's only version (give --fleet-versions: see the note)"
        )
    } else {
        format!("{from}; FLEET RECORD NOT CHECKED: it names no bucket of its own")
    }
}
