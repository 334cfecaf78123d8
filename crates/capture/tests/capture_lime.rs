//! LiME ingest through the real binary: file, FIFO, stdin and a TCP peer
//! that speaks like the LiME module (listens late, sends the dump to the
//! first client, closes), byte-identical; and the bad inputs: malformed
//! first header (error, nothing left), a bad later record, a peer that
//! closes early or stalls (labelled partial images).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // helpers outside #[test] fns

mod common;

use std::io::Write;
use std::net::TcpListener;
use std::process::Stdio;
use std::time::Duration;

use common::*;
use fv_evidence::manifest::{PartialCause, Status};
use fv_formats::lime::Header;

fn ram() -> Vec<(u64, u64)> {
    vec![
        (0x1000, 0x9fbff),
        (0x10_0000, 0x2f_ffff),
        (0x40_0000, 0x40_0fff),
    ]
}

fn dump() -> Vec<u8> {
    expected_lime(&ram(), |p| !(0x12_0000..0x13_0000).contains(&p))
}

#[test]
fn root_lime_file_round_trip() {
    require_root();
    let f = Fixture::new();
    let path = f.path().join("dump.lime");
    std::fs::write(&path, dump()).unwrap();
    let out = run(f
        .cmd(&format!("lime:{}", path.display()))
        .arg("--case-id")
        .arg("IR-42"));
    assert_eq!(out.status.code(), Some(0));
    let m = check_capture(&f.capture_dir(), &dump(), &ram());
    assert_eq!(m.source.kind, "lime-file");
    assert_eq!(m.case.case_id.as_deref(), Some("IR-42"));
    // The default level, and the levels the frames really used.
    assert_eq!(m.image.compression.level, 1);
    assert_eq!(m.image.compression.levels_used, Some([1, 1]));
    // Bounded memory: the manifest's peak RSS, and a quiet SSM-sized output.
    assert!(
        m.peak_rss_bytes.unwrap() < 64 << 20,
        "{:?}",
        m.peak_rss_bytes
    );
    assert!(out.stdout.len() + out.stderr.len() < 2000);
    // The analyst's verify agrees.
    let v = run(std::process::Command::new(bin())
        .arg("verify")
        .arg(f.capture_dir()));
    assert_eq!(v.status.code(), Some(0));
}

#[test]
fn root_high_level_keeps_the_memory_bound() {
    require_root();
    let f = Fixture::new();
    let path = f.path().join("dump.lime");
    std::fs::write(&path, dump()).unwrap();
    // Level 19 with 8 threads would need about 160 MiB of zstd contexts
    // for the default 1 MiB frames (the fixture's usual command uses small
    // frames and 2 threads).
    let out = run(std::process::Command::new(bin())
        .arg("--source")
        .arg(format!("lime:{}", path.display()))
        .arg("--output")
        .arg(f.captures())
        .args(["--no-imds", "--level", "19", "--threads", "8"])
        .arg("--allow-any-output")
        .arg("--proc-root")
        .arg(f.proc())
        .arg("--sys-root")
        .arg(f.sys())
        .arg("--dev-root")
        .arg(f.dev()));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let m = check_capture(&f.capture_dir(), &dump(), &ram());
    let c = &m.image.compression;
    assert_eq!((c.level, c.levels_used), (19, Some([19, 19])));
    assert!((1..8).contains(&c.threads), "{c:?}");
    assert!(
        m.warnings
            .iter()
            .any(|w| w.contains("past the memory bound")),
        "{:?}",
        m.warnings
    );
    assert!(
        m.peak_rss_bytes.unwrap() < 64 << 20,
        "{:?}",
        m.peak_rss_bytes
    );
}

