use std::ffi::OsStr;
use std::io::Read;
use std::sync::atomic::Ordering;

use sha2::{Digest, Sha256};

use super::options::zero_frame_bound;
use super::*;
use crate::seektable::{Entry, FOOTER_LEN, Footer, table_len};

/// A deterministic LiME-like stream: zero runs, text, pseudo-random bytes.
pub(super) fn sample(len: usize, seed: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(len);
    let mut x = seed | 1;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    while out.len() < len {
        let kind = next() % 4;
        let run = (next() % 20_000) as usize + 1;
        for i in 0..run {
            match kind {
                0 => out.push(0),
                1 => out.push(b"kernel text symbol table "[i % 25]),
                _ => out.push(next() as u8),
            }
        }
    }
    out.truncate(len);
    out
}

fn opts(frame_size: u32, threads: usize) -> WriterOptions {
    WriterOptions {
        level: 3,
        threads,
        frame_size,
    }
}

struct Image {
    _tmp: tempfile::TempDir,
    path: PathBuf,
}

fn new_writer(o: WriterOptions, entry_cap: usize) -> (ImageWriter, Image) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = Dir::open(tmp.path()).unwrap();
    let file = dir.create_file(OsStr::new("memory.lime.zst")).unwrap();
    let path = tmp.path().join("memory.lime.zst");
    let w = ImageWriter::with_entry_cap(file, path.clone(), o, entry_cap).unwrap();
    (w, Image { _tmp: tmp, path })
}

/// Parses the seek table at the end of `file` (independently of the writer).
fn read_table(file: &[u8]) -> Vec<Entry> {
    let tail: [u8; FOOTER_LEN] = file[file.len() - FOOTER_LEN..].try_into().unwrap();
    let footer = Footer::parse(&tail).unwrap();
    assert!(footer.checksums);
    let start = file.len() - footer.table_len() as usize;
    assert_eq!(&file[start..start + 4], &0x184D_2A5Eu32.to_le_bytes());
    file[start + 8..file.len() - FOOTER_LEN]
        .chunks_exact(12)
        .map(|c| Entry {
            compressed: u32::from_le_bytes(c[0..4].try_into().unwrap()),
            decompressed: u32::from_le_bytes(c[4..8].try_into().unwrap()),
            checksum: Some(u32::from_le_bytes(c[8..12].try_into().unwrap())),
        })
        .collect()
}

/// Checks everything a reader relies on: `zstd -d` equivalence, each frame
/// alone, the table's sizes and checksums, both digests.
fn check_image(file: &[u8], stream: &[u8], summary: &ImageSummary) {
    assert_eq!(zstd::stream::decode_all(file).unwrap(), stream);
    let entries = read_table(file);
    assert_eq!(entries.len() as u64, summary.frames);
    let mut at = 0usize;
    let mut raw_at = 0usize;
    for (i, e) in entries.iter().enumerate() {
        let frame = &file[at..at + e.compressed as usize];
        let data = zstd::bulk::decompress(frame, summary.frame_size as usize).unwrap();
        assert_eq!(data.len(), e.decompressed as usize, "frame {i}");
        assert_eq!(&data[..], &stream[raw_at..raw_at + data.len()], "frame {i}");
        assert_eq!(
            e.checksum,
            Some(pipeline::frame_checksum(frame)),
            "frame {i}"
        );
        if i + 1 < entries.len() {
            assert_eq!(e.decompressed, summary.frame_size, "frame {i}");
        }
        at += e.compressed as usize;
        raw_at += data.len();
    }
    assert_eq!(raw_at, stream.len());
    assert_eq!(
        at as u64 + table_len(summary.frames, true).unwrap(),
        file.len() as u64
    );
    assert_eq!(summary.lime_len, stream.len() as u64);
    assert_eq!(
        summary.lime_sha256,
        <[u8; 32]>::from(Sha256::digest(stream))
    );
    assert_eq!(summary.zst_len, file.len() as u64);
    assert_eq!(summary.zst_sha256, <[u8; 32]>::from(Sha256::digest(file)));
}

