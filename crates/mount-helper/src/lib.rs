//! `mount-helper`: locate an EBS volume by its ID and mount it safely.
//!
//! The command line is in [`cli`], the documented exit codes in [`exit`],
//! the work in [`fv_ebs`] (finding the device) and [`fv_mount`] (mounting).
//! [`run`] returns what happened; [`main_with`] prints it (human text, or
//! one JSON object with `--json`) and gives the exit code.

use std::path::{Path, PathBuf};
use std::time::Duration;

use fv_ebs::locate::{self, Expectation, KernelIdentify, LocateError, LocateOptions, Located};
use fv_ebs::protect::Protection;
use fv_ebs::superblock::Superblock;
use fv_ebs::{InputError, RequestedDevice, Roots, VolumeId};
use fv_mount::mountpoint::MountpointError;
use fv_mount::ops::{self, ForensicsRequest, MountError, Mounted};
use fv_mount::reexec::{self, Origin};
use nix::errno::Errno;

pub mod cli;
pub mod exit;
mod output;

use cli::{Args, Command, DeviceArgs, MountArgs};

/// Where default mountpoints go (tmpfs).
const RUN_ROOT: &str = "/run";

/// Why mount-helper failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad volume ID or device name.
    #[error(transparent)]
    Input(#[from] InputError),
    /// Locating failed.
    #[error(transparent)]
    Locate(#[from] LocateError),
    /// Mounting failed.
    #[error(transparent)]
    Mount(#[from] MountError),
    /// `locate --expect-…` on Nitro: the superblock differs.
    #[error("{device}: {detail}")]
    Filesystem {
        /// Device node.
        device: PathBuf,
        /// What differs.
        detail: String,
    },
    /// Moving off the volume failed.
    #[error(transparent)]
    Reexec(#[from] fv_mount::reexec::ReexecError),
    /// Not root.
    #[error(
        "mount-helper {0} needs root (CAP_SYS_ADMIN): run it with sudo or from SSM Run Command"
    )]
    NeedsRoot(&'static str),
}

fn mount_code(e: &MountError) -> i32 {
    let root_or = |errno: &Errno, code| {
        if matches!(errno, Errno::EPERM | Errno::EACCES) {
            exit::NEEDS_ROOT
        } else {
            code
        }
    };
    match e {
        MountError::Vanished { .. } => exit::DEVICE_VANISHED,
        MountError::Open { source, .. } => match source.raw_os_error() {
            Some(libc::EPERM | libc::EACCES) => exit::NEEDS_ROOT,
            _ => exit::FAILURE,
        },
        MountError::Superblock { .. } | MountError::Filesystem { .. } => exit::FILESYSTEM_MISMATCH,
        MountError::Mountpoint(_) => exit::MOUNTPOINT_REFUSED,
        MountError::AlreadyMounted { .. } => exit::ALREADY_MOUNTED,
        MountError::Sys { source, .. } => root_or(source, exit::MOUNT_FAILED),
        MountError::Busy { .. } => exit::MOUNT_FAILED,
        MountError::Verify { .. } => exit::TOOLKIT_UNVERIFIED,
        MountError::Grow { .. } => exit::GROW_FAILED,
        MountError::ReadOnly { source, .. } => root_or(source, exit::EVIDENCE_WRITE),
        MountError::Written { .. } => exit::EVIDENCE_WRITE,
        MountError::Partition { .. } => exit::BAD_INPUT,
        MountError::Sysfs(_) | MountError::Mountinfo(_) => exit::FAILURE,
        MountError::Cleanup { primary, .. } => mount_code(primary),
    }
}

impl Error {
    /// The documented exit code (docs/mount-helper.md).
    pub fn exit_code(&self) -> i32 {
        match self {
            Self::Input(_) | Self::Locate(LocateError::TargetProtected(_)) => exit::BAD_INPUT,
            Self::Locate(LocateError::NotFound { .. }) => exit::NOT_FOUND,
            Self::Locate(LocateError::Ambiguous { .. }) => exit::AMBIGUOUS,
            // Only mounted (by us earlier, or by hand): not a protected device.
            Self::Locate(LocateError::Protected { reasons, .. })
                if reasons
                    .iter()
                    .all(|r| matches!(r, Protection::Mounted { .. })) =>
            {
                exit::ALREADY_MOUNTED
            }
            Self::Locate(LocateError::Protected { .. }) => exit::PROTECTED,
            Self::Locate(LocateError::IdentityMismatch { .. }) => exit::IDENTITY_MISMATCH,
            Self::Locate(LocateError::State(_)) => exit::FAILURE,
            Self::Mount(e) => mount_code(e),
            Self::Filesystem { .. } => exit::FILESYSTEM_MISMATCH,
            Self::NeedsRoot(_) => exit::NEEDS_ROOT,
            Self::Reexec(_) => exit::FAILURE,
        }
    }

    /// A short machine-readable name for the JSON output.
    pub fn kind(&self) -> &'static str {
        match self.exit_code() {
            exit::BAD_INPUT => "bad_input",
            exit::NOT_FOUND => "not_found",
            exit::AMBIGUOUS => "ambiguous",
            exit::PROTECTED => "protected",
            exit::IDENTITY_MISMATCH => "identity_mismatch",
            exit::FILESYSTEM_MISMATCH => "filesystem_mismatch",
            exit::TOOLKIT_UNVERIFIED => "toolkit_unverified",
            exit::MOUNTPOINT_REFUSED => "mountpoint_refused",
            exit::MOUNT_FAILED => "mount_failed",
            exit::GROW_FAILED => "grow_failed",
            exit::EVIDENCE_WRITE => "evidence_write",
            exit::DEVICE_VANISHED => "device_vanished",
            exit::ALREADY_MOUNTED => "already_mounted",
            exit::NEEDS_ROOT => "needs_root",
            _ => "failure",
        }
    }

    /// The devices seen, when locating was involved.
    pub fn report(&self) -> Option<&locate::Report> {
        match self {
            Self::Locate(
                LocateError::NotFound { report, .. }
                | LocateError::Ambiguous { report, .. }
                | LocateError::Protected { report, .. }
                | LocateError::IdentityMismatch { report, .. },
            ) => Some(report),
            _ => None,
        }
    }
}

/// What a successful run did.
#[derive(Debug)]
pub enum Outcome {
    /// `locate`.
    Located {
        /// The device.
        located: Box<Located>,
        /// Its superblock, when `--expect-…` asked for a check.
        superblock: Option<Superblock>,
    },
    /// `mount`.
    Mounted {
        /// The device.
        located: Box<Located>,
        /// The mount.
        mounted: Box<Mounted>,
        /// Evidence mode.
        evidence: bool,
        /// Where the executable ran from.
        origin: Origin,
    },
}

/// The NVMe model accepted for tests, from [`cli::TEST_MODEL_ENV`].
fn test_model() -> Option<String> {
    std::env::var(cli::TEST_MODEL_ENV)
        .ok()
        .filter(|m| !m.is_empty())
}

struct Parsed {
    volume_id: VolumeId,
    requested: Option<RequestedDevice>,
    protect: Vec<VolumeId>,
    expect: Expectation,
    roots: Roots,
}

fn parse_device_args(args: &DeviceArgs, default_label: Option<&str>) -> Result<Parsed, Error> {
    Ok(Parsed {
        volume_id: VolumeId::parse(&args.volume_id)?,
        requested: args
            .requested_device
            .as_deref()
            .map(RequestedDevice::parse)
            .transpose()?,
        protect: args
            .protect
            .iter()
            .map(|p| VolumeId::parse(p))
            .collect::<Result<_, _>>()?,
        expect: Expectation {
            label: args
                .expect_label
                .clone()
                .or_else(|| default_label.map(str::to_string)),
            uuid: args.expect_uuid.clone(),
            size_bytes: args.expect_size_gib.map(|g| g.saturating_mul(1 << 30)),
        },
        roots: args.roots.roots(),
    })
}

/// `allow_mounted`: `locate` reports a mounted volume (with its mounts);
/// `mount` refuses one unless it is stage-0's read-only mount.
fn find(
    p: &Parsed,
    wait: u64,
    extra_model: Option<&str>,
    allow_mounted: bool,
) -> Result<Located, Error> {
    let opts = LocateOptions {
        volume_id: &p.volume_id,
        requested: p.requested.as_ref(),
        protect: &p.protect,
        expect: &p.expect,
        extra_model,
        allow_mounted,
        identify: &KernelIdentify,
        roots: &p.roots,
    };
    let mut progress = WaitProgress::new(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let result = locate::locate_watching(&opts, Duration::from_secs(wait), |w| {
        progress.show(&p.volume_id, w);
    });
    progress.finish();
    Ok(result?)
}

/// What mount-helper says on stderr while it waits for the volume to appear
/// (issue 23: a wrong or unattached volume ID was 120 silent seconds). The
/// first look that finds nothing says at once what it waits for, for how
/// long, and what it sees instead. Then, on a terminal, one line redrawn
/// every second; otherwise (SSM, a pipe) a short line every sixth of the
/// wait (at least a second apart), so a whole wait prints at most six
/// lines, well inside the 2,500 characters SSM keeps.
struct WaitProgress {
    tty: bool,
    started: bool,
    drawn: bool,
    every: Duration,
    next_line: Duration,
}

impl WaitProgress {
    fn new(tty: bool) -> Self {
        Self {
            tty,
            started: false,
            drawn: false,
            every: Duration::ZERO,
            next_line: Duration::ZERO,
        }
    }

    fn show(&mut self, volume_id: &VolumeId, w: &locate::Waiting<'_>) {
        if !self.started {
            self.started = true;
            self.every = (w.wait / 6).max(Duration::from_secs(1));
            self.next_line = self.every;
            eprintln!(
                "mount-helper: {volume_id} is not attached (yet): waiting up to {} s (--wait) for {}, looking every second; Ctrl-C stops. Seen now: {}",
                w.wait.as_secs(),
                w.looking_for,
                seen_summary(w.report)
            );
            return;
        }
        let (done, total) = (w.elapsed.as_secs(), w.wait.as_secs());
        if self.tty {
            eprint!("\r  waiting for {volume_id}: {done} s of {total} s ");
            self.drawn = true;
        } else if w.elapsed >= self.next_line {
            while self.next_line <= w.elapsed {
                self.next_line += self.every;
            }
            eprintln!(
                "mount-helper: still waiting for {volume_id}: {done} s of {total} s; seen: {}",
                seen_summary(w.report)
            );
        }
    }

    fn finish(&mut self) {
        if self.drawn {
            eprintln!();
            self.drawn = false;
        }
    }
}

/// The devices of one look, short: `nvme0n1 (another volume (vol-…))`,
/// at most 240 characters. Devices without a medium (unused loop devices)
/// are only counted, so that the disks that matter are shown.
fn seen_summary(report: &locate::Report) -> String {
    let empty = report
        .candidates
        .iter()
        .filter(|c| c.size_bytes == 0)
        .count();
    let mut parts: Vec<String> = report
        .candidates
        .iter()
        .filter(|c| c.size_bytes != 0)
        .map(|c| {
            format!(
                "{} ({})",
                c.device,
                c.reasons.first().map_or("?", String::as_str)
            )
        })
        .collect();
    if empty > 0 {
        parts.push(format!("{empty} without a medium"));
    }
    if parts.is_empty() {
        return "no block devices".into();
    }
    let mut s = parts.join(", ");
    if s.chars().count() > 240 {
        s = s.chars().take(237).collect::<String>() + "...";
    }
    s
}

/// Does what `args` says.
///
/// # Errors
/// [`Error`], whose [`Error::exit_code`] is the documented exit code.
pub fn run(args: &Args) -> Result<Outcome, Error> {
    let model = test_model();
    match &args.command {
        Command::Locate(l) => {
            let p = parse_device_args(&l.device, None)?;
            let located = find(&p, l.device.wait, model.as_deref(), true)?;
            let superblock = check_fs(&located, &p.expect)?;
            Ok(Outcome::Located {
                located: Box::new(located),
                superblock,
            })
        }
        Command::Mount(m) => mount(m, model.as_deref()),
    }
}

/// `locate --expect-label/--expect-uuid` on a Nitro device: read the
/// superblock and compare (Xen candidates were checked while locating).
fn check_fs(located: &Located, expect: &Expectation) -> Result<Option<Superblock>, Error> {
    if located.superblock.is_some() || (expect.label.is_none() && expect.uuid.is_none()) {
        return Ok(located.superblock.clone());
    }
    let device = located.device_path.clone();
    let sb = std::fs::File::open(&device)
        .map_err(|e| e.to_string())
        .and_then(|mut f| fv_ebs::superblock::read(&mut f).map_err(|e| e.to_string()))
        .map_err(|detail| Error::Filesystem {
            device: device.clone(),
            detail,
        })?;
    expect
        .check(&sb)
        .map_err(|detail| Error::Filesystem { device, detail })?;
    Ok(Some(sb))
}

fn mount(m: &MountArgs, model: Option<&str>) -> Result<Outcome, Error> {
    let default_label = (!m.evidence).then_some(fv_core::volume::LABEL);
    let p = parse_device_args(&m.device, default_label)?;
    if !nix::unistd::geteuid().is_root() {
        return Err(Error::NeedsRoot("mount"));
    }
    // Stage-0 runs us from its read-only mount, which we replace: our own
    // executable must not hold it.
    let origin = reexec::ensure(m.reexec.mode(), Path::new(RUN_ROOT), "mount-helper")?;
    if let Some(mp) = &m.mountpoint {
        if !mp.is_absolute() {
            return Err(MountError::Mountpoint(MountpointError::NotAbsolute(mp.clone())).into());
        }
    }
    let located = find(&p, m.device.wait, model, false)?;
    let mounted = if m.evidence {
        fv_mount::evidence::mount_evidence(
            &located,
            &fv_mount::evidence::EvidenceRequest {
                partition: m.partition,
                mountpoint: m.mountpoint.clone(),
                expect: p.expect.clone(),
                run_root: PathBuf::from(RUN_ROOT),
                sys_root: p.roots.sys.clone(),
                dev_root: p.roots.dev.clone(),
                proc_root: p.roots.proc.clone(),
            },
        )?
    } else {
        ops::mount_forensics(
            &located,
            &ForensicsRequest {
                mountpoint: m.mountpoint.clone(),
                expect: p.expect.clone(),
                grow: !m.no_grow,
                run_root: PathBuf::from(RUN_ROOT),
                proc_root: p.roots.proc.clone(),
            },
        )?
    };
    Ok(Outcome::Mounted {
        located: Box::new(located),
        mounted: Box::new(mounted),
        evidence: m.evidence,
        origin,
    })
}

/// Runs, prints the outcome or the error, and returns the exit code.
pub fn main_with(args: &Args) -> i32 {
    let json = match &args.command {
        Command::Locate(l) => l.device.json,
        Command::Mount(m) => m.device.json,
    };
    let result = run(args);
    if let Some(model) = test_model() {
        eprintln!(
            "mount-helper: WARNING: TEST OVERRIDE {}={model:?}: this NVMe model is accepted as EBS. Never set this on a real instance.",
            cli::TEST_MODEL_ENV
        );
    }
    let text = match &result {
        Ok(outcome) if json => output::json_ok(args, outcome),
        Ok(outcome) => output::human_ok(outcome),
        Err(e) => {
            eprintln!("mount-helper: error: {}", output::chain(e));
            if json {
                output::json_err(args, e)
            } else {
                String::new()
            }
        }
    };
    fv_core::report::print_and_exit_code(&text, result.map_or_else(|e| e.exit_code(), |_| exit::OK))
}