#[test]
fn root_lime_fifo_and_stdin_round_trip() {
    require_root();
    let f = Fixture::new();
    f.iomem_ram(&ram());
    let fifo = f.path().join("lime.fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let writer = {
        let fifo = fifo.clone();
        std::thread::spawn(move || {
            let mut w = std::fs::OpenOptions::new().write(true).open(fifo).unwrap();
            for chunk in dump().chunks(100_000) {
                w.write_all(chunk).unwrap();
            }
        })
    };
    let out = run(&mut f.cmd(&format!("lime:{}", fifo.display())));
    writer.join().unwrap();
    assert_eq!(out.status.code(), Some(0));
    check_capture(&f.capture_dir(), &dump(), &ram());

    let f = Fixture::new();
    f.iomem_ram(&ram());
    let mut child = f
        .cmd("lime:-")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    std::thread::spawn(move || {
        stdin.write_all(&dump()).unwrap();
    });
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let m = check_capture(&f.capture_dir(), &dump(), &ram());
    assert_eq!(m.source.kind, "lime-stdin");
}

/// Starts a peer that begins listening on `port` after `delay`, accepts
/// one client and sends `bytes` (then holds the connection `hold` long).
fn lime_peer(
    port: u16,
    delay: Duration,
    bytes: Vec<u8>,
    hold: Duration,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        std::thread::sleep(delay);
        let l = TcpListener::bind(("127.0.0.1", port)).unwrap();
        let (mut s, _) = l.accept().unwrap();
        for chunk in bytes.chunks(64 << 10) {
            if s.write_all(chunk).is_err() {
                return;
            }
        }
        std::thread::sleep(hold);
    })
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn root_lime_tcp_retries_until_listening_and_round_trips() {
    require_root();
    let f = Fixture::new();
    f.iomem_ram(&ram());
    let port = free_port();
    let peer = lime_peer(port, Duration::from_millis(700), dump(), Duration::ZERO);
    let out = run(f
        .cmd(&format!("lime-tcp:127.0.0.1:{port}"))
        .arg("--trust-lime-peer"));
    peer.join().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let m = check_capture(&f.capture_dir(), &dump(), &ram());
    assert_eq!(m.source.kind, "lime-tcp");
    assert_eq!(m.source.location, format!("127.0.0.1:{port}"));
    // S1: the peer check is no proof; the manifest and stderr say so.
    assert!(
        m.warnings.iter().any(|w| w.contains("origin as unproven")),
        "{:?}",
        m.warnings
    );
    assert!(stderr(&out).contains("origin as unproven"));
}

/// The stream is the peer's prefix, then zeros to the end of the record it
/// was in; the manifest says where the zeros start.
fn check_cut(f: &Fixture, sent: usize, cause: PartialCause) {
    let dir = f.capture_dir();
    let m = manifest(&dir);
    assert_eq!(m.status, Status::Partial);
    assert_eq!(m.partial_reason.as_ref().unwrap().cause, cause);
    let got = decompress(&dir.join("memory.lime.zst"));
    let full = dump();
    assert_eq!(m.not_captured.len(), 1, "{:?}", m.not_captured);
    let nc = &m.not_captured[0];
    let r = m
        .ranges
        .iter()
        .find(|r| nc.start >= r.start && nc.start <= r.end)
        .unwrap();
    let zero_from = (r.lime_offset + 32 + (nc.start - r.start)) as usize;
    assert_eq!(
        nc.start + nc.length,
        r.end + 1,
        "zeros to the end of the record"
    );
    assert!(zero_from <= sent, "{zero_from} > {sent}");
    assert_eq!(got.len() as u64, r.lime_offset + 32 + r.length);
    assert_eq!(&got[..zero_from], &full[..zero_from]);
    assert!(got[zero_from..].iter().all(|&b| b == 0));
    assert_eq!(m.image.lime_sha256, sha_hex(&got));
    // Every byte of the host's RAM is accounted for: in the stream, or
    // listed as left out (the third range, never sent).
    let ram_total: u64 = ram().iter().map(|(s, e)| e - s + 1).sum();
    let left_out: u64 = m.omitted.iter().map(|s| s.length).sum();
    assert_eq!(m.total_range_bytes() + left_out, ram_total, "{m:?}");
    assert_eq!(m.omitted.last().map(|s| s.start), Some(0x40_0000));
    // Still a valid image for the analyst.
    let v = run(std::process::Command::new(bin()).arg("verify").arg(&dir));
    assert_eq!(v.status.code(), Some(0));
}

