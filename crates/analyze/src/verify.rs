//! `capture verify`: recompute and compare everything, report every finding
//! with where it is, and end in one line a person can paste into a case log.

use std::io::{Read, Write};
use std::path::Path;

use fv_evidence::manifest::{IMAGE_FILE, MANIFEST_FILE, Manifest, Status};
use fv_formats::lime::{HEADER_LEN, Record};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::error::Error;
use crate::input::{Capture, Input, is_safe_relative};
use crate::lime_map::{ImageAt, Located, describe_stream_span};
use crate::scan::{self, Scan};
use crate::{Exit, VerifyArgs, sidecar};

/// Sidecars larger than this are not sidecars.
const SIDECAR_MAX: u64 = 1 << 20;
/// Findings of one kind listed before the rest are summarised.
const LIST_MAX: usize = 20;

/// One finding.
#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    /// Which check: `manifest`, `seek-table`, `frame`, `file-sha256`,
    /// `lime-sha256`, `lime-structure`, `ranges`, `sidecar`, `file`,
    /// `digest`, `read`.
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

struct Findings {
    file: String,
    problems: Vec<Problem>,
}

impl Findings {
    fn add(&mut self, check: &'static str, message: impl Into<String>) {
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
    fn empty(path: &Path) -> Self {
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
        }
    }
}

/// Runs `verify`.
///
/// # Errors
/// [`Error`] when verification cannot start (unreadable or unrecognised
/// input, unusable manifest, bad `--sha256`); findings about the evidence
/// are reported and give [`Exit::EvidenceBad`].
pub fn run(args: &VerifyArgs, out: &mut dyn Write, err: &mut dyn Write) -> Result<Exit, Error> {
    let expected = args
        .sha256
        .as_deref()
        .map(sidecar::normalise_digest)
        .transpose()
        .map_err(Error::Usage)?;
    let threads = crate::threads(args.threads);
    let report = match Input::open(&args.path) {
        Ok(input) => verify(&input, &args.path, expected.as_deref(), threads)?,
        // A damaged manifest is a finding, not the end: the image next to
        // it is still checked on its own.
        Err(e @ (Error::Manifest { .. } | Error::ManifestInvalid { .. })) => {
            let dir = if args.path.is_dir() {
                args.path.clone()
            } else {
                args.path
                    .parent()
                    .map(Path::to_path_buf)
                    .unwrap_or_default()
            };
            let image = dir.join(IMAGE_FILE);
            let mut report = if image.is_file() {
                let input = Input::open(&image)?;
                verify(&input, &args.path, expected.as_deref(), threads)?
            } else {
                Report::empty(&args.path)
            };
            report.problems.insert(
                0,
                Problem {
                    check: "manifest",
                    file: MANIFEST_FILE.into(),
                    frame: None,
                    affects: Vec::new(),
                    message: format!("{e}; the image was checked on its own"),
                },
            );
            report.verified = false;
            report.kind = "capture";
            report.summary = format!(
                "NOT VERIFIED {}: {} problem(s) found (listed above; exit code 1)",
                args.path.display(),
                report.problems.len()
            );
            report
        }
        Err(e) => return Err(e),
    };
    if args.json {
        let mut text = serde_json::to_vec_pretty(&report)
            .map_err(|e| Error::Report(std::io::Error::other(e)))?;
        text.push(b'\n');
        out.write_all(&text).map_err(Error::Report)?;
    } else {
        for p in &report.problems {
            let mut line = format!("FAILED {}: {}: {}", p.check, p.file, p.message);
            if !p.affects.is_empty() {
                line.push_str(&format!(" [affects physical {}]", p.affects.join(", ")));
            }
            writeln!(out, "{line}").map_err(Error::Report)?;
        }
        // Notes go to stderr so that stdout of a good run is the one line
        // for the case log.
        for n in &report.notes {
            writeln!(err, "note: {n}").map_err(Error::Report)?;
        }
        writeln!(out, "{}", report.summary).map_err(Error::Report)?;
    }
    Ok(if report.verified {
        Exit::Ok
    } else {
        Exit::EvidenceBad
    })
}

