//! `capture verify`: recompute and compare everything, report every finding
//! with where it is, and end in one line a person can paste into a case log.

use std::io::Write;
use std::path::Path;

use fv_evidence::manifest::{IMAGE_FILE, MANIFEST_FILE, Manifest, Status};
use fv_formats::lime::{HEADER_LEN, Record};
use sha2::{Digest, Sha256};

use crate::error::Error;
use crate::input::Input;
use crate::lime_map::{ImageAt, Located, describe_stream_span};
use crate::scan::{self, Scan};
use crate::text::write_line;

/// What begins verify's progress lines on stderr.
const LABEL: &str = "capture verify";

mod anchored;
mod checks;
mod omitted;
mod report;
use crate::{Exit, VerifyArgs, sidecar};
use checks::{
    against_manifest, file_findings, manifest_findings, sidecar_findings, sidecar_path,
    standalone_sidecar,
};
use report::{Findings, LIST_MAX};
pub use report::{Problem, RangeOut, Report};

/// Runs `verify`.
///
/// # Errors
/// [`Error`] when verification cannot start (unreadable or unrecognised
/// input, unusable manifest, bad `--sha256`, a custody or fleet record that
/// is not one, no fleet entry for the capture); findings about the
/// evidence are reported and give [`Exit::EvidenceBad`].
pub fn run(args: &VerifyArgs, out: &mut dyn Write, err: &mut dyn Write) -> Result<Exit, Error> {
    let expected = args
        .sha256
        .as_deref()
        .map(sidecar::normalise_digest)
        .transpose()
        .map_err(Error::Usage)?;
    let anchors = crate::anchor::expected(&crate::anchor::Given {
        manifest: args.expect_manifest_sha256.as_deref(),
        image: args.expect_sha256.as_deref(),
        lime: args.expect_lime_sha256.as_deref(),
        record: args.custody_record.as_deref(),
        versions: args.custody_versions.as_deref(),
        fleet_versions: args.fleet_versions.as_deref(),
        fleet_entry: args.fleet_entry.as_deref(),
    })?;
    let threads = crate::threads(args.threads);
    let report = match Input::open(&args.path) {
        Ok(input) => {
            // A fleet record's entry is the capture's own: chosen before
            // the image is read.
            let manifest_sha = match &input {
                Input::Capture(c) => Some(crate::hex(&Sha256::digest(&c.manifest_bytes))),
                _ => None,
            };
            let anchors = anchors.resolve(manifest_sha.as_deref())?;
            let mut r = verify(&input, &args.path, expected.as_deref(), threads)?;
            anchored::apply(&mut r, Some(&input), &anchors);
            r
        }
        // A damaged manifest is a finding, not the end: the image next to
        // it is still checked on its own.
        // So is an aborted capture (no manifest at all): its image, if any,
        // is checked on its own, but the verdict is NOT VERIFIED.
        Err(
            e @ (Error::Manifest { .. } | Error::ManifestInvalid { .. } | Error::Aborted { .. }),
        ) => {
            let anchors = anchors.resolve(None)?;
            let mut report = without_manifest(&args.path, &e, expected.as_deref(), threads)?;
            anchored::apply(&mut report, None, &anchors);
            report
        }
        Err(e) => return Err(e),
    };
    print(&report, args.json, out, err)?;
    Ok(if report.verified {
        Exit::Ok
    } else {
        Exit::EvidenceBad
    })
}

/// The report on a capture whose manifest is damaged or missing (`e`): the
/// image next to it, if any, checked on its own, and NOT VERIFIED.
fn without_manifest(
    path: &Path,
    e: &Error,
    expected: Option<&str>,
    threads: usize,
) -> Result<Report, Error> {
    let dir = if path.is_dir() {
        path.to_path_buf()
    } else {
        match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => std::path::PathBuf::from("."),
        }
    };
    let image = dir.join(IMAGE_FILE);
    // Only a regular file, never a symlink, is checked.
    let regular = fv_core::fs::Dir::open_following(&dir)
        .and_then(|d| d.stat_child(std::ffi::OsStr::new(IMAGE_FILE)))
        .is_ok_and(|st| st.st_mode & 0o170_000 == 0o100_000);
    let mut report = if regular {
        let input = Input::open(&image)?;
        verify(&input, path, expected, threads)?
    } else {
        Report::empty(path)
    };
    let (check, checked) = if matches!(e, Error::Aborted { .. }) {
        (
            "aborted",
            if regular {
                "; the image left behind was checked on its own"
            } else {
                ""
            },
        )
    } else {
        ("manifest", "; the image was checked on its own")
    };
    // The aborted-capture marker next to the image says the same
    // thing again: one finding is enough.
    report.problems.retain(|p| p.check != "aborted");
    report.problems.insert(
        0,
        Problem {
            check,
            file: MANIFEST_FILE.into(),
            frame: None,
            affects: Vec::new(),
            message: format!("{e}{checked}"),
        },
    );
    report.verified = false;
    report.kind = "capture";
    report.summary = format!(
        "NOT VERIFIED {}: {} problem(s) found (listed above; exit code 1)",
        path.display(),
        report.problems.len()
    );
    Ok(report)
}

