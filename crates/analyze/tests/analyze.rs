//! `capture verify|extract|info` end to end through the clap grammar and
//! `fv_analyze::run_with`, on images made by the toolkit's real writer.

// Test code: a panic is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::os::unix::fs::{FileExt, MetadataExt};

use common::*;
use fv_formats::lime::Header;

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

fn json(s: &str) -> serde_json::Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("not JSON ({e}): {s}"))
}

#[test]
fn verify_a_good_capture_prints_one_pasteable_line() {
    let t = tmp();
    let f = capture(t.path(), "cap", &RANGES);
    let r = run(&["verify", f.d()]);
    assert_eq!(r.code, 0, "{r:?}");
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines.len(), 1, "{}", r.stdout);
    let line = lines[0];
    assert!(line.starts_with("VERIFIED "), "{line}");
    assert!(line.contains(&hex(&f.summary.zst_sha256)), "{line}");
    assert!(line.contains(&hex(&f.summary.lime_sha256)), "{line}");
    assert!(line.contains("3 ranges"), "{line}");
    assert!(line.contains("3 listed files"), "{line}");
    assert!(line.contains("case IR-42, capture complete"), "{line}");

    // The manifest path works as well as the directory; --json for machines.
    let r = run(&["verify", f.manifest_path().to_str().unwrap(), "--json"]);
    assert_eq!(r.code, 0, "{r:?}");
    let v = json(&r.stdout);
    assert_eq!(v["verified"], true);
    assert_eq!(v["kind"], "capture");
    assert_eq!(v["lime_sha256"], hex(&f.summary.lime_sha256));
    assert_eq!(v["file_sha256"], hex(&f.summary.zst_sha256));
    assert_eq!(v["frames"], f.summary.frames);
    assert_eq!(v["ranges"].as_array().unwrap().len(), 3);
    assert_eq!(v["ranges"][2]["start"], 0x1_0000_0000u64);
    assert_eq!(v["problems"].as_array().unwrap().len(), 0);
    // The evidence is untouched.
    assert_eq!(
        sha(&std::fs::read(f.image()).unwrap()),
        hex(&f.summary.zst_sha256)
    );
}

#[test]
fn extract_lime_equals_zstd_d_and_the_original_stream() {
    let t = tmp();
    let f = capture(t.path(), "cap", &RANGES);
    let out = t.path().join("out.lime");
    let r = run(&["extract", f.d(), "-o", path_str(&out)]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("(matches the manifest)"), "{}", r.stdout);
    let extracted = std::fs::read(&out).unwrap();
    assert_eq!(extracted, f.stream);
    // The zstd command line tool gives the same bytes.
    let z = std::process::Command::new("zstd")
        .args(["-d", "-c", "-q"])
        .arg(f.image())
        .output()
        .expect("the zstd command is needed for this test (apt-get install zstd)");
    assert!(z.status.success(), "{z:?}");
    assert_eq!(z.stdout, extracted);
    // 0600, no temporary left behind.
    assert_eq!(std::fs::metadata(&out).unwrap().mode() & 0o777, 0o600);
    let names: Vec<String> = std::fs::read_dir(t.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().all(|n| !n.contains("partial")), "{names:?}");
}

#[test]
fn extract_padded_is_sparse_with_addresses_as_offsets() {
    let t = tmp();
    let f = capture(t.path(), "cap", &RANGES);
    let out = t.path().join("mem.padded");
    let r = run(&["extract", f.d(), "--format", "padded", "-o", path_str(&out)]);
    assert_eq!(r.code, 0, "{r:?}");
    let file = std::fs::File::open(&out).unwrap();
    let meta = file.metadata().unwrap();
    assert_eq!(meta.len(), RANGES[2].1 + 1);
    for &(s, e) in &RANGES {
        let mut buf = vec![0u8; (e - s + 1) as usize];
        file.read_exact_at(&mut buf, s).unwrap();
        assert_eq!(buf, payload(s, buf.len()), "range {s:#x}-{e:#x}");
    }
    // Gaps read as zeros.
    let mut gap = vec![1u8; 4096];
    file.read_exact_at(&mut gap, 0x60_0000).unwrap();
    assert!(gap.iter().all(|&b| b == 0));
    // Sparse: 4 GiB + 256 KiB long, a few MiB allocated (zero pages of the
    // ranges are holes too).
    let allocated = meta.blocks() * 512;
    let data: u64 = RANGES.iter().map(|(s, e)| e - s + 1).sum();
    assert!(
        allocated < data,
        "allocated {allocated} bytes for {data} bytes of ranges: zero pages were written"
    );
    assert!(allocated * 100 < meta.len(), "allocated {allocated}");
}

