//! Faults for real, through the binary: SIGTERM mid-capture, a full file
//! system (a small tmpfs: root_ only, it mounts), the start-up space check,
//! a symlinked output path, an output outside the volume, a second
//! concurrent capture, not root, and IMDS identity from a peer that answers
//! like IMDSv2.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // helpers outside #[test] fns

mod common;

use std::io::{BufRead, Write};
use std::os::unix::fs::{PermissionsExt, symlink};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use fv_evidence::manifest::{PartialCause, Status};

fn ram() -> Vec<(u64, u64)> {
    vec![(0x1000, 0x9fbff), (0x10_0000, 0x8f_ffff)]
}

/// Incompressible "memory" (so a small file system really fills).
fn random_dump(ram: &[(u64, u64)]) -> Vec<u8> {
    let mut x = 0x1234_5678_9abc_def0u64;
    let mut out = Vec::new();
    for &(s, e) in ram {
        out.extend_from_slice(&fv_formats::lime::Header::new(s, e).to_bytes());
        for _ in s..=e {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            out.push(x as u8);
        }
    }
    out
}

fn wait_for(mut cond: impl FnMut() -> bool, what: &str) {
    let t = Instant::now();
    while !cond() {
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// SIGTERM while the capture waits for more data on a FIFO: a finalized
/// partial image, labelled, zero-filled to the end of the record, exit 20.
#[test]
fn root_sigterm_ends_in_a_finalized_partial_image() {
    require_root();
    let f = Fixture::new();
    f.iomem_ram(&ram());
    let fifo = f.path().join("lime.fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let full = dump_pattern();
    let sent = 32 + 0x9ec00 + 32 + 0x20_0000;
    let child = f
        .cmd(&format!("lime:{}", fifo.display()))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut w = std::fs::OpenOptions::new().write(true).open(&fifo).unwrap();
    w.write_all(&full[..sent]).unwrap();
    // Let it consume what was sent, then stop it (the writer stays open:
    // the capture is blocked waiting for more).
    std::thread::sleep(Duration::from_millis(800));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let t = Instant::now();
    let out = child.wait_with_output().unwrap();
    drop(w);
    eprintln!("{}", stderr(&out));
    assert!(t.elapsed() < Duration::from_secs(5), "stopped promptly");
    assert_eq!(out.status.code(), Some(20));
    let dir = f.capture_dir();
    let m = manifest(&dir);
    assert_eq!(m.status, Status::Partial);
    let reason = m.partial_reason.clone().unwrap();
    assert_eq!(reason.cause, PartialCause::Interrupted);
    assert!(reason.detail.contains("SIGTERM"), "{reason:?}");
    let got = decompress(&dir.join("memory.lime.zst"));
    assert_eq!(
        got.len(),
        full.len(),
        "both records, the second zero-filled"
    );
    assert!(m.omitted.is_empty(), "{:?}", m.omitted);
    let nc = &m.not_captured[0];
    let zero_from = (m.ranges[1].lime_offset + 32 + (nc.start - m.ranges[1].start)) as usize;
    assert!(zero_from <= sent);
    assert_eq!(&got[..zero_from], &full[..zero_from]);
    assert!(got[zero_from..].iter().all(|&b| b == 0));
    assert_eq!(m.image.lime_sha256, sha_hex(&got));
    let v = run(Command::new(bin()).arg("verify").arg(&dir));
    assert_eq!(v.status.code(), Some(0));
}

fn dump_pattern() -> Vec<u8> {
    expected_lime(&ram(), |_| true)
}

/// A tmpfs volume of `size` with the marker at its root.
struct Tmpfs {
    dir: tempfile::TempDir,
}
impl Tmpfs {
    fn new(size: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let st = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(dir.path())
            .status()
            .unwrap();
        assert!(st.success(), "mounting a tmpfs needs root");
        std::fs::write(dir.path().join("forensics-volume.json"), MARKER).unwrap();
        Self { dir }
    }
    fn captures(&self) -> std::path::PathBuf {
        self.dir.path().join("captures")
    }
}
impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

/// The disk fills mid-capture: the reserve is released, the image is
/// finalized as a valid partial (the current record zero-filled, seek
/// table), exit 21; the records after it are not written but listed, read
/// from the input file's headers, so every range of the input is accounted
/// for (before, a third record never started appeared nowhere).
#[test]
fn root_full_filesystem_mid_capture() {
    require_root();
    let f = Fixture::new();
    let vol = Tmpfs::new("6m");
    let ram3 = vec![
        (0x1000, 0x9fbff),
        (0x10_0000, 0x8f_ffff),
        (0x100_0000, 0x4ff_ffff),
    ];
    let dump = random_dump(&ram3);
    let path = f.path().join("dump.lime");
    std::fs::write(&path, &dump).unwrap();
    let out = run(f
        .cmd_to(&format!("lime:{}", path.display()), &vol.captures())
        .arg("--allow-partial"));
    assert_eq!(out.status.code(), Some(21), "{}", stderr(&out));
    let dir = std::fs::read_dir(vol.captures())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.is_dir())
        .unwrap();
    let m = manifest(&dir);
    assert_eq!(
        m.partial_reason.as_ref().unwrap().cause,
        PartialCause::NoSpace
    );
    let got = decompress(&dir.join("memory.lime.zst"));
    let last = m.ranges.last().unwrap();
    assert_eq!(got.len() as u64, last.lime_offset + 32 + last.length);
    assert!(got.len() < dump.len());
    let missing: u64 = m.not_captured.iter().map(|s| s.length).sum();
    assert!(missing > 0);
    let first = &m.not_captured[0];
    let r = m
        .ranges
        .iter()
        .find(|r| first.start >= r.start && first.start <= r.end)
        .unwrap();
    let zero_from = (r.lime_offset + 32 + (first.start - r.start)) as usize;
    assert!(zero_from > 0);
    assert_eq!(&got[..zero_from], &dump[..zero_from]);
    for nc in &m.not_captured {
        let r = m
            .ranges
            .iter()
            .find(|r| nc.start >= r.start && nc.start <= r.end)
            .unwrap();
        let a = (r.lime_offset + 32 + (nc.start - r.start)) as usize;
        assert!(got[a..a + nc.length as usize].iter().all(|&b| b == 0));
    }
    // Every range of the input: written, or listed as left out.
    let mut seen: Vec<(u64, u64)> = m.ranges.iter().map(|r| (r.start, r.end)).collect();
    seen.extend(m.omitted.iter().map(|s| (s.start, s.start + s.length - 1)));
    seen.sort_unstable();
    let mut merged: Vec<(u64, u64)> = Vec::new();
    for (s, e) in seen {
        match merged.last_mut() {
            Some(l) if l.1 + 1 == s => l.1 = e,
            _ => merged.push((s, e)),
        }
    }
    assert_eq!(merged, ram3, "{m:?}");
    assert!(m.remainder_unknown.is_none());
    assert_eq!(m.image.lime_sha256, sha_hex(&got));
    assert!(!dir.join(".reserve").exists());
    let v = run(Command::new(bin()).arg("verify").arg(&dir));
    assert_eq!(v.status.code(), Some(0));
}

/// M3: SIGTERM early in a capture of a big host (a 16 GiB System RAM range
/// here, 1 MiB of it sent): finalized in seconds, only the current record
/// zero-filled, the rest of RAM listed as left out, exit 20. Before, the
/// whole remaining 16 GiB was zero-filled with further signals ignored.
#[test]
fn root_sigterm_on_a_big_host_stops_in_seconds() {
    require_root();
    let f = Fixture::new();
    let (start, end) = (0x3ff0_0000u64, 0x4_3fff_ffffu64);
    f.iomem_ram(&[(0x1000, 0x9fbff), (start, end)]);
    let mut stream = fv_formats::lime::Header::new(start, end)
        .to_bytes()
        .to_vec();
    stream.extend((0..(1u64 << 20) + 4096).map(|i| mem_byte(start + i)));
    let (out, took) = run_with_stdin(
        &mut f.cmd("lime:-"),
        stream,
        Duration::from_secs(60),
        Some(Duration::from_millis(1500)),
        Duration::from_secs(40),
    );
    assert_eq!(out.status.code(), Some(20), "{}", stderr(&out));
    // One record of zero-fill at most (about a second in a release build,
    // several in this debug one); 16 GiB of it took minutes.
    assert!(took < Duration::from_secs(20), "took {took:?}");
    let dir = f.capture_dir();
    let m = manifest(&dir);
    let zeroed: u64 = m.not_captured.iter().map(|s| s.length).sum();
    let left_out: u64 = m.omitted.iter().map(|s| s.length).sum();
    assert!(m.ranges.len() <= 2, "{:?}", m.ranges);
    assert!(left_out >= 15 << 30, "{:?}", m.omitted);
    // Every byte of the host's RAM: the first range, which the stream went
    // past without a record, is listed too (S4).
    assert_eq!(
        m.total_range_bytes() + left_out,
        end - start + 1 + 0x9ec00,
        "{m:?}"
    );
    assert!(
        m.omitted
            .iter()
            .any(|s| (s.start, s.length) == (0x1000, 0x9ec00) && s.error.contains("no record")),
        "{:?}",
        m.omitted
    );
    assert!(zeroed <= 1 << 30);
    assert!(m.remainder_unknown.is_none());
    let v = run(Command::new(bin()).arg("verify").arg(&dir));
    assert_eq!(
        v.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&v.stdout)
    );
}

/// Clearly too little space: refused before anything is written, with the
/// figures; `--allow-partial` starts anyway and ends as a partial.
#[test]
fn root_too_little_space_is_refused_unless_allowed() {
    require_root();
    let f = Fixture::new();
    let vol = Tmpfs::new("3m");
    let dump = random_dump(&ram());
    let path = f.path().join("dump.lime");
    std::fs::write(&path, &dump).unwrap();
    let out = run(&mut f.cmd_to(&format!("lime:{}", path.display()), &vol.captures()));
    assert_eq!(out.status.code(), Some(16));
    let err = stderr(&out);
    assert!(
        err.contains("at least") && err.contains("--allow-partial"),
        "{err}"
    );
    let left: Vec<_> = std::fs::read_dir(vol.captures())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n != ".capture.lock")
        .collect();
    assert!(left.is_empty(), "{left:?}");

    let out = run(f
        .cmd_to(&format!("lime:{}", path.display()), &vol.captures())
        .arg("--allow-partial"));
    assert_eq!(out.status.code(), Some(21));
}

