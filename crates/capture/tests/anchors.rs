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

const KEY: &str = "custody/123456789012/eu-west-1/IR-13/0a1b2c3d-0000-4000-8000-000000000021.json";

/// A custody record as deploy/scripts/custody.py writes it (the fields
/// verify reads).
fn custody_record(m_sha: &str, z_sha: &str, l_sha: &str) -> serde_json::Value {
    serde_json::json!({
        "schema": "forensics-volume/custody-record",
        "schema_version": 2,
        "execution_id": "0a1b2c3d-0000-4000-8000-000000000021",
        "account": "123456789012",
        "region": "eu-west-1",
        "case_id": "IR-13",
        "security_account": "222222222222",
        "custody_bucket": "forensics-custody-222222222222",
        "record_key": KEY,
        "capture": {"manifest_sha256": m_sha, "image_sha256": z_sha, "lime_sha256": l_sha},
    })
}

/// `aws s3api list-object-versions --output json` for KEY: one version of
/// each size given (first the oldest), and `markers` delete markers.
fn versions(sizes: &[u64], markers: usize) -> serde_json::Value {
    let n = sizes.len();
    let v: Vec<serde_json::Value> = sizes
        .iter()
        .enumerate()
        .map(|(i, size)| {
            serde_json::json!({
                "ETag": "\"0\"", "Size": size, "StorageClass": "STANDARD", "Key": KEY,
                "VersionId": format!("v{i}"), "IsLatest": i + 1 == n && markers == 0,
                "LastModified": format!("2026-12-07T08:0{i}:00+00:00"),
            })
        })
        .collect();
    let m: Vec<serde_json::Value> = (0..markers)
        .map(|i| {
            serde_json::json!({"Key": KEY, "VersionId": format!("d{i}"), "IsLatest": true,
                                    "LastModified": "2026-12-07T09:00:00+00:00"})
        })
        .collect();
    serde_json::json!({"Versions": v, "DeleteMarkers": m, "RequestCharged": null, "Prefix": KEY})
}

