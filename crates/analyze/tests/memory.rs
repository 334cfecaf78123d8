//! `verify` and `info` on a seek table shaped like a 24 TiB capture's (25 M
//! frames of 1 MiB) stay within the memory bound docs/analyst.md states,
//! instead of growing by tens of bytes per frame (the review's M9: about
//! 2 GB for `verify`, 4 GB for `extract`). The data frames are a hole of a
//! sparse file, so every frame fails its check: the worst case for the
//! bookkeeping as well. Its own test binary, so no other test's allocations
//! count.

// Test code: a panic is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufWriter, Write};

use fv_analyze::{Command, InfoArgs, VerifyArgs};

/// The bound docs/analyst.md gives for `verify` and `info`, in MiB.
const BOUND_MIB: u64 = 200;

/// Peak resident set size of this process, from `/proc/self/status`.
fn vm_hwm_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// A seekable image of `frames` frames of 1 MiB, each 9 compressed bytes
/// of zeros (a hole: not a zstd frame; the first starts with zstd's magic),
/// with a real seek table.
fn synthetic(path: &std::path::Path, frames: u32) {
    const FRAME_COMPRESSED: u32 = 9;
    let file = std::fs::File::create(path).unwrap();
    let data_len = u64::from(frames) * u64::from(FRAME_COMPRESSED);
    file.set_len(data_len).unwrap();
    let mut w = BufWriter::with_capacity(1 << 20, &file);
    // A zstd magic up front, as input detection expects; the rest is holes.
    w.write_all(&0xFD2F_B528u32.to_le_bytes()).unwrap();
    std::io::Seek::seek(&mut w, std::io::SeekFrom::Start(data_len)).unwrap();
    let body = u64::from(frames) * 8 + 9;
    w.write_all(&0x184D_2A5Eu32.to_le_bytes()).unwrap();
    w.write_all(&u32::try_from(body).unwrap().to_le_bytes())
        .unwrap();
    let mut entry = [0u8; 8];
    entry[..4].copy_from_slice(&FRAME_COMPRESSED.to_le_bytes());
    entry[4..].copy_from_slice(&(1u32 << 20).to_le_bytes());
    for _ in 0..frames {
        w.write_all(&entry).unwrap();
    }
    w.write_all(&frames.to_le_bytes()).unwrap();
    w.write_all(&[0]).unwrap();
    w.write_all(&0x8F92_EAB1u32.to_le_bytes()).unwrap();
    w.flush().unwrap();
}

#[test]
fn verify_of_a_24_tib_seek_table_stays_within_the_documented_bound() {
    // 24 TiB in 1 MiB frames, as capture writes them.
    let frames: u32 = std::env::var("FV_MEMORY_TEST_FRAMES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(24 << 20);
    let tmp = tempfile::tempdir().unwrap();
    let image = tmp.path().join("memory.lime.zst");
    synthetic(&image, frames);
    let before = vm_hwm_kib();

    let (mut out, mut err) = (Vec::new(), Vec::new());
    let info = Command::Info(InfoArgs {
        path: image.clone(),
        json: true,
    });
    // The table is read and checked; the first header's frame is a hole.
    let e = fv_analyze::run_with(&info, &mut out, &mut err).unwrap_err();
    assert!(e.to_string().contains("frame 0"), "{e}");
    let after_info = vm_hwm_kib();

    let (mut out, mut err) = (Vec::new(), Vec::new());
    let verify = Command::Verify(VerifyArgs {
        path: image.clone(),
        json: true,
        sha256: None,
        expect_manifest_sha256: None,
        expect_sha256: None,
        expect_lime_sha256: None,
        custody_record: None,
        custody_versions: None,
        fleet_entry: None,
        fleet_versions: None,
        threads: None,
    });
    let exit = fv_analyze::run_with(&verify, &mut out, &mut err).unwrap();
    assert_eq!(exit, fv_analyze::Exit::EvidenceBad);
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["frames"], u64::from(frames));
    let problems = v["problems"].as_array().unwrap();
    // Every frame failed; 20 are listed, the rest counted.
    assert!(
        problems.iter().any(|p| p["message"]
            .as_str()
            .unwrap()
            .contains(&format!("and {} more bad frames", frames - 20))),
        "{v}"
    );
    let after_verify = vm_hwm_kib();
    eprintln!(
        "VmHWM: {before} KiB before, {after_info} KiB after info, {after_verify} KiB after verify ({frames} frames)"
    );
    assert!(
        after_verify < BOUND_MIB * 1024,
        "verify's peak RSS {after_verify} KiB is over the documented {BOUND_MIB} MiB"
    );
}
