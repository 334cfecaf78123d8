//! `capture info`: what a capture is, for a person or (`--json`) a program.
//! Reads the manifest and the seek table; hashes nothing (that is `verify`)
//! but the small context files a symbol table would be made from, to say
//! whether `capture symbols` can make one.

use std::fs::File;
use std::io::Write;
use std::path::Path;

use fv_evidence::manifest::{Manifest, Status};
use fv_evidence::reader::SeekTable;
use serde::Serialize;

use crate::error::Error;
use crate::input::{Capture, Input};
use crate::lime_map::{FileAt, ImageAt, Located, walk};
use crate::text::printable;
use crate::{Exit, InfoArgs};

/// Omitted spans listed one per line by the human output.
const OMITTED_SHOWN: usize = 20;

/// The `--json` output.
#[derive(Debug, Serialize)]
pub struct Info {
    /// The path given.
    pub path: String,
    /// `capture`, `seekable-zstd`, `zstd` or `lime`.
    pub kind: &'static str,
    /// The image or file.
    pub image: String,
    /// Its size.
    pub file_length: u64,
    /// Length of the LiME stream, when known without decompressing it all.
    pub lime_length: Option<u64>,
    /// Data frames (seekable images).
    pub frames: Option<u64>,
    /// `ok`, or why the seek table is unusable.
    pub seek_table: Option<String>,
    /// The LiME records.
    pub ranges: Vec<Located>,
    /// The manifest, for captures.
    pub manifest: Option<Manifest>,
    /// Whether `capture symbols` can make a Volatility symbol table:
    /// `yes (...)`, or `no: <why>` (captures only).
    pub symbols: Option<String>,
    /// Set when the image sits next to the `INCOMPLETE` marker of a capture
    /// that never wrote its manifest.
    pub aborted: Option<String>,
}

/// Runs `info`.
///
/// # Errors
/// [`Error`] for an unreadable or unrecognised input or a malformed stream.
pub fn run(args: &InfoArgs, out: &mut dyn Write, _err: &mut dyn Write) -> Result<Exit, Error> {
    let input = Input::open(&args.path)?;
    let data = input.data_path().to_path_buf();
    // A capture whose image is gone (or is not a regular file) still has a
    // manifest worth reading.
    let opened = match input.open_data() {
        Err(e) if !matches!(input, Input::Capture(_)) => return Err(e),
        other => other,
    };
    let file_length = opened
        .as_ref()
        .ok()
        .and_then(|f| f.metadata().ok())
        .map_or(0, |m| m.len());
    let mut info = Info {
        path: args.path.display().to_string(),
        kind: input.kind(),
        image: data.display().to_string(),
        file_length,
        lime_length: None,
        frames: None,
        seek_table: None,
        ranges: Vec::new(),
        manifest: None,
        symbols: None,
        aborted: None,
    };
    if !matches!(input, Input::Capture(_)) {
        info.aborted = crate::input::aborted_marker_near(&data).map(|m| {
            format!(
                "aborted capture: no manifest ({} is next to the image): an unfinished prefix",
                m.display()
            )
        });
    }
    match &input {
        Input::Capture(c) => describe_capture(&mut info, c, opened, &data),
        Input::Seekable(p) => {
            let mut img = ImageAt::new(opened?, p)?;
            info.frames = Some(u64::from(img.reader.table().frame_count()));
            info.lime_length = Some(img.reader.table().decompressed_len());
            info.seek_table = Some("ok".into());
            info.ranges = walk(&mut img)?;
        }
        Input::PlainLime(p) => {
            let mut f = FileAt::new(opened?, p)?;
            info.lime_length = Some(file_length);
            info.ranges = walk(&mut f)?;
        }
        Input::PlainZstd(p) => describe_plain_zstd(&mut info, opened?, p)?,
    }
    if args.json {
        let mut text = serde_json::to_vec_pretty(&info)
            .map_err(|e| Error::Report(std::io::Error::other(e)))?;
        text.push(b'\n');
        out.write_all(&text).map_err(Error::Report)?;
    } else {
        out.write_all(human(&info).as_bytes())
            .map_err(Error::Report)?;
    }
    Ok(Exit::Ok)
}

