//! Capture-time digests recorded outside the forensics volume, and the
//! check of a capture against them (`verify --expect-manifest-sha256`,
//! `--expect-sha256`, `--expect-lime-sha256`, `--custody-record`).
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
use sha2::{Digest, Sha256};

use crate::error::Error;
use crate::input::Input;
use crate::sidecar::normalise_digest;
use crate::verify::{Problem, Report};

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
    fn name(self) -> &'static str {
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

/// The expected digests of the command line and of a custody record file.
///
/// # Errors
/// [`Error::Usage`] for a malformed digest or a custody record without
/// digests; [`Error::Input`] when the record cannot be read.
pub fn expected(
    manifest: Option<&str>,
    image: Option<&str>,
    lime: Option<&str>,
    record: Option<&Path>,
) -> Result<Vec<Expected>, Error> {
    let mut out = Vec::new();
    for (subject, given) in [
        (Subject::Manifest, manifest),
        (Subject::Image, image),
        (Subject::Lime, lime),
    ] {
        if let Some(hex) = given {
            out.push(Expected {
                subject,
                sha256: normalise_digest(hex).map_err(Error::Usage)?,
                from: "command line".into(),
            });
        }
    }
    if let Some(path) = record {
        out.extend(from_record(path)?);
    }
    Ok(out)
}

/// The digests in a custody record: its `capture` object's
/// `manifest_sha256`, `image_sha256` and `lime_sha256` (docs/deploy.md).
///
/// # Errors
/// As [`expected`].
pub fn from_record(path: &Path) -> Result<Vec<Expected>, Error> {
    let input = |source| Error::Input {
        path: path.to_path_buf(),
        source,
    };
    let f = std::fs::File::open(path).map_err(input)?;
    let mut bytes = Vec::new();
    f.take(RECORD_MAX + 1)
        .read_to_end(&mut bytes)
        .map_err(input)?;
    let bad =
        |why: String| Error::Usage(format!("{}: not a custody record: {why}", path.display()));
    if bytes.len() as u64 > RECORD_MAX {
        return Err(bad(format!("larger than {RECORD_MAX} bytes")));
    }
    let v: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| bad(e.to_string()))?;
    let capture = v
        .get("capture")
        .ok_or_else(|| bad("no \"capture\" object".into()))?;
    let from = display(path);
    let mut out = Vec::new();
    for (subject, key) in [
        (Subject::Manifest, "manifest_sha256"),
        (Subject::Image, "image_sha256"),
        (Subject::Lime, "lime_sha256"),
    ] {
        match capture.get(key).and_then(serde_json::Value::as_str) {
            Some(hex) if !hex.is_empty() => out.push(Expected {
                subject,
                sha256: normalise_digest(hex).map_err(|e| bad(format!("capture.{key}: {e}")))?,
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
    Ok(out)
}

fn display(p: &Path) -> String {
    PathBuf::from(p).display().to_string()
}

/// Compares `report` (and the manifest bytes `input` was read from) with
/// the expected digests, adds an `anchor` problem for every mismatch, and
/// rewrites the summary: `VERIFIED` stays only when every given digest
/// matches; without any, the line says the check was of self-consistency
/// only.
pub fn apply(report: &mut Report, input: Option<&Input>, expected: &[Expected]) {
    let manifest_sha = match input {
        Some(Input::Capture(c)) => Some(crate::hex(&Sha256::digest(&c.manifest_bytes))),
        _ => None,
    };
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
}
