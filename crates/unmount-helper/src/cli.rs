//! The command line of `unmount-helper` (docs/unmount-helper.md).

use std::path::PathBuf;

use clap::{ArgGroup, Parser};

/// Sync and unmount the forensics volume, prove nothing holds it, flush the
/// device and say when it is safe to detach.
#[derive(Debug, Clone, Parser)]
#[command(name = "unmount-helper", version = fv_core::build::LONG_VERSION)]
#[command(group(ArgGroup::new("target").required(true).multiple(true).args(["mountpoint", "volume_id"])))]
pub struct Args {
    /// The mountpoint to unmount. With --volume-id, what is mounted there
    /// must be that volume (anything else is refused).
    #[arg(long, value_name = "DIR")]
    pub mountpoint: Option<PathBuf>,

    /// Unmount this EBS volume: wherever it is mounted (it must be mounted
    /// once), or at --mountpoint, which must then be a mount of it.
    #[arg(long, value_name = "vol-…")]
    pub volume_id: Option<String>,

    /// Print one JSON object on stdout instead of human text.
    #[arg(long)]
    pub json: bool,

    /// How to move the executable off the volume: chosen by tests only
    /// (`fv_mount::hooks`).
    #[command(flatten)]
    pub reexec: fv_mount::hooks::ReexecArg,

    /// Fixture trees, in test builds only (`fv_mount::hooks`).
    #[command(flatten)]
    pub roots: fv_mount::hooks::RootArgs,
}
