//! Fixtures built in code: LiME streams with a realistic mix of content,
//! images made by the toolkit's real writer (`fv_evidence::writer`), and
//! capture directories with a manifest whose every hash is right.

#![allow(dead_code)]

pub mod symbols;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use clap::Parser;
use fv_analyze::{Command, Error, Exit};
use fv_evidence::manifest::{
    Case, Compression, FileEntry, Host, Image, Manifest, Range, SCHEMA, SCHEMA_VERSION, Source,
    Status, Timing, Tool,
};
use fv_evidence::writer::{ImageSummary, ImageWriter, WriterOptions};
use fv_formats::lime::Header;
use sha2::{Digest, Sha256};

/// Frame size used by fixtures: small, so images have many frames.
pub const FRAME: u32 = 64 * 1024;

/// The `capture` grammar for these subcommands, as the binary wires it.
#[derive(Debug, Parser)]
#[command(name = "capture")]
struct Cli {
    #[command(subcommand)]
    cmd: Command,
}

/// What a command printed and returned.
#[derive(Debug)]
pub struct Run {
    pub code: u8,
    pub stdout: String,
    pub stdout_bytes: Vec<u8>,
    pub stderr: String,
    pub error: Option<String>,
}

/// Parses `args` as `capture ARGS...` and runs it.
pub fn run(args: &[&str]) -> Run {
    let cli = Cli::try_parse_from(std::iter::once("capture").chain(args.iter().copied()))
        .unwrap_or_else(|e| panic!("bad test arguments {args:?}: {e}"));
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let result: Result<Exit, Error> = fv_analyze::run_with(&cli.cmd, &mut out, &mut err);
    let (code, error) = match result {
        Ok(e) => (e.code(), None),
        // `capture` prints `to_string()`: messages carry their causes.
        Err(e) => (e.exit_code(), Some(e.to_string())),
    };
    Run {
        code,
        stdout: String::from_utf8_lossy(&out).into_owned(),
        stdout_bytes: out.clone(),
        stderr: String::from_utf8_lossy(&err).into_owned(),
        error,
    }
}

/// Deterministic pseudo-random bytes.
pub fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// Payload for a physical range: pages of zeros, text, and noise, so that
/// padded output has holes and frames compress differently.
pub fn payload(start: u64, len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len);
    let mut page = 0u64;
    while out.len() < len {
        let n = (len - out.len()).min(4096);
        let kind = (start / 4096 + page) % 4;
        match kind {
            0 | 1 => out.resize(out.len() + n, 0),
            2 => {
                let text = b"Linux version 6.1.0-18-amd64 (debian-kernel@lists.debian.org) ";
                out.extend(text.iter().cycle().take(n));
            }
            _ => out.extend_from_slice(&noise(start + page, n)),
        }
        page += 1;
    }
    out
}

/// A LiME stream of `ranges` (end inclusive).
pub fn lime(ranges: &[(u64, u64)]) -> Vec<u8> {
    let mut out = Vec::new();
    for &(s, e) in ranges {
        out.extend_from_slice(&Header::new(s, e).to_bytes());
        out.extend_from_slice(&payload(s, (e - s + 1) as usize));
    }
    out
}

/// Ranges like a small VM's: a low range not page aligned at its end, a big
/// one, and one above 4 GiB.
pub const RANGES: [(u64, u64); 3] = [
    (0x1000, 0x9_fbff),
    (0x10_0000, 0x4f_ffff),
    (0x1_0000_0000, 0x1_0003_ffff),
];

/// Writes `stream` as a seekable image at `path` with the real writer.
pub fn write_image(path: &Path, stream: &[u8]) -> ImageSummary {
    let dir = fv_core::fs::Dir::open(path.parent().unwrap()).unwrap();
    let file = dir.create_file(path.file_name().unwrap()).unwrap();
    let mut w = ImageWriter::new(
        file,
        path.to_path_buf(),
        WriterOptions {
            level: 1,
            threads: 2,
            frame_size: FRAME,
        },
    )
    .unwrap();
    w.write(stream).unwrap();
    w.finish().unwrap()
}