#[test]
fn root_lime_tcp_peer_closing_early_is_a_labelled_partial() {
    require_root();
    let f = Fixture::new();
    f.iomem_ram(&ram());
    let port = free_port();
    let sent = 0x9ec20 + 32 + 0x5_1234;
    let peer = lime_peer(
        port,
        Duration::ZERO,
        dump()[..sent].to_vec(),
        Duration::ZERO,
    );
    let out = run(f
        .cmd(&format!("lime-tcp:127.0.0.1:{port}"))
        .arg("--trust-lime-peer"));
    peer.join().unwrap();
    assert_eq!(out.status.code(), Some(22));
    assert!(String::from_utf8_lossy(&out.stdout).contains("PARTIAL"));
    check_cut(&f, sent, PartialCause::SourceTruncated);
}

#[test]
fn root_lime_tcp_stall_times_out_into_a_partial() {
    require_root();
    let f = Fixture::new();
    f.iomem_ram(&ram());
    let port = free_port();
    let sent = 0x9ec20 + 32 + 0x8_0000;
    let peer = lime_peer(
        port,
        Duration::ZERO,
        dump()[..sent].to_vec(),
        Duration::from_secs(4),
    );
    let out = run(f
        .cmd(&format!("lime-tcp:127.0.0.1:{port}"))
        .arg("--trust-lime-peer")
        .arg("--stall-timeout")
        .arg("1"));
    assert_eq!(out.status.code(), Some(22));
    assert!(stderr(&out).is_empty() || !stderr(&out).contains("panicked"));
    check_cut(&f, sent, PartialCause::SourceStalled);
    peer.join().unwrap();
}

#[test]
fn root_malformed_lime_is_refused_and_leaves_nothing() {
    require_root();
    let f = Fixture::new();
    let path = f.path().join("bad.lime");
    let mut bad = dump();
    bad[0] = b'X';
    std::fs::write(&path, &bad).unwrap();
    let out = run(&mut f.cmd(&format!("lime:{}", path.display())));
    assert_eq!(out.status.code(), Some(12));
    assert!(stderr(&out).contains("bad magic"), "{}", stderr(&out));
    assert!(f.capture_entries().is_empty(), "{:?}", f.capture_entries());
}

#[test]
fn root_bad_later_record_keeps_the_good_ones() {
    require_root();
    let f = Fixture::new();
    let path = f.path().join("half.lime");
    let mut bytes = dump();
    // Second record overlaps the first: everything after record 0 is refused.
    let second = 32 + 0x9ec00;
    bytes[second..second + 32].copy_from_slice(&Header::new(0x9f000, 0x29_ffff).to_bytes());
    std::fs::write(&path, &bytes).unwrap();
    let out = run(&mut f.cmd(&format!("lime:{}", path.display())));
    assert_eq!(out.status.code(), Some(22));
    let dir = f.capture_dir();
    let m = manifest(&dir);
    assert_eq!(
        m.partial_reason.as_ref().unwrap().cause,
        PartialCause::SourceError
    );
    assert_eq!(m.ranges.len(), 1);
    assert!(m.not_captured.is_empty());
    // The file does not parse past the bad header: the manifest says so.
    assert!(m.omitted.is_empty());
    assert!(m.remainder_unknown.is_some(), "{m:?}");
    assert_eq!(
        decompress(&dir.join("memory.lime.zst")),
        dump()[..second].to_vec()
    );
}

#[test]
fn root_lime_tcp_nobody_listening_is_named() {
    require_root();
    let f = Fixture::new();
    let port = free_port();
    let t = std::time::Instant::now();
    let out = run(f
        .cmd(&format!("lime-tcp:127.0.0.1:{port}"))
        .arg("--connect-timeout")
        .arg("1"));
    assert_eq!(out.status.code(), Some(11));
    assert!(
        stderr(&out).contains("no LiME module listening"),
        "{}",
        stderr(&out)
    );
    assert!(t.elapsed() < Duration::from_secs(10));
    assert!(f.capture_entries().is_empty());
}