/// A capture: its manifest's ranges, the seek table's state (a broken or
/// missing image is reported, not an error), and whether `capture symbols`
/// can make a symbol table.
fn describe_capture(info: &mut Info, c: &Capture, opened: Result<File, Error>, data: &Path) {
    let table = opened.and_then(|mut f| {
        SeekTable::read_from(&mut f).map_err(|source| Error::Image {
            path: data.to_path_buf(),
            source,
        })
    });
    match table {
        Ok(t) => {
            info.frames = Some(u64::from(t.frame_count()));
            info.lime_length = Some(t.decompressed_len());
            info.seek_table = Some("ok".into());
        }
        Err(e) => info.seek_table = Some(e.to_string()),
    }
    info.ranges = c
        .manifest
        .ranges
        .iter()
        .map(|r| Located {
            start: r.start,
            end: r.end,
            header_offset: r.lime_offset,
            payload_offset: r.lime_offset.saturating_add(32),
            len: r.length,
        })
        .collect();
    info.manifest = Some(c.manifest.clone());
    info.symbols = Some(
        match crate::symbols::Context::load(c)
            .map_err(|e| e.to_string())
            .and_then(|ctx| ctx.availability(&c.manifest))
        {
            Ok(yes) => yes,
            Err(why) => format!("no: {why}"),
        },
    );
}

/// A zstd stream without a seek table: the LiME headers can only be found
/// by decompressing it all.
fn describe_plain_zstd(info: &mut Info, file: File, p: &Path) -> Result<(), Error> {
    let scan = crate::scan::plain_zstd(file, "capture info")?;
    if let Some(e) = scan.zstd_error {
        return Err(Error::Zstd {
            path: p.to_path_buf(),
            source: e,
        });
    }
    if let Some(e) = scan.lime_error {
        return Err(Error::Lime {
            path: p.to_path_buf(),
            source: e,
        });
    }
    info.lime_length = Some(scan.lime_len);
    info.ranges = scan
        .records
        .iter()
        .map(|r| Located {
            start: r.header.start,
            end: r.header.end,
            header_offset: r.header_offset,
            payload_offset: r.payload_offset,
            len: r.len,
        })
        .collect();
    Ok(())
}

fn short(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    format!("{v:.1} {}", UNITS[u])
}

fn size(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {} ({n} bytes)", UNITS[u])
    }
}

fn human(i: &Info) -> String {
    let mut s = String::new();
    // Values come from the manifest and the suspect's uname: made printable
    // so that none can move the cursor or rewrite a line (M1).
    let mut line = |k: &str, v: String| s.push_str(&format!("{k:<14} {}\n", printable(&v)));
    line("path", format!("{} ({})", i.path, i.kind));
    if let Some(a) = &i.aborted {
        line("status", format!("ABORTED: {a}"));
    }
    if let Some(m) = &i.manifest {
        human_origin(&mut line, m);
    }
    human_layout(&mut line, i);
    if let Some(m) = &i.manifest {
        human_image(&mut line, m);
    }
    if let Some(sym) = &i.symbols {
        line("symbols", sym.clone());
    }
    s
}

/// Where the memory comes from: status, case, host, kernel, time, source
/// and tool.
fn human_origin(line: &mut impl FnMut(&str, String), m: &Manifest) {
    let status = match (&m.status, &m.partial_reason) {
        (Status::Complete, _) => "complete".to_string(),
        (Status::Partial, Some(p)) => format!("PARTIAL: {}: {}", p.cause, p.detail),
        (Status::Partial, None) => "PARTIAL".to_string(),
    };
    line("status", status);
    if let Some(id) = &m.case.case_id {
        line("case", id.clone());
    }
    if let Some(e) = &m.case.examiner {
        line("examiner", e.clone());
    }
    if let Some(n) = &m.case.note {
        line("note", n.clone());
    }
    line("host", m.host.hostname.clone());
    if let Some(f) = &m.host.foreign {
        line("origin", f.clone());
    }
    if let Some(imds) = &m.host.imds {
        let parts: Vec<String> = [
            &imds.instance_id,
            &imds.account_id,
            &imds.region,
            &imds.availability_zone,
            &imds.instance_type,
            &imds.image_id,
        ]
        .iter()
        .filter_map(|v| v.as_ref().cloned())
        .collect();
        line("instance", parts.join(" "));
    } else {
        line(
            "instance",
            format!("unknown (IMDS: {})", m.host.imds_status),
        );
    }
    line(
        "kernel",
        format!(
            "{} {} ({})",
            m.host.kernel_release, m.host.kernel_version, m.host.machine
        ),
    );
    if let Some(b) = &m.host.boot_id {
        line("boot id", b.clone());
    }
    line(
        "time",
        format!(
            "{} - {} ({:.1} s, {}/s)",
            m.timing.start_utc,
            m.timing.end_utc,
            m.timing.duration_seconds,
            short(m.timing.throughput_bytes_per_second as u64)
        ),
    );
    let detail = m
        .source
        .detail
        .as_deref()
        .map(|d| format!(", {d}"))
        .unwrap_or_default();
    line(
        "source",
        format!(
            "{} {}{detail} (asked: {})",
            m.source.kind, m.source.location, m.source.requested
        ),
    );
    line(
        "tool",
        format!("{} {} ({})", m.tool.name, m.tool.version, m.tool.git_commit),
    );
}