#[test]
fn root_symlinked_output_is_refused() {
    require_root();
    let f = Fixture::new();
    f.iomem("00001000-0009fbff : System RAM\n");
    std::fs::create_dir(f.vol().join("real")).unwrap();
    symlink(f.vol().join("real"), f.captures()).unwrap();
    let out = run(&mut f.cmd("auto"));
    assert_eq!(out.status.code(), Some(14));
    assert!(stderr(&out).contains("symbolic link"), "{}", stderr(&out));
    assert_eq!(std::fs::read_dir(f.vol().join("real")).unwrap().count(), 0);
    // A symlink higher up the path too.
    std::fs::create_dir(f.vol().join("real/inner")).unwrap();
    let out = run(Command::new(bin())
        .args(["--no-imds", "--source", "auto", "--output"])
        .arg(f.captures().join("inner")));
    assert_eq!(out.status.code(), Some(14));
    assert_eq!(
        std::fs::read_dir(f.vol().join("real/inner"))
            .unwrap()
            .count(),
        0
    );
}

#[test]
fn root_output_outside_the_volume_is_refused() {
    require_root();
    let f = Fixture::new();
    let path = f.path().join("dump.lime");
    std::fs::write(&path, dump_pattern()).unwrap();
    let elsewhere = f.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    let out = run(&mut f.cmd_strict(&format!("lime:{}", path.display()), &elsewhere));
    assert_eq!(out.status.code(), Some(14));
    assert!(stderr(&out).contains("not on a forensics volume"));
    // Issue 23: the refusal says what to do, and never offers the flag that
    // writes onto the suspect's disks.
    assert!(stderr(&out).contains("mount-helper"), "{}", stderr(&out));
    assert!(
        !stderr(&out).contains("allow-any-output"),
        "{}",
        stderr(&out)
    );
    assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 0);
    let out = run(&mut f.cmd_to(&format!("lime:{}", path.display()), &elsewhere));
    assert_eq!(out.status.code(), Some(0));
}