/// Verifies `input` and builds the report.
///
/// # Errors
/// [`Error::Input`] if the image cannot be opened at all.
pub fn verify(
    input: &Input,
    given: &Path,
    expected_digest: Option<&str>,
    threads: usize,
) -> Result<Report, Error> {
    let data_path = input.data_path();
    let image_name = match input {
        Input::Capture(c) => c.manifest.image.file.clone(),
        _ => data_path.display().to_string(),
    };
    let mut f = Findings {
        file: image_name.clone(),
        problems: Vec::new(),
    };
    let mut notes = Vec::new();

    let scan = match input {
        Input::Capture(c) => {
            if c.image_path.exists() {
                Some(scan::seekable(&c.image_path, threads)?)
            } else {
                f.add("file", "the image file named by the manifest is missing");
                None
            }
        }
        Input::Seekable(p) => Some(scan::seekable(p, threads)?),
        Input::PlainZstd(p) => Some(scan::plain_zstd(p)?),
        Input::PlainLime(p) => Some(scan::plain_lime(p)?),
    };

    // Where damage in the stream lies physically: from the manifest when
    // there is one, else from the image's own headers.
    let map: Vec<Located> = match input {
        Input::Capture(c) => manifest_map(&c.manifest),
        Input::Seekable(p) => {
            let from_headers = ImageAt::open(p).and_then(|mut img| crate::lime_map::walk(&mut img));
            from_headers.unwrap_or_else(|_| {
                scan.as_ref()
                    .map(|s| s.records.iter().map(located).collect())
                    .unwrap_or_default()
            })
        }
        _ => Vec::new(),
    };

    if let Some(scan) = &scan {
        image_findings(scan, &map, &mut f, input);
    }

    let mut files_checked = 0;
    if let Input::Capture(c) = input {
        manifest_findings(&c.manifest, &mut f);
        if let Some(scan) = &scan {
            against_manifest(&c.manifest, scan, &mut f);
        }
        sidecar_findings(c, scan.as_ref(), &mut f);
        files_checked = file_findings(c, scan.as_ref(), &mut f, &mut notes);
    } else if let Some(scan) = &scan {
        // A sidecar next to a bare image is checked too.
        let side = sidecar_path(data_path);
        if side.exists() {
            standalone_sidecar(&side, data_path, scan, &mut f);
            notes.push(format!("checked {}", side.display()));
        }
    }

    let mut digest_matched = None;
    if let (Some(want), Some(scan)) = (expected_digest, &scan) {
        if scan.file_sha256.as_deref() == Some(want) {
            digest_matched = Some("file");
        } else if scan.lime_sha256.as_deref() == Some(want) {
            digest_matched = Some("lime");
        } else {
            f.add(
                "digest",
                format!(
                    "--sha256 {want} matches neither the file ({}) nor its LiME stream ({})",
                    scan.file_sha256.as_deref().unwrap_or("not computed"),
                    scan.lime_sha256.as_deref().unwrap_or("not computed"),
                ),
            );
        }
    }

    let verified = f.problems.is_empty();
    let scan_ref = scan.as_ref();
    let ranges: Vec<RangeOut> = scan_ref
        .map(|s| s.records.iter().map(RangeOut::from).collect())
        .unwrap_or_default();
    let frames = scan_ref
        .and_then(|s| s.table.as_ref())
        .map(|t| t.frames().len() as u64);
    let mut report = Report {
        path: given.display().to_string(),
        kind: input.kind(),
        verified,
        summary: String::new(),
        image: data_path.display().to_string(),
        file_length: scan_ref.map_or(0, |s| s.file_len),
        file_sha256: scan_ref.and_then(|s| s.file_sha256.clone()),
        lime_length: scan_ref.map_or(0, |s| s.lime_len),
        lime_sha256: scan_ref.and_then(|s| s.lime_sha256.clone()),
        frames,
        ranges,
        files_checked,
        status: match input {
            Input::Capture(c) => Some(c.manifest.status),
            _ => None,
        },
        digest_matched,
        problems: f.problems,
        notes,
    };
    report.summary = summary_line(&report, input);
    Ok(report)
}

fn located(r: &Record) -> Located {
    Located {
        start: r.header.start,
        end: r.header.end,
        header_offset: r.header_offset,
        payload_offset: r.payload_offset,
        len: r.len,
    }
}

fn manifest_map(m: &Manifest) -> Vec<Located> {
    m.ranges
        .iter()
        .map(|r| Located {
            start: r.start,
            end: r.end,
            header_offset: r.lime_offset,
            payload_offset: r.lime_offset.saturating_add(HEADER_LEN as u64),
            len: r.length,
        })
        .collect()
}

