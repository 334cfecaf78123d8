//! The comparisons behind `verify`: the manifest against itself, the image
//! against the manifest, the sidecar, and every listed file.

use std::io::Read;
use std::path::Path;

use fv_evidence::manifest::{Image, Manifest, Status};
use fv_evidence::reader::SeekTable;
use fv_formats::lime::HEADER_LEN;
use sha2::{Digest, Sha256};

use super::report::{Findings, LIST_MAX, Problem};
use crate::input::{Capture, is_safe_relative};
use crate::scan::Scan;
use crate::sidecar;

/// Sidecars larger than this are not sidecars.
const SIDECAR_MAX: u64 = 1 << 20;

/// The manifest's own consistency.
pub(super) fn manifest_findings(m: &Manifest, f: &mut Findings) {
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
        // Checked: `[0, 2^64-1]` is 2^64 bytes, which no u64 length holds
        // (a wrapping `end - start + 1` made it equal 0).
        let span = r.end.checked_sub(r.start).and_then(|d| d.checked_add(1));
        if span != Some(r.length) {
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
    // "Inside one captured range" for every span, in O(n log n): ranges by
    // start, with the largest end reached so far; a span is inside some
    // range exactly when, among the ranges starting at or before it, the
    // largest end covers it. (Scanning every range for every span was
    // quadratic: 250k of each took 98 s.) Exact even for a manifest whose
    // ranges overlap, which is reported above.
    let mut by_start: Vec<(u64, u64)> = m.ranges.iter().map(|r| (r.start, r.end)).collect();
    by_start.sort_unstable();
    let mut reach = Vec::with_capacity(by_start.len());
    let mut furthest = 0u64;
    for &(_, end) in &by_start {
        furthest = furthest.max(end);
        reach.push(furthest);
    }
    let inside = |start: u64, len: u64| {
        let Some(last) = len.checked_sub(1).and_then(|l| start.checked_add(l)) else {
            return false;
        };
        let n = by_start.partition_point(|&(s, _)| s <= start);
        n > 0 && reach.get(n - 1).is_some_and(|&e| e >= last)
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
pub(super) fn against_manifest(cap: &Capture, scan: &Scan, f: &mut Findings) {
    let stream_complete =
        scan.bad_frame_count == 0 && scan.zstd_error.is_none() && scan.io_error.is_none();
    digests_against(&cap.manifest.image, scan, stream_complete, f);
    if let Some(t) = &scan.table {
        seek_table_against(cap, t, f);
    }
    records_against(&cap.manifest, scan, stream_complete, f);
}

/// The image's length and both digests against the manifest's.
fn digests_against(img: &Image, scan: &Scan, stream_complete: bool, f: &mut Findings) {
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
}

/// The seek table against the manifest's compression settings: frame
/// count, checksum flag, frame sizes.
fn seek_table_against(cap: &Capture, t: &SeekTable, f: &mut Findings) {
    let c = &cap.manifest.image.compression;
    let n = u64::from(t.frame_count());
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
    // Frame sizes: from the table's summary when they are as capture
    // writes them; the entries are read back only to name odd ones.
    let fits = |size: u32, last: bool| {
        let size = u64::from(size);
        if last {
            size != 0 && size <= c.frame_size
        } else {
            size == c.frame_size
        }
    };
    let regular = match t.frame_sizes() {
        None => true,
        Some((lo, hi, last)) => {
            (t.frame_count() == 1 || (fits(lo, false) && fits(hi, false))) && fits(last, true)
        }
    };
    if !regular {
        odd_frames(cap, t, &fits, f);
    }
}

/// Names the first [`LIST_MAX`] frames whose size is not the manifest's
/// frame size, reading the table's entries back from the image.
fn odd_frames(cap: &Capture, t: &SeekTable, fits: &dyn Fn(u32, bool) -> bool, f: &mut Findings) {
    let frame_size = cap.manifest.image.compression.frame_size;
    let count = t.frame_count();
    let mut cursor = t.cursor(0..count);
    let mut listed = 0;
    let mut file = match cap.open_file(&cap.manifest.image.file) {
        Ok(file) => file,
        Err(e) => {
            f.add("seek-table", format!("cannot be read again: {e}"));
            return;
        }
    };
    loop {
        match cursor.next_frame(t, &mut file) {
            Ok(Some(fr)) if !fits(fr.decompressed_len, fr.index + 1 == count) => {
                f.add(
                    "seek-table",
                    format!(
                        "frame {} holds {} decompressed bytes; the manifest's frame size is {frame_size}",
                        fr.index, fr.decompressed_len
                    ),
                );
                listed += 1;
                if listed == LIST_MAX {
                    break;
                }
            }
            Ok(Some(_)) => {}
            Ok(None) => break,
            Err(e) => {
                f.add("seek-table", e.to_string());
                break;
            }
        }
    }
}

/// The LiME records found against the manifest's ranges, exactly.
fn records_against(m: &Manifest, scan: &Scan, stream_complete: bool, f: &mut Findings) {
    let walked_all = scan.lime_error.is_none() && stream_complete;
    let found = &scan.records;
    for (i, r) in m.ranges.iter().enumerate() {
        match found.get(i) {
            Some(rec)
                if rec.header.start != r.start
                    || rec.header.end != r.end
                    || rec.header_offset != r.lime_offset =>
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

pub(super) fn sidecar_path(image: &Path) -> std::path::PathBuf {
    let mut s = image.as_os_str().to_os_string();
    s.push(".sha256");
    std::path::PathBuf::from(s)
}

fn read_small(file: std::fs::File) -> std::io::Result<Vec<u8>> {
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

pub(super) fn sidecar_findings(c: &Capture, scan: Option<&Scan>, f: &mut Findings) {
    let image = &c.manifest.image.file;
    let side_name = format!("{image}.sha256");
    let read = c
        .open_file(&side_name)
        .map_err(std::io::Error::other)
        .and_then(read_small);
    let bytes = match read {
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

pub(super) fn standalone_sidecar(side: &Path, image: &Path, scan: &Scan, f: &mut Findings) {
    let side_name = side.display().to_string();
    // Named by no one: never followed through a symlink, never a FIFO.
    let read = nofollow_regular(side).and_then(read_small);
    match read {
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
pub(super) fn file_findings(
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
        // Opened relative to the capture directory, component by
        // component: a symlinked directory (`ctx -> /etc`) or a FIFO is
        // refused, never followed or waited on (M2).
        let file = match c.open_file(&entry.path) {
            Ok(file) => file,
            Err(e) => {
                let why = match &e {
                    fv_core::fs::FsError::Symlink { .. } => {
                        "is reached through a symbolic link; capture never writes one, and it is not followed"
                    }
                    fv_core::fs::FsError::NotRegular { .. }
                    | fv_core::fs::FsError::NotDirectory { .. } => {
                        "is not a regular file where capture wrote one; not read"
                    }
                    _ => "cannot be read",
                };
                problem(format!("{why} ({e})"));
                continue;
            }
        };
        match hash_file(file) {
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

/// Opens `path` without following a symlink in its last component, without
/// blocking, and only if it is a regular file.
fn nofollow_regular(path: &Path) -> std::io::Result<std::fs::File> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| std::io::Error::other("not a file name"))?;
    fv_core::fs::Dir::open_following(parent)
        .and_then(|d| d.open_regular(name))
        .map_err(std::io::Error::other)
}

fn hash_file(mut file: std::fs::File) -> std::io::Result<(u64, String)> {
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