#[test]
fn round_trip_in_uneven_writes() {
    let stream = sample(5 * 65536 + 1234, 7);
    let mut zeros = vec![0u8; 3 * 65536];
    let mut stream_with_zeros = stream.clone();
    stream_with_zeros.append(&mut zeros);
    stream_with_zeros.extend_from_slice(&sample(70_000, 9));
    let (mut w, img) = new_writer(opts(65536, 3), MEM_ENTRIES);
    let mut rest = &stream_with_zeros[..];
    let mut step = 1usize;
    while !rest.is_empty() {
        let n = step.min(rest.len());
        w.write(&rest[..n]).unwrap();
        rest = &rest[n..];
        step = step * 7 % 100_003 + 1;
    }
    assert_eq!(w.stream_offset(), stream_with_zeros.len() as u64);
    let summary = w.finish().unwrap();
    assert_eq!(
        summary.frames,
        stream_with_zeros.len().div_ceil(65536) as u64
    );
    assert_eq!((summary.level, summary.threads), (3, 3));
    let file = std::fs::read(&img.path).unwrap();
    check_image(&file, &stream_with_zeros, &summary);
    // Only the image is left in the directory (no spill file, no temp).
    assert_eq!(
        std::fs::read_dir(img.path.parent().unwrap())
            .unwrap()
            .count(),
        1
    );
}

#[test]
fn zero_frames_use_the_shared_frame() {
    let stream = vec![0u8; 8 * 65536];
    let (mut w, img) = new_writer(opts(65536, 2), MEM_ENTRIES);
    w.write(&stream).unwrap();
    let summary = w.finish().unwrap();
    let file = std::fs::read(&img.path).unwrap();
    check_image(&file, &stream, &summary);
    let zero = zero_frame(65536, 3).unwrap();
    let entries = read_table(&file);
    assert!(
        entries
            .iter()
            .all(|e| e.compressed as usize == zero.bytes.len())
    );
    assert!((zero.bytes.len() as u64) <= zero_frame_bound(65536));
    assert!(
        (zero_frame(DEFAULT_FRAME_SIZE, 1).unwrap().bytes.len() as u64)
            <= zero_frame_bound(DEFAULT_FRAME_SIZE)
    );
}

#[test]
fn empty_stream_is_a_valid_image() {
    let (w, img) = new_writer(opts(65536, 1), MEM_ENTRIES);
    let summary = w.finish().unwrap();
    let file = std::fs::read(&img.path).unwrap();
    check_image(&file, &[], &summary);
    assert_eq!(summary.frames, 0);
}

#[test]
fn many_frames_spill_their_entries() {
    let stream = sample(40 * 4096 + 17, 3);
    let (mut w, img) = new_writer(opts(4096, 2), 6);
    w.write(&stream).unwrap();
    let summary = w.finish().unwrap();
    let file = std::fs::read(&img.path).unwrap();
    check_image(&file, &stream, &summary);
    assert_eq!(
        std::fs::read_dir(img.path.parent().unwrap())
            .unwrap()
            .count(),
        1
    );
}

#[test]
fn options_out_of_range_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = Dir::open(tmp.path()).unwrap();
    for (i, o) in [
        opts(100, 1),
        opts(65536, 0),
        WriterOptions {
            level: 99,
            ..opts(65536, 1)
        },
    ]
    .into_iter()
    .enumerate()
    {
        let name = format!("f{i}");
        let file = dir.create_file(OsStr::new(&name)).unwrap();
        let err = ImageWriter::new(file, tmp.path().join(&name), o).unwrap_err();
        assert!(matches!(err, WriterError::Option { .. }), "{err}");
    }
}