fn image_findings(scan: &Scan, map: &[Located], f: &mut Findings, input: &Input) {
    if let Some(e) = &scan.table_error {
        f.add(
            "seek-table",
            format!("{e}; the data frames were checked by plain zstd decompression instead"),
        );
    }
    for (i, bad) in scan.bad_frames.iter().enumerate() {
        if i == LIST_MAX {
            f.add(
                "frame",
                format!(
                    "... and {} more bad frames",
                    scan.bad_frames.len() - LIST_MAX
                ),
            );
            break;
        }
        let fr = bad.frame;
        f.problems.push(Problem {
            check: "frame",
            file: f.file.clone(),
            frame: Some(fr.index),
            affects: describe_stream_span(map, fr.decompressed_offset, fr.decompressed_end()),
            message: bad.error.to_string(),
        });
    }
    if let Some(e) = &scan.lime_error {
        f.add("lime-structure", e.to_string());
    }
    if let Some(e) = &scan.zstd_error {
        let what = if matches!(input, Input::PlainZstd(_)) {
            "zstd stream"
        } else {
            "data frames"
        };
        f.add(
            "frame",
            format!(
                "the {what} cannot be decompressed after {} bytes: {e}",
                scan.lime_len
            ),
        );
    }
    if let Some(e) = &scan.io_error {
        f.add("read", e.to_string());
    }
}

/// The manifest's own consistency.
fn manifest_findings(m: &Manifest, f: &mut Findings) {
    let mut add = |msg: String| f.add("manifest", msg);
    match m.status {
        Status::Complete => {
            if m.partial_reason.is_some() {
                add("status is complete but a partial_reason is given".into());
            }
            if !m.not_captured.is_empty() {
                add(format!(
                    "status is complete but {} not_captured span(s) are listed",
                    m.not_captured.len()
                ));
            }
        }
        Status::Partial => {
            if m.partial_reason.is_none() {
                add("status is partial but no partial_reason is given".into());
            }
        }
    }
    if m.ranges.is_empty() {
        add("no ranges".into());
    }
    let mut expect_offset = 0u64;
    let mut prev_end: Option<u64> = None;
    for (i, r) in m.ranges.iter().enumerate() {
        if r.end < r.start || r.end - r.start + 1 != r.length {
            add(format!(
                "range {i} {:#x}-{:#x}: length {} is not end - start + 1",
                r.start, r.end, r.length
            ));
        }
        if let Some(p) = prev_end
            && r.start <= p
        {
            add(format!(
                "range {i} {:#x}-{:#x} overlaps or precedes the previous range ending at {p:#x}",
                r.start, r.end
            ));
        }
        if r.lime_offset != expect_offset {
            add(format!(
                "range {i}: lime_offset {} but the previous records end at {expect_offset}",
                r.lime_offset
            ));
        }
        prev_end = Some(r.end);
        expect_offset = r
            .lime_offset
            .saturating_add(HEADER_LEN as u64)
            .saturating_add(r.length);
    }
    if m.image.lime_length != expect_offset {
        add(format!(
            "image.lime_length {} but the ranges add up to a {expect_offset}-byte LiME stream",
            m.image.lime_length
        ));
    }
    let inside = |start: u64, len: u64| {
        let end = start.saturating_add(len.saturating_sub(1));
        m.ranges.iter().any(|r| start >= r.start && end <= r.end)
    };
    for (what, spans) in [
        ("unreadable", &m.unreadable),
        ("not_captured", &m.not_captured),
    ] {
        for s in spans {
            if s.length == 0 || !inside(s.start, s.length) {
                add(format!(
                    "{what} span at {:#x} ({} bytes) is not inside one captured range",
                    s.start, s.length
                ));
            }
        }
    }
    if m.image.format != "lime" {
        add(format!(
            "image.format is {:?}, expected \"lime\"",
            m.image.format
        ));
    }
    if m.image.compression.format != "zstd-seekable" {
        add(format!(
            "image.compression.format is {:?}, expected \"zstd-seekable\"",
            m.image.compression.format
        ));
    }
}