/// The memory's layout and the file holding it: ranges, stream, frames.
fn human_layout(line: &mut impl FnMut(&str, String), i: &Info) {
    let mem: u64 = i.ranges.iter().fold(0u64, |a, r| a.saturating_add(r.len));
    line(
        "memory",
        format!("{} in {} range(s)", size(mem), i.ranges.len()),
    );
    for r in &i.ranges {
        s_push_range(line, r);
    }
    if let Some(l) = i.lime_length {
        line("lime stream", size(l));
    }
    let ratio = i
        .lime_length
        .filter(|&l| l > 0 && i.kind != "lime")
        .map(|l| {
            format!(
                ", {:.1} % of the LiME stream",
                i.file_length as f64 * 100.0 / l as f64
            )
        })
        .unwrap_or_default();
    line(
        "file",
        format!("{} {}{ratio}", i.image, size(i.file_length)),
    );
    match (i.frames, &i.seek_table) {
        (Some(f), st) => line(
            "frames",
            format!("{f}, seek table {}", st.as_deref().unwrap_or("absent")),
        ),
        (None, Some(problem)) => line("seek table", format!("UNUSABLE: {problem}")),
        (None, None) => {}
    }
}

/// How the image was written and what is missing from it: compression,
/// digests, unreadable, not captured and omitted spans, warnings.
fn human_image(line: &mut impl FnMut(&str, String), m: &Manifest) {
    let c = &m.image.compression;
    line(
        "compression",
        format!(
            "{} level {}, {} threads, frames of {}, checksums {}",
            c.format,
            c.level,
            c.threads,
            size(c.frame_size),
            if c.checksums { "yes" } else { "no" }
        ),
    );
    line("lime sha256", m.image.lime_sha256.clone());
    line("file sha256", m.image.compressed_sha256.clone());
    if m.unreadable.is_empty() {
        line("unreadable", "none".into());
    }
    for u in &m.unreadable {
        line(
            "unreadable",
            format!("{:#x} +{} ({})", u.start, u.length, u.error),
        );
    }
    for u in &m.not_captured {
        line(
            "not captured",
            format!("{:#x} +{} ({})", u.start, u.length, u.error),
        );
    }
    // What a stop left out of the image: counted in full, listed up to
    // OMITTED_SHOWN (a 24 TiB host has thousands; --json has them all).
    if m.status == Status::Partial || !m.omitted.is_empty() {
        let total = m
            .omitted
            .iter()
            .fold(0u64, |a, s| a.saturating_add(s.length));
        line(
            "omitted",
            format!("{} range(s), {}", m.omitted.len(), size(total)),
        );
        for u in m.omitted.iter().take(OMITTED_SHOWN) {
            line("", format!("{:#x} +{} ({})", u.start, u.length, u.error));
        }
        if m.omitted.len() > OMITTED_SHOWN {
            line(
                "",
                format!(
                    "... and {} more (capture info --json lists them all)",
                    m.omitted.len() - OMITTED_SHOWN
                ),
            );
        }
    }
    if let Some(why) = &m.remainder_unknown {
        line(
            "remainder",
            format!("UNKNOWN: {why} (more may be missing than omitted lists)"),
        );
    }
    for w in &m.warnings {
        line("warning", w.clone());
    }
}

fn s_push_range(line: &mut impl FnMut(&str, String), r: &Located) {
    line(
        "",
        format!("{:#014x}-{:#014x}  {}", r.start, r.end, size(r.len)),
    );
}
