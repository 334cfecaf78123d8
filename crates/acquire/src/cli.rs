//! The acquisition's command line (the default action of `capture`), and
//! the one place it is read: [`CaptureArgs::plan`] turns it into a typed
//! [`Plan`], which is all the phases see.

use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::time::Duration;

use fv_evidence::manifest::Case;

use crate::plan::{HostPlan, OutputPlan, Plan, SourcePlan, WriterPlan};
use crate::roots::Roots;
use crate::source::spec::SourceSpec;

/// Acquire physical memory into a hashed, seekable-zstd LiME image with a
/// manifest, on the forensics volume.
#[derive(Debug, Clone, clap::Args)]
pub struct CaptureArgs {
    /// Memory source: auto (kcore, then crash, then mem), kcore, crash, mem,
    /// lime:PATH, lime:- (stdin or a FIFO), lime-module:PATH (or
    /// lime-module:auto = the volume's modules/<uname -r>/lime.ko), or, by
    /// hand only, lime-tcp:ADDR:PORT (ADDR a numeric loopback address:
    /// 127.0.0.1 or [::1]; its origin cannot be proven: any local user can
    /// serve a fabricated dump; see docs/capture.md).
    #[arg(long, default_value = "auto", value_name = "SOURCE")]
    pub source: SourceSpec,

    /// Output root: an existing directory on the forensics volume, in which
    /// a new capture directory is made (memory.lime.zst, always compressed
    /// seekable zstd, its .sha256 and manifest.json). Not a file name.
    /// Default: the `captures` folder of the forensics volume this binary
    /// runs from.
    #[arg(short, long, value_name = "DIR")]
    pub output: Option<PathBuf>,

    /// For analysis hosts only (e.g. repackaging a LiME dump with
    /// --source lime:FILE): accept an output root that is not on a
    /// forensics volume. Never on a suspect instance: there it writes
    /// memory onto the instance's own disks.
    #[arg(long)]
    pub allow_any_output: bool,

    /// The forensics volume's EBS volume ID (the SSM document passes it):
    /// the output must be on that very volume (the NVMe device whose serial
    /// is this ID), not merely on a disk labelled FORENSICS.
    #[arg(long, value_name = "vol-ID", value_parser = parse_volume_id, conflicts_with = "allow_any_output")]
    pub volume_id: Option<fv_ebs::VolumeId>,

    /// Start even when free space is clearly too small; the capture then
    /// ends as a labelled partial image when the disk fills.
    #[arg(long)]
    pub allow_partial: bool,

    /// zstd compression level (default 1; 0 = adaptive: raised while the
    /// output volume, not the CPU, is the bound; see docs/performance.md).
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub level: Option<i32>,

    /// Compression threads (default: every CPU).
    #[arg(long, value_name = "N")]
    pub threads: Option<NonZeroUsize>,

    /// Case identifier recorded in the manifest.
    #[arg(long, value_name = "ID")]
    pub case_id: Option<String>,

    /// Examiner recorded in the manifest.
    #[arg(long, value_name = "NAME")]
    pub examiner: Option<String>,

    /// Free-text note recorded in the manifest.
    #[arg(long, value_name = "TEXT")]
    pub note: Option<String>,

    /// A LiME stream (stdin, FIFO, TCP) made on another host: do not check
    /// its records against this host's System RAM. (A regular file is
    /// always taken as such a dump; `lime-module` never is.)
    #[arg(long)]
    pub foreign_lime: bool,

    /// lime-tcp: accept a peer that a process visibly holds (a relay you
    /// started yourself). Without it such a peer is refused; that check is
    /// no proof the peer is LiME's (see docs/capture.md).
    #[arg(long)]
    pub trust_lime_peer: bool,

    /// Do not ask IMDSv2 for the instance identity.
    #[arg(long)]
    pub no_imds: bool,

    /// No progress output (errors and the final line only).
    #[arg(short, long)]
    pub quiet: bool,

    /// Print the manifest summary as JSON on stdout instead of the final line.
    #[arg(long)]
    pub json: bool,

    /// LiME TCP and module sources: seconds to keep retrying until the module
    /// listens.
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    pub connect_timeout: u64,