/// Issue 21: a member admin holds the execution role the runbook's
/// Custody step uses; a record they replaced (a second version of the key),
/// wrote again after a delete, or a later record of the execution, must
/// not anchor the capture; the first and only version does.
#[test]
fn root_custody_record_must_be_the_first_and_only_version_of_its_key() {
    require_root();
    let t = tempfile::tempdir().unwrap();
    let ram = [(0x1000u64, 0x4_ffffu64)];
    let (dir, out) = capture_into(&t.path().join("orig"), &lime(&ram, None));
    let text = stdout(&out);
    let line = text.lines().last().unwrap();
    let (m_sha, z_sha, l_sha) = (
        digest_of(line, "manifest.json"),
        digest_of(line, "memory.lime.zst"),
        digest_of(line, "lime"),
    );
    let record = t.path().join("custody.json");
    let rec = custody_record(&m_sha, &z_sha, &l_sha);
    std::fs::write(&record, rec.to_string()).unwrap();
    let size = std::fs::metadata(&record).unwrap().len();
    let listing = t.path().join("custody-versions.json");

    // Without the listing: anchored, but it says plainly that the record's
    // uniqueness is not checked, and prints the exact command.
    let o = verify(&[p(&dir), "--custody-record", p(&record)]);
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    let s = stdout(&o);
    assert!(s.contains("ANCHORED"), "{s}");
    assert!(s.contains("CUSTODY RECORD NOT CHECKED"), "{s}");
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(
        e.contains(&format!(
            "aws s3api list-object-versions --bucket forensics-custody-222222222222 --prefix {} --output json > custody-versions.json",
            KEY.trim_end_matches("json")
        )),
        "{e}"
    );

    // The first and only version, of this file's size: checked (a later
    // record of the disks' round next to it is the run's own).
    let mut ok = versions(&[size], 0);
    ok["Versions"].as_array_mut().unwrap().push(serde_json::json!({
        "Key": KEY.replace(".json", ".disks-20261207T090000000000Z.json"), "Size": 10, "VersionId": "x",
        "IsLatest": true, "LastModified": "2026-12-07T09:00:00+00:00"}));
    std::fs::write(&listing, ok.to_string()).unwrap();
    let o = verify(&[
        p(&dir),
        "--custody-record",
        p(&record),
        "--custody-versions",
        p(&listing),
    ]);
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    let s = stdout(&o);
    assert!(s.starts_with("VERIFIED "), "{s}");
    assert!(s.contains("ANCHORED"), "{s}");
    assert!(
        s.contains("the custody record is the first and only version (v0)"),
        "{s}"
    );

    // The attack: a second, newer version of the key (the forged record
    // with the fabricated capture's digests; here the run's own digests, so
    // only the versions can tell).
    // Or a record written before the run's own could be, which the run
    // then wrote under .contested-.
    let mut contested = versions(&[size], 0);
    contested["Versions"].as_array_mut().unwrap().push(serde_json::json!({
        "Key": KEY.replace(".json", ".contested-20261207T090000000000Z.json"), "Size": 10, "VersionId": "y",
        "IsLatest": true, "LastModified": "2026-12-07T09:00:00+00:00"}));
    for (listing_json, says) in [
        (contested, "another record claims this execution"),
        (versions(&[size, size], 0), "has 2 versions"),
        (versions(&[size], 1), "delete marker"),
        (versions(&[size + 1], 0), "this file is not that version"),
        (versions(&[], 0), "has no version of"),
    ] {
        std::fs::write(&listing, listing_json.to_string()).unwrap();
        let o = verify(&[
            p(&dir),
            "--custody-record",
            p(&record),
            "--custody-versions",
            p(&listing),
        ]);
        assert_eq!(o.status.code(), Some(1), "{says}: {o:?}");
        let s = stdout(&o);
        assert!(
            s.contains("FAILED custody-record:") && s.contains(says),
            "{says}: {s}"
        );
        assert!(s.lines().last().unwrap().starts_with("NOT VERIFIED"), "{s}");
    }

    // A record of another case, or one whose key is not where its own
    // execution, account, region and case put the first record.
    let mut other = rec.clone();
    other["case_id"] = "IR-99".into();
    other["record_key"] = KEY.replace("IR-13", "IR-99").into();
    std::fs::write(&record, other.to_string()).unwrap();
    let o = verify(&[p(&dir), "--custody-record", p(&record)]);
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    assert!(
        stdout(&o).contains("this record is not this capture's"),
        "{}",
        stdout(&o)
    );
    let mut moved = rec.clone();
    moved["record_key"] = KEY.replace(".json", ".disks-20261207T090000Z.json").into();
    std::fs::write(&record, moved.to_string()).unwrap();
    let o = verify(&[p(&dir), "--custody-record", p(&record)]);
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    assert!(
        stdout(&o).contains("but its execution, account, region and case put"),
        "{}",
        stdout(&o)
    );

    // A later record of the execution (the disks' round) is not the anchor;
    // nor is a record that does not name its execution, account or region.
    let mut later = rec.clone();
    later["first_record"] = format!("s3://forensics-custody-222222222222/{KEY}").into();
    std::fs::write(&record, later.to_string()).unwrap();
    let o = verify(&[p(&dir), "--custody-record", p(&record)]);
    assert_eq!(o.status.code(), Some(2), "{o:?}");
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("a later custody record"),
        "{o:?}"
    );
    for field in ["execution_id", "account", "region"] {
        let mut anon = rec.clone();
        anon.as_object_mut().unwrap().remove(field);
        std::fs::write(&record, anon.to_string()).unwrap();
        let o = verify(&[p(&dir), "--custody-record", p(&record)]);
        assert_eq!(o.status.code(), Some(2), "{field}: {o:?}");
        assert!(
            String::from_utf8_lossy(&o.stderr).contains(field),
            "{field}: {o:?}"
        );
    }
    // The listing without a record is a usage error.
    assert_eq!(
        verify(&[p(&dir), "--custody-versions", p(&listing)])
            .status
            .code(),
        Some(2)
    );
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
    let rec = custody_record(&m_sha, &z_sha, &l_sha);
    std::fs::write(&record, rec.to_string()).unwrap();
    let o = verify(&[p(&dir), "--custody-record", p(&record), "--json"]);
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["verified"], true);
    assert_eq!(v["anchors"].as_array().unwrap().len(), 3);
    assert_eq!(v["custody_record"]["key"], KEY);
    assert_eq!(v["custody_record"]["versions_checked"], false);

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
    let mut empty = custody_record(&m_sha, &z_sha, &l_sha);
    empty["capture"] = serde_json::json!({});
    std::fs::write(&record, empty.to_string()).unwrap();
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

