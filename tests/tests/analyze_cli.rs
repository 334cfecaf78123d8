//! `capture verify|extract|info` through the shipped binary
//! (`dist/volume/bin/<arch>/capture`, made by `./build.sh`): exact exit codes
//! and output on inputs built here, and (as root) a real capture of a LiME
//! file verified, extracted and compared with `zstd -d`.
//!
//! The library's own tests (crates/analyze/tests) cover every format and
//! corruption on images from the real writer; these check the binary wiring.

// Test code: a panic is a failed test, which is what a failed check should be.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use sha2::{Digest, Sha256};

fn capture_bin() -> PathBuf {
    let bin = fv_tests::dist_dir()
        .join("volume/bin")
        .join(std::env::consts::ARCH)
        .join("capture");
    assert!(
        bin.is_file(),
        "{} is missing: run ./build.sh first",
        bin.display()
    );
    bin
}

fn capture(args: &[&str]) -> Output {
    Command::new(capture_bin()).args(args).output().unwrap()
}

fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A LiME record header (504ensicsLabs/LiME `lime.h`), built by hand.
fn header(start: u64, end: u64) -> Vec<u8> {
    let mut h = Vec::with_capacity(32);
    h.extend_from_slice(&0x4C69_4D45u32.to_le_bytes());
    h.extend_from_slice(&1u32.to_le_bytes());
    h.extend_from_slice(&start.to_le_bytes());
    h.extend_from_slice(&end.to_le_bytes());
    h.extend_from_slice(&[0; 8]);
    h
}

fn lime(ranges: &[(u64, u64)]) -> Vec<u8> {
    let mut out = Vec::new();
    for &(s, e) in ranges {
        out.extend_from_slice(&header(s, e));
        let len = (e - s + 1) as usize;
        out.extend((0..len).map(|i| {
            if (i / 4096) % 2 == 0 {
                0
            } else {
                (i % 251) as u8
            }
        }));
    }
    out
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[test]
fn analyze_cli_plain_lime_verify_info_extract_and_exit_codes() {
    let t = tempfile::tempdir().unwrap();
    let ranges = [(0x1000u64, 0x9_fbffu64), (0x10_0000, 0x17_ffff)];
    let bytes = lime(&ranges);
    let file = t.path().join("dump.lime");
    std::fs::write(&file, &bytes).unwrap();
    let digest = hex(&Sha256::digest(&bytes));

    let o = capture(&["verify", p(&file), "--sha256", &digest]);
    assert_eq!(code(&o), 0, "{o:?}");
    let out = text(&o.stdout);
    assert_eq!(out.lines().count(), 1, "{out}");
    assert!(out.starts_with("VERIFIED "), "{out}");
    assert!(out.contains(&digest), "{out}");

    let o = capture(&["verify", p(&file), "--sha256", &"0".repeat(64)]);
    assert_eq!(code(&o), 1, "{o:?}");

    let o = capture(&["info", p(&file), "--json"]);
    assert_eq!(code(&o), 0, "{o:?}");
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["kind"], "lime");
    assert_eq!(v["ranges"][1]["start"], 0x10_0000);

    let raw = t.path().join("dump.raw");
    let o = capture(&[
        "extract",
        p(&file),
        "--format",
        "raw",
        "--range",
        "0x100000-0x100fff",
        "-o",
        p(&raw),
    ]);
    assert_eq!(code(&o), 0, "{o:?}");
    let off = 32 + (0x9_fbff - 0x1000 + 1) + 32;
    assert_eq!(std::fs::read(&raw).unwrap(), &bytes[off..off + 0x1000]);
    // Refuses to overwrite (3), missing input (4), not a memory image (2),
    // bad arguments (2).
    let o = capture(&["extract", p(&file), "--format", "raw", "-o", p(&raw)]);
    assert_eq!(code(&o), 3, "{o:?}");
    assert!(text(&o.stderr).contains("--force"), "{o:?}");
    let o = capture(&["verify", p(&t.path().join("missing"))]);
    assert_eq!(code(&o), 4, "{o:?}");
    std::fs::write(t.path().join("notes.txt"), b"hello").unwrap();
    let o = capture(&["verify", p(&t.path().join("notes.txt"))]);
    assert_eq!(code(&o), 2, "{o:?}");
    let o = capture(&["extract", p(&file), "--range", "0x2000-0x1000"]);
    assert_eq!(code(&o), 2, "{o:?}");

    // Overlapping records: named, exit 1.
    let mut bad = lime(&[(0x1000, 0x1fff)]);
    bad.extend_from_slice(&lime(&[(0x1800, 0x27ff)]));
    std::fs::write(&file, &bad).unwrap();
    let o = capture(&["verify", p(&file)]);
    assert_eq!(code(&o), 1, "{o:?}");
    assert!(text(&o.stdout).contains("overlaps"), "{o:?}");
}

