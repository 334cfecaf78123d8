//! How to write the image ([`WriterOptions`]), the limits the options are
//! checked against, and what they cost: memory ([`memory_estimate`],
//! [`threads_within`]) and disk kept in reserve ([`reserve`]).

use std::io;

use super::entries::MEM_ENTRIES;
use super::error::WriterError;
use super::pipeline::{self, ZeroFrame};
use super::sys::context_size;
use crate::seektable::table_len;

/// Default uncompressed frame size (see the `writer` module docs for why).
pub const DEFAULT_FRAME_SIZE: u32 = 1 << 20;
/// Smallest frame size accepted.
pub const MIN_FRAME_SIZE: u32 = 4096;
/// Largest frame size accepted (memory in flight grows with it).
pub const MAX_FRAME_SIZE: u32 = 16 << 20;
/// Default zstd level (see `docs/performance.md` for the measurements).
pub const DEFAULT_LEVEL: i32 = 1;
/// The level that asks for an adaptive level: from [`ADAPTIVE_MIN`] up to
/// [`ADAPTIVE_MAX`] as long as the writer mostly waits for the disk (the
/// output volume is the bound and the CPU has time to spare), back down when
/// the CPU is the bound. (zstd itself reads level 0 as "pick the default".)
pub const ADAPTIVE_LEVEL: i32 = 0;
/// Lowest level the adaptive level uses.
pub const ADAPTIVE_MIN: i32 = 1;
/// Highest level the adaptive level uses: past 6, each step costs far more
/// CPU for little ratio, and zstd's tables for 1 MiB frames grow past what
/// the 64 MiB memory budget allows with 8 threads.
pub const ADAPTIVE_MAX: i32 = 6;
/// Most compression threads accepted.
pub const MAX_THREADS: usize = 256;
/// What the writer may allocate: `capture` promises a peak RSS under 64 MiB
/// whatever the RAM size, level or CPU count; 8 MiB are left for the rest
/// of the process.
pub const MEMORY_BUDGET: u64 = 56 << 20;

/// How to write the image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriterOptions {
    /// zstd level; [`ADAPTIVE_LEVEL`] (0) for an adaptive one.
    pub level: i32,
    /// Compression threads (at least 1).
    pub threads: usize,
    /// Uncompressed bytes per frame.
    pub frame_size: u32,
}

impl Default for WriterOptions {
    /// [`DEFAULT_LEVEL`], one thread per CPU, [`DEFAULT_FRAME_SIZE`].
    fn default() -> Self {
        Self {
            level: DEFAULT_LEVEL,
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            frame_size: DEFAULT_FRAME_SIZE,
        }
    }
}
/// The level frames start at.
pub(super) fn effective_level(level: i32) -> i32 {
    if level == ADAPTIVE_LEVEL {
        ADAPTIVE_MIN
    } else {
        level
    }
}

pub(super) fn check_options(opts: &WriterOptions) -> Result<(), WriterError> {
    let levels = zstd::compression_level_range();
    if !levels.contains(&opts.level) {
        return Err(WriterError::Option {
            what: "zstd level",
            value: i64::from(opts.level),
            range: format!("{}..={}", levels.start(), levels.end()),
        });
    }
    if opts.threads == 0 || opts.threads > MAX_THREADS {
        return Err(WriterError::Option {
            what: "threads",
            value: i64::try_from(opts.threads).unwrap_or(i64::MAX),
            range: format!("1..={MAX_THREADS}"),
        });
    }
    if !(MIN_FRAME_SIZE..=MAX_FRAME_SIZE).contains(&opts.frame_size) {
        return Err(WriterError::Option {
            what: "frame size",
            value: i64::from(opts.frame_size),
            range: format!("{MIN_FRAME_SIZE}..={MAX_FRAME_SIZE}"),
        });
    }
    Ok(())
}

