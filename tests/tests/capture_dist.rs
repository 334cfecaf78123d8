//! The shipped static `capture` (`dist/volume/bin/<arch>/capture`, made by
//! `./build.sh`) for every architecture: x86_64 natively, aarch64 through
//! `qemu-aarch64-static` (binfmt or explicit). Each one captures a LiME
//! file onto a directory standing in for the forensics volume,
//! byte-identical through the `zstd` tool, and turns SIGTERM during a FIFO
//! stream into a labelled partial image: the musl builds' syscalls and
//! signal handling are real.
//!
//! Only through the shipped command line: the binaries have no option that
//! points them at fixture `/proc`, `/sys` or `/dev` trees (security review
//! L10; `dist_artifacts.rs` checks they reject them), so these runs read the
//! host's own. The fixture-tree cases (kcore layouts of both architectures,
//! lying iomem, ...) are `capture`'s crate tests, whose binary is built with
//! the `test-hooks` feature; the shipped aarch64 build reads a real aarch64
//! kcore in the VM bench's `aarch64` scenario.
//!
//! Needs `./build.sh` first, root (capture refuses otherwise), `zstd` and,
//! on an x86_64 host, `qemu-user-static` for the aarch64 build.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

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

/// The command that runs the shipped binary for `arch` on this host.
fn shipped(arch: &str) -> Command {
    let bin = fv_tests::dist_dir()
        .join("volume/bin")
        .join(arch)
        .join("capture");
    assert!(
        bin.is_file(),
        "{} is missing: run ./build.sh first",
        bin.display()
    );
    if arch == std::env::consts::ARCH {
        Command::new(bin)
    } else {
        let qemu = format!("/usr/bin/qemu-{arch}-static");
        assert!(
            Path::new(&qemu).is_file(),
            "{qemu} is missing: apt-get install qemu-user-static"
        );
        let mut c = Command::new(qemu);
        c.arg(bin);
        c
    }
}

fn byte(p: u64) -> u8 {
    (p.wrapping_mul(0x9E37_79B1) >> 11) as u8 ^ (p >> 12) as u8
}

fn lime(ram: &[(u64, u64)]) -> Vec<u8> {
    let mut out = Vec::new();
    for &(s, e) in ram {
        out.extend_from_slice(&0x4C69_4D45u32.to_le_bytes());
        out.extend_from_slice(&1u32.to_le_bytes());
        out.extend_from_slice(&s.to_le_bytes());
        out.extend_from_slice(&e.to_le_bytes());
        out.extend_from_slice(&[0; 8]);
        out.extend((s..=e).map(byte));
    }
    out
}