/// Feeds `stream` until the writer reports an error, then recovers, and
/// feeds zeros for the rest (what `capture` does after a full disk).
/// Returns the image and the stream the image must hold.
fn write_until_failure_then_zero_fill(
    w: &mut ImageWriter,
    stream: &[u8],
    before_recover: &mut dyn FnMut(),
) -> (Vec<u8>, WriterError) {
    let mut err = None;
    for chunk in stream.chunks(10_000) {
        if let Err(e) = w.write(chunk) {
            err = Some(e);
            break;
        }
    }
    let err = match err {
        Some(e) => e,
        // The error may surface only when the pipeline is flushed: keep
        // writing zeros until it does.
        None => loop {
            if let Err(e) = w.write(&[0u8; 4096]) {
                break e;
            }
        },
    };
    assert!(matches!(
        w.write(b"x"),
        Err(WriterError::NotRecovered { .. })
    ));
    before_recover();
    let resume = w.recover().unwrap() as usize;
    assert_eq!(w.stream_offset() as usize, resume);
    assert_eq!(resume % w.options().frame_size as usize, 0);
    let mut expect = stream[..resume.min(stream.len())].to_vec();
    expect.resize(stream.len(), 0);
    let zeros = vec![0u8; 50_000];
    let mut left = stream.len().saturating_sub(resume);
    while left > 0 {
        let n = left.min(zeros.len());
        w.write(&zeros[..n]).unwrap();
        left -= n;
    }
    (expect, err)
}

#[test]
fn recover_after_injected_write_error_yields_a_valid_image() {
    let stream = sample(30 * 65536 + 99, 11);
    let (mut w, img) = new_writer(opts(65536, 3), 4);
    // Writes past 200 KB of image fail with ENOSPC (a partial write first).
    w.shared.inject_enospc_at.store(200_000, Ordering::SeqCst);
    let shared = w.shared.clone();
    let (expect, err) = write_until_failure_then_zero_fill(&mut w, &stream, &mut || {
        shared.inject_enospc_at.store(u64::MAX, Ordering::SeqCst);
    });
    assert!(err.is_no_space(), "{err}");
    let summary = w.finish().unwrap();
    let file = std::fs::read(&img.path).unwrap();
    check_image(&file, &expect, &summary);
    assert_ne!(expect, stream, "the fault hit the stream");
}

#[test]
fn recover_without_an_error_changes_nothing() {
    let stream = sample(100_000, 5);
    let (mut w, img) = new_writer(opts(65536, 1), MEM_ENTRIES);
    w.write(&stream).unwrap();
    assert_eq!(w.recover().unwrap(), 100_000);
    let summary = w.finish().unwrap();
    let file = std::fs::read(&img.path).unwrap();
    check_image(&file, &stream, &summary);
}

/// A real full file system: a small tmpfs. The caller's reserve (a file of
/// `reserve_for` bytes deleted before `recover`) is what lets the image be
/// completed.
#[test]
fn root_enospc_on_tmpfs_yields_a_valid_image() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "root_enospc_on_tmpfs_yields_a_valid_image needs root (mount -t tmpfs)"
    );
    let mnt = tempfile::tempdir().unwrap();
    nix::mount::mount(
        Some("tmpfs"),
        mnt.path(),
        Some("tmpfs"),
        nix::mount::MsFlags::empty(),
        Some("size=3m,mode=0700"),
    )
    .unwrap();
    struct Unmount<'a>(&'a Path);
    impl Drop for Unmount<'_> {
        fn drop(&mut self) {
            let _ = nix::mount::umount(self.0);
        }
    }
    let _guard = Unmount(mnt.path());
    // Incompressible: 8 MiB cannot fit in 3 MiB.
    let mut stream = Vec::new();
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    while stream.len() < 8 << 20 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        stream.extend_from_slice(&x.to_le_bytes());
    }
    let o = opts(65536, 2);
    let dir = Dir::open(mnt.path()).unwrap();
    let reserve_len = ImageWriter::reserve_for(stream.len() as u64, &o);
    let reserve = dir.create_file(OsStr::new("reserve")).unwrap();
    std::io::Write::write_all(&mut &reserve, &vec![0xAAu8; reserve_len as usize]).unwrap();
    reserve.sync_all().unwrap();
    let file = dir.create_file(OsStr::new("memory.lime.zst")).unwrap();
    let path = mnt.path().join("memory.lime.zst");
    let mut w = ImageWriter::new(file, path.clone(), o).unwrap();
    let (expect, err) = write_until_failure_then_zero_fill(&mut w, &stream, &mut || {
        dir.remove_file(OsStr::new("reserve")).unwrap();
    });
    assert!(err.is_no_space(), "{err}");
    let summary = w.finish().unwrap();
    let mut file = Vec::new();
    std::fs::File::open(&path)
        .unwrap()
        .read_to_end(&mut file)
        .unwrap();
    check_image(&file, &expect, &summary);
    assert!(summary.lime_len == stream.len() as u64);
}