/// The image against what the manifest says about it.
fn against_manifest(m: &Manifest, scan: &Scan, f: &mut Findings) {
    let img = &m.image;
    if scan.file_len != img.compressed_length {
        f.add(
            "file",
            format!(
                "is {} bytes, the manifest says {}",
                scan.file_len, img.compressed_length
            ),
        );
    }
    match &scan.file_sha256 {
        Some(h) if *h != img.compressed_sha256 => f.add(
            "file-sha256",
            format!(
                "SHA-256 is {h}, the manifest says {}",
                img.compressed_sha256
            ),
        ),
        _ => {}
    }
    let stream_complete =
        scan.bad_frames.is_empty() && scan.zstd_error.is_none() && scan.io_error.is_none();
    if stream_complete && scan.lime_len != img.lime_length {
        f.add(
            "lime-sha256",
            format!(
                "the LiME stream is {} bytes, the manifest says {}",
                scan.lime_len, img.lime_length
            ),
        );
    }
    match &scan.lime_sha256 {
        Some(h) if *h != img.lime_sha256 => f.add(
            "lime-sha256",
            format!(
                "the LiME stream's SHA-256 is {h}, the manifest says {}",
                img.lime_sha256
            ),
        ),
        None if scan.table_error.is_none() => f.add(
            "lime-sha256",
            "the LiME stream's SHA-256 could not be computed (see the frame problems)",
        ),
        _ => {}
    }
    if let Some(t) = &scan.table {
        let c = &img.compression;
        let n = t.frames().len() as u64;
        if n != c.frames {
            f.add(
                "seek-table",
                format!("{n} frames, the manifest says {}", c.frames),
            );
        }
        if t.checksums() != c.checksums {
            f.add(
                "seek-table",
                format!(
                    "per-frame checksums {}, the manifest says {}",
                    present(t.checksums()),
                    present(c.checksums)
                ),
            );
        }
        let frames = t.frames();
        let odd = frames
            .iter()
            .enumerate()
            .filter(|(i, fr)| {
                let last = *i + 1 == frames.len();
                let size = u64::from(fr.decompressed_len);
                if last {
                    size == 0 || size > c.frame_size
                } else {
                    size != c.frame_size
                }
            })
            .map(|(i, fr)| (i, fr.decompressed_len))
            .take(LIST_MAX)
            .collect::<Vec<_>>();
        for (i, size) in odd {
            f.add(
                "seek-table",
                format!(
                    "frame {i} holds {size} decompressed bytes; the manifest's frame size is {}",
                    c.frame_size
                ),
            );
        }
    }
    // Records against the manifest's ranges, exactly.
    let walked_all = scan.lime_error.is_none() && stream_complete;
    let found = &scan.records;
    for (i, r) in m.ranges.iter().enumerate() {
        match found.get(i) {
            Some(rec)
                if rec.header.start != r.start
                    || rec.header.end != r.end
                    || rec.header_offset != r.lime_offset =>
            {
                {
                    f.add(
                        "ranges",
                        format!(
                            "LiME record {i} is {:#x}-{:#x} at stream offset {}, the manifest says {:#x}-{:#x} at {}",
                            rec.header.start,
                            rec.header.end,
                            rec.header_offset,
                            r.start,
                            r.end,
                            r.lime_offset
                        ),
                    );
                }
            }
            Some(_) => {}
            None if walked_all => f.add(
                "ranges",
                format!(
                    "the manifest lists range {i} {:#x}-{:#x} but the LiME stream has only {} record(s)",
                    r.start,
                    r.end,
                    found.len()
                ),
            ),
            None => {}
        }
    }
    if found.len() > m.ranges.len() {
        for rec in &found[m.ranges.len()..] {
            f.add(
                "ranges",
                format!(
                    "LiME record {} {:#x}-{:#x} is not in the manifest",
                    rec.index, rec.header.start, rec.header.end
                ),
            );
        }
    }
}

fn present(b: bool) -> &'static str {
    if b { "present" } else { "absent" }
}

fn sidecar_path(image: &Path) -> std::path::PathBuf {
    let mut s = image.as_os_str().to_os_string();
    s.push(".sha256");
    std::path::PathBuf::from(s)
}