fn hex(b: &[u8]) -> String {
    Sha256::digest(b)
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

struct Fix {
    tmp: tempfile::TempDir,
}

impl Fix {
    fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(tmp.path().join("vol")).unwrap();
        std::fs::write(tmp.path().join("vol/forensics-volume.json"), MARKER).unwrap();
        Self { tmp }
    }
    fn p(&self, s: &str) -> PathBuf {
        self.tmp.path().join(s)
    }
    fn args(&self, c: &mut Command, source: &str) {
        c.arg("--source")
            .arg(source)
            .arg("--output")
            .arg(self.p("vol/captures"))
            // The fake volume is a directory with a marker, not the
            // volume's device (which capture checks since issue 14).
            .arg("--allow-any-output")
            .arg("--no-imds");
    }
    fn dir(&self) -> PathBuf {
        std::fs::read_dir(self.p("vol/captures"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.is_dir())
            .unwrap()
    }
}

fn show(o: &Output) {
    eprintln!(
        "exit {:?}\n{}{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// `zstd -dc` of the image equals `expected`; the manifest agrees.
fn check(dir: &Path, expected: &[u8]) -> serde_json::Value {
    let out = Command::new("zstd")
        .arg("-dc")
        .arg(dir.join("memory.lime.zst"))
        .output()
        .expect("zstd (apt-get install zstd)");
    assert!(out.status.success());
    assert!(
        out.stdout == expected,
        "zstd -d output differs from the expected LiME stream"
    );
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    // The in-progress marker goes once the manifest is in (M7).
    assert!(
        !dir.join("INCOMPLETE").exists(),
        "INCOMPLETE left next to a manifest"
    );
    assert_eq!(m["image"]["lime_sha256"], hex(expected).as_str());
    let zst = std::fs::read(dir.join("memory.lime.zst")).unwrap();
    assert_eq!(m["image"]["compressed_sha256"], hex(&zst).as_str());
    m
}

fn lime_file(arch: &str) {
    require_root();
    let ram = [(0x1000u64, 0x9fbffu64), (0x10_0000, 0x2f_ffff)];
    let f = Fix::new();
    std::fs::write(f.p("dump.lime"), lime(&ram)).unwrap();
    let mut c = shipped(arch);
    f.args(&mut c, &format!("lime:{}", f.p("dump.lime").display()));
    let out = c.output().unwrap();
    show(&out);
    assert_eq!(out.status.code(), Some(0));
    let m = check(&f.dir(), &lime(&ram));
    assert_eq!(m["status"], "complete");
    assert_eq!(m["source"]["kind"], "lime-file");
    // A LiME file is a dump from elsewhere: nothing of this host is
    // recorded as its source's (issue 22).
    assert_eq!(m["host"]["machine"], "unknown");
    assert!(m["host"]["foreign"].is_string(), "{m}");
}

/// The first System RAM range of this host (the real `/proc/iomem`, read
/// as root) that holds `len` bytes: its start. A FIFO is a stream of this
/// host, so capture checks its records against exactly these ranges.
fn host_ram_start(len: u64) -> u64 {
    let iomem = std::fs::read_to_string("/proc/iomem").unwrap();
    iomem
        .lines()
        .filter(|l| !l.starts_with(' ') && l.ends_with(": System RAM"))
        .filter_map(|l| {
            let (s, e) = l.split_once(' ')?.0.split_once('-')?;
            Some((
                u64::from_str_radix(s, 16).ok()?,
                u64::from_str_radix(e, 16).ok()?,
            ))
        })
        .find(|&(s, e)| s != 0 && e - s + 1 >= len)
        .map(|(s, _)| s)
        .expect("no System RAM range of 5 MiB in /proc/iomem")
}

fn sigterm(arch: &str) {
    require_root();
    let f = Fix::new();
    let fifo = f.p("lime.fifo");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    // A FIFO is a stream of this host: its records are checked against
    // this host's System RAM, so the record lies in it.
    let start = host_ram_start(0x50_0000);
    let ram = [(start, start + 0x4f_ffff)];
    let full = lime(&ram);
    let mut c = shipped(arch);
    f.args(&mut c, &format!("lime:{}", fifo.display()));
    let child = c
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut w = std::fs::OpenOptions::new().write(true).open(&fifo).unwrap();
    w.write_all(&full[..0x10_0000]).unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    // qemu-user forwards the signal to the guest program.
    assert!(
        Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status()
            .unwrap()
            .success()
    );
    let out = child.wait_with_output().unwrap();
    drop(w);
    show(&out);
    assert_eq!(out.status.code(), Some(20));
    let dir = f.dir();
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(m["status"], "partial");
    assert_eq!(m["partial_reason"]["cause"], "interrupted");
    // A FIFO is this host's stream: the machine the binary ran as.
    assert_eq!(m["host"]["machine"], arch);
    let got = Command::new("zstd")
        .arg("-dc")
        .arg(dir.join("memory.lime.zst"))
        .output()
        .unwrap();
    assert_eq!(got.stdout.len(), full.len());
    assert_eq!(m["image"]["lime_sha256"], hex(&got.stdout).as_str());
}

#[test]
fn root_capture_dist_x86_64() {
    lime_file("x86_64");
}

#[test]
fn root_capture_dist_aarch64() {
    lime_file("aarch64");
}

#[test]
fn root_capture_dist_x86_64_sigterm() {
    sigterm("x86_64");
}

#[test]
fn root_capture_dist_aarch64_sigterm() {
    sigterm("aarch64");
}