#[test]
fn is_zero_finds_any_nonzero_byte() {
    let mut b = vec![0u8; 1000];
    assert!(pipeline::is_zero(&b));
    for i in [0, 255, 256, 511, 999] {
        b[i] = 1;
        assert!(!pipeline::is_zero(&b), "{i}");
        b[i] = 0;
    }
    assert!(pipeline::is_zero(&[]));
}

#[test]
fn fixed_level_is_reported_as_used() {
    let stream = sample(300_000, 21);
    let (mut w, _img) = new_writer(opts(65536, 2), MEM_ENTRIES);
    w.write(&stream).unwrap();
    let s = w.finish().unwrap();
    assert_eq!((s.level, s.level_min, s.level_max), (3, 3, 3));
}

/// A slow disk (each writeback wait 300 ms longer): the adaptive level
/// climbs, and frames of mixed levels still make one valid image.
#[test]
fn adaptive_level_rises_when_the_disk_is_the_bound() {
    let stream = sample(96 << 20, 13);
    let o = WriterOptions {
        level: ADAPTIVE_LEVEL,
        ..opts(65536, 2)
    };
    let (mut w, img) = new_writer(o, MEM_ENTRIES);
    w.shared.inject_sync_delay_ms.store(300, Ordering::SeqCst);
    w.write(&stream).unwrap();
    let s = w.finish().unwrap();
    assert_eq!(s.level, ADAPTIVE_LEVEL);
    assert_eq!(s.level_min, ADAPTIVE_MIN);
    assert!(
        s.level_max > ADAPTIVE_MIN,
        "level stayed at {}",
        s.level_max
    );
    assert!(s.level_max <= ADAPTIVE_MAX);
    let file = std::fs::read(&img.path).unwrap();
    check_image(&file, &stream, &s);
}

#[test]
fn memory_estimate_caps_threads_at_high_levels() {
    use super::{MEMORY_BUDGET, memory_estimate, threads_within};
    let at = |level, threads| WriterOptions {
        level,
        threads,
        frame_size: DEFAULT_FRAME_SIZE,
    };
    // The default level and the adaptive one keep 8 threads.
    assert_eq!(threads_within(&at(1, 8), MEMORY_BUDGET), 8);
    assert_eq!(threads_within(&at(ADAPTIVE_LEVEL, 8), MEMORY_BUDGET), 8);
    // Many CPUs at level 1: capped, but still more than 8.
    let many = threads_within(&at(1, 96), MEMORY_BUDGET);
    assert!((9..96).contains(&many), "{many}");
    // High levels: fewer threads, never none, and within the budget.
    for level in [9, 15, 19, 22] {
        let fit = threads_within(&at(level, 8), MEMORY_BUDGET);
        assert!((1..8).contains(&fit), "level {level}: {fit}");
        assert!(fit == 1 || memory_estimate(&at(level, fit)) <= MEMORY_BUDGET);
        assert!(memory_estimate(&at(level, fit + 1)) > MEMORY_BUDGET);
    }
    // The estimate grows with the level and the threads.
    assert!(memory_estimate(&at(19, 2)) > memory_estimate(&at(1, 2)));
    assert!(memory_estimate(&at(1, 9)) > memory_estimate(&at(1, 8)));
}
