//! The image writer's memory does not grow with the input: peak RSS stays
//! far below 64 MiB with 8 threads, and is the same after 1 GiB as after
//! 128 MiB. Its own test binary, so that no other test's allocations count.

use std::ffi::OsStr;

use fv_core::fs::Dir;
use fv_evidence::writer::{DEFAULT_FRAME_SIZE, ImageWriter, WriterOptions};

/// Peak resident set size of this process, from `/proc/self/status`.
fn vm_hwm_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[test]
fn peak_rss_is_bounded_and_does_not_grow_with_input() {
    const MIB: usize = 1 << 20;
    // Four kinds of 1 MiB block: random, text, zeros, half random half zero.
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    let mut random = vec![0u8; MIB];
    for w in random.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        w.copy_from_slice(&x.to_le_bytes());
    }
    let text: Vec<u8> =
        b"Nov 26 17:42:01 ip-10-0-1-23 sshd[812]: Accepted publickey for ec2-user\n"
            .iter()
            .copied()
            .cycle()
            .take(MIB)
            .collect();
    let zeros = vec![0u8; MIB];
    let mut half = random.clone();
    half[MIB / 2..].fill(0);
    let blocks = [&random, &text, &zeros, &half];

    let tmp = tempfile::tempdir().unwrap();
    let dir = Dir::open(tmp.path()).unwrap();
    let file = dir.create_file(OsStr::new("memory.lime.zst")).unwrap();
    let opts = WriterOptions {
        level: 1,
        threads: 8,
        frame_size: DEFAULT_FRAME_SIZE,
    };
    let mut w = ImageWriter::new(file, tmp.path().join("memory.lime.zst"), opts).unwrap();
    let mut feed = |from: usize, to: usize| {
        for i in from..to {
            // Odd-sized writes so frames straddle them.
            let b = blocks[i % 4];
            w.write(&b[..MIB - 4096]).unwrap();
            w.write(&b[MIB - 4096..]).unwrap();
        }
    };
    feed(0, 128);
    let after_128m = vm_hwm_kib().unwrap();
    feed(128, 1024);
    let after_1g = vm_hwm_kib().unwrap();
    let summary = w.finish().unwrap();
    assert_eq!(summary.lime_len, 1 << 30);
    eprintln!("VmHWM: {after_128m} KiB after 128 MiB, {after_1g} KiB after 1 GiB");
    assert!(
        after_1g < 64 * 1024,
        "peak RSS {after_1g} KiB is over 64 MiB"
    );
    assert!(
        after_1g - after_128m < 4 * 1024,
        "peak RSS grew with the input: {after_128m} KiB -> {after_1g} KiB"
    );
}