/// As fleet.py names a fleet, and where it writes its record.
const FLEET_ID: &str = "20261207T100000Z-0a1b2c3d";
const FLEET_KEY: &str = "fleet/IR-13/20261207T100000Z-0a1b2c3d.json";

/// A custody record's exact bytes, as custody.py writes them (indented,
/// keys sorted, a final newline), for `instance` and its `execution`.
fn record_bytes(digests: &[String; 3], execution: &str, instance: &str) -> String {
    let mut rec = custody_record(&digests[0], &digests[1], &digests[2]);
    rec["execution_id"] = execution.into();
    rec["instance_id"] = instance.into();
    let key = format!("custody/123456789012/eu-west-1/IR-13/{execution}.json");
    rec["record_key"] = key.into();
    serde_json::to_string_pretty(&rec).unwrap() + "\n"
}

/// A fleet record entry holding `record` (its exact bytes and parsed).
fn fleet_entry(instance: &str, execution: &str, record: &str) -> serde_json::Value {
    serde_json::json!({
        "account": "123456789012", "region": "eu-west-1", "instance_id": instance,
        "execution_id": execution, "status": "Success", "capture_status": "complete",
        "bytes": 12345, "custody_copy": "snap-0123456789abcdef0", "failure": null,
        "custody_record": {
            "bucket": "forensics-custody-222222222222",
            "key": format!("custody/123456789012/eu-west-1/IR-13/{execution}.json"),
            "version_id": "v0",
            "sha256": sha(record.as_bytes()),
            "record_json": record,
            "record": serde_json::from_str::<serde_json::Value>(record).unwrap(),
        }
    })
}

/// A fleet record (the format of /work FLEET-FORMAT.md, docs/deploy.md).
fn fleet_record(entries: Vec<serde_json::Value>) -> serde_json::Value {
    serde_json::json!({
        "schema": "forensics-volume/fleet-record", "schema_version": 1,
        "fleet_id": FLEET_ID, "case_id": "IR-13",
        "examiner": "a.b@example", "security_account": "222222222222",
        "custody_bucket": "forensics-custody-222222222222", "record_key": FLEET_KEY,
        "started": "2026-12-07T10:00:00Z", "finished": "2026-12-07T10:20:00Z",
        "request": {"targets": [{"Key": "tag:Incident", "Values": ["IR-13"]}],
                    "locations": [{"account": "123456789012", "region": "eu-west-1"}],
                    "max_concurrency": "10", "max_errors": "3"},
        "totals": {"instances": entries.len()},
        "entries": entries,
    })
}

/// A versions listing of `key` with one version `id` of `size` bytes.
fn one_version(key: &str, id: &str, size: u64) -> serde_json::Value {
    serde_json::json!({"Versions": [{"Key": key, "VersionId": id, "Size": size, "IsLatest": true,
                                     "LastModified": "2026-12-07T10:20:00+00:00"}]})
}