    /// LiME stream sources: seconds without data before the source is
    /// declared stalled (the capture ends as a labelled partial image).
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    pub stall_timeout: u64,

    /// kcore on kernels before 4.11 (p_paddr = 0): the direct-map base
    /// (PAGE_OFFSET) to use instead of inferring it from iomem. Hex.
    #[arg(long, value_name = "HEX", value_parser = parse_hex)]
    pub page_offset: Option<u64>,

    /// Testing (feature `test-hooks` only): root of /proc.
    #[cfg(feature = "test-hooks")]
    #[arg(long, hide = true, default_value = "/proc")]
    pub proc_root: PathBuf,

    /// Testing (feature `test-hooks` only): root of /sys.
    #[cfg(feature = "test-hooks")]
    #[arg(long, hide = true, default_value = "/sys")]
    pub sys_root: PathBuf,

    /// Testing (feature `test-hooks` only): root of /dev.
    #[cfg(feature = "test-hooks")]
    #[arg(long, hide = true, default_value = "/dev")]
    pub dev_root: PathBuf,

    /// Testing: IMDS address (IP:PORT): IMDS's own link-local address or a
    /// loopback test peer, nothing else (capture's only network use must
    /// stay on the host).
    #[arg(long, hide = true, default_value = crate::host::imds::ENDPOINT, value_parser = parse_imds_endpoint)]
    pub imds_endpoint: String,

    /// Testing (feature `test-hooks` only): uncompressed bytes per zstd
    /// frame.
    #[cfg(feature = "test-hooks")]
    #[arg(long, hide = true)]
    pub frame_size: Option<u32>,
}

/// Security review L10: the options above that point capture at fixture
/// trees exist only in test builds (cargo feature `test-hooks`, which the
/// tests of `capture` enable through a dev-dependency and `./build.sh build`
/// never does). The shipped binary has no such option on its command line
/// and always reads the host's own `/proc`, `/sys` and `/dev`.
impl CaptureArgs {
    /// The typed plan of this command line: the only reading of its flags.
    pub fn plan(&self) -> Plan {
        Plan {
            source: SourcePlan {
                spec: self.source.clone(),
                foreign_lime: self.foreign_lime,
                trust_lime_peer: self.trust_lime_peer,
                connect_timeout: Duration::from_secs(self.connect_timeout),
                stall_timeout: Duration::from_secs(self.stall_timeout.max(1)),
                page_offset: self.page_offset,
            },
            output: OutputPlan {
                root: self.output.clone(),
                allow_any: self.allow_any_output,
                volume_id: self.volume_id.clone(),
                allow_partial: self.allow_partial,
            },
            writer: WriterPlan {
                level: self.level,
                threads: self.threads,
                frame_size: self.frame_size(),
            },
            host: HostPlan {
                roots: self.roots(),
                imds: (!self.no_imds).then(|| self.imds_endpoint.clone()),
            },
            case: Case {
                case_id: self.case_id.clone(),
                examiner: self.examiner.clone(),
                note: self.note.clone(),
            },
            quiet: self.quiet,
        }
    }

    /// Where `/proc`, `/sys` and `/dev` are.
    fn roots(&self) -> Roots {
        #[cfg(feature = "test-hooks")]
        {
            Roots {
                proc: self.proc_root.clone(),
                sys: self.sys_root.clone(),
                dev: self.dev_root.clone(),
            }
        }
        #[cfg(not(feature = "test-hooks"))]
        {
            Roots {
                proc: PathBuf::from("/proc"),
                sys: PathBuf::from("/sys"),
                dev: PathBuf::from("/dev"),
            }
        }
    }

    /// Uncompressed bytes per zstd frame, when a test chose them.
    fn frame_size(&self) -> Option<u32> {
        #[cfg(feature = "test-hooks")]
        {
            self.frame_size
        }
        #[cfg(not(feature = "test-hooks"))]
        {
            None
        }
    }
}