#[test]
fn analyze_cli_plain_zstd_from_the_zstd_tool() {
    let t = tempfile::tempdir().unwrap();
    let bytes = lime(&[(0x1000, 0x4_ffff)]);
    let file = t.path().join("dump.lime");
    std::fs::write(&file, &bytes).unwrap();
    let z = Command::new("zstd")
        .args(["-q", "-k", "-3"])
        .arg(&file)
        .status()
        .expect("the zstd command is needed (apt-get install zstd)");
    assert!(z.success());
    let zst = t.path().join("dump.lime.zst");
    let o = capture(&["verify", p(&zst), "--sha256", &hex(&Sha256::digest(&bytes))]);
    assert_eq!(code(&o), 0, "{o:?}");
    assert!(text(&o.stdout).contains("(of the LiME stream)"), "{o:?}");
    let mut cut = std::fs::read(&zst).unwrap();
    cut.truncate(cut.len() - 10);
    std::fs::write(&zst, &cut).unwrap();
    let o = capture(&["verify", p(&zst)]);
    assert_eq!(code(&o), 1, "{o:?}");
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
}

#[test]
fn root_analyze_real_capture_verifies_and_extracts_like_zstd() {
    assert!(
        is_root(),
        "needs root: `capture` acquires only as root; run the test suite as root (CI does)"
    );
    let t = tempfile::tempdir().unwrap();
    let ranges = [(0x1000u64, 0x9_fbffu64), (0x10_0000, 0x2f_ffff)];
    let bytes = lime(&ranges);
    let input = t.path().join("in.lime");
    std::fs::write(&input, &bytes).unwrap();
    let out_root = t.path().join("captures");
    std::fs::create_dir(&out_root).unwrap();
    let source = format!("lime:{}", p(&input));
    let o = capture(&[
        "--source",
        &source,
        "--output",
        p(&out_root),
        "--allow-any-output",
        "--no-imds",
        "--quiet",
    ]);
    assert_eq!(code(&o), 0, "{o:?}");
    let dirs: Vec<PathBuf> = std::fs::read_dir(&out_root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("manifest.json").is_file())
        .collect();
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    let dir = &dirs[0];

    let o = capture(&["verify", p(dir)]);
    assert_eq!(code(&o), 0, "{o:?}");
    let line = text(&o.stdout);
    assert!(line.starts_with("VERIFIED "), "{line}");
    assert!(line.contains(&hex(&Sha256::digest(&bytes))), "{line}");

    let extracted = t.path().join("out.lime");
    let o = capture(&["extract", p(dir), "-o", p(&extracted)]);
    assert_eq!(code(&o), 0, "{o:?}");
    let got = std::fs::read(&extracted).unwrap();
    assert!(got == bytes, "extract differs from the LiME input");
    let z = Command::new("zstd")
        .args(["-d", "-c", "-q"])
        .arg(dir.join("memory.lime.zst"))
        .output()
        .unwrap();
    assert!(z.stdout == got, "zstd -d differs from extract");

    let o = capture(&["info", p(dir), "--json"]);
    assert_eq!(code(&o), 0, "{o:?}");
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["manifest"]["source"]["kind"], "lime-file");

    // A flipped byte in a copy of the capture is found and located.
    let copy = t.path().join("copy");
    std::fs::create_dir(&copy).unwrap();
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_file() {
            std::fs::copy(e.path(), copy.join(e.file_name())).unwrap();
        }
    }
    let img = copy.join("memory.lime.zst");
    let mut b = std::fs::read(&img).unwrap();
    let mid = b.len() / 3;
    b[mid] ^= 0x10;
    std::fs::write(&img, &b).unwrap();
    let o = capture(&["verify", p(&copy)]);
    assert_eq!(code(&o), 1, "{o:?}");
    assert!(text(&o.stdout).contains("FAILED"), "{o:?}");
}