/// Issue 23: AVML's habit `-o memory.lime` (a file that does not exist yet)
/// is reported as missing, not as "not on a forensics volume", and nothing
/// is created.
#[test]
fn root_a_missing_output_is_said_to_be_missing() {
    require_root();
    let f = Fixture::new();
    let path = f.path().join("dump.lime");
    std::fs::write(&path, dump_pattern()).unwrap();
    let out_file = f.vol().join("memory.lime");
    for cmd in [
        f.cmd_strict(&format!("lime:{}", path.display()), &out_file),
        f.cmd_to(&format!("lime:{}", path.display()), &out_file),
    ] {
        let mut cmd = cmd;
        let out = run(&mut cmd);
        assert_eq!(out.status.code(), Some(14), "{}", stderr(&out));
        assert!(stderr(&out).contains("does not exist"), "{}", stderr(&out));
        assert!(
            !stderr(&out).contains("not on a forensics volume"),
            "{}",
            stderr(&out)
        );
        assert!(!out_file.exists());
    }
}

/// Issue 23: AVML's command lines get clap's error and a note on how this
/// tool differs (a directory, always compressed), exit 2, nothing written.
#[test]
fn avml_habits_are_explained() {
    for (args, want) in [
        (&["memory.lime"][..], "not AVML"),
        (&["/tmp/out/memory.lime"][..], "not AVML"),
        (
            &["--compress", "memory.lime.compressed"][..],
            "always compressed",
        ),
        (&["--compress"][..], "always compressed"),
    ] {
        let out = run(Command::new(bin()).args(args));
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(want), "{args:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("directory"),
            "{args:?}: {}",
            stderr(&out)
        );
    }
    // Other usage errors stay clap's own.
    let out = run(Command::new(bin()).args(["--level", "x"]));
    assert_eq!(out.status.code(), Some(2));
    assert!(!stderr(&out).contains("AVML"), "{}", stderr(&out));
}