fn read_small(path: &Path) -> std::io::Result<Vec<u8>> {
    let file = std::fs::File::open(path)?;
    let mut bytes = Vec::new();
    file.take(SIDECAR_MAX + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > SIDECAR_MAX {
        return Err(std::io::Error::other("larger than a sidecar can be"));
    }
    Ok(bytes)
}

/// Compares sidecar lines with the digests of the image (`NAME`) and of its
/// stream (`NAME` without `.zst`).
fn compare_sidecar(text: &str, image_name: &str, scan: &Scan, side_name: &str, f: &mut Findings) {
    let entries = match sidecar::parse(text) {
        Ok(e) => e,
        Err(msg) => {
            f.problems.push(Problem {
                check: "sidecar",
                file: side_name.to_string(),
                frame: None,
                affects: Vec::new(),
                message: msg,
            });
            return;
        }
    };
    let stream_name = image_name.strip_suffix(".zst");
    let mut saw_image = false;
    for e in entries {
        let base = e.name.rsplit('/').next().unwrap_or(&e.name);
        let (what, actual) = if base == image_name {
            saw_image = true;
            ("the image", scan.file_sha256.as_deref())
        } else if Some(base) == stream_name {
            ("the LiME stream", scan.lime_sha256.as_deref())
        } else {
            f.problems.push(Problem {
                check: "sidecar",
                file: side_name.to_string(),
                frame: None,
                affects: Vec::new(),
                message: format!("names {:?}, which is not the image", e.name),
            });
            continue;
        };
        if let Some(actual) = actual
            && actual != e.sha256
        {
            f.problems.push(Problem {
                check: "sidecar",
                file: side_name.to_string(),
                frame: None,
                affects: Vec::new(),
                message: format!("says {} for {what}; computed {actual}", e.sha256),
            });
        }
    }
    if !saw_image {
        f.problems.push(Problem {
            check: "sidecar",
            file: side_name.to_string(),
            frame: None,
            affects: Vec::new(),
            message: format!("has no line for {image_name}"),
        });
    }
}

fn sidecar_findings(c: &Capture, scan: Option<&Scan>, f: &mut Findings) {
    let image = &c.manifest.image.file;
    let side_name = format!("{image}.sha256");
    let path = c.dir.join(&side_name);
    let bytes = match read_small(&path) {
        Ok(b) => b,
        Err(e) => {
            f.problems.push(Problem {
                check: "sidecar",
                file: side_name,
                frame: None,
                affects: Vec::new(),
                message: format!("cannot be read: {e}"),
            });
            return;
        }
    };
    let Some(scan) = scan else { return };
    let text = String::from_utf8_lossy(&bytes);
    compare_sidecar(&text, image, scan, &side_name, f);
    // The sidecar and the manifest must agree with each other too (they do
    // if both agree with the file; this names it when the file is damaged).
}

fn standalone_sidecar(side: &Path, image: &Path, scan: &Scan, f: &mut Findings) {
    let side_name = side.display().to_string();
    match read_small(side) {
        Ok(bytes) => {
            let name = image
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            compare_sidecar(&String::from_utf8_lossy(&bytes), &name, scan, &side_name, f);
        }
        Err(e) => f.problems.push(Problem {
            check: "sidecar",
            file: side_name,
            frame: None,
            affects: Vec::new(),
            message: format!("cannot be read: {e}"),
        }),
    }
}

/// Every file the manifest lists: size and SHA-256. Returns how many were
/// checked.
fn file_findings(
    c: &Capture,
    scan: Option<&Scan>,
    f: &mut Findings,
    notes: &mut Vec<String>,
) -> u64 {
    let mut checked = 0;
    let mut listed = std::collections::BTreeSet::new();
    for entry in &c.manifest.files {
        let mut problem = |message: String| {
            f.problems.push(Problem {
                check: "file",
                file: entry.path.clone(),
                frame: None,
                affects: Vec::new(),
                message,
            });
        };
        if !is_safe_relative(&entry.path) {
            problem("the manifest lists a path outside the capture directory; not opened".into());
            continue;
        }
        listed.insert(entry.path.clone());
        if entry.path == c.manifest.image.file {
            // Hashed already in the main pass.
            checked += 1;
            if let Some(scan) = scan {
                if scan.file_len != entry.size {
                    problem(format!(
                        "is {} bytes, the file list says {}",
                        scan.file_len, entry.size
                    ));
                }
                if let Some(h) = &scan.file_sha256
                    && *h != entry.sha256
                {
                    problem(format!(
                        "SHA-256 is {h}, the file list says {}",
                        entry.sha256
                    ));
                }
            }
            continue;
        }
        let path = c.dir.join(&entry.path);
        match std::fs::symlink_metadata(&path) {
            Ok(m) if m.file_type().is_symlink() => {
                problem("is a symbolic link; capture never writes one".into());
                continue;
            }
            Ok(m) if !m.is_file() => {
                problem("is not a regular file".into());
                continue;
            }
            Ok(_) => {}
            Err(e) => {
                problem(format!("cannot be read: {e}"));
                continue;
            }
        }
        match hash_file(&path) {
            Ok((size, sha)) => {
                checked += 1;
                if size != entry.size {
                    problem(format!("is {size} bytes, the manifest says {}", entry.size));
                }
                if sha != entry.sha256 {
                    problem(format!(
                        "SHA-256 is {sha}, the manifest says {}",
                        entry.sha256
                    ));
                }
            }
            Err(e) => problem(format!("cannot be read: {e}")),
        }
    }
    if !listed.contains(&c.manifest.image.file) {
        f.add("manifest", "the file list does not include the image");
    }
    // Files present but not listed: not a failure (an analyst may have
    // added notes), but worth saying.
    let mut unlisted = Vec::new();
    list_files(&c.dir, "", &mut unlisted, 0);
    let manifest_name = c
        .manifest_path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    for rel in unlisted {
        if !listed.contains(&rel) && rel != manifest_name {
            notes.push(format!(
                "{rel} is in the capture directory but not in the manifest"
            ));
        }
    }
    checked
}

fn list_files(dir: &Path, prefix: &str, out: &mut Vec<String>, depth: usize) {
    if depth > 8 || out.len() > 10_000 {
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let rel = if prefix.is_empty() {
            name
        } else {
            format!("{prefix}/{name}")
        };
        match e.file_type() {
            Ok(t) if t.is_dir() => list_files(&e.path(), &rel, out, depth + 1),
            Ok(_) => out.push(rel),
            Err(_) => {}
        }
    }
}

fn hash_file(path: &Path) -> std::io::Result<(u64, String)> {
    let mut file = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        h.update(&buf[..n]);
        size += n as u64;
    }
    Ok((size, crate::hex(&h.finalize())))
}