/// The report on stdout: JSON, or one `FAILED` line per finding and the
/// summary line (notes on stderr).
fn print(
    report: &Report,
    json: bool,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<(), Error> {
    if json {
        let mut text = serde_json::to_vec_pretty(report)
            .map_err(|e| Error::Report(std::io::Error::other(e)))?;
        text.push(b'\n');
        return out.write_all(&text).map_err(Error::Report);
    }
    // Every line is made printable: file names, hostnames and messages
    // quoting the manifest are the attacker's text (M1).
    for p in &report.problems {
        let mut line = format!("FAILED {}: {}: {}", p.check, p.file, p.message);
        if !p.affects.is_empty() {
            line.push_str(&format!(" [affects physical {}]", p.affects.join(", ")));
        }
        write_line(out, &line).map_err(Error::Report)?;
    }
    // Notes go to stderr so that stdout of a good run is the one line
    // for the case log.
    for n in &report.notes {
        write_line(err, &format!("note: {n}")).map_err(Error::Report)?;
    }
    write_line(out, &report.summary).map_err(Error::Report)
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
    let image_name = match input {
        Input::Capture(c) => c.manifest.image.file.clone(),
        _ => input.data_path().display().to_string(),
    };
    let mut f = Findings {
        file: image_name,
        problems: Vec::new(),
    };
    let mut notes = Vec::new();
    let scan = scan_input(input, threads, &mut f)?;
    marker_findings(input, &mut f, &mut notes);
    // Where damage in the stream lies physically: from the manifest when
    // there is one, else from the image's own headers.
    let map = stream_map(input, scan.as_ref());
    if let Some(scan) = &scan {
        image_findings(scan, &map, &mut f, input);
    }
    let files_checked = record_findings(input, scan.as_ref(), &mut f, &mut notes);
    let digest_matched = digest_findings(expected_digest, scan.as_ref(), &mut f);
    let mut report = Report {
        path: given.display().to_string(),
        kind: input.kind(),
        verified: f.problems.is_empty(),
        summary: String::new(),
        image: input.data_path().display().to_string(),
        file_length: scan.as_ref().map_or(0, |s| s.file_len),
        file_sha256: scan.as_ref().and_then(|s| s.file_sha256.clone()),
        lime_length: scan.as_ref().map_or(0, |s| s.lime_len),
        lime_sha256: scan.as_ref().and_then(|s| s.lime_sha256.clone()),
        frames: scan
            .as_ref()
            .and_then(|s| s.table.as_ref())
            .map(|t| u64::from(t.frame_count())),
        ranges: scan
            .as_ref()
            .map(|s| s.records.iter().map(RangeOut::from).collect())
            .unwrap_or_default(),
        files_checked,
        status: match input {
            Input::Capture(c) => Some(c.manifest.status),
            _ => None,
        },
        digest_matched,
        problems: f.problems,
        notes,
        anchors: Vec::new(),
        custody_record: None,
    };
    report.summary = summary_line(&report, input);
    Ok(report)
}

/// Reads the image once: every byte hashed, every frame decompressed and
/// checked, the LiME stream walked. `None` when a capture's image cannot be
/// opened (a finding).
fn scan_input(input: &Input, threads: usize, f: &mut Findings) -> Result<Option<Scan>, Error> {
    Ok(match input {
        Input::Capture(c) => match input.open_data() {
            Ok(file) => Some(scan::seekable(file, &c.image_path, threads, LABEL)?),
            Err(Error::Input { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                f.add("file", "the image file named by the manifest is missing");
                None
            }
            Err(e) => {
                f.add("file", format!("the image is not read: {e}"));
                None
            }
        },
        Input::Seekable(p) => Some(scan::seekable(input.open_data()?, p, threads, LABEL)?),
        Input::PlainZstd(_) => Some(scan::plain_zstd(input.open_data()?, LABEL)?),
        Input::PlainLime(_) => Some(scan::plain_lime(input.open_data()?, LABEL)?),
    })
}

/// The aborted-capture marker: next to a bare image it makes the image an
/// unfinished prefix; next to a manifest it only says where the run stopped.
fn marker_findings(input: &Input, f: &mut Findings, notes: &mut Vec<String>) {
    if !matches!(input, Input::Capture(_))
        && let Some(marker) = crate::input::aborted_marker_near(input.data_path())
    {
        f.add(
            "aborted",
            format!(
                "aborted capture: no manifest ({} is next to the image): the capture that wrote it was stopped before it finished, so the image is an unfinished prefix however clean it decodes",
                marker.display()
            ),
        );
    }
    if let Input::Capture(c) = input
        && c.marker_left
    {
        notes.push(format!(
            "{} is still there next to the manifest: the capture was stopped right after writing its manifest (the manifest is complete)",
            fv_evidence::inprogress::INCOMPLETE_FILE
        ));
    }
}

/// Where each record of the stream lies physically: from the manifest,
/// else from the image's own headers, else from what the scan walked.
fn stream_map(input: &Input, scan: Option<&Scan>) -> Vec<Located> {
    match input {
        Input::Capture(c) => manifest_map(&c.manifest),
        Input::Seekable(p) => {
            let from_headers = input
                .open_data()
                .and_then(|file| ImageAt::new(file, p))
                .and_then(|mut img| crate::lime_map::walk(&mut img));
            from_headers.unwrap_or_else(|_| {
                scan.map(|s| s.records.iter().map(located).collect())
                    .unwrap_or_default()
            })
        }
        _ => Vec::new(),
    }
}

/// A capture against its manifest, sidecar and listed files; a bare image
/// against a sidecar next to it. Returns how many listed files were checked.
fn record_findings(
    input: &Input,
    scan: Option<&Scan>,
    f: &mut Findings,
    notes: &mut Vec<String>,
) -> u64 {
    if let Input::Capture(c) = input {
        manifest_findings(&c.manifest, f);
        omitted::manifest_findings(&c.manifest, f);
        if let Some(scan) = scan {
            against_manifest(c, scan, f);
            omitted::against_image(&c.manifest, scan, f);
        }
        notes.extend(omitted::coverage_note(&c.manifest));
        sidecar_findings(c, scan, f);
        return file_findings(c, scan, f, notes);
    }
    if let Some(scan) = scan {
        // A sidecar next to a bare image is checked too.
        let data_path = input.data_path();
        let side = sidecar_path(data_path);
        if std::fs::symlink_metadata(&side).is_ok() {
            standalone_sidecar(&side, data_path, scan, f);
            notes.push(format!("checked {}", side.display()));
        }
    }
    0
}

/// `--sha256`: which digest it matched (`file` or `lime`), or a finding.
fn digest_findings(
    want: Option<&str>,
    scan: Option<&Scan>,
    f: &mut Findings,
) -> Option<&'static str> {
    let (Some(want), Some(scan)) = (want, scan) else {
        return None;
    };
    if scan.file_sha256.as_deref() == Some(want) {
        return Some("file");
    }
    if scan.lime_sha256.as_deref() == Some(want) {
        return Some("lime");
    }
    f.add(
        "digest",
        format!(
            "--sha256 {want} matches neither the file ({}) nor its LiME stream ({})",
            scan.file_sha256.as_deref().unwrap_or("not computed"),
            scan.lime_sha256.as_deref().unwrap_or("not computed"),
        ),
    );
    None
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
    for bad in scan.bad_frames.iter().take(LIST_MAX) {
        let fr = bad.frame;
        f.problems.push(Problem {
            check: "frame",
            file: f.file.clone(),
            frame: Some(fr.index),
            affects: describe_stream_span(map, fr.decompressed_offset, fr.decompressed_end()),
            message: bad.error.to_string(),
        });
    }
    let listed = scan.bad_frames.len().min(LIST_MAX) as u64;
    if scan.bad_frame_count > listed {
        f.add(
            "frame",
            format!("... and {} more bad frames", scan.bad_frame_count - listed),
        );
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
        // Where decoding stopped, physically: from the manifest, else from
        // the records walked before it stopped.
        let walked: Vec<Located> = scan.records.iter().map(located).collect();
        let known = if map.is_empty() { &walked[..] } else { map };
        let mut affects =
            describe_stream_span(known, scan.lime_len, scan.lime_len.saturating_add(1));
        if let Some(a) = affects.first_mut() {
            let start = a.split_once('-').map_or(a.as_str(), |(s, _)| s);
            *a = format!("from {start} on");
        }
        f.problems.push(Problem {
            check: "frame",
            file: f.file.clone(),
            frame: None,
            affects,
            message: format!(
                "the {what} cannot be decompressed after {} bytes: {e}",
                scan.lime_len
            ),
        });
    }
    if let Some(e) = &scan.io_error {
        f.add("read", e.to_string());
    }
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
            // A partial capture says how much of the source is not in the
            // image, so the case log line cannot overstate the evidence.
            let missing = format!(
                "; {} range(s), {} bytes omitted{}",
                m.omitted.len(),
                omitted::bytes(&m.omitted),
                if m.remainder_unknown.is_some() {
                    ", remainder unknown"
                } else {
                    ""
                }
            );
            let status = match (&m.status, &m.partial_reason) {
                (Status::Complete, _) => "complete".to_string(),
                (Status::Partial, Some(p)) => {
                    format!("PARTIAL ({}: {}{missing})", p.cause, p.detail)
                }
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