/// A second capture on the same output root while the first runs: refused
/// (exit 15); the first completes.
#[test]
fn root_second_concurrent_capture_is_refused() {
    require_root();
    let f = Fixture::new();
    f.iomem_ram(&ram());
    let fifo = f.path().join("lime.fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let first = f
        .cmd(&format!("lime:{}", fifo.display()))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut w = std::fs::OpenOptions::new().write(true).open(&fifo).unwrap();
    // The first holds the lock once its capture directory exists.
    wait_for(
        || !f.capture_entries().is_empty(),
        "the first capture to start",
    );
    let path = f.path().join("dump.lime");
    std::fs::write(&path, dump_pattern()).unwrap();
    let out = run(&mut f.cmd(&format!("lime:{}", path.display())));
    assert_eq!(out.status.code(), Some(15));
    assert!(stderr(&out).contains("another capture is running"));
    w.write_all(&dump_pattern()).unwrap();
    drop(w);
    let out = first.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    check_capture(&f.capture_dir(), &dump_pattern(), &ram());
}

/// Not root: a clear message, exit 10, nothing written (not even the
/// captures folder).
#[test]
fn root_not_root_is_refused_and_writes_nothing() {
    require_root();
    let f = Fixture::new();
    // The unprivileged user must be able to reach the binary and the volume.
    let exe = f.path().join("capture");
    std::fs::copy(bin(), &exe).unwrap();
    for p in [f.path(), &f.vol()] {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let out = run(Command::new(&exe)
        .args(["--no-imds", "--output"])
        .arg(f.captures())
        .uid(65534)
        .gid(65534));
    assert_eq!(out.status.code(), Some(10));
    assert!(
        stderr(&out).contains("must run as root"),
        "{}",
        stderr(&out)
    );
    assert!(!f.captures().exists());
}

/// IMDSv2 identity (through a peer that requires the token) names the
/// capture directory and fills the manifest; `--json` prints the summary.
#[test]
fn root_imds_identity_and_json_summary() {
    require_root();
    let f = Fixture::new();
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for _ in 0..3 {
            let (s, _) = l.accept().unwrap();
            let mut r = std::io::BufReader::new(s.try_clone().unwrap());
            let mut head = Vec::new();
            loop {
                let mut line = String::new();
                r.read_line(&mut line).unwrap();
                if line == "\r\n" || line.is_empty() {
                    break;
                }
                head.push(line);
            }
            let body = if head[0].starts_with("PUT /latest/api/token") {
                "tok".to_string()
            } else if head[0].starts_with("GET /latest/dynamic/instance-identity/pkcs7") {
                "MIAGCSqGSIb3DQEHAqCAMIACAQExDzANBglghkgBZQMEAgEFADCABgkqhkiG9w0BBwGggCSABIIB"
                    .to_string()
            } else if head
                .iter()
                .any(|h| h == "X-aws-ec2-metadata-token: tok\r\n")
            {
                r#"{"instanceId":"i-0abc1234def567890","accountId":"111122223333","region":"us-east-1","availabilityZone":"us-east-1c","instanceType":"c7g.large","imageId":"ami-0123456789abcdef0","architecture":"arm64"}"#.to_string()
            } else {
                String::new()
            };
            let mut s = s;
            write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
            .unwrap();
        }
    });
    // A stream of this host (a LiME file is a dump from elsewhere, for
    // which this host's IMDS identity is not asked).
    f.iomem_ram(&ram());
    let path = f.path().join("dump.lime");
    std::fs::write(&path, dump_pattern()).unwrap();
    let mut c = Command::new(bin());
    c.args(["--source", "lime:-"])
        .stdin(std::fs::File::open(&path).unwrap())
        .arg("--output")
        .arg(f.captures())
        .arg("--proc-root")
        .arg(f.proc())
        .arg("--sys-root")
        .arg(f.sys())
        .arg("--imds-endpoint")
        .arg(&addr)
        .arg("--allow-any-output")
        .args([
            "--json",
            "--examiner",
            "A. Analyst",
            "--note",
            "host isolated 02:10",
        ]);
    let out = run(&mut c);
    assert_eq!(out.status.code(), Some(0));
    let dir = f.capture_dir();
    let name = dir.file_name().unwrap().to_string_lossy().into_owned();
    assert!(name.starts_with("i-0abc1234def567890_"), "{name}");
    let m = manifest(&dir);
    let imds = m.host.imds.unwrap();
    assert_eq!(imds.account_id.as_deref(), Some("111122223333"));
    assert_eq!(imds.availability_zone.as_deref(), Some("us-east-1c"));
    assert_eq!(m.host.imds_status, "answered");
    // L9: the document's exact bytes and AWS's signature over them are kept
    // (root on the suspect can fake IMDS; the signature cannot be faked).
    let doc = std::fs::read_to_string(dir.join("context/imds-identity-document.json")).unwrap();
    assert!(
        doc.starts_with(r#"{"instanceId":"i-0abc1234def567890""#),
        "{doc}"
    );
    let sig = std::fs::read_to_string(dir.join("context/imds-identity.pkcs7")).unwrap();
    assert!(sig.starts_with("MIAGCSqGSIb3DQEHAq"), "{sig}");
    assert!(
        m.files
            .iter()
            .any(|e| e.path == "context/imds-identity.pkcs7"),
        "{:?}",
        m.files
    );
    let v = run(Command::new(bin()).arg("verify").arg(&dir));
    assert_eq!(
        v.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&v.stdout)
    );
    assert_eq!(m.case.examiner.as_deref(), Some("A. Analyst"));
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["status"], "complete");
    assert_eq!(summary["lime_sha256"], m.image.lime_sha256.as_str());
    assert_eq!(summary["exit_code"], 0);
    // A normal run without a terminal prints well under the 2,400 chars SSM
    // keeps of each stream (the summary carries three SHA-256 anchors).
    assert_eq!(
        summary["manifest_sha256"].as_str().map(str::len),
        Some(64),
        "{summary}"
    );
    let total = out.stdout.len() + out.stderr.len();
    assert!(total < 1700, "{total} chars");
}

