//! What a finished run prints: the one-line human summary and the `--json`
//! object.

use std::time::Duration;

use fv_evidence::manifest::{self, Span};

use super::state::Outcome;
use crate::progress::{duration, human};

/// The one-line human summary.
pub fn summary_line(o: &Outcome) -> String {
    let m = &o.manifest;
    let ram = m.total_range_bytes();
    let ratio = if m.image.lime_length > 0 {
        m.image.compressed_length as f64 * 100.0 / m.image.lime_length as f64
    } else {
        0.0
    };
    let status = match &m.partial_reason {
        None => "complete".to_string(),
        Some(r) => {
            let zeroed = m
                .not_captured
                .iter()
                .fold(0u64, |a, s| a.saturating_add(s.length));
            let left_out = m
                .omitted
                .iter()
                .fold(0u64, |a, s| a.saturating_add(s.length));
            let unknown = if m.remainder_unknown.is_some() {
                "; the source's remainder is unknown"
            } else {
                ""
            };
            format!(
                "PARTIAL ({}; {} zero-filled, {} not reached and left out, of {}{unknown})",
                r.detail,
                human(zeroed),
                human(left_out),
                human(ram.saturating_add(left_out))
            )
        }
    };
    let unreadable: u64 = m.unreadable.iter().map(|s| s.length).sum();
    let unreadable = if m.unreadable.is_empty() {
        String::new()
    } else {
        format!(
            "; {} unreadable in {} span(s), zero-filled",
            human(unreadable),
            m.unreadable.len()
        )
    };
    format!(
        "capture: {status}: {} of RAM in {} range(s) from {} in {} ({}/s) -> {} ({}, {ratio:.1} %){unreadable}; {}; {ANCHOR_ADVICE}",
        human(ram),
        m.ranges.len(),
        m.source.kind,
        duration(Duration::from_secs_f64(m.timing.duration_seconds)),
        human(m.timing.throughput_bytes_per_second as u64),
        o.dir.display(),
        human(m.image.compressed_length),
        anchor_digests(o)
    )
}

/// What ends the summary line: the digests above are the only copy outside
/// the volume once they leave it (issue 23). Without SSM nothing else keeps
/// them, and `verify` without them is self-consistency only.
pub const ANCHOR_ADVICE: &str = "copy these three digests off this host now (e.g. into the case ticket): the analyst gives them to capture verify --expect-manifest-sha256 --expect-sha256 --expect-lime-sha256 (docs/break-glass.md)";

/// The digests near the end of the summary line, in a fixed `name=hex` form the
/// runbook parses out of the SSM output and copies into its outputs, the
/// custody record and the evidence snapshot's tags: they anchor the capture
/// outside the volume it was written to (security review H3).
pub fn anchor_digests(o: &Outcome) -> String {
    format!(
        "sha256 {}={} {}={} lime={}",
        manifest::MANIFEST_FILE,
        o.manifest_sha256,
        manifest::IMAGE_FILE,
        o.manifest.image.compressed_sha256,
        o.manifest.image.lime_sha256
    )
}

/// The `--json` summary.
pub fn summary_json(o: &Outcome) -> serde_json::Value {
    let m = &o.manifest;
    serde_json::json!({
        // As the helpers' JSON: `ok` (exit code 0), `command`; a failure
        // before any image is `{"ok": false, ...}` (capture's main).
        "ok": o.exit == 0,
        "command": "capture",
        "status": m.status,
        "partial_reason": m.partial_reason,
        "exit_code": o.exit,
        "capture_dir": o.dir.display().to_string(),
        "manifest": o.dir.join(manifest::MANIFEST_FILE).display().to_string(),
        "manifest_sha256": o.manifest_sha256,
        "source": m.source.kind,
        "host": {
            "hostname": m.host.hostname,
            "instance_id": m.host.imds.as_ref().and_then(|i| i.instance_id.clone()),
            "kernel_release": m.host.kernel_release,
        },
        "ram_bytes": m.total_range_bytes(),
        "ranges": m.ranges.len(),
        "unreadable_bytes": m.unreadable.iter().map(|s: &Span| s.length).sum::<u64>(),
        "not_captured_bytes": m.not_captured.iter().map(|s: &Span| s.length).sum::<u64>(),
        "omitted_bytes": m.omitted.iter().fold(0u64, |a, s: &Span| a.saturating_add(s.length)),
        "remainder_unknown": m.remainder_unknown,
        "lime_length": m.image.lime_length,
        "lime_sha256": m.image.lime_sha256,
        "compressed_length": m.image.compressed_length,
        "compressed_sha256": m.image.compressed_sha256,
        "duration_seconds": m.timing.duration_seconds,
        "throughput_bytes_per_second": m.timing.throughput_bytes_per_second,
        "peak_rss_bytes": m.peak_rss_bytes,
        "warnings": m.warnings.len(),
    })
}
