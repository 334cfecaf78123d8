//! The capture-time anchors end to end through the `capture` binary: its
//! final stdout line carries the SHA-256 of manifest.json, of the image and
//! of the LiME stream; `capture verify` with those digests (on the command
//! line or in a custody record) says VERIFIED only when they match, and
//! fails on a capture that was tampered with and re-hashed so that it is
//! perfectly consistent with itself (security review H3).
//!
//! Needs root (capture refuses otherwise; CI runs as root).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use sha2::{Digest, Sha256};

const MARKER: &str = r#"{"toolkit":"forensics-volume","format":1}"#;

fn require_root() {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let uid = status.lines().find_map(|l| l.strip_prefix("Uid:")).unwrap();
    assert_eq!(
        uid.split_whitespace().nth(1),
        Some("0"),
        "needs root: capture refuses to run otherwise (CI runs as root)"
    );
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn sha(b: &[u8]) -> String {
    hex(&Sha256::digest(b))
}

/// A LiME stream of the given inclusive ranges (504ensicsLabs/LiME `lime.h`).
fn lime(ranges: &[(u64, u64)], flip: Option<u64>) -> Vec<u8> {
    let mut out = Vec::new();
    for &(s, e) in ranges {
        out.extend_from_slice(&0x4C69_4D45u32.to_le_bytes());
        out.extend_from_slice(&1u32.to_le_bytes());
        out.extend_from_slice(&s.to_le_bytes());
        out.extend_from_slice(&e.to_le_bytes());
        out.extend_from_slice(&[0; 8]);
        out.extend((s..=e).map(|p| {
            let b = (p.wrapping_mul(2_654_435_761) >> 13) as u8;
            if flip == Some(p) { !b } else { b }
        }));
    }
    out
}

/// Captures `stream` (as a LiME file) onto a fake forensics volume under
/// `root`; returns the capture directory and capture's output.
fn capture_into(root: &Path, stream: &[u8]) -> (PathBuf, Output) {
    std::fs::create_dir_all(root.join("vol")).unwrap();
    std::fs::write(root.join("vol/forensics-volume.json"), MARKER).unwrap();
    for d in ["proc", "sys", "dev"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    std::fs::write(root.join("dump.lime"), stream).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_capture"))
        .arg("--source")
        .arg(format!("lime:{}", root.join("dump.lime").display()))
        .arg("--output")
        .arg(root.join("vol/captures"))
        .args(["--case-id", "IR-13", "--examiner", "a.b@example"])
        .arg("--proc-root")
        .arg(root.join("proc"))
        .arg("--sys-root")
        .arg(root.join("sys"))
        .arg("--dev-root")
        .arg(root.join("dev"))
        .arg("--no-imds")
        // A directory, not a volume: this test is about the digests (the
        // volume's identity check has tests of its own in capture_faults).
        .arg("--allow-any-output")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let dir = std::fs::read_dir(root.join("vol/captures"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.is_dir())
        .unwrap();
    (dir, out)
}

/// `name=hex` from capture's final line.
fn digest_of(line: &str, name: &str) -> String {
    let tail = line
        .split(&format!("{name}="))
        .nth(1)
        .unwrap_or_else(|| panic!("no {name}= in {line}"));
    tail[..64].to_string()
}

fn verify(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_capture"))
        .arg("verify")
        .args(args)
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[test]
fn root_capture_final_line_anchors_and_verify_rejects_a_rehashed_tampered_copy() {
    require_root();
    let t = tempfile::tempdir().unwrap();
    let ram = [(0x1000u64, 0x9_ffffu64), (0x10_0000, 0x2f_ffff)];
    let stream = lime(&ram, None);
    let (dir, out) = capture_into(&t.path().join("orig"), &stream);

    // The final (only) stdout line carries the three digests, and they are
    // those of the files written and of the stream captured.
    let text = stdout(&out);
    let line = text.lines().last().unwrap();
    assert!(line.starts_with("capture: complete"), "{line}");
    // Issue 23: the line says to take the digests off the host and how the
    // analyst uses them.
    assert!(
        line.contains("copy these three digests off this host now"),
        "{line}"
    );
    assert!(
        line.contains("--expect-manifest-sha256 --expect-sha256 --expect-lime-sha256"),
        "{line}"
    );
    let m_sha = digest_of(line, "manifest.json");
    let z_sha = digest_of(line, "memory.lime.zst");
    let l_sha = digest_of(line, "lime");
    assert_eq!(
        m_sha,
        sha(&std::fs::read(dir.join("manifest.json")).unwrap())
    );
    assert_eq!(
        z_sha,
        sha(&std::fs::read(dir.join("memory.lime.zst")).unwrap())
    );
    assert_eq!(l_sha, sha(&stream));

    // Without anchors: VERIFIED, but it says plainly what that means.
    let o = verify(&[p(&dir)]);
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    assert!(
        stdout(&o).contains("SELF-CONSISTENCY ONLY"),
        "{}",
        stdout(&o)
    );

    // With the capture-time digests: VERIFIED and ANCHORED.
    let o = verify(&[
        p(&dir),
        "--expect-manifest-sha256",
        &m_sha,
        "--expect-sha256",
        &z_sha,
        "--expect-lime-sha256",
        &l_sha,
    ]);
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    let s = stdout(&o);
    assert!(s.starts_with("VERIFIED "), "{s}");
    assert!(
        s.contains("ANCHORED: manifest.json, the image file, the LiME stream match"),
        "{s}"
    );
    assert!(!s.contains("SELF-CONSISTENCY ONLY"), "{s}");

    // The same digests in a custody record (as the runbook writes it).
    let record = t.path().join("custody.json");
    let rec = serde_json::json!({
        "schema": "forensics-volume/custody-record",
        "capture": {"manifest_sha256": m_sha, "image_sha256": z_sha, "lime_sha256": l_sha},
    });
    std::fs::write(&record, rec.to_string()).unwrap();
    let o = verify(&[p(&dir), "--custody-record", p(&record), "--json"]);
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["verified"], true);
    assert_eq!(v["anchors"].as_array().unwrap().len(), 3);

    // The attack: one byte of memory changed, then the image, the sidecar,
    // every frame checksum and the manifest re-made so that the copy is
    // perfectly consistent with itself (here by capturing the altered
    // stream with the real tool and putting its files in place of the
    // originals).
    let (forged, _) = capture_into(&t.path().join("forged"), &lime(&ram, Some(0x10_0123)));
    for name in ["memory.lime.zst", "memory.lime.zst.sha256", "manifest.json"] {
        std::fs::remove_file(dir.join(name)).unwrap();
        std::fs::copy(forged.join(name), dir.join(name)).unwrap();
    }
    // (A LiME file is a dump from elsewhere: neither capture has context/.)
    assert!(!dir.join("context").exists() && !forged.join("context").exists());
    // Self-consistency cannot see it ...
    let o = verify(&[p(&dir)]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "the forgery must be self-consistent: {o:?}"
    );
    assert!(stdout(&o).contains("SELF-CONSISTENCY ONLY"));
    // ... the anchors do, each one.
    for (flag, want) in [
        ("--expect-manifest-sha256", &m_sha),
        ("--expect-sha256", &z_sha),
        ("--expect-lime-sha256", &l_sha),
    ] {
        let o = verify(&[p(&dir), flag, want]);
        assert_eq!(o.status.code(), Some(1), "{flag}: {o:?}");
        let s = stdout(&o);
        assert!(s.contains("FAILED anchor:"), "{s}");
        assert!(s.lines().last().unwrap().starts_with("NOT VERIFIED"), "{s}");
    }
    let o = verify(&[p(&dir), "--custody-record", p(&record)]);
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    assert_eq!(
        stdout(&o).matches("FAILED anchor:").count(),
        3,
        "{}",
        stdout(&o)
    );

    // A record without digests, or a malformed digest, is a usage error.
    std::fs::write(&record, r#"{"capture":{}}"#).unwrap();
    assert_eq!(
        verify(&[p(&dir), "--custody-record", p(&record)])
            .status
            .code(),
        Some(2)
    );
    assert_eq!(
        verify(&[p(&dir), "--expect-sha256", "abc"]).status.code(),
        Some(2)
    );
}
