//! Captures crafted by whoever had the volume last (it was writable on a
//! compromised host): `verify`, `info` and `extract` must not be fooled,
//! hung or made to read the analysis host's files. Each test reproduces a
//! finding of the security review (M1, M2, M7, L1, L8, L12).

// Test code: a panic is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::os::unix::fs::symlink;
use std::time::Duration;

use common::*;
use fv_evidence::manifest::{FileEntry, Span};

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

fn json(s: &str) -> serde_json::Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("not JSON ({e}): {s}"))
}

/// No byte that could drive a terminal: only printable text and newlines.
fn assert_printable(what: &str, text: &str) {
    for (i, c) in text.char_indices() {
        assert!(
            c == '\n' || !c.is_control(),
            "{what}: control character {c:?} at byte {i} in:\n{text:?}"
        );
    }
}

#[test]
fn terminal_escapes_from_the_manifest_are_printed_escaped() {
    let t = tmp();
    // A hostname from a rooted suspect's uname, and case fields: the capture
    // itself is intact and verifies.
    let mut f = capture(t.path(), "cap", &RANGES);
    f.manifest.host.hostname = "ip-10\u{1b}]0;owned\u{7}\u{1b}[2J".into();
    f.manifest.case.case_id = Some("IR-42\u{1b}[1A\u{1b}[2K".into());
    f.manifest.case.note = Some("see\u{9b}31m".into());
    f.manifest.warnings = vec!["w\u{1b}[31mred".into()];
    f.save_manifest();
    let r = run(&["verify", f.d()]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_printable("verify stdout", &r.stdout);
    assert!(
        r.stdout.contains("host ip-10\\x1b]0;owned\\x07"),
        "{}",
        r.stdout
    );
    let r = run(&["info", f.d()]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_printable("info stdout", &r.stdout);
    assert!(r.stdout.contains("IR-42\\x1b[1A"), "{}", r.stdout);
    // JSON is for programs: the strings are there as they are (serde
    // escapes them in the text).
    let r = run(&["info", f.d(), "--json"]);
    assert_eq!(
        json(&r.stdout)["manifest"]["host"]["hostname"],
        "ip-10\u{1b}]0;owned\u{7}\u{1b}[2J"
    );

    // A file name that draws a forged VERIFIED line and hides the real
    // verdict that follows.
    let mut g = capture(t.path(), "cap2", &RANGES);
    let forged = "x\u{1b}[2K\rVERIFIED all good\u{1b}[8m";
    g.manifest.files.push(FileEntry {
        path: forged.into(),
        size: 0,
        sha256: sha(b""),
    });
    g.save_manifest();
    let r = run(&["verify", g.d()]);
    assert_eq!(r.code, 1, "{r:?}");
    assert_printable("verify stdout", &r.stdout);
    assert_printable("verify stderr", &r.stderr);
    assert!(
        r.stdout
            .lines()
            .last()
            .unwrap()
            .starts_with("NOT VERIFIED "),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("x\\x1b[2K\\x0dVERIFIED"), "{}", r.stdout);
    let r = run(&["verify", g.d(), "--json"]);
    let v = json(&r.stdout);
    assert!(
        v["problems"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["file"] == forged),
        "{v}"
    );
}

#[test]
fn a_symlinked_directory_in_the_capture_is_not_followed() {
    let t = tmp();
    // "The analysis host's file": what verify must never read.
    let outside = t.path().join("host-etc");
    std::fs::create_dir(&outside).unwrap();
    let secret = b"root:x:0:0:root:/root:/bin/bash\n";
    std::fs::write(outside.join("passwd"), secret).unwrap();
    let mut f = capture(t.path(), "cap", &RANGES);
    symlink(&outside, f.dir.join("ctx")).unwrap();
    f.manifest.files.push(FileEntry {
        path: "ctx/passwd".into(),
        size: secret.len() as u64,
        sha256: sha(secret),
    });
    f.save_manifest();
    let r = run(&["verify", f.d(), "--json"]);
    assert_eq!(r.code, 1, "{r:?}");
    let v = json(&r.stdout);
    let p = &v["problems"][0];
    assert_eq!(p["check"], "file", "{v}");
    assert_eq!(p["file"], "ctx/passwd", "{v}");
    assert!(
        p["message"]
            .as_str()
            .unwrap()
            .contains("reached through a symbolic link"),
        "{v}"
    );
    // The image, its sidecar and context/banner: never the host's file.
    assert_eq!(v["files_checked"], 3, "{v}");
}

#[test]
fn fifos_in_the_capture_do_not_hang_verify_or_info() {
    let t = tmp();
    // The sidecar.
    let f = capture(t.path(), "side", &RANGES);
    std::fs::remove_file(f.dir.join("memory.lime.zst.sha256")).unwrap();
    mkfifo(&f.dir.join("memory.lime.zst.sha256"));
    let r = within(20, &["verify", f.d()]).expect("verify hung on a FIFO sidecar");
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stdout.contains("FAILED sidecar"), "{}", r.stdout);
    assert!(r.stdout.contains("FIFO"), "{}", r.stdout);

    // A listed context file.
    let f = capture(t.path(), "ctx", &RANGES);
    std::fs::remove_file(f.dir.join("context/banner")).unwrap();
    mkfifo(&f.dir.join("context/banner"));
    let r = within(20, &["verify", f.d()]).expect("verify hung on a FIFO context file");
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stdout.contains("FAILED file: context/banner"),
        "{}",
        r.stdout
    );

    // The image.
    let f = capture(t.path(), "img", &RANGES);
    std::fs::remove_file(f.image()).unwrap();
    mkfifo(&f.image());
    let r = within(20, &["verify", f.d()]).expect("verify hung on a FIFO image");
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stdout.contains("FIFO"), "{}", r.stdout);
    let r = within(20, &["info", f.d()]).expect("info hung on a FIFO image");
    assert_eq!(r.code, 0, "{r:?}");
    let r = within(20, &["extract", f.d(), "-o", "-"]).expect("extract hung on a FIFO image");
    assert_eq!(r.code, 1, "{r:?}");

    // The manifest.
    let f = capture(t.path(), "man", &RANGES);
    std::fs::remove_file(f.manifest_path()).unwrap();
    mkfifo(&f.manifest_path());
    let r = within(20, &["verify", f.d()]).expect("verify hung on a FIFO manifest");
    assert_eq!(r.code, 1, "{r:?}");
    let r = within(20, &["info", f.d()]).expect("info hung on a FIFO manifest");
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.error.unwrap().contains("FIFO"));
}