#[test]
fn extract_raw_concatenates_and_warns() {
    let t = tmp();
    let f = capture(t.path(), "cap", &RANGES);
    let out = t.path().join("mem.raw");
    let r = run(&["extract", f.d(), "--format", "raw", "-o", path_str(&out)]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("addresses are lost"), "{}", r.stderr);
    let mut want = Vec::new();
    for &(s, e) in &RANGES {
        want.extend_from_slice(&payload(s, (e - s + 1) as usize));
    }
    assert_eq!(std::fs::read(&out).unwrap(), want);
}

#[test]
fn ranges_equal_bytes_cut_from_a_full_extract() {
    let t = tmp();
    let f = capture(t.path(), "cap", &RANGES);
    let raw_full = t.path().join("full.raw");
    assert_eq!(
        run(&[
            "extract",
            f.d(),
            "--format",
            "raw",
            "-o",
            path_str(&raw_full)
        ])
        .code,
        0
    );
    let full = std::fs::read(&raw_full).unwrap();
    // Raw offset of a physical address.
    let raw_off = |p: u64| -> usize {
        let mut off = 0u64;
        for &(s, e) in &RANGES {
            if p >= s && p <= e {
                return (off + p - s) as usize;
            }
            off += e - s + 1;
        }
        panic!("{p:#x} not captured");
    };
    // Inside one range, hex and decimal, and the last 4 KiB of the image.
    for (spec, s, e) in [
        ("0x12345-0x23456", 0x12345u64, 0x23456u64),
        ("1048576-1052671", 1_048_576, 1_052_671),
        ("0x10003f000-0x10003ffff", 0x1_0003_f000, 0x1_0003_ffff),
    ] {
        let out = t.path().join(format!("r{s:x}.raw"));
        let r = run(&[
            "extract",
            f.d(),
            "--format",
            "raw",
            "--range",
            spec,
            "-o",
            path_str(&out),
        ]);
        assert_eq!(r.code, 0, "{r:?}");
        assert_eq!(
            std::fs::read(&out).unwrap(),
            &full[raw_off(s)..=raw_off(e)],
            "{spec}"
        );
        // LiME of the same range: one header for exactly that range.
        let lo = t.path().join(format!("r{s:x}.lime"));
        let r = run(&["extract", f.d(), "--range", spec, "-o", path_str(&lo)]);
        assert_eq!(r.code, 0, "{r:?}");
        let mut want = Header::new(s, e).to_bytes().to_vec();
        want.extend_from_slice(&full[raw_off(s)..=raw_off(e)]);
        assert_eq!(std::fs::read(&lo).unwrap(), want, "{spec}");
    }
    // The last 4 KiB needs one frame, not the whole image.
    let out = t.path().join("tail.raw");
    let r = run(&[
        "extract",
        f.d(),
        "--format",
        "raw",
        "--range",
        "0x10003f000-0x10003ffff",
        "-o",
        path_str(&out),
    ]);
    assert!(
        r.stdout.contains(", 1 frame(s) decompressed"),
        "{}",
        r.stdout
    );
    assert!(f.summary.frames > 20);

    // Across the gap between two ranges: a LiME stream of two clipped
    // records, and padded output with the addresses in place.
    let lo = t.path().join("gap.lime");
    let r = run(&[
        "extract",
        f.d(),
        "--range",
        "0x9f000-0x100fff",
        "-o",
        path_str(&lo),
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    let mut want = Header::new(0x9_f000, 0x9_fbff).to_bytes().to_vec();
    want.extend_from_slice(&full[raw_off(0x9_f000)..=raw_off(0x9_fbff)]);
    want.extend_from_slice(&Header::new(0x10_0000, 0x10_0fff).to_bytes());
    want.extend_from_slice(&full[raw_off(0x10_0000)..=raw_off(0x10_0fff)]);
    assert_eq!(std::fs::read(&lo).unwrap(), want);
    let pad = t.path().join("gap.padded");
    let r = run(&[
        "extract",
        f.d(),
        "--format",
        "padded",
        "--range",
        "0x9f000-0x100fff",
        "-o",
        path_str(&pad),
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    let p = std::fs::read(&pad).unwrap();
    assert_eq!(p.len(), 0x10_1000);
    assert!(p[..0x9_f000].iter().all(|&b| b == 0));
    assert_eq!(
        &p[0x9_f000..=0x9_fbff],
        &full[raw_off(0x9_f000)..=raw_off(0x9_fbff)]
    );
    assert_eq!(
        &p[0x10_0000..],
        &full[raw_off(0x10_0000)..=raw_off(0x10_0fff)]
    );

    // A range with no captured memory is a usage error naming what is there.
    let r = run(&[
        "extract",
        f.d(),
        "--range",
        "0x600000-0x6fffff",
        "-o",
        path_str(&t.path().join("none")),
    ]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.error.unwrap().contains("0x1000-0x9fbff"));
}

#[test]
fn extract_refuses_to_overwrite_and_never_touches_the_evidence() {
    let t = tmp();
    let f = capture(t.path(), "cap", &[(0x1000, 0x4_ffff)]);
    let out = t.path().join("x.lime");
    std::fs::write(&out, b"keep me").unwrap();
    let r = run(&["extract", f.d(), "-o", path_str(&out)]);
    assert_eq!(r.code, 3, "{r:?}");
    assert!(r.error.unwrap().contains("--force"));
    assert_eq!(std::fs::read(&out).unwrap(), b"keep me");
    let r = run(&["extract", f.d(), "-o", path_str(&out), "--force"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(std::fs::read(&out).unwrap(), f.stream);
    // Not even --force writes over the image.
    let before = std::fs::read(f.image()).unwrap();
    let r = run(&["extract", f.d(), "-o", path_str(&f.image()), "--force"]);
    assert_eq!(r.code, 3, "{r:?}");
    assert!(r.error.unwrap().contains("evidence itself"));
    assert_eq!(std::fs::read(f.image()).unwrap(), before);
    // A symlinked output directory is refused.
    std::os::unix::fs::symlink(t.path().join("cap"), t.path().join("link")).unwrap();
    let r = run(&[
        "extract",
        f.d(),
        "-o",
        path_str(&t.path().join("link/out.lime")),
    ]);
    assert_eq!(r.code, 3, "{r:?}");
}

#[test]
fn a_flipped_byte_is_detected_and_located() {
    let t = tmp();
    let f = capture(t.path(), "cap", &RANGES);
    // Flip a byte in the middle of frame 10 (stream bytes 640 KiB..704 KiB,
    // inside the second range).
    let mut file = std::fs::File::open(f.image()).unwrap();
    let table = fv_evidence::reader::SeekTable::read_from(&mut file).unwrap();
    let fr = table.read_all_frames(&mut file).unwrap()[10];
    let mut img = std::fs::read(f.image()).unwrap();
    img[(fr.compressed_offset + u64::from(fr.compressed_len) / 2) as usize] ^= 0x01;
    std::fs::write(f.image(), &img).unwrap();

    let r = run(&["verify", f.d(), "--json"]);
    assert_eq!(r.code, 1, "{r:?}");
    let v = json(&r.stdout);
    assert_eq!(v["verified"], false);
    let problems = v["problems"].as_array().unwrap();
    let frame = problems.iter().find(|p| p["check"] == "frame").unwrap();
    assert_eq!(frame["frame"], 10);
    // Stream bytes 655360..720895 hold physical 0x100000 + (655360 - 64 - 0x9ec00 ...).
    let payload1 = 32 + (0x9_fbff - 0x1000 + 1) + 32;
    let a = 0x10_0000 + (10 * u64::from(FRAME) - payload1);
    let b = a + u64::from(FRAME) - 1;
    assert_eq!(frame["affects"][0], format!("{a:#x}-{b:#x}"), "{frame}");
    assert!(
        frame["message"]
            .as_str()
            .unwrap()
            .starts_with("frame 10 (file bytes"),
        "{frame}"
    );
    // The file's hash disagrees too, and the LiME hash cannot be computed.
    assert!(problems.iter().any(|p| p["check"] == "file-sha256"));
    assert!(problems.iter().any(|p| p["check"] == "sidecar"));

    // Human report: each problem, then the verdict.
    let r = run(&["verify", f.d()]);
    assert_eq!(r.code, 1);
    assert!(
        r.stdout
            .contains(&format!("[affects physical {a:#x}-{b:#x}]")),
        "{}",
        r.stdout
    );
    assert!(r.stdout.lines().last().unwrap().starts_with("NOT VERIFIED"));

    // Extract stops at the bad frame, leaves nothing behind.
    let out = t.path().join("bad.lime");
    let r = run(&["extract", f.d(), "-o", path_str(&out)]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.error.unwrap().contains("frame 10"));
    assert!(!out.exists());
    // A range away from the damage still extracts.
    let r = run(&[
        "extract",
        f.d(),
        "--range",
        "0x1000-0x1fff",
        "-o",
        path_str(&out),
    ]);
    assert_eq!(r.code, 0, "{r:?}");
}

#[test]
fn truncated_and_appended_images_are_named() {
    let t = tmp();
    let f = capture(t.path(), "cap", &RANGES);
    let img = std::fs::read(f.image()).unwrap();

    std::fs::write(f.image(), &img[..img.len() / 2]).unwrap();
    let r = run(&["verify", f.d(), "--json"]);
    assert_eq!(r.code, 1, "{r:?}");
    let v = json(&r.stdout);
    let checks: Vec<&str> = v["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["check"].as_str().unwrap())
        .collect();
    assert!(checks.contains(&"seek-table"), "{checks:?}");
    assert!(
        checks.contains(&"frame"),
        "{checks:?}: truncated zstd data is named"
    );
    let r = run(&["extract", f.d(), "-o", path_str(&t.path().join("o"))]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.error.unwrap().contains("no seek table"));

    let mut longer = img.clone();
    longer.extend_from_slice(b"trailing garbage");
    std::fs::write(f.image(), &longer).unwrap();
    let r = run(&["verify", f.d()]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stdout.contains("seek-table"), "{}", r.stdout);

    // Seek table removed: a plain zstd stream where the manifest promises
    // a seekable image.
    let table = fv_evidence::reader::SeekTable::read_from(&mut std::io::Cursor::new(&img)).unwrap();
    std::fs::write(f.image(), &img[..table.data_len() as usize]).unwrap();
    let r = run(&["verify", f.d(), "--json"]);
    assert_eq!(r.code, 1);
    let v = json(&r.stdout);
    // The data frames themselves are intact and said to be.
    assert_eq!(v["lime_sha256"], hex(&f.summary.lime_sha256));
    assert!(r.stdout.contains("no seek table"), "{}", r.stdout);
}

#[test]
fn a_damaged_seek_table_entry_is_named() {
    let t = tmp();
    let f = capture(t.path(), "cap", &RANGES);
    let mut img = std::fs::read(f.image()).unwrap();
    let table = fv_evidence::reader::SeekTable::read_from(&mut std::io::Cursor::new(&img)).unwrap();
    // Entry 3's checksum.
    let at = (table.data_len() + 8 + 3 * 12 + 8) as usize;
    img[at] ^= 0xff;
    std::fs::write(f.image(), &img).unwrap();
    let r = run(&["verify", f.d(), "--json"]);
    assert_eq!(r.code, 1);
    let v = json(&r.stdout);
    let p = v["problems"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["check"] == "frame")
        .unwrap()
        .clone();
    assert_eq!(p["frame"], 3);
    assert!(
        p["message"].as_str().unwrap().contains("checksum mismatch"),
        "{p}"
    );
}

#[test]
fn a_manifest_that_disagrees_is_named() {
    let t = tmp();
    let mut f = capture(t.path(), "cap", &RANGES);
    f.manifest.ranges[1].end -= 0x1000;
    f.manifest.ranges[1].length -= 0x1000;
    f.manifest.image.lime_sha256 = "00".repeat(32);
    f.manifest.files[2].size += 1;
    f.manifest.status = fv_evidence::manifest::Status::Partial;
    f.save_manifest();
    let r = run(&["verify", f.d(), "--json"]);
    assert_eq!(r.code, 1);
    let v = json(&r.stdout);
    let msgs: Vec<String> = v["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| format!("{} {} {}", p["check"], p["file"], p["message"]))
        .collect();
    let has = |needle: &str| msgs.iter().any(|m| m.contains(needle));
    assert!(has("LiME record 1 is 0x100000-0x4fffff"), "{msgs:#?}");
    assert!(has("the LiME stream's SHA-256 is"), "{msgs:#?}");
    assert!(has("context/banner"), "{msgs:#?}");
    assert!(has("status is partial but no partial_reason"), "{msgs:#?}");
    assert!(has("lime_offset"), "{msgs:#?}");

    // A listed file that escapes the directory is not opened.
    f.manifest = capture(t.path(), "cap2", &RANGES).manifest;
    f.manifest.files.push(fv_evidence::manifest::FileEntry {
        path: "../cap2/manifest.json".into(),
        size: 1,
        sha256: "00".repeat(32),
    });
    f.save_manifest();
    let r = run(&["verify", f.d()]);
    assert_eq!(r.code, 1);
    assert!(
        r.stdout.contains("outside the capture directory"),
        "{}",
        r.stdout
    );
}

#[test]
fn bad_lime_streams_inside_an_image_are_named() {
    let t = tmp();
    // Overlapping records.
    let mut s = lime(&[(0x1000, 0x1fff)]);
    s.extend_from_slice(&lime(&[(0x1800, 0x2fff)]));
    let f = capture_of(
        t.path(),
        "overlap",
        &[(0x1000, 0x1fff), (0x1800, 0x2fff)],
        s,
    );
    let r = run(&["verify", f.d()]);
    assert_eq!(r.code, 1);
    assert!(r.stdout.contains("lime-structure"), "{}", r.stdout);
    assert!(r.stdout.contains("overlaps or precedes"), "{}", r.stdout);
    let r = run(&["extract", f.d(), "-o", path_str(&t.path().join("o1"))]);
    assert_eq!(r.code, 1, "{r:?}");

    // Unordered records.
    let mut s = lime(&[(0x5000, 0x5fff)]);
    s.extend_from_slice(&lime(&[(0x1000, 0x1fff)]));
    let f = capture_of(
        t.path(),
        "unordered",
        &[(0x5000, 0x5fff), (0x1000, 0x1fff)],
        s,
    );
    let r = run(&["verify", f.d()]);
    assert_eq!(r.code, 1);
    assert!(r.stdout.contains("overlaps or precedes"), "{}", r.stdout);

    // Trailing garbage after the last record (inside the compressed stream).
    let mut s = lime(&[(0x1000, 0x1fff)]);
    s.extend_from_slice(b"garbage");
    let f = capture_of(t.path(), "trailing", &[(0x1000, 0x1fff)], s);
    let r = run(&["verify", f.d()]);
    assert_eq!(r.code, 1);
    assert!(r.stdout.contains("trailing byte(s)"), "{}", r.stdout);
    let r = run(&["info", f.image().to_str().unwrap()]);
    assert_eq!(r.code, 1, "{r:?}");
}

#[test]
fn plain_lime_and_plain_zstd_files_are_checked() {
    let t = tmp();
    let stream = lime(&RANGES[..2]);
    let lp = t.path().join("dump.lime");
    std::fs::write(&lp, &stream).unwrap();
    let digest = sha(&stream);
    let r = run(&["verify", path_str(&lp), "--sha256", &digest]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stdout.contains("matches the given SHA-256"),
        "{}",
        r.stdout
    );
    let r = run(&["verify", path_str(&lp), "--sha256", &"ab".repeat(32)]);
    assert_eq!(r.code, 1, "{r:?}");
    let r = run(&["verify", path_str(&lp), "--sha256", "nothex"]);
    assert_eq!(r.code, 2, "{r:?}");

    // zstd without a seek table (as `zstd` makes it), multi-frame.
    let zp = t.path().join("dump.lime.zst");
    let mut z = zstd::stream::encode_all(&stream[..stream.len() / 2], 3).unwrap();
    z.extend_from_slice(&zstd::stream::encode_all(&stream[stream.len() / 2..], 3).unwrap());
    std::fs::write(&zp, &z).unwrap();
    let r = run(&["verify", path_str(&zp), "--sha256", &digest, "--json"]);
    assert_eq!(r.code, 0, "{r:?}");
    let v = json(&r.stdout);
    assert_eq!(v["kind"], "zstd");
    assert_eq!(v["digest_matched"], "lime");
    assert_eq!(v["file_sha256"], sha(&z));
    let r = run(&["info", path_str(&zp), "--json"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(json(&r.stdout)["ranges"].as_array().unwrap().len(), 2);

    // Truncated zstd and a bad LiME are errors; where zstd stopped is named
    // physically.
    std::fs::write(&zp, &z[..z.len() - 100]).unwrap();
    let r = run(&["verify", path_str(&zp)]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stdout.contains("[affects physical from 0x"),
        "{}",
        r.stdout
    );
    let mut bad = stream.clone();
    bad[32 + 5] ^= 0; // payload untouched
    bad.truncate(bad.len() - 1);
    std::fs::write(&lp, &bad).unwrap();
    let r = run(&["verify", path_str(&lp)]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stdout.contains("truncated"), "{}", r.stdout);

    // Extract works from a plain LiME file too.
    std::fs::write(&lp, &stream).unwrap();
    let out = t.path().join("p.raw");
    let r = run(&[
        "extract",
        path_str(&lp),
        "--format",
        "raw",
        "--range",
        "0x2000-0x2fff",
        "-o",
        path_str(&out),
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(
        std::fs::read(&out).unwrap(),
        &payload(0x1000, 0x2000)[0x1000..]
    );

    // Something else entirely.
    let other = t.path().join("notes.txt");
    std::fs::write(&other, b"hello").unwrap();
    let r = run(&["verify", path_str(&other)]);
    assert_eq!(r.code, 2, "{r:?}");
    let r = run(&["verify", path_str(&t.path().join("missing"))]);
    assert_eq!(r.code, 4, "{r:?}");
}

#[test]
fn a_bare_seekable_image_with_its_sidecar() {
    let t = tmp();
    let f = capture(t.path(), "cap", &RANGES);
    let r = run(&["verify", path_str(&f.image())]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stdout.contains("(seekable zstd, no manifest)"),
        "{}",
        r.stdout
    );
    std::fs::write(
        f.dir.join("memory.lime.zst.sha256"),
        format!("{}  memory.lime.zst\n", "00".repeat(32)),
    )
    .unwrap();
    let r = run(&["verify", path_str(&f.image())]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stdout.contains("sidecar"), "{}", r.stdout);
}

#[test]
fn info_summarises_for_people_and_programs() {
    let t = tmp();
    let f = capture(t.path(), "cap", &RANGES);
    let r = run(&["info", f.d()]);
    assert_eq!(r.code, 0, "{r:?}");
    for needle in [
        "ip-10-0-0-1",
        "6.1.0-18-amd64",
        "2026-11-26T18:00:00Z",
        "lime-file",
        "complete",
        "0x000100000000-0x00010003ffff",
        "IR-42",
        "seek table ok",
        "unknown (IMDS: skipped (--no-imds))",
    ] {
        assert!(
            r.stdout.contains(needle),
            "{needle} missing from:\n{}",
            r.stdout
        );
    }
    let r = run(&["info", f.d(), "--json"]);
    let v = json(&r.stdout);
    assert_eq!(v["manifest"]["host"]["hostname"], "ip-10-0-0-1");
    assert_eq!(v["frames"], f.summary.frames);
    assert_eq!(v["lime_length"], f.summary.lime_len);
    let r = run(&["info", path_str(&f.image()), "--json"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(json(&r.stdout)["ranges"][1]["start"], 0x10_0000);
}

/// Issue 23: `info --json` and `verify --json` name a range's keys as the
/// manifest does (`start`, `end`, `length`, `lime_offset`), for a capture
/// directory and for an image alone.
#[test]
fn range_keys_are_the_manifests_in_info_and_verify() {
    let t = tmp();
    let f = capture(t.path(), "cap", &RANGES);
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(f.manifest_path()).unwrap()).unwrap();
    let want = &manifest["ranges"];
    let image = f.image();
    for path in [f.d(), path_str(&image)] {
        let info = json(&run(&["info", path, "--json"]).stdout);
        let verify = json(&run(&["verify", path, "--json"]).stdout);
        for (i, m) in want.as_array().unwrap().iter().enumerate() {
            for key in ["start", "end", "length", "lime_offset"] {
                assert_eq!(info["ranges"][i][key], m[key], "info {path} {key}: {info}");
                assert_eq!(
                    verify["ranges"][i][key], m[key],
                    "verify {path} {key}: {verify}"
                );
            }
            for old in ["len", "header_offset"] {
                assert!(info["ranges"][i].get(old).is_none(), "{info}");
            }
        }
    }
}

#[test]
fn a_damaged_manifest_is_a_finding_and_the_image_is_still_checked() {
    let t = tmp();
    let f = capture(t.path(), "cap", &RANGES);
    let mut m = std::fs::read(f.manifest_path()).unwrap();
    m.truncate(m.len() / 2);
    std::fs::write(f.manifest_path(), &m).unwrap();
    let r = run(&["verify", f.d(), "--json"]);
    assert_eq!(r.code, 1, "{r:?}");
    let v = json(&r.stdout);
    assert_eq!(v["problems"][0]["check"], "manifest");
    assert_eq!(v["problems"].as_array().unwrap().len(), 1, "{v}");
    // The image itself (and its sidecar) checked out.
    assert_eq!(v["lime_sha256"], hex(&f.summary.lime_sha256));
    let r = run(&["info", f.d()]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.error.unwrap().contains("manifest.json"));
}

#[test]
fn extract_to_stdout_for_pipes() {
    let t = tmp();
    let f = capture(t.path(), "cap", &RANGES);
    let r = run(&["extract", f.d(), "-o", "-"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout_bytes == f.stream, "stdout is not the LiME stream");
    assert!(r.stderr.contains("extracted lime image"), "{}", r.stderr);
    let r = run(&[
        "extract",
        f.d(),
        "--format",
        "raw",
        "--range",
        "0x1000-0x100f",
        "-o",
        "-",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.stdout_bytes, payload(0x1000, 16));
    // Padded needs a file (holes).
    let r = run(&["extract", f.d(), "--format", "padded", "-o", "-"]);
    assert_eq!(r.code, 2, "{r:?}");
}

#[test]
fn info_still_reads_the_manifest_when_the_image_is_damaged_or_gone() {
    let t = tmp();
    let f = capture(t.path(), "cap", &RANGES);
    let img = std::fs::read(f.image()).unwrap();
    std::fs::write(f.image(), &img[..img.len() - 3]).unwrap();
    let r = run(&["info", f.d()]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stdout.contains("seek table     UNUSABLE: "),
        "{}",
        r.stdout
    );
    std::fs::remove_file(f.image()).unwrap();
    let r = run(&["info", f.d()]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("ip-10-0-0-1"), "{}", r.stdout);
    let r = run(&["verify", f.d()]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stdout
            .contains("image file named by the manifest is missing"),
        "{}",
        r.stdout
    );
}

#[test]
fn extracting_a_partial_capture_warns_about_zeros() {
    let t = tmp();
    let mut f = capture(t.path(), "cap", &RANGES);
    f.manifest.status = fv_evidence::manifest::Status::Partial;
    f.manifest.partial_reason = Some(fv_evidence::manifest::PartialReason {
        cause: fv_evidence::manifest::PartialCause::Interrupted,
        detail: "SIGTERM".into(),
    });
    f.manifest.not_captured = vec![fv_evidence::manifest::Span {
        start: 0x20_0000,
        length: 0x30_0000,
        error: "interrupted by SIGTERM".into(),
    }];
    f.manifest.unreadable = vec![fv_evidence::manifest::Span {
        start: 0x2000,
        length: 0x1000,
        error: "EIO".into(),
    }];
    f.save_manifest();
    // Still verifies: the image is exactly what the manifest records.
    let r = run(&["verify", f.d()]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stdout
            .contains("capture PARTIAL (interrupted: SIGTERM; 0 range(s), 0 bytes omitted)"),
        "{}",
        r.stdout
    );
    let out = t.path().join("p.lime");
    let r = run(&["extract", f.d(), "-o", path_str(&out)]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("PARTIAL"), "{}", r.stderr);
    assert!(
        r.stderr.contains("1 unreadable span(s), 4096 bytes"),
        "{}",
        r.stderr
    );
    let r = run(&["info", f.d()]);
    assert!(
        r.stdout
            .contains("not captured   0x200000 +3145728 (interrupted by SIGTERM)"),
        "{}",
        r.stdout
    );
}

/// Issue 23: a partial capture's cause is named as the manifest names it
/// (`source_truncated`) in every message, never as the Rust enum variant
/// (`SourceTruncated`).
#[test]
fn partial_cause_is_named_as_in_the_manifest() {
    let t = tmp();
    let mut f = capture(t.path(), "cap", &RANGES);
    f.manifest.status = fv_evidence::manifest::Status::Partial;
    f.manifest.partial_reason = Some(fv_evidence::manifest::PartialReason {
        cause: fv_evidence::manifest::PartialCause::SourceTruncated,
        detail: "the LiME stream ended early".into(),
    });
    f.save_manifest();
    let out = t.path().join("p.lime");
    let runs = [
        run(&["verify", f.d()]),
        run(&["info", f.d()]),
        run(&["extract", f.d(), "-o", path_str(&out)]),
    ];
    for r in &runs {
        let all = format!("{}{}", r.stdout, r.stderr);
        assert!(!all.contains("SourceTruncated"), "{all}");
        assert!(
            all.contains("source_truncated: the LiME stream ended early"),
            "{all}"
        );
    }
}

/// Issue 23: an AVML compressed image given to the analyst's commands is
/// named for what it is, with the command that repackages it, not called an
/// unknown or damaged file.
#[test]
fn an_avml_file_is_named_with_what_to_run() {
    let t = tmp();
    let mut avml = Vec::new();
    fv_formats::avml::write_block(&mut avml, 0x1000, 0x1fff, &[7u8; 0x1000]).unwrap();
    let p = t.path().join("memory.avml");
    std::fs::write(&p, &avml).unwrap();
    for sub in ["verify", "info", "extract"] {
        let r = run(&[sub, path_str(&p)]);
        assert_eq!(r.code, 2, "{r:?}");
        let e = r.error.unwrap();
        assert!(e.contains("AVML's compressed format"), "{e}");
        assert!(e.contains("capture --source lime:"), "{e}");
    }
}