/// A file that is not a module: the kernel refuses it (ENOEXEC; EPERM
/// without CAP_SYS_MODULE; ENOSYS without module support); exit 13 with the kernel's
/// reason, nothing written.
#[test]
fn root_lime_module_refusal_is_reported() {
    require_root();
    let f = Fixture::new();
    let ko = f.path().join("lime.ko");
    std::fs::write(&ko, b"this is not an ELF kernel module").unwrap();
    let out = run(f
        .cmd(&format!("lime-module:{}", ko.display()))
        .arg("--connect-timeout")
        .arg("10"));
    assert_eq!(out.status.code(), Some(13));
    let err = stderr(&out);
    assert!(err.contains("the kernel refused"), "{err}");
    // ENOSYS where the kernel (or a sandbox) has no module syscalls.
    assert!(
        ["ENOEXEC", "EPERM", "ENOSYS"]
            .iter()
            .any(|e| err.contains(e)),
        "{err}"
    );
    assert!(f.capture_entries().is_empty());
}

/// SIGTERM while waiting for the first byte of a LiME stream: nothing was
/// captured, nothing is kept, exit 17.
#[test]
fn root_sigterm_before_any_data_keeps_nothing() {
    require_root();
    let f = Fixture::new();
    f.iomem_ram(&ram());
    let fifo = f.path().join("lime.fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let child = f
        .cmd(&format!("lime:{}", fifo.display()))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let w = std::fs::OpenOptions::new().write(true).open(&fifo).unwrap();
    wait_for(|| !f.capture_entries().is_empty(), "the capture to start");
    std::thread::sleep(Duration::from_millis(300));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    drop(w);
    eprintln!("{}", stderr(&out));
    assert_eq!(out.status.code(), Some(17));
    assert!(stderr(&out).contains("SIGINT"));
    assert!(f.capture_entries().is_empty(), "{:?}", f.capture_entries());
}

/// Without --output, the output root is the volume the binary runs from; a
/// binary that is not on one says so and writes nothing.
#[test]
fn root_default_output_needs_the_volume() {
    require_root();
    let out = run(Command::new(bin()).args(["--no-imds", "--source", "kcore"]));
    assert_eq!(out.status.code(), Some(14));
    assert!(
        stderr(&out).contains("cannot find the forensics volume"),
        "{}",
        stderr(&out)
    );
}

/// M6: a planted marker file does not make a directory the forensics
/// volume: the fixture's "volume" (a directory with the marker, on the
/// host's root filesystem) is refused by device identity, exit 14, nothing
/// written. Before, the marker alone let capture write onto the suspect's
/// disk.
#[test]
fn root_a_planted_marker_is_not_the_volume() {
    require_root();
    let f = Fixture::new();
    let path = f.path().join("dump.lime");
    std::fs::write(&path, dump_pattern()).unwrap();
    let out = run(&mut f.cmd_strict(&format!("lime:{}", path.display()), &f.captures()));
    assert_eq!(out.status.code(), Some(14), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("not on the forensics volume"),
        "{}",
        stderr(&out)
    );
    assert!(f.capture_entries().is_empty(), "{:?}", f.capture_entries());
}

/// M6: an ext4 filesystem labelled FORENSICS on its own block device (a
/// loop device here, the EBS volume in real life) with the marker is
/// accepted without --allow-any-output; the same with another label is not.
/// S12: given the run's --volume-id, the loop device is refused (it is not
/// that EBS volume), label or not.
#[test]
fn root_the_volume_is_known_by_its_device() {
    require_root();
    for (label, want) in [("FORENSICS", 0), ("SUSPECT", 14)] {
        let f = Fixture::new();
        let img = f.path().join("vol.img");
        std::fs::File::create(&img)
            .unwrap()
            .set_len(32 << 20)
            .unwrap();
        let st = Command::new("mkfs.ext4")
            .args(["-q", "-F", "-L", label])
            .arg(&img)
            .status()
            .unwrap();
        assert!(st.success());
        let lo = Command::new("losetup")
            .args(["--find", "--show"])
            .arg(&img)
            .output()
            .unwrap();
        assert!(lo.status.success(), "losetup needs root and loop devices");
        let lo = String::from_utf8(lo.stdout).unwrap().trim().to_string();
        let mnt = f.path().join("mnt");
        std::fs::create_dir(&mnt).unwrap();
        let mounted = Command::new("mount")
            .arg(&lo)
            .arg(&mnt)
            .status()
            .unwrap()
            .success();
        let result = std::panic::catch_unwind(|| {
            assert!(mounted);
            std::fs::write(mnt.join("forensics-volume.json"), MARKER).unwrap();
            let path = f.path().join("dump.lime");
            std::fs::write(&path, dump_pattern()).unwrap();
            // S12 first: with the run's volume ID, a loop device labelled
            // FORENSICS is not that EBS volume; nothing is written.
            let out = run(f
                .cmd_strict(&format!("lime:{}", path.display()), &mnt.join("captures"))
                .args(["--volume-id", "vol-0123456789abcdef0"]));
            assert_eq!(out.status.code(), Some(14), "{label}: {}", stderr(&out));
            if want == 0 {
                assert!(
                    stderr(&out).contains("not on the forensics volume vol-0123456789abcdef0")
                        && stderr(&out).contains("not an NVMe device"),
                    "{}",
                    stderr(&out)
                );
            }
            assert!(
                std::fs::read_dir(mnt.join("captures")).map_or(true, |d| d
                    .filter_map(Result::ok)
                    .all(|e| e.file_name() == ".capture.lock")),
                "something was written"
            );
            let out =
                run(&mut f.cmd_strict(&format!("lime:{}", path.display()), &mnt.join("captures")));
            assert_eq!(out.status.code(), Some(want), "{label}: {}", stderr(&out));
        });
        let _ = Command::new("umount").arg(&mnt).status();
        let _ = Command::new("losetup").arg("-d").arg(&lo).status();
        if let Err(e) = result {
            std::panic::resume_unwind(e);
        }
    }
}
