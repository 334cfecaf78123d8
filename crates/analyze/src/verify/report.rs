//! What `verify` finds and reports: one finding ([`Problem`]), the whole
//! result as `--json` prints it ([`Report`]), and the collector the checks
//! add findings to. Shared by the checks (`checks`, `omitted`, `anchored`)
//! and the driver (`verify.rs`), which is why it lives on its own.

use std::path::Path;

use fv_evidence::manifest::Status;
use fv_formats::lime::Record;
use serde::Serialize;

/// Findings of one kind listed before the rest are summarised.
pub(super) const LIST_MAX: usize = 20;

/// One finding.
#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    /// Which check: `manifest`, `omitted`, `seek-table`, `frame`,
    /// `file-sha256`, `lime-sha256`, `lime-structure`, `ranges`, `sidecar`, `file`,
    /// `digest`, `read`, `aborted` (a capture stopped before its manifest).
    pub check: &'static str,
    /// The file concerned, relative to the capture directory when there is
    /// one.
    pub file: String,
    /// The frame, for frame problems.
    pub frame: Option<u32>,
    /// Physical address ranges (and LiME headers) affected, when known.
    pub affects: Vec<String>,
    /// What is wrong.
    pub message: String,
}

/// The whole result, as `--json` prints it.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The path given.
    pub path: String,
    /// `capture`, `seekable-zstd`, `zstd` or `lime`.
    pub kind: &'static str,
    /// No problem found.
    pub verified: bool,
    /// The one-line result.
    pub summary: String,
    /// The image or file checked.
    pub image: String,
    /// Its length.
    pub file_length: u64,
    /// SHA-256 of the file as stored.
    pub file_sha256: Option<String>,
    /// Length of the (decompressed) LiME stream.
    pub lime_length: u64,
    /// SHA-256 of the LiME stream.
    pub lime_sha256: Option<String>,
    /// Data frames (seekable images).
    pub frames: Option<u64>,
    /// The LiME records found.
    pub ranges: Vec<RangeOut>,
    /// Files listed in the manifest that were checked (the image included).
    pub files_checked: u64,
    /// Capture status from the manifest.
    pub status: Option<Status>,
    /// Which digest `--sha256` matched (`file` or `lime`).
    pub digest_matched: Option<&'static str>,
    /// Every finding.
    pub problems: Vec<Problem>,
    /// Things worth knowing that are not failures.
    pub notes: Vec<String>,
    /// The capture-time digests compared (empty: self-consistency only).
    pub anchors: Vec<crate::anchor::AnchorCheck>,
    /// The custody record given, and its versions check (issue 21).
    pub custody_record: Option<crate::anchor::RecordCheck>,
}

/// A LiME record in the report.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct RangeOut {
    /// First physical address.
    pub start: u64,
    /// Last physical address (inclusive).
    pub end: u64,
    /// Bytes.
    pub length: u64,
    /// Offset of its header in the LiME stream.
    pub lime_offset: u64,
}

impl From<&Record> for RangeOut {
    fn from(r: &Record) -> Self {
        Self {
            start: r.header.start,
            end: r.header.end,
            length: r.len,
            lime_offset: r.header_offset,
        }
    }
}

pub(super) struct Findings {
    pub(super) file: String,
    pub(super) problems: Vec<Problem>,
}

impl Findings {
    pub(super) fn add(&mut self, check: &'static str, message: impl Into<String>) {
        self.problems.push(Problem {
            check,
            file: self.file.clone(),
            frame: None,
            affects: Vec::new(),
            message: message.into(),
        });
    }
}

impl Report {
    pub(super) fn empty(path: &Path) -> Self {
        Self {
            path: path.display().to_string(),
            kind: "capture",
            verified: false,
            summary: String::new(),
            image: String::new(),
            file_length: 0,
            file_sha256: None,
            lime_length: 0,
            lime_sha256: None,
            frames: None,
            ranges: Vec::new(),
            files_checked: 0,
            status: None,
            digest_matched: None,
            problems: Vec::new(),
            notes: Vec::new(),
            anchors: Vec::new(),
            custody_record: None,
        }
    }
}