/// Issue 24: `--custody-record` takes a fleet record; the capture's entry
/// is found by its manifest digest (or `--fleet-entry`), its embedded
/// record must be the bytes the entry's sha256 names and is checked as a
/// per-instance record is; a tampered, failed, ambiguous, missing, foreign
/// or oversize fleet record, or one with hostile strings, is refused with a
/// clear message.
#[test]
fn root_fleet_record_entry_anchors_its_capture() {
    require_root();
    let t = tempfile::tempdir().unwrap();
    let mut dirs = Vec::new();
    let mut digests = Vec::new();
    for (name, ram) in [("a", (0x1000u64, 0x4_ffffu64)), ("b", (0x2000, 0x3_ffff))] {
        let (dir, out) = capture_into(&t.path().join(name), &lime(&[ram], None));
        let text = stdout(&out);
        let line = text.lines().last().unwrap().to_string();
        digests.push([
            digest_of(&line, "manifest.json"),
            digest_of(&line, "memory.lime.zst"),
            digest_of(&line, "lime"),
        ]);
        dirs.push(dir);
    }
    let (ex_a, ex_b) = (
        "0a1b2c3d-0000-4000-8000-00000000000a",
        "0a1b2c3d-0000-4000-8000-00000000000b",
    );
    let rec_a = record_bytes(&digests[0], ex_a, "i-0aaaaaaaaaaaaaaaa");
    let rec_b = record_bytes(&digests[1], ex_b, "i-0bbbbbbbbbbbbbbbb");
    let failed = serde_json::json!({
        "account": "123456789012", "region": "eu-west-1", "instance_id": "i-0cccccccccccccccc",
        "execution_id": null, "status": "Failed", "capture_status": "none", "bytes": null,
        "custody_copy": null, "failure": "not managed by Systems Manager\u{1b}[2K\rVERIFIED",
        "custody_record": null});
    // A location whose parent could not be read names no instance.
    let unknown = serde_json::json!({
        "account": "123456789012", "region": "eu-west-2", "instance_id": null,
        "execution_id": "0a1b2c3d-0000-4000-8000-0000000000ff", "status": "Unknown",
        "capture_status": "none", "bytes": null, "custody_copy": null,
        "failure": "the parent could not be read", "custody_record": null});
    let good = fleet_record(vec![
        fleet_entry("i-0aaaaaaaaaaaaaaaa", ex_a, &rec_a),
        fleet_entry("i-0bbbbbbbbbbbbbbbb", ex_b, &rec_b),
        failed.clone(),
        unknown,
    ]);
    let fleet = t.path().join("fleet.json");
    let write = |v: &serde_json::Value| std::fs::write(&fleet, v.to_string()).unwrap();
    write(&good);
    let (a, b) = (p(&dirs[0]), p(&dirs[1]));

    // Each capture finds its own entry; without the listings it says what
    // is not checked and prints both commands.
    let o = verify(&[a, "--custody-record", p(&fleet)]);
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    let s = stdout(&o);
    assert!(s.starts_with("VERIFIED ") && s.contains("ANCHORED"), "{s}");
    assert!(
        s.contains("taken from fleet 20261207T100000Z-0a1b2c3d's entry i-0aaaaaaaaaaaaaaaa"),
        "{s}"
    );
    assert!(
        s.contains("CUSTODY RECORD NOT CHECKED") && s.contains("FLEET RECORD NOT CHECKED"),
        "{s}"
    );
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(
        e.contains(&format!(
            "--prefix custody/123456789012/eu-west-1/IR-13/{ex_a}. --output json"
        )) && e.contains(
            "--prefix fleet/IR-13/20261207T100000Z-0a1b2c3d. --output json > fleet-versions.json"
        ),
        "{e}"
    );
    let o = verify(&[b, "--custody-record", p(&fleet), "--json"]);
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let f = &v["custody_record"]["fleet"];
    assert_eq!(f["fleet_id"], "20261207T100000Z-0a1b2c3d");
    assert_eq!(f["entry"]["instance_id"], "i-0bbbbbbbbbbbbbbbb");
    assert_eq!(f["entry"]["index"], 1);
    assert_eq!(f["chosen_by"], "manifest-sha256");
    assert_eq!(v["custody_record"]["execution_id"], ex_b);
    assert_eq!(v["anchors"].as_array().unwrap().len(), 3);

    // With both listings: the record and the fleet record are each their
    // key's first and only version.
    let key_a = format!("custody/123456789012/eu-west-1/IR-13/{ex_a}.json");
    let rec_list = t.path().join("custody-versions.json");
    let fleet_list = t.path().join("fleet-versions.json");
    let fleet_size = std::fs::metadata(&fleet).unwrap().len();
    std::fs::write(
        &rec_list,
        one_version(&key_a, "v0", rec_a.len() as u64).to_string(),
    )
    .unwrap();
    std::fs::write(
        &fleet_list,
        one_version(FLEET_KEY, "f0", fleet_size).to_string(),
    )
    .unwrap();
    let both = |extra: &[&str]| {
        let mut args = vec![
            a,
            "--custody-record",
            p(&fleet),
            "--custody-versions",
            p(&rec_list),
        ];
        args.extend_from_slice(&["--fleet-versions", p(&fleet_list)]);
        args.extend_from_slice(extra);
        verify(&args)
    };
    let o = both(&[]);
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    let s = stdout(&o);
    assert!(
        s.contains(&format!("the custody record is the first and only version (v0) of s3://forensics-custody-222222222222/{key_a}"))
            && s.contains(&format!("the fleet record is the first and only version (f0) of s3://forensics-custody-222222222222/{FLEET_KEY}")),
        "{s}"
    );
    // The entry named explicitly, by instance or by execution.
    for id in ["i-0aaaaaaaaaaaaaaaa", ex_a] {
        let o = both(&["--fleet-entry", id]);
        assert_eq!(o.status.code(), Some(0), "{id}: {o:?}");
    }
    // The listings disagree: another version of the record than the fleet
    // copied; a fleet record file that is not the only version's size.
    std::fs::write(
        &rec_list,
        one_version(&key_a, "v7", rec_a.len() as u64).to_string(),
    )
    .unwrap();
    let o = both(&[]);
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    assert!(
        stdout(&o).contains("FAILED custody-record:")
            && stdout(&o).contains("the fleet's copy is not that record"),
        "{}",
        stdout(&o)
    );
    std::fs::write(
        &rec_list,
        one_version(&key_a, "v0", rec_a.len() as u64).to_string(),
    )
    .unwrap();
    std::fs::write(
        &fleet_list,
        one_version(FLEET_KEY, "f0", fleet_size + 1).to_string(),
    )
    .unwrap();
    let o = both(&[]);
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    assert!(
        stdout(&o).contains("FAILED fleet-record:")
            && stdout(&o).contains("the fleet record file is"),
        "{}",
        stdout(&o)
    );

    // A tampered entry: its record's digests changed, the entry's sha256
    // and parsed copy left as they were.
    let mut tampered = good.clone();
    let forged = rec_a.replace(&digests[0][1], &"0".repeat(64));
    tampered["entries"][0]["custody_record"]["record_json"] = forged.into();
    write(&tampered);
    let o = verify(&[a, "--custody-record", p(&fleet)]);
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    let s = stdout(&o);
    for says in ["have SHA-256", "say different things", "FAILED anchor:"] {
        assert!(s.contains(says), "{says}: {s}");
    }
    assert!(s.lines().last().unwrap().starts_with("NOT VERIFIED"), "{s}");
    // An entry whose names are not its record's.
    let mut moved = good.clone();
    moved["entries"][0]["region"] = "us-east-1".into();
    write(&moved);
    let o = verify(&[a, "--custody-record", p(&fleet)]);
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    assert!(
        stdout(&o).contains("the entry is not this record's"),
        "{}",
        stdout(&o)
    );

    // A fleet record that says it was written elsewhere than fleet start
    // writes it.
    let mut elsewhere = good.clone();
    elsewhere["record_key"] = "fleet/IR-13/other.json".into();
    write(&elsewhere);
    let o = verify(&[a, "--custody-record", p(&fleet)]);
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    assert!(
        stdout(&o).contains(&format!("FAILED fleet-record: {}: it says it was written to fleet/IR-13/other.json, but fleet start writes fleet {FLEET_ID} of case IR-13 to {FLEET_KEY}", p(&fleet))),
        "{}",
        stdout(&o)
    );

    // Usage errors (exit 2), each saying what it saw; none lets a raw
    // control character through.
    let only_a = fleet_record(vec![fleet_entry("i-0aaaaaaaaaaaaaaaa", ex_a, &rec_a)]);
    let twice = fleet_record(vec![
        fleet_entry("i-0aaaaaaaaaaaaaaaa", ex_a, &rec_a),
        fleet_entry("i-0aaaaaaaaaaaaaaaa", ex_a, &rec_a),
    ]);
    // Without record_json (fleet.py's first format): the parsed record
    // written again as custody.py writes it is the record's bytes when it
    // hashes to the entry's sha256; otherwise the bytes are not there.
    let mut no_json = good.clone();
    no_json["entries"][0]["custody_record"]
        .as_object_mut()
        .unwrap()
        .remove("record_json");
    write(&no_json);
    std::fs::write(
        &fleet_list,
        one_version(FLEET_KEY, "f0", std::fs::metadata(&fleet).unwrap().len()).to_string(),
    )
    .unwrap();
    let o = both(&[]);
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    assert!(
        stdout(&o).contains("the custody record is the first and only version (v0)"),
        "{}",
        stdout(&o)
    );
    let mut no_bytes = no_json.clone();
    no_bytes["entries"][0]["custody_record"]["sha256"] = sha(b"another record").into();
    let mut v2 = good.clone();
    v2["schema_version"] = 2.into();
    let mut other = good.clone();
    other["schema"] = "forensics-volume/other\u{1b}]0;x".into();
    let mut evil_id = good.clone();
    evil_id["fleet_id"] = "fleet\u{1b}[2K\rVERIFIED".into();
    let mut evil_instance = good.clone();
    evil_instance["entries"][2]["instance_id"] = "i-0c\u{202e}x".into();
    for (doc, dir, extra, says) in [
        (
            &good,
            a,
            Some("0a1b2c3d-0000-4000-8000-0000000000ff"),
            "entry entries[3] (no instance) of fleet 20261207T100000Z-0a1b2c3d has no custody record (status Unknown; failure: the parent could not be read)",
        ),
        (
            &good,
            a,
            Some("i-0cccccccccccccccc"),
            "has no custody record (status Failed; failure: not managed by Systems Manager\\x1b[2K\\x0dVERIFIED)",
        ),
        (
            &only_a,
            b,
            None,
            "no entry of fleet 20261207T100000Z-0a1b2c3d (1 entries, 1 with a custody record) holds this capture's manifest.json SHA-256",
        ),
        (
            &only_a,
            a,
            Some("i-0nothere"),
            "has no entry for i-0nothere (entries: i-0aaaaaaaaaaaaaaaa",
        ),
        (
            &twice,
            a,
            None,
            "2 entries of fleet 20261207T100000Z-0a1b2c3d match this capture's manifest.json SHA-256",
        ),
        (
            &no_bytes,
            a,
            None,
            "does not carry its custody record's exact bytes (record_json), and its parsed record written again as custody.py writes one does not hash to the entry's sha256",
        ),
        (&v2, a, None, "not a fleet record: schema_version 2"),
        (
            &other,
            a,
            None,
            "neither a custody record nor a fleet record: its schema is \"forensics-volume/other\\x1b]0;x\"",
        ),
        (
            &evil_id,
            a,
            None,
            "its fleet_id \"fleet\\x1b[2K\\x0dVERIFIED\" is not one fleet start writes",
        ),
        (
            &evil_instance,
            a,
            None,
            "its entries[2].instance_id \"i-0c\\u{202e}x\" is not one",
        ),
    ] {
        write(doc);
        let mut args = vec![dir, "--custody-record", p(&fleet)];
        if let Some(id) = extra {
            args.extend_from_slice(&["--fleet-entry", id]);
        }
        let o = verify(&args);
        assert_eq!(o.status.code(), Some(2), "{says}: {o:?}");
        let e = String::from_utf8_lossy(&o.stderr);
        assert!(e.contains(says), "{says}: {e}");
        assert!(!e.contains('\u{1b}') && !e.contains('\u{202e}'), "{e}");
        assert!(o.stdout.is_empty(), "{o:?}");
    }
    // The capture not in the fleet can still be checked against an entry:
    // it is not the evidence that entry anchors.
    write(&only_a);
    let o = verify(&[
        b,
        "--custody-record",
        p(&fleet),
        "--fleet-entry",
        "i-0aaaaaaaaaaaaaaaa",
    ]);
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    assert_eq!(
        stdout(&o).matches("FAILED anchor:").count(),
        3,
        "{}",
        stdout(&o)
    );
    // Fleet flags with a per-instance record, and a fleet record over the
    // bound, unread.
    let record = t.path().join("custody.json");
    std::fs::write(&record, &rec_a).unwrap();
    let o = verify(&[
        a,
        "--custody-record",
        p(&record),
        "--fleet-entry",
        "i-0aaaaaaaaaaaaaaaa",
    ]);
    assert_eq!(o.status.code(), Some(2), "{o:?}");
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("--fleet-entry is for a fleet record"),
        "{o:?}"
    );
    let f = std::fs::File::create(&fleet).unwrap();
    f.set_len((64 << 20) + 1).unwrap();
    let o = verify(&[a, "--custody-record", p(&fleet)]);
    assert_eq!(o.status.code(), Some(2), "{o:?}");
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("larger than 67108864 bytes"),
        "{o:?}"
    );
}
