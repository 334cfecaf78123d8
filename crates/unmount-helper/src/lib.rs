//! `unmount-helper`: sync, unmount and flush the forensics volume so it is
//! safe to detach.
//!
//! The command line is in [`cli`], the documented exit codes in [`exit`].
//! [`reexec`] moves the executable off the volume first; the unmount itself
//! is [`fv_mount::unmount`]. [`main_with`] prints human text or one JSON
//! object (`--json`) and returns the exit code.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use fv_ebs::locate::{self, Expectation, KernelIdentify, LocateError, LocateOptions};
use fv_ebs::{InputError, Roots, VolumeId};
use fv_mount::unmount::{self, Target, UnmountError, Unmounted};
use nix::errno::Errno;
use serde_json::json;

pub mod cli;
pub mod exit;

use cli::Args;
use fv_mount::reexec::{self, Origin, ReexecError};

/// Where stage-0 and mount-helper make mountpoints, and the fallback copy goes.
const RUN_ROOT: &str = "/run";
/// `FV_TEST_ACCEPT_NVME_MODEL`: see mount-helper.
pub const TEST_MODEL_ENV: &str = "FV_TEST_ACCEPT_NVME_MODEL";

/// Why unmount-helper failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad volume ID.
    #[error(transparent)]
    Input(#[from] InputError),
    /// Finding the volume's device failed.
    #[error(transparent)]
    Locate(#[from] LocateError),
    /// Unmounting failed.
    #[error(transparent)]
    Unmount(#[from] UnmountError),
    /// Moving off the volume failed.
    #[error(transparent)]
    Reexec(#[from] ReexecError),
    /// Leaving the volume as working directory failed.
    #[error("chdir /: {0}")]
    Chdir(#[source] Errno),
    /// Not root.
    #[error("unmount-helper needs root (CAP_SYS_ADMIN): run it with sudo or from SSM Run Command")]
    NeedsRoot,
    /// A read-only (evidence) device had sectors written while unmounting.
    #[error(
        "{device}: unmounted, but the read-only device's written-sector count changed from {before} to {after}"
    )]
    EvidenceWritten {
        /// The unmount that happened.
        unmounted: Box<Unmounted>,
        /// Device.
        device: String,
        /// Before.
        before: u64,
        /// After.
        after: u64,
    },
}

impl Error {
    /// The documented exit code (docs/unmount-helper.md).
    pub fn exit_code(&self) -> i32 {
        match self {
            Self::Input(_) | Self::Locate(LocateError::TargetProtected(_)) => exit::BAD_INPUT,
            Self::Locate(LocateError::NotFound { .. }) => exit::NOT_MOUNTED,
            Self::Locate(LocateError::State(_)) => exit::FAILURE,
            Self::Locate(_) => exit::REFUSED,
            Self::Unmount(e) => match e {
                UnmountError::NotMounted(_) | UnmountError::VolumeNotMounted(_) => {
                    exit::NOT_MOUNTED
                }
                UnmountError::SeveralMounts { .. }
                | UnmountError::Refused(_)
                | UnmountError::NotTheVolume { .. } => exit::REFUSED,
                UnmountError::Busy { .. } | UnmountError::KernelBusy { .. } => exit::BUSY,
                UnmountError::Sys {
                    source: Errno::EPERM | Errno::EACCES,
                    ..
                } => exit::NEEDS_ROOT,
                UnmountError::Sys { .. } | UnmountError::StillMounted { .. } => {
                    exit::UNMOUNT_FAILED
                }
                UnmountError::Flush { .. } => exit::FLUSH_FAILED,
                UnmountError::Mountinfo(_) | UnmountError::Sysfs(_) => exit::FAILURE,
            },
            Self::Reexec(_) => exit::REEXEC_FAILED,
            Self::Chdir(_) => exit::FAILURE,
            Self::NeedsRoot => exit::NEEDS_ROOT,
            Self::EvidenceWritten { .. } => exit::EVIDENCE_WRITTEN,
        }
    }

    /// A short machine-readable name for the JSON output.
    pub fn kind(&self) -> &'static str {
        match self.exit_code() {
            exit::BAD_INPUT => "bad_input",
            exit::NOT_MOUNTED => "not_mounted",
            exit::BUSY => "busy",
            exit::UNMOUNT_FAILED => "unmount_failed",
            exit::REEXEC_FAILED => "reexec_failed",
            exit::FLUSH_FAILED => "flush_failed",
            exit::REFUSED => "refused",
            exit::EVIDENCE_WRITTEN => "evidence_written",
            exit::NEEDS_ROOT => "needs_root",
            _ => "failure",
        }
    }
}

/// What happened.
#[derive(Debug)]
pub struct Outcome {
    /// The unmount.
    pub unmounted: Unmounted,
    /// Where the executable ran from.
    pub origin: Origin,
    /// Test overrides in effect.
    pub warnings: Vec<String>,
}

fn target(args: &Args, roots: &Roots, warnings: &mut Vec<String>) -> Result<Target, Error> {
    let Some(id) = args.volume_id.as_deref() else {
        // Break-glass by path alone: nothing says which volume it must be.
        warnings.push(
            "--mountpoint without --volume-id: what is mounted there is not checked against a volume ID".to_string(),
        );
        return Ok(Target::Mountpoint(
            args.mountpoint.clone().unwrap_or_default(),
        ));
    };
    let id = VolumeId::parse(id)?;
    let model = std::env::var(TEST_MODEL_ENV).ok().filter(|m| !m.is_empty());
    if let Some(m) = &model {
        warnings.push(format!(
            "TEST OVERRIDE {TEST_MODEL_ENV}={m:?}: this NVMe model is accepted as EBS"
        ));
    }
    let expect = Expectation::default();
    let opts = LocateOptions {
        volume_id: &id,
        requested: None,
        protect: &[],
        expect: &expect,
        extra_model: model.as_deref(),
        allow_mounted: true,
        identify: &KernelIdentify,
        roots,
    };
    let located = locate::locate(&opts, Duration::ZERO)?;
    warnings.extend(located.warnings.iter().cloned());
    Ok(match &args.mountpoint {
        Some(mp) => Target::MountpointOf {
            mountpoint: mp.clone(),
            volume_id: located.volume_id,
            mounts: located.mounts,
        },
        None => Target::Device {
            volume_id: located.volume_id,
            mounts: located.mounts,
        },
    })
}

/// Does the work: re-exec off the volume, chdir /, unmount.
///
/// # Errors
/// [`Error`], whose [`Error::exit_code`] is the documented exit code.
pub fn run(args: &Args) -> Result<Outcome, Error> {
    if let Some(id) = &args.volume_id {
        VolumeId::parse(id)?;
    }
    if !nix::unistd::geteuid().is_root() {
        return Err(Error::NeedsRoot);
    }
    let run_root = Path::new(RUN_ROOT);
    let origin = reexec::ensure(args.reexec.mode(), run_root, "unmount-helper")?;
    nix::unistd::chdir("/").map_err(Error::Chdir)?;
    let roots = args.roots.roots();
    let mut warnings = Vec::new();
    let target = target(args, &roots, &mut warnings)?;
    let unmounted = unmount::unmount(&target, &roots, run_root)?;
    if unmounted.device_read_only
        && unmounted.written_sectors_after != unmounted.written_sectors_before
    {
        return Err(Error::EvidenceWritten {
            device: unmounted.device.clone(),
            before: unmounted.written_sectors_before,
            after: unmounted.written_sectors_after,
            unmounted: Box::new(unmounted),
        });
    }
    Ok(Outcome {
        unmounted,
        origin,
        warnings,
    })
}

fn origin_text(origin: &Origin) -> String {
    match origin {
        Origin::Original => "its original file (--reexec never)".to_string(),
        Origin::Memfd => "a memfd".to_string(),
        Origin::Copy(p) => format!("a copy at {} (deleted)", p.display()),
    }
}

fn human(o: &Outcome) -> String {
    let u = &o.unmounted;
    let mut out = String::new();
    for w in &o.warnings {
        let _ = writeln!(out, "WARNING: {w}");
    }
    let _ = writeln!(
        out,
        "running from {}, off the volume",
        origin_text(&o.origin)
    );
    let _ = writeln!(
        out,
        "synced (syncfs), no process holds it, unmounted {} ({} on {})",
        u.mountpoint.display(),
        u.fs_type,
        u.device_path.display()
    );
    let _ = writeln!(
        out,
        "device buffers flushed (BLKFLSBUF); written sectors before unmount {}, after {}{}",
        u.written_sectors_before,
        u.written_sectors_after,
        if u.device_read_only {
            " (read-only evidence device: unchanged)"
        } else {
            ""
        }
    );
    let _ = writeln!(
        out,
        "mountpoint {}",
        if u.mountpoint_removed {
            "removed".to_string()
        } else {
            u.notes.join("; ")
        }
    );
    let _ = writeln!(
        out,
        "OK: {} ({}) is safe to detach",
        u.volume_id.as_deref().unwrap_or("the volume"),
        u.device_path.display()
    );
    out
}

fn chain(e: &dyn std::error::Error) -> String {
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

fn origin_json(origin: &Origin) -> serde_json::Value {
    match origin {
        Origin::Original => json!("original"),
        Origin::Memfd => json!("memfd"),
        Origin::Copy(p) => json!(format!("copy:{}", p.display())),
    }
}

/// Runs, prints, and returns the exit code.
pub fn main_with(args: &Args) -> i32 {
    let result = run(args);
    let text = match &result {
        Ok(o) if args.json => {
            let u = &o.unmounted;
            format!(
                "{}\n",
                json!({
                    "ok": true,
                    "volume_id": u.volume_id,
                    "device": u.device_path,
                    "mountpoint": u.mountpoint,
                    "safe_to_detach": true,
                    "ran_from": origin_json(&o.origin),
                    "unmounted": serde_json::to_value(u).unwrap_or_default(),
                    "warnings": o.warnings,
                })
            )
        }
        Ok(o) => human(o),
        Err(e) => {
            if let Some(w) = std::env::var(TEST_MODEL_ENV).ok().filter(|m| !m.is_empty()) {
                eprintln!("unmount-helper: WARNING: TEST OVERRIDE {TEST_MODEL_ENV}={w:?}");
            }
            eprintln!("unmount-helper: error: {}", chain(e));
            let holders = match e {
                Error::Unmount(UnmountError::Busy { holders, .. }) => {
                    serde_json::to_value(holders).unwrap_or_default()
                }
                _ => serde_json::Value::Null,
            };
            if args.json {
                format!(
                    "{}\n",
                    json!({
                        "ok": false,
                        "exit_code": e.exit_code(),
                        "error_kind": e.kind(),
                        "error": chain(e),
                        "safe_to_detach": false,
                        "holders": holders,
                    })
                )
            } else {
                String::new()
            }
        }
    };
    fv_core::report::print_and_exit_code(&text, result.map_or_else(|e| e.exit_code(), |_| exit::OK))
}
