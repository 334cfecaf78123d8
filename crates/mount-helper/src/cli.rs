//! The command line of `mount-helper` (clap derive), the contract the SSM
//! mount document's stage-0 and the VM tests code against (docs/mount-helper.md).

use std::path::PathBuf;

use clap::{Args as ClapArgs, Parser, Subcommand};

/// Find an EBS volume by its volume ID, refuse every protected device, check
/// the filesystem before mounting, mount it safely and grow it.
#[derive(Debug, Parser)]
#[command(name = "mount-helper", version = fv_core::build::LONG_VERSION)]
pub struct Args {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the device of an EBS volume and how it was identified, or list
    /// every candidate device and why each was rejected.
    Locate(LocateArgs),
    /// Locate, check and mount a volume (the forensics volume by default,
    /// a suspect's volume strictly read-only with --evidence).
    Mount(MountArgs),
}

/// Options shared by `locate` and `mount`.
#[derive(Debug, Clone, ClapArgs)]
pub struct DeviceArgs {
    /// The EBS volume ID (`vol-` and 17 or 8 lowercase hex digits).
    #[arg(long, value_name = "vol-…")]
    pub volume_id: String,

    /// The device name the volume was attached as (`sdf`, `/dev/sdf`,
    /// `xvdf`). On Nitro it is checked against the NVMe identify data; on Xen
    /// it is the only way to find the volume.
    #[arg(long, value_name = "NAME")]
    pub requested_device: Option<String>,

    /// Wait up to this many seconds for the volume to appear (attaching is
    /// asynchronous). 0 looks once.
    #[arg(long, value_name = "SECONDS", default_value_t = 120)]
    pub wait: u64,

    /// Never choose the device of this volume ID (repeatable), in addition
    /// to the root device, swap, devices with holders or mounted partitions,
    /// and instance store.
    #[arg(long, value_name = "vol-…")]
    pub protect: Vec<String>,

    /// Expected filesystem label, read from the superblock without
    /// mounting (`mount` defaults to FORENSICS unless --evidence).
    #[arg(long, value_name = "LABEL")]
    pub expect_label: Option<String>,

    /// Expected filesystem UUID, read from the superblock without mounting.
    #[arg(long, value_name = "UUID")]
    pub expect_uuid: Option<String>,

    /// Expected size of the volume in GiB (EBS sizes are whole GiB). Required
    /// evidence for a Xen device, checked on Nitro too when given.
    #[arg(long, value_name = "GIB")]
    pub expect_size_gib: Option<u64>,

    /// Print one JSON object on stdout instead of human text.
    #[arg(long)]
    pub json: bool,

    /// Fixture trees, in test builds only (`fv_mount::hooks`).
    #[command(flatten)]
    pub roots: fv_mount::hooks::RootArgs,
}

/// `mount-helper locate`.
#[derive(Debug, Clone, ClapArgs)]
pub struct LocateArgs {
    #[command(flatten)]
    pub device: DeviceArgs,
}

/// `mount-helper mount`.
#[derive(Debug, Clone, ClapArgs)]
pub struct MountArgs {
    #[command(flatten)]
    pub device: DeviceArgs,

    /// Where to mount. Default: `/run/forensics-volume/<volume id>`
    /// (`evidence-<volume id>[-pN]` with --evidence), on tmpfs, mode 0700.
    /// A directory there must be empty, not a symlink and not a mountpoint;
    /// a missing one is created (mode 0700). Stage-0's read-only mount of the
    /// volume at this path is adopted.
    #[arg(long, value_name = "DIR")]
    pub mountpoint: Option<PathBuf>,

    /// Mount a suspect's volume strictly read-only: BLKROSET first, no
    /// journal replay, nosuid,nodev,noexec, and proof from the device's
    /// written-sector count that nothing was written.
    #[arg(long)]
    pub evidence: bool,

    /// With --evidence: mount partition N of the volume instead of the
    /// whole device.
    #[arg(long, value_name = "N", requires = "evidence")]
    pub partition: Option<u32>,

    /// Do not grow the filesystem to fill the volume (forensics volume only).
    #[arg(long, conflicts_with = "evidence")]
    pub no_grow: bool,

    /// How the executable leaves the volume before stage-0's mount is
    /// replaced: chosen by tests only (`fv_mount::hooks`).
    #[command(flatten)]
    pub reexec: fv_mount::hooks::ReexecArg,
}

/// Environment variable naming one more NVMe model to accept besides
/// `Amazon Elastic Block Store`: for the qemu test VM (`QEMU NVMe Ctrl`)
/// only. Reported loudly whenever it is in effect.
pub const TEST_MODEL_ENV: &str = "FV_TEST_ACCEPT_NVME_MODEL";