/// Accepts IMDS's addresses (`169.254.169.254`, `fd00:ec2::254`) or a
/// loopback address, numeric, with a port.
fn parse_imds_endpoint(s: &str) -> Result<String, String> {
    let addr: std::net::SocketAddr = s
        .parse()
        .map_err(|_| format!("{s:?} is not a numeric IP:PORT"))?;
    let ip = addr.ip();
    let imds = ["169.254.169.254", "fd00:ec2::254"]
        .iter()
        .any(|a| a.parse::<std::net::IpAddr>().is_ok_and(|a| a == ip));
    if imds || ip.is_loopback() {
        Ok(s.to_string())
    } else {
        Err(format!(
            "{s}: only IMDS's own address or a loopback test peer is accepted"
        ))
    }
}

fn parse_volume_id(s: &str) -> Result<fv_ebs::VolumeId, String> {
    fv_ebs::VolumeId::parse(s).map_err(|e| e.to_string())
}

fn parse_hex(s: &str) -> Result<u64, String> {
    let t = s.trim_start_matches("0x").trim_start_matches("0X");
    u64::from_str_radix(t, 16).map_err(|e| format!("{s:?} is not a hex address: {e}"))
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::CaptureArgs;
    use crate::source::SourceSpec;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        capture: CaptureArgs,
    }

    fn plan(args: &[&str]) -> crate::plan::Plan {
        let mut argv = vec!["capture"];
        argv.extend_from_slice(args);
        Cli::try_parse_from(argv).unwrap().capture.plan()
    }

    /// Issue 25: the plan is the command line, typed, and nothing else: each
    /// flag lands in the part of the plan its phase takes.
    #[test]
    fn the_plan_holds_every_flag_in_its_part() {
        let p = plan(&[]);
        assert_eq!(p.source.spec, SourceSpec::Auto);
        assert_eq!(p.source.connect_timeout.as_secs(), 60);
        assert_eq!(p.host.imds.as_deref(), Some(crate::host::imds::ENDPOINT));
        assert!(p.output.root.is_none() && !p.output.allow_any && !p.quiet);
        let p = plan(&[
            "--source",
            "lime:-",
            "-o",
            "/v/captures",
            "--allow-any-output",
            "--allow-partial",
            "--level",
            "3",
            "--threads",
            "2",
            "--case-id",
            "C-1",
            "--examiner",
            "E",
            "--note",
            "N",
            "--foreign-lime",
            "--trust-lime-peer",
            "--no-imds",
            "--quiet",
            "--connect-timeout",
            "5",
            "--stall-timeout",
            "0",
            "--page-offset",
            "0xffff888000000000",
        ]);
        assert_eq!(p.source.spec, SourceSpec::LimeStdin);
        assert!(p.source.foreign_lime && p.source.trust_lime_peer);
        assert_eq!(p.source.connect_timeout.as_secs(), 5);
        // A stall limit of 0 would declare every stream stalled at once.
        assert_eq!(p.source.stall_timeout.as_secs(), 1);
        assert_eq!(p.source.page_offset, Some(0xffff_8880_0000_0000));
        assert_eq!(
            p.output.root.as_deref(),
            Some(std::path::Path::new("/v/captures"))
        );
        assert!(p.output.allow_any && p.output.allow_partial);
        assert_eq!(p.writer.level, Some(3));
        assert_eq!(p.writer.threads.map(|t| t.get()), Some(2));
        assert_eq!(p.host.imds, None);
        assert_eq!(p.case.case_id.as_deref(), Some("C-1"));
        assert_eq!(p.case.examiner.as_deref(), Some("E"));
        assert_eq!(p.case.note.as_deref(), Some("N"));
        assert!(p.quiet);
        let p = plan(&["--volume-id", "vol-0123456789abcdef0"]);
        assert_eq!(
            p.output.volume_id.map(|v| v.to_string()).as_deref(),
            Some("vol-0123456789abcdef0")
        );
    }

    /// L10: the test option cannot point capture's only network use
    /// anywhere but IMDS or loopback.
    #[test]
    fn imds_endpoint_stays_on_the_host() {
        assert!(super::parse_imds_endpoint(crate::host::imds::ENDPOINT).is_ok());
        assert!(super::parse_imds_endpoint("127.0.0.1:8080").is_ok());
        assert!(super::parse_imds_endpoint("[fd00:ec2::254]:80").is_ok());
        assert!(super::parse_imds_endpoint("203.0.113.7:80").is_err());
        assert!(super::parse_imds_endpoint("evil.example:80").is_err());
    }
}