/// What the writer allocates for `opts`, at most: the slots, and one zstd
/// context per worker at the highest level it may use (zstd's own estimate
/// for a frame-sized input).
pub fn memory_estimate(opts: &WriterOptions) -> u64 {
    let frame = u64::from(opts.frame_size);
    let slots = slot_count(opts.threads) as u64 * (frame + zstd_bound(frame));
    let level = if opts.level == ADAPTIVE_LEVEL {
        ADAPTIVE_MAX
    } else {
        opts.level
    };
    slots.saturating_add((opts.threads as u64).saturating_mul(context_size(level, frame)))
}

/// The most compression threads, up to `opts.threads` and at least one,
/// whose [`memory_estimate`] fits `budget`. High levels need far larger
/// zstd contexts (measured with 8 threads: 30 MiB at level 1, 106 MiB at
/// level 9, 160 MiB at level 19; estimated 28, 123 and 162 MiB), and a
/// machine with many CPUs would otherwise get a context and a slot per CPU.
/// The budget allows 18 threads at level 1 (more than the single SHA-256
/// stream of the LiME data keeps up with), 8 at level 6 (the adaptive
/// level's ceiling), 2 at level 9 and 1 from level 15.
pub fn threads_within(opts: &WriterOptions, budget: u64) -> usize {
    let mut fit = *opts;
    while fit.threads > 1 && memory_estimate(&fit) > budget {
        fit.threads -= 1;
    }
    fit.threads
}

/// Frames in flight: one being compressed per worker, one being filled by
/// the caller, one being written, and spares, at least 12 in all. The
/// spares let the caller (reading and hashing the stream) and the writer
/// (writing and hashing the image) run ahead of or behind the workers for a
/// while instead of waiting on each other: on a 2-CPU machine, 12 slots
/// instead of 6 took 3 % off the benchmark's wall time. Each is a frame's
/// raw bytes plus its compressed bound: 2 MiB at the default frame size, so
/// 8 threads (12 slots) stay well inside 64 MiB.
pub(super) fn slot_count(threads: usize) -> usize {
    (threads + 4).max(12)
}

/// zstd's worst-case compressed size for `n` input bytes.
pub(super) fn zstd_bound(n: u64) -> u64 {
    usize::try_from(n).map_or(u64::MAX, |n| zstd::zstd_safe::compress_bound(n) as u64)
}

/// Upper bound of a compressed all-zero frame of `frame_size` bytes: frame
/// header (at most 18), per 128 KiB block a header and at most one
/// sequence (16 bytes is generous), 4-byte checksum.
pub(super) fn zero_frame_bound(frame_size: u32) -> u64 {
    18 + u64::from(frame_size).div_ceil(128 << 10) * 16 + 4
}

pub(super) fn zero_frame(frame_size: u32, level: i32) -> io::Result<ZeroFrame> {
    let zeros = vec![0u8; frame_size as usize];
    let bytes = pipeline::new_compressor(level)?.compress(&zeros)?;
    let checksum = pipeline::frame_checksum(&bytes);
    Ok(ZeroFrame { bytes, checksum })
}

/// Bytes the seek table, its spill file and an all-zero tail may need for a
/// stream of `stream_len` bytes (see `ImageWriter::reserve_for`).
pub(super) fn reserve(stream_len: u64, opts: &WriterOptions) -> u64 {
    let frame_size = u64::from(opts.frame_size.max(1));
    let frames = stream_len.div_ceil(frame_size);
    let table = table_len(frames, true).unwrap_or(u64::MAX);
    // The spill file holds the same entries while the table is written.
    let spill = if frames > MEM_ENTRIES as u64 {
        frames.saturating_mul(12)
    } else {
        0
    };
    // The zero frame's exact size (compressing 1 MiB of zeros takes well
    // under a millisecond), or a generous bound if zstd refuses.
    let zero_len = zero_frame(opts.frame_size, effective_level(opts.level))
        .map_or(zero_frame_bound(opts.frame_size), |z| z.bytes.len() as u64);
    let zeros = frames.saturating_mul(zero_len);
    // One frame in flight per slot may have reached the disk partly when
    // the disk filled; and a little slack for the file system's metadata.
    let slack = slot_count(opts.threads) as u64 * zstd_bound(frame_size) + (1 << 20);
    table
        .saturating_add(spill)
        .saturating_add(zeros)
        .saturating_add(slack)
}