/// H1: a LiME stream of this host whose header claims memory the host does
/// not have (here up to 2^64-2) is refused at that header: nothing is
/// written, no zero-fill of exabytes starts, exit 12 at once.
#[test]
fn root_lying_header_from_this_host_is_refused() {
    require_root();
    let f = Fixture::new();
    f.iomem_ram(&ram());
    let mut lie = Header::new(0x10_0000, u64::MAX - 1).to_bytes().to_vec();
    lie.resize(32 + (1 << 20), 0x5A);
    let (out, took) = run_with_stdin(
        &mut f.cmd("lime:-"),
        lie,
        Duration::ZERO,
        None,
        Duration::from_secs(20),
    );
    assert_eq!(out.status.code(), Some(12), "{}", stderr(&out));
    assert!(stderr(&out).contains("System RAM"), "{}", stderr(&out));
    assert!(took < Duration::from_secs(10), "{took:?}");
    assert!(f.capture_entries().is_empty(), "{:?}", f.capture_entries());
}

/// H1 and M3 with --foreign-lime: a dump from elsewhere that claims 16 GiB
/// and sends 1 MiB ends in seconds (one bounded record zero-filled, the
/// rest listed as omitted), says its remainder is unknown, and verifies.
#[test]
fn root_foreign_stream_claiming_more_than_it_sends_ends_promptly() {
    require_root();
    let f = Fixture::new();
    f.iomem_ram(&ram());
    let start = 0x3ff0_0000u64;
    let end = start + (16 << 30) + (1 << 20) - 1;
    let mut claim = Header::new(start, end).to_bytes().to_vec();
    claim.extend((0..1u64 << 20).map(|i| mem_byte(start + i)));
    let (out, took) = run_with_stdin(
        f.cmd("lime:-").arg("--foreign-lime"),
        claim,
        Duration::ZERO,
        None,
        Duration::from_secs(40),
    );
    assert_eq!(out.status.code(), Some(22), "{}", stderr(&out));
    assert!(took < Duration::from_secs(20), "{took:?}");
    let dir = f.capture_dir();
    let m = manifest(&dir);
    assert!(m.ranges.len() <= 2, "{:?}", m.ranges);
    assert_eq!((m.ranges[0].start, m.ranges[0].end), (start, 0x3fff_ffff));
    let left_out: u64 = m.omitted.iter().map(|s| s.length).sum();
    let zeroed: u64 = m.not_captured.iter().map(|s| s.length).sum();
    assert_eq!(m.total_range_bytes() + left_out, end - start + 1);
    assert!(zeroed <= 1 << 30);
    assert!(left_out >= 15 << 30);
    assert!(m.remainder_unknown.is_some());
    assert!(String::from_utf8_lossy(&out.stdout).contains("left out"));
    let v = run(std::process::Command::new(bin()).arg("verify").arg(&dir));
    assert_eq!(
        v.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&v.stdout)
    );
}

/// H2: lime-tcp takes numeric loopback addresses only (a name would be
/// resolved through the suspect's /etc/hosts).
#[test]
fn lime_tcp_needs_a_numeric_loopback_address() {
    let out = run(std::process::Command::new(bin()).args([
        "--source",
        "lime-tcp:localhost:4444",
        "--no-imds",
    ]));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("loopback"), "{}", stderr(&out));
    let out = run(std::process::Command::new(bin()).args([
        "--source",
        "lime-tcp:10.0.0.1:4444",
        "--no-imds",
    ]));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}

/// H2: a process that listens on LiME's port first (to feed a fabricated
/// dump) is refused before a byte is trusted: the peer's socket belongs to
/// a process (this test), not to LiME's kernel socket. Nothing is kept.
#[test]
fn root_lime_tcp_peer_owned_by_a_process_is_refused() {
    require_root();
    let f = Fixture::new();
    f.iomem_ram(&ram());
    let port = free_port();
    // The peer keeps its socket open, as one feeding a dump would.
    let peer = lime_peer(port, Duration::ZERO, dump(), Duration::from_secs(3));
    let out = run(&mut f.cmd(&format!("lime-tcp:127.0.0.1:{port}")));
    peer.join().unwrap();
    assert_eq!(out.status.code(), Some(11), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("not LiME's kernel socket"),
        "{}",
        stderr(&out)
    );
    assert!(
        stderr(&out).contains(&format!("pid {} (", std::process::id())),
        "{}",
        stderr(&out)
    );
    assert!(f.capture_entries().is_empty(), "{:?}", f.capture_entries());
}

