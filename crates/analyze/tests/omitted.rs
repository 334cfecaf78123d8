//! `capture info` and `capture verify` on a stopped capture's account of
//! what it left out (`omitted`, `remainder_unknown`): shown in a bounded
//! way, and checked against the manifest's ranges and the image's records,
//! so a manifest that lies about what the image holds does not verify.

// Test code: a panic is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use fv_evidence::manifest::{PartialCause, PartialReason, Span, Status};

fn span(start: u64, length: u64) -> Span {
    Span {
        start,
        length,
        error: "interrupted by SIGTERM".into(),
    }
}

/// An honest partial capture: the first two of [`RANGES`] are in the image,
/// SIGTERM came before the third, which is listed as omitted.
fn stopped(root: &std::path::Path) -> Fixture {
    let mut f = capture(root, "cap", &RANGES[..2]);
    f.manifest.status = Status::Partial;
    f.manifest.partial_reason = Some(PartialReason {
        cause: PartialCause::Interrupted,
        detail: "SIGTERM".into(),
    });
    let (s, e) = RANGES[2];
    f.manifest.omitted = vec![span(s, e - s + 1)];
    f.save_manifest();
    f
}

fn omitted_findings(r: &Run) -> Vec<&str> {
    r.stdout
        .lines()
        .filter(|l| l.starts_with("FAILED omitted: "))
        .collect()
}

#[test]
fn an_honest_partial_capture_verifies_and_says_what_is_missing() {
    let t = tempfile::tempdir().unwrap();
    let f = stopped(t.path());
    let r = run(&["verify", f.d()]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stdout
            .contains("capture PARTIAL (interrupted: SIGTERM; 1 range(s), 262144 bytes omitted)"),
        "{}",
        r.stdout
    );
    assert!(
        r.stderr.contains(
            "note: partial capture: 0 byte(s) zero-filled in the last record (not_captured), 1 range(s) of 262144 byte(s) left out of the image (omitted)"
        ),
        "{}",
        r.stderr
    );
    let r = run(&["info", f.d()]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stdout
            .contains("omitted        1 range(s), 256.0 KiB (262144 bytes)"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains("               0x100000000 +262144 (interrupted by SIGTERM)"),
        "{}",
        r.stdout
    );
    assert!(!r.stdout.contains("remainder"), "{}", r.stdout);
}

#[test]
fn omitted_memory_that_is_in_the_image_fails_verify() {
    let t = tempfile::tempdir().unwrap();
    // The manifest hides a captured range: out of `ranges`, into `omitted`,
    // while the image still holds its record.
    let mut f = capture(t.path(), "cap", &RANGES);
    f.manifest.status = Status::Partial;
    f.manifest.partial_reason = Some(PartialReason {
        cause: PartialCause::Interrupted,
        detail: "SIGTERM".into(),
    });
    let hidden = f.manifest.ranges.remove(1);
    f.manifest.omitted = vec![span(hidden.start, hidden.length)];
    f.save_manifest();
    let r = run(&["verify", f.d()]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stdout.contains(
            "FAILED omitted: memory.lime.zst: omitted span 0x100000-0x4fffff is in the image (record 1 0x100000-0x4fffff): that memory was captured, the manifest says it was left out"
        ),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("NOT VERIFIED"), "{}", r.stdout);

    // The same range both captured and omitted.
    let t = tempfile::tempdir().unwrap();
    let mut f = stopped(t.path());
    f.manifest.omitted.insert(0, span(0x10_0000, 0x1000));
    f.save_manifest();
    let r = run(&["verify", f.d()]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stdout.contains(
            "omitted span 0x100000-0x100fff overlaps a captured range: the manifest says this memory is both in the image and left out"
        ),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains("omitted span 0x100000-0x100fff is in the image"),
        "{}",
        r.stdout
    );
}

#[test]
fn omitted_memory_in_a_complete_capture_fails_verify() {
    let t = tempfile::tempdir().unwrap();
    let mut f = stopped(t.path());
    f.manifest.status = Status::Complete;
    f.manifest.partial_reason = None;
    f.manifest.remainder_unknown = Some("the stream stopped early".into());
    f.save_manifest();
    let r = run(&["verify", f.d()]);
    assert_eq!(r.code, 1, "{r:?}");
    let found = omitted_findings(&r);
    assert!(
        found
            .iter()
            .any(|l| l
                .contains("status is complete but 1 omitted span(s) (262144 bytes) are listed")),
        "{}",
        r.stdout
    );
    assert!(
        found
            .iter()
            .any(|l| l.contains("status is complete but remainder_unknown is set")),
        "{}",
        r.stdout
    );
}

#[test]
fn omitted_spans_that_cannot_be_a_stop_fail_verify() {
    let t = tempfile::tempdir().unwrap();
    let mut f = stopped(t.path());
    let (s, _) = RANGES[2];
    // Between captured records (allowed), overlapping another omitted
    // span, empty, and a zero-filled span outside the last record.
    f.manifest.omitted.push(span(0xa_0000, 0x1000));
    f.manifest.omitted.push(span(s + 0x1000, 0x1000));
    f.manifest.omitted.push(span(0x2_0000_0000, 0));
    f.manifest.not_captured = vec![span(0x2000, 0x1000)];
    f.save_manifest();
    let r = run(&["verify", f.d()]);
    assert_eq!(r.code, 1, "{r:?}");
    let found = omitted_findings(&r).join("\n");
    // A span between records is no finding: a stream of the capturing host
    // that passed over a System RAM range has it listed there (S4).
    assert!(!found.contains("0xa0000"), "{}", r.stdout);
    for want in [
        "omitted spans 0x100000000-0x10003ffff and 0x100001000-0x100001fff overlap",
        "omitted span at 0x200000000 (0 bytes) is empty",
        "not_captured span at 0x2000 (4096 bytes) is not in the last record 0x100000-0x4fffff",
    ] {
        assert!(found.contains(want), "missing {want:?} in\n{}", r.stdout);
    }
}

#[test]
fn a_flood_of_omitted_spans_is_reported_and_shown_in_bounds() {
    let t = tempfile::tempdir().unwrap();
    let mut f = stopped(t.path());
    // 5000 spans inside captured memory: each is a finding, but verify
    // lists 20 and counts the rest; info shows 20 lines and the total.
    f.manifest.omitted = (0..5000u64)
        .map(|i| span(0x10_0000 + i * 0x100, 0x100))
        .collect();
    f.manifest.remainder_unknown = Some("a LiME stream from another host stopped early".into());
    f.save_manifest();
    let r = run(&["verify", f.d()]);
    assert_eq!(r.code, 1, "{r:?}");
    let found = omitted_findings(&r);
    assert!(found.len() <= 2 * 21, "{} findings", found.len());
    assert!(
        found
            .iter()
            .any(|l| l.contains("... and 4980 more findings about omitted spans")),
        "{}",
        r.stdout
    );
    let r = run(&["info", f.d()]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stdout
            .contains("omitted        5000 range(s), 1.2 MiB (1280000 bytes)"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains("... and 4980 more (capture info --json lists them all)"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.lines().count() < 80, "{}", r.stdout);
    assert!(
        r.stdout
            .contains("remainder      UNKNOWN: a LiME stream from another host stopped early"),
        "{}",
        r.stdout
    );
    let r = run(&["info", f.d(), "--json"]);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["manifest"]["omitted"].as_array().unwrap().len(), 5000);
}