#[test]
fn an_aborted_capture_is_a_finding_not_a_usage_error() {
    let t = tmp();
    // Killed before the manifest: image, context, the space reserve.
    let f = capture(t.path(), "killed", &RANGES);
    std::fs::remove_file(f.manifest_path()).unwrap();
    std::fs::write(f.dir.join(".reserve"), b"").unwrap();
    let r = run(&["verify", f.d()]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stdout.contains("aborted capture: no manifest"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.lines().last().unwrap().starts_with("NOT VERIFIED"),
        "{}",
        r.stdout
    );
    let r = run(&["verify", f.d(), "--json"]);
    assert_eq!(json(&r.stdout)["problems"][0]["check"], "aborted");
    let r = run(&["info", f.d()]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.error.unwrap().contains("aborted capture: no manifest"));

    // Killed exactly at a record boundary: the image alone is a clean,
    // complete-looking LiME stream of fewer ranges. The in-progress marker
    // next to it gives it away.
    let g = capture(t.path(), "prefix", &RANGES[..1]);
    std::fs::remove_file(g.manifest_path()).unwrap();
    std::fs::write(g.dir.join("INCOMPLETE"), b"capture in progress\n").unwrap();
    let r = run(&["verify", path_str(&g.image())]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stdout.contains("aborted capture: no manifest"),
        "{}",
        r.stdout
    );
    let r = run(&["verify", g.d()]);
    assert_eq!(r.code, 1, "{r:?}");

    // Stopped between the manifest's rename and the marker's removal: the
    // manifest is complete; a note says what happened.
    let h = capture(t.path(), "late", &RANGES);
    std::fs::write(h.dir.join("INCOMPLETE"), b"capture in progress\n").unwrap();
    let r = run(&["verify", h.d()]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stderr.contains("INCOMPLETE is still there"),
        "{}",
        r.stderr
    );

    // A directory that holds nothing a capture writes is still a usage
    // error.
    let empty = t.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let r = run(&["verify", path_str(&empty)]);
    assert_eq!(r.code, 2, "{r:?}");
}

#[test]
fn padded_output_at_the_top_of_the_address_space_is_refused() {
    let t = tmp();
    let top = [(0x1000, 0x1fff), (0xffff_ffff_ffff_f000, u64::MAX)];
    let f = capture(t.path(), "cap", &top);
    let out = t.path().join("out.padded");
    let r = run(&["extract", f.d(), "--format", "padded", "-o", path_str(&out)]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.error.as_deref().unwrap().contains("largest file offset"),
        "{r:?}"
    );
    assert!(!out.exists());
    // The LiME stream keeps that memory, as it is.
    let lime = t.path().join("out.lime");
    let r = run(&["extract", f.d(), "-o", path_str(&lime)]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(std::fs::read(&lime).unwrap(), f.stream);
}

#[test]
fn manifest_values_that_overflow_are_findings_not_wraps() {
    let t = tmp();
    // [0, 2^64-1] is 2^64 bytes; a wrapping end - start + 1 makes it 0.
    let mut f = capture(t.path(), "wrap", &RANGES);
    f.manifest.ranges[0].start = 0;
    f.manifest.ranges[0].end = u64::MAX;
    f.manifest.ranges[0].length = 0;
    f.save_manifest();
    let r = run(&["verify", f.d(), "--json"]);
    assert_eq!(r.code, 1, "{r:?}");
    let v = json(&r.stdout);
    assert!(
        v["problems"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["check"] == "manifest"
                && p["message"]
                    .as_str()
                    .unwrap()
                    .contains("length 0 is not end - start + 1")),
        "{v}"
    );

    // Offsets and lengths near 2^64, with a damaged frame so the manifest's
    // map is used to place the damage, and spans at the very top.
    let mut g = capture(t.path(), "huge", &RANGES);
    g.manifest.ranges[1].lime_offset = u64::MAX - 8;
    g.manifest.ranges[2].length = u64::MAX;
    g.manifest.unreadable.push(Span {
        start: u64::MAX - 1,
        length: u64::MAX,
        error: "EIO".into(),
    });
    g.save_manifest();
    let mut img = std::fs::read(g.image()).unwrap();
    let mid = img.len() / 2;
    img[mid] ^= 0xff;
    std::fs::write(g.image(), &img).unwrap();
    let r = run(&["verify", g.d()]);
    assert_eq!(r.code, 1, "{r:?}");
    let r = run(&["info", g.d()]);
    assert_eq!(r.code, 0, "{r:?}");
    let r = run(&["info", g.d(), "--json"]);
    assert_eq!(r.code, 0, "{r:?}");
}

#[test]
fn checking_spans_against_ranges_is_not_quadratic() {
    let t = tmp();
    let mut f = capture(t.path(), "cap", &RANGES);
    // 200k ranges and 200k unreadable spans, each inside its range (the
    // review's 250k of each took 98 s).
    const N: u64 = 200_000;
    let mut offset = 0;
    f.manifest.ranges = (0..N)
        .map(|i| {
            let r = fv_evidence::manifest::Range {
                start: i * 0x2000,
                end: i * 0x2000 + 0xfff,
                length: 0x1000,
                lime_offset: offset,
            };
            offset += 32 + 0x1000;
            r
        })
        .collect();
    f.manifest.unreadable = (0..N)
        .map(|i| Span {
            start: i * 0x2000 + 0x800,
            length: 0x100,
            error: "EIO".into(),
        })
        .collect();
    f.save_manifest();
    let started = std::time::Instant::now();
    let r = run(&["verify", f.d(), "--json"]);
    let took = started.elapsed();
    assert_eq!(r.code, 1, "{}", r.stderr);
    let v = json(&r.stdout);
    // Every span is inside a range: none is reported.
    assert!(
        !v["problems"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["message"]
                .as_str()
                .unwrap()
                .contains("is not inside one captured range")),
        "a span was misplaced"
    );
    assert!(took < Duration::from_secs(30), "verify took {took:?}");
}

#[test]
fn extract_says_what_it_did_not_check() {
    let t = tmp();
    let f = capture(t.path(), "cap", &RANGES);
    // A range, raw or padded: checked against the seek table only.
    let out = t.path().join("part.raw");
    let r = run(&[
        "extract",
        f.d(),
        "--format",
        "raw",
        "--range",
        "0x1000-0x1fff",
        "-o",
        path_str(&out),
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stdout.contains("checked against the seek table")
            && r.stdout
                .contains("NOT compared with any recorded digest: run `capture verify"),
        "{}",
        r.stdout
    );
    // A whole LiME export of a capture is compared with the manifest.
    let out = t.path().join("all.lime");
    let r = run(&["extract", f.d(), "-o", path_str(&out)]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("(matches the manifest)"), "{}", r.stdout);
    assert!(!r.stdout.contains("NOT compared"), "{}", r.stdout);
}
