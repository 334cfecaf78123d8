//! What mount-helper prints: human text by default, one JSON object on
//! stdout with `--json` (for SSM, which keeps only the last 2,500
//! characters in the console: the verdict comes last in human text).

use std::fmt::Write as _;

use serde_json::{Value, json};

use crate::cli::{Args, Command};
use crate::{Error, Outcome};

/// The error and its causes, each said once.
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let said = cause.to_string();
        if !text.contains(&said) {
            let _ = write!(text, ": {said}");
        }
        source = cause.source();
    }
    text
}

fn command_name(args: &Args) -> &'static str {
    match &args.command {
        Command::Locate(_) => "locate",
        Command::Mount(m) if m.evidence => "mount-evidence",
        Command::Mount(_) => "mount",
    }
}

fn gib(bytes: u64) -> String {
    format!("{:.1} GiB", bytes as f64 / f64::from(1u32 << 30))
}

/// Human text for a success.
pub fn human_ok(outcome: &Outcome) -> String {
    let mut out = String::new();
    let located = match outcome {
        Outcome::Located { located, .. } | Outcome::Mounted { located, .. } => located,
    };
    let _ = writeln!(out, "Devices seen:\n{}", located.report);
    for w in &located.warnings {
        let _ = writeln!(out, "WARNING: {w}");
    }
    let _ = writeln!(
        out,
        "{} is {} ({}, {}), identified by: {}",
        located.volume_id,
        located.device_path.display(),
        located.dev,
        gib(located.size_bytes),
        located.identified_by.join("; ")
    );
    match outcome {
        Outcome::Located { superblock, .. } => {
            for m in &located.mounts {
                let _ = writeln!(
                    out,
                    "mounted at {} ({})",
                    m.mount_point.display(),
                    m.options.join(",")
                );
            }
            if let Some(sb) = superblock {
                let _ = writeln!(
                    out,
                    "filesystem: {:?} label {:?}, UUID {}",
                    sb.kind, sb.label, sb.uuid
                );
            }
            let _ = writeln!(
                out,
                "OK: {} is {}",
                located.volume_id,
                located.device_path.display()
            );
        }
        Outcome::Mounted {
            mounted, evidence, ..
        } => {
            for w in &mounted.warnings {
                let _ = writeln!(out, "WARNING: {w}");
            }
            let fs = &mounted.filesystem;
            let _ = writeln!(
                out,
                "filesystem: {:?} label {:?}, UUID {}",
                fs.kind, fs.label, fs.uuid
            );
            if mounted.adopted_stage0 {
                let _ = writeln!(
                    out,
                    "adopted stage-0's read-only mount at {}",
                    mounted.mountpoint.display()
                );
            }
            if let Some(t) = &mounted.toolkit {
                let _ = writeln!(
                    out,
                    "toolkit verified: {} {} (commit {}), {} files ({} bytes) match SHA256SUMS",
                    t.marker.toolkit, t.marker.version, t.marker.git_commit, t.files, t.bytes
                );
            }
            if let Some(g) = &mounted.grow {
                if g.to_bytes > g.from_bytes {
                    let _ = writeln!(
                        out,
                        "grew the filesystem from {} to {} (device {})",
                        gib(g.from_bytes),
                        gib(g.to_bytes),
                        gib(g.device_bytes)
                    );
                } else {
                    let _ = writeln!(
                        out,
                        "the filesystem already fills the device ({})",
                        gib(g.device_bytes)
                    );
                }
            }
            if let Some(p) = &mounted.evidence {
                let _ = writeln!(
                    out,
                    "proof: {} written sectors before mount {}, after mount {}: unchanged; kernel read-only flag (BLKROSET) {}",
                    p.device,
                    p.written_sectors_before,
                    p.written_sectors_after_mount,
                    if p.device_read_only { "set" } else { "NOT set" }
                );
            }
            let mode = if *evidence {
                "READ-ONLY (evidence)"
            } else {
                "read-write"
            };
            let _ = writeln!(
                out,
                "OK: {} ({}) mounted {mode} at {} ({})",
                located.volume_id,
                mounted.device_path.display(),
                mounted.mountpoint.display(),
                mounted.options
            );
        }
    }
    out
}

fn origin_json(origin: &fv_mount::reexec::Origin) -> Value {
    match origin {
        fv_mount::reexec::Origin::Original => json!("original"),
        fv_mount::reexec::Origin::Memfd => json!("memfd"),
        fv_mount::reexec::Origin::Copy(p) => json!(format!("copy:{}", p.display())),
    }
}

fn to_value<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

/// One JSON object (and a newline) for a success.
pub fn json_ok(args: &Args, outcome: &Outcome) -> String {
    let value = match outcome {
        Outcome::Located {
            located,
            superblock,
        } => json!({
            "ok": true,
            "command": command_name(args),
            "volume_id": located.volume_id,
            "device": located.device_path,
            "located": to_value(located),
            "filesystem": to_value(superblock),
            "warnings": located.warnings,
        }),
        Outcome::Mounted {
            located,
            mounted,
            origin,
            ..
        } => {
            let mut warnings = located.warnings.clone();
            warnings.extend(mounted.warnings.iter().cloned());
            json!({
                "ok": true,
                "command": command_name(args),
                "volume_id": located.volume_id,
                "device": mounted.device_path,
                "mountpoint": mounted.mountpoint,
                "located": to_value(located),
                "mounted": to_value(mounted),
                "ran_from": origin_json(origin),
                "warnings": warnings,
            })
        }
    };
    format!("{value}\n")
}

/// The processes holding a busy read-only mount, when that is the failure.
fn busy_holders(e: &Error) -> Option<&Vec<fv_mount::holders::Holder>> {
    let mut m = match e {
        Error::Mount(m) => m,
        _ => return None,
    };
    while let fv_mount::ops::MountError::Cleanup { primary, .. } = m {
        m = primary;
    }
    match m {
        fv_mount::ops::MountError::Busy { holders, .. } => Some(holders),
        _ => None,
    }
}

/// One JSON object (and a newline) for a failure.
pub fn json_err(args: &Args, e: &Error) -> String {
    let mut value = json!({
        "ok": false,
        "command": command_name(args),
        "exit_code": e.exit_code(),
        "error_kind": e.kind(),
        "error": chain(e),
        "candidates": e.report().map(to_value),
    });
    if let Some(holders) = busy_holders(e) {
        value["holders"] = to_value(holders);
    }
    format!("{value}\n")
}