pub fn sha(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A capture directory at `dir` holding `stream`, with everything a real
/// capture writes: image, sidecar, a context file, manifest.
pub struct Fixture {
    pub dir: PathBuf,
    pub stream: Vec<u8>,
    pub ranges: Vec<(u64, u64)>,
    pub summary: ImageSummary,
    pub manifest: Manifest,
}

impl Fixture {
    pub fn image(&self) -> PathBuf {
        self.dir.join("memory.lime.zst")
    }
    pub fn manifest_path(&self) -> PathBuf {
        self.dir.join("manifest.json")
    }
    pub fn d(&self) -> &str {
        self.dir.to_str().unwrap()
    }
    /// Rewrites the manifest after a test changed it.
    pub fn save_manifest(&self) {
        std::fs::write(self.manifest_path(), self.manifest.to_json().unwrap()).unwrap();
    }
}

/// Builds a capture of `ranges` in a new directory `name` under `root`.
pub fn capture(root: &Path, name: &str, ranges: &[(u64, u64)]) -> Fixture {
    let stream = lime(ranges);
    capture_of(root, name, ranges, stream)
}

/// Builds a capture whose stream is `stream` (possibly malformed) and whose
/// manifest lists `ranges`.
pub fn capture_of(root: &Path, name: &str, ranges: &[(u64, u64)], stream: Vec<u8>) -> Fixture {
    let dir = root.join(name);
    std::fs::create_dir(&dir).unwrap();
    let image = dir.join("memory.lime.zst");
    let summary = write_image(&image, &stream);
    let zst = std::fs::read(&image).unwrap();
    let sidecar = format!("{}  memory.lime.zst\n", hex(&summary.zst_sha256));
    std::fs::write(dir.join("memory.lime.zst.sha256"), &sidecar).unwrap();
    std::fs::create_dir(dir.join("context")).unwrap();
    let banner = b"Linux version 6.1.0-18-amd64\n";
    std::fs::write(dir.join("context/banner"), banner).unwrap();

    let mut offset = 0u64;
    let mranges = ranges
        .iter()
        .map(|&(s, e)| {
            let r = Range {
                start: s,
                end: e,
                length: e - s + 1,
                lime_offset: offset,
            };
            offset += 32 + (e - s + 1);
            r
        })
        .collect();
    let manifest = Manifest {
        schema: SCHEMA.into(),
        schema_version: SCHEMA_VERSION,
        tool: Tool {
            name: "forensics-volume".into(),
            version: "0.1.0".into(),
            git_commit: "abc1234".into(),
            binary_path: "/mnt/fv/bin/x86_64/capture".into(),
            binary_sha256: None,
        },
        command_line: vec!["capture".into()],
        host: Host {
            foreign: None,
            hostname: "ip-10-0-0-1".into(),
            kernel_release: "6.1.0-18-amd64".into(),
            kernel_version: "#1 SMP PREEMPT_DYNAMIC Debian 6.1.76-1".into(),
            machine: "x86_64".into(),
            boot_id: Some("0d0e0f".into()),
            imds: None,
            imds_status: "skipped (--no-imds)".into(),
        },
        case: Case {
            case_id: Some("IR-42".into()),
            examiner: Some("jdoe".into()),
            note: None,
        },
        source: Source {
            kind: "lime-file".into(),
            location: "/tmp/in.lime".into(),
            requested: "lime:/tmp/in.lime".into(),
            detail: None,
            attempts: vec![],
        },
        ranges: mranges,
        unreadable: vec![],
        not_captured: vec![],
        omitted: vec![],
        remainder_unknown: None,
        image: Image {
            file: "memory.lime.zst".into(),
            format: "lime".into(),
            lime_length: summary.lime_len,
            lime_sha256: hex(&summary.lime_sha256),
            compressed_length: summary.zst_len,
            compressed_sha256: hex(&summary.zst_sha256),
            compression: Compression {
                format: "zstd-seekable".into(),
                level: summary.level,
                levels_used: Some([summary.level_min, summary.level_max]),
                threads: summary.threads as u32,
                frame_size: u64::from(summary.frame_size),
                frames: summary.frames,
                checksums: true,
            },
        },
        timing: Timing {
            start_utc: "2026-11-26T18:00:00Z".into(),
            end_utc: "2026-11-26T18:00:02Z".into(),
            duration_seconds: 2.0,
            throughput_bytes_per_second: 1e6,
        },
        peak_rss_bytes: Some(20 << 20),
        status: Status::Complete,
        partial_reason: None,
        files: vec![
            FileEntry {
                path: "memory.lime.zst".into(),
                size: zst.len() as u64,
                sha256: sha(&zst),
            },
            FileEntry {
                path: "memory.lime.zst.sha256".into(),
                size: sidecar.len() as u64,
                sha256: sha(sidecar.as_bytes()),
            },
            FileEntry {
                path: "context/banner".into(),
                size: banner.len() as u64,
                sha256: sha(banner),
            },
        ],
        warnings: vec![],
    };
    let f = Fixture {
        dir,
        stream,
        ranges: ranges.to_vec(),
        summary,
        manifest,
    };
    f.save_manifest();
    f
}

pub fn path_str(p: &Path) -> &str {
    p.to_str().unwrap()
}

pub fn os(s: &str) -> &OsStr {
    OsStr::new(s)
}

/// Runs `capture ARGS` on another thread; `None` if it has not returned
/// within `secs` (it is hung; the thread is left behind: the test fails
/// rather than hangs).
pub fn within(secs: u64, args: &[&str]) -> Option<Run> {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        let _ = tx.send(run(&a));
    });
    rx.recv_timeout(std::time::Duration::from_secs(secs)).ok()
}

pub fn mkfifo(path: &Path) {
    nix::unistd::mkfifo(path, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
}