fn summary_line(r: &Report, input: &Input) -> String {
    if !r.verified {
        return format!(
            "NOT VERIFIED {}: {} problem(s) found (listed above; exit code 1)",
            r.path,
            r.problems.len()
        );
    }
    let digest = match r.digest_matched {
        Some("file") => "; matches the given SHA-256 (of the file)",
        Some(_) => "; matches the given SHA-256 (of the LiME stream)",
        None => "",
    };
    let sha = |o: &Option<String>| o.clone().unwrap_or_default();
    match input {
        Input::Capture(c) => {
            let m = &c.manifest;
            let status = match (&m.status, &m.partial_reason) {
                (Status::Complete, _) => "complete".to_string(),
                (Status::Partial, Some(p)) => format!("PARTIAL ({:?}: {})", p.cause, p.detail),
                (Status::Partial, None) => "PARTIAL".to_string(),
            };
            let case = m
                .case
                .case_id
                .as_deref()
                .map(|c| format!("case {c}, "))
                .unwrap_or_default();
            format!(
                "VERIFIED {}: {} sha256 {}; LiME stream sha256 {} ({} bytes, {} ranges, {} frames); manifest, sidecar and {} listed files match; {case}capture {status}, host {}, {} by {} {} ({}){digest}",
                r.path,
                m.image.file,
                sha(&r.file_sha256),
                sha(&r.lime_sha256),
                r.lime_length,
                r.ranges.len(),
                r.frames.unwrap_or(0),
                r.files_checked,
                m.host.hostname,
                m.timing.start_utc,
                m.tool.name,
                m.tool.version,
                m.tool.git_commit,
            )
        }
        Input::Seekable(_) => format!(
            "VERIFIED {} (seekable zstd, no manifest): sha256 {}; LiME stream sha256 {} ({} bytes, {} ranges, {} frames, every frame checked){digest}",
            r.path,
            sha(&r.file_sha256),
            sha(&r.lime_sha256),
            r.lime_length,
            r.ranges.len(),
            r.frames.unwrap_or(0),
        ),
        Input::PlainZstd(_) => format!(
            "VERIFIED {} (zstd, no seek table): sha256 {}; LiME stream sha256 {} ({} bytes, {} ranges, structure valid){digest}",
            r.path,
            sha(&r.file_sha256),
            sha(&r.lime_sha256),
            r.lime_length,
            r.ranges.len(),
        ),
        Input::PlainLime(_) => format!(
            "VERIFIED {} (LiME): sha256 {} ({} bytes, {} ranges, structure valid){digest}",
            r.path,
            sha(&r.lime_sha256),
            r.lime_length,
            r.ranges.len(),
        ),
    }
}