/// The records of `dump()` for the given ranges of `ram()` only, as a
/// module that died or skipped would send them.
fn records_of(which: &[usize]) -> Vec<u8> {
    let ram = ram();
    let keep: Vec<(u64, u64)> = which.iter().map(|&i| ram[i]).collect();
    expected_lime(&keep, |p| !(0x12_0000..0x13_0000).contains(&p))
}

/// S4: a stream of this host that ends at a record boundary (the module
/// died between ranges; here through a FIFO) is PARTIAL, exit 22: the
/// ranges it never sent are listed in `omitted`, the RAM is accounted for
/// byte for byte, stderr says so, and verify agrees.
#[test]
fn root_short_stream_of_this_host_is_partial_with_every_gap_listed() {
    require_root();
    let f = Fixture::new();
    f.iomem_ram(&ram());
    let fifo = f.path().join("lime.fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let sent = records_of(&[0]);
    let writer = {
        let (fifo, sent) = (fifo.clone(), sent.clone());
        std::thread::spawn(move || {
            let mut w = std::fs::OpenOptions::new().write(true).open(fifo).unwrap();
            w.write_all(&sent).unwrap();
        })
    };
    let out = run(&mut f.cmd(&format!("lime:{}", fifo.display())));
    writer.join().unwrap();
    assert_eq!(out.status.code(), Some(22), "{}", stderr(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("PARTIAL"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        stderr(&out).contains("without") && stderr(&out).contains("PARTIAL"),
        "{}",
        stderr(&out)
    );
    let dir = f.capture_dir();
    let m = check_capture(&dir, &sent, &ram()[..1]);
    assert_eq!(m.status, Status::Partial);
    assert_eq!(
        m.partial_reason.as_ref().unwrap().cause,
        PartialCause::SourceTruncated
    );
    assert!(m.not_captured.is_empty(), "{:?}", m.not_captured);
    assert!(m.remainder_unknown.is_none());
    let gaps: Vec<(u64, u64)> = m
        .omitted
        .iter()
        .map(|s| (s.start, s.start + s.length - 1))
        .collect();
    assert_eq!(gaps, ram()[1..].to_vec());
    let ram_total: u64 = ram().iter().map(|(s, e)| e - s + 1).sum();
    let left_out: u64 = m.omitted.iter().map(|s| s.length).sum();
    assert_eq!(m.total_range_bytes() + left_out, ram_total);
    let v = run(std::process::Command::new(bin()).arg("verify").arg(&dir));
    assert_eq!(v.status.code(), Some(0));
}

/// S4 on stdin: a stream that passes over a range (records for the first
/// and last RAM ranges only) lists the one in between.
#[test]
fn root_stream_skipping_a_range_lists_it() {
    require_root();
    let f = Fixture::new();
    f.iomem_ram(&ram());
    let sent = records_of(&[0, 2]);
    let (out, _) = run_with_stdin(
        &mut f.cmd("lime:-"),
        sent.clone(),
        Duration::ZERO,
        None,
        Duration::from_secs(30),
    );
    assert_eq!(out.status.code(), Some(22), "{}", stderr(&out));
    let dir = f.capture_dir();
    let kept = [ram()[0], ram()[2]];
    let m = check_capture(&dir, &sent, &kept);
    assert_eq!(m.status, Status::Partial);
    assert_eq!(m.omitted.len(), 1, "{:?}", m.omitted);
    assert_eq!(
        (m.omitted[0].start, m.omitted[0].length),
        (0x10_0000, 0x20_0000)
    );
    assert!(m.omitted[0].error.contains("no record"), "{:?}", m.omitted);
    let v = run(std::process::Command::new(bin()).arg("verify").arg(&dir));
    assert_eq!(
        v.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&v.stdout)
    );
}

/// A foreign stream is not compared with this host's RAM: the same short
/// stream with --foreign-lime is what it claims to be, complete.
#[test]
fn root_foreign_short_stream_is_not_judged_against_this_host() {
    require_root();
    let f = Fixture::new();
    f.iomem_ram(&ram());
    let sent = records_of(&[0]);
    let (out, _) = run_with_stdin(
        f.cmd("lime:-").arg("--foreign-lime"),
        sent.clone(),
        Duration::ZERO,
        None,
        Duration::from_secs(30),
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let m = check_capture(&f.capture_dir(), &sent, &ram()[..1]);
    assert_eq!(m.status, Status::Complete);
    assert!(m.omitted.is_empty());
}

/// Issue 22: a dump from another host (a LiME file, or a stream with
/// --foreign-lime) records nothing of the host that packaged it as the
/// source's: no hostname, kernel, boot ID or IMDS identity, no context/
/// (this host's kallsyms and BTF would be judged as the dump's kernel),
/// and the progress total is the file's size, or unknown for a stream,
/// never this host's RAM.
#[test]
fn root_foreign_dump_records_nothing_of_this_host() {
    require_root();
    let f = Fixture::new();
    // This host's RAM (128 GiB) would be a wrong progress total.
    f.iomem("00001000-0009fbff : System RAM\n00100000-1fffffffff : System RAM\n");
    std::fs::write(f.proc().join("kallsyms"), "ffffffff81000000 T _stext\n").unwrap();
    let path = f.path().join("dump.lime");
    std::fs::write(&path, dump()).unwrap();
    let out = run(&mut f.cmd(&format!("lime:{}", path.display())));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let size = format!("{:.1} MiB", dump().len() as f64 / f64::from(1 << 20));
    assert!(
        stderr(&out).contains(&format!(
            "capture: source lime-file ({}), {size} ->",
            path.display()
        )),
        "{}",
        stderr(&out)
    );
    let dir = f.capture_dir();
    let name = dir.file_name().unwrap().to_string_lossy().into_owned();
    assert!(name.starts_with("foreign-lime_"), "{name}");
    let m = check_capture(&dir, &dump(), &ram());
    let h = &m.host;
    // The documented field, as JSON (docs/manifest.md: host.foreign).
    let raw: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    assert!(
        raw["host"]["foreign"]
            .as_str()
            .is_some_and(|w| w.contains("another host")),
        "{h:?}"
    );
    assert_eq!(
        (
            h.hostname.as_str(),
            h.kernel_release.as_str(),
            h.kernel_version.as_str(),
            h.machine.as_str()
        ),
        ("unknown", "unknown", "unknown", "unknown")
    );
    assert_eq!((h.boot_id.as_deref(), h.imds.is_none()), (None, true));
    assert!(h.imds_status.starts_with("not asked"), "{}", h.imds_status);
    assert!(!dir.join("context").exists());
    assert!(
        m.files.iter().all(|e| !e.path.starts_with("context/")),
        "{:?}",
        m.files
    );
    assert!(
        m.warnings.iter().any(|w| w.contains("no kernel context")),
        "{:?}",
        m.warnings
    );
    // info shows the origin, not this host's kernel; verify agrees.
    let i = run(std::process::Command::new(bin()).arg("info").arg(&dir));
    let text = String::from_utf8_lossy(&i.stdout);
    assert!(text.contains("another host"), "{text}");
    assert!(
        !text.contains(
            &nix::sys::utsname::uname()
                .unwrap()
                .release()
                .to_string_lossy()
                .into_owned()
        ),
        "{text}"
    );
    let v = run(std::process::Command::new(bin()).arg("verify").arg(&dir));
    assert_eq!(v.status.code(), Some(0));

    // A stream with --foreign-lime: the size is unknown, not 128 GiB.
    let f = Fixture::new();
    f.iomem("00001000-0009fbff : System RAM\n00100000-1fffffffff : System RAM\n");
    let (out, _) = run_with_stdin(
        f.cmd("lime:-").arg("--foreign-lime"),
        dump(),
        Duration::ZERO,
        None,
        Duration::from_secs(30),
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("capture: source lime-stdin (-) ->"),
        "{}",
        stderr(&out)
    );
    let dir = f.capture_dir();
    let raw: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    assert!(raw["host"]["foreign"].is_string(), "{raw}");
    assert!(manifest(&dir).host.boot_id.is_none());
}
