//! The threads behind [`super::ImageWriter`].
//!
//! ```text
//!  caller ──Slot──▶ workers (N) ──Frame──▶ writer ──Slot──▶ pool ──▶ caller
//!  SHA-256 of       compress      (done)   in order: write, entries,
//!  the LiME stream                         SHA-256 of the image, flush
//! ```
//!
//! A fixed number of [`Slot`]s (raw buffer + compressed buffer) circulate;
//! the caller blocks when all are in flight, which bounds memory whatever the
//! input size. Each digest is taken where its bytes are still in the CPU's
//! cache: the LiME stream's by the caller as it fills a frame (with a saved
//! state at each frame start, so a recovery can roll it back to the frames
//! in the file), the image's by the writer right after each frame is
//! written, so after a write error it covers exactly what is in the file.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};

use super::entries::{Entries, EntriesError};
use super::sys::{SyncRange, sync_range, unsupported};
use crate::seektable::Entry;

/// Flush and drop the written image from the page cache in windows of this
/// size: small enough that little dirty evidence is held, large enough that
/// writeback runs in big sequential requests.
pub(super) const CACHE_WINDOW: u64 = 8 << 20;
/// Written data younger than this (two windows) is left to the disk to
/// finish before the writer waits for it: at most about three windows of
/// the image (24 MiB) are in the page cache at any time.
const WRITEBACK_LAG: u64 = 2 * CACHE_WINDOW;

/// One frame in flight.
#[derive(Debug)]
pub(super) struct Slot {
    /// Frame number in the image.
    pub index: u64,
    /// Room for a frame of uncompressed bytes (the LiME stream), allocated
    /// once, so a source can read straight into it.
    pub raw: Box<[u8]>,
    /// How much of `raw` holds the frame.
    pub len: usize,
    /// The compressed frame (unused when `zero`).
    pub comp: Vec<u8>,
    /// The frame is all zeros and full size: the shared zero frame is written.
    pub zero: bool,
    /// Compression failed.
    pub error: Option<io::Error>,
    /// The zstd level the frame was compressed at (not for zero frames).
    pub level: Option<i32>,
    /// Set by the writer: the frame is in the file (and so is every frame
    /// before it).
    pub written: bool,
}

impl Slot {
    pub(super) fn new(frame_size: usize) -> Self {
        Self {
            index: 0,
            raw: vec![0; frame_size].into_boxed_slice(),
            len: 0,
            comp: Vec::with_capacity(zstd::zstd_safe::compress_bound(frame_size)),
            zero: false,
            error: None,
            level: None,
            written: false,
        }
    }
}

/// A precompressed all-zero frame of `frame_size` bytes.
#[derive(Debug)]
pub(super) struct ZeroFrame {
    pub bytes: Vec<u8>,
    pub checksum: u32,
}

/// Messages to the writer thread.
#[derive(Debug)]
pub(super) enum ToWriter {
    Frame(Slot),
    /// Once `frames` frames have been handled: truncate to what was written,
    /// make it durable, reply, carry on.
    Recover {
        frames: u64,
        reply: Sender<Result<Recovered, WriteFailure>>,
    },
}

/// What `Recover` found.
#[derive(Debug, Clone, Copy)]
pub(super) struct Recovered {
    /// Frames in the file.
    pub frames: u64,
}

/// Why the writer thread stopped writing.
#[derive(Debug)]
pub(super) enum WriteFailure {
    /// Writing a frame failed (e.g. `ENOSPC`): recoverable.
    Write { frame: u64, source: io::Error },
    /// A frame could not be compressed: recoverable (the frame is dropped).
    Compress { frame: u64, source: io::Error },
    /// Recording a seek-table entry failed: recoverable.
    Entries(EntriesError),
    /// Written data failed to reach the disk (`EIO` on writeback): what is
    /// in the file can no longer be trusted to be on disk; not recoverable.
    Writeback { offset: u64, source: io::Error },
    /// Truncating or syncing during recovery failed.
    Recover { op: &'static str, source: io::Error },
}

impl WriteFailure {
    /// A copy for the caller (`io::Error` is not `Clone`; the OS error code
    /// or the kind and message carry over).
    pub(super) fn duplicate(&self) -> Self {
        match self {
            Self::Write { frame, source } => Self::Write {
                frame: *frame,
                source: dup(source),
            },
            Self::Compress { frame, source } => Self::Compress {
                frame: *frame,
                source: dup(source),
            },
            Self::Entries(e) => Self::Recover {
                op: "seek-table entries",
                source: match e.raw_os_error() {
                    Some(code) => io::Error::from_raw_os_error(code),
                    None => io::Error::other(e.to_string()),
                },
            },
            Self::Writeback { offset, source } => Self::Writeback {
                offset: *offset,
                source: dup(source),
            },
            Self::Recover { op, source } => Self::Recover {
                op,
                source: dup(source),
            },
        }
    }

    fn recoverable(&self) -> bool {
        matches!(
            self,
            Self::Write { .. } | Self::Compress { .. } | Self::Entries(_)
        )
    }
}

fn dup(e: &io::Error) -> io::Error {
    match e.raw_os_error() {
        Some(code) => io::Error::from_raw_os_error(code),
        None => io::Error::new(e.kind(), e.to_string()),
    }
}

/// State shared between the caller and the writer thread.
#[derive(Debug)]
pub(super) struct Shared {
    /// Set by the writer thread on a failure; the caller checks it on every
    /// `write()`.
    pub failed: AtomicBool,
    /// The failure, taken by the caller to report it.
    pub failure: Mutex<Option<WriteFailure>>,
    /// Compression level the workers use for the next frame.
    pub level: AtomicI32,
    /// Tests: image bytes past this offset fail to write with `ENOSPC`.
    #[cfg(test)]
    pub inject_enospc_at: std::sync::atomic::AtomicU64,
    /// Tests: a slow disk; each wait for a window's writeback takes this
    /// many milliseconds more.
    #[cfg(test)]
    pub inject_sync_delay_ms: std::sync::atomic::AtomicU64,
}

impl Shared {
    pub(super) fn new(level: i32) -> Self {
        Self {
            failed: AtomicBool::new(false),
            failure: Mutex::new(None),
            level: AtomicI32::new(level),
            #[cfg(test)]
            inject_enospc_at: std::sync::atomic::AtomicU64::new(u64::MAX),
            #[cfg(test)]
            inject_sync_delay_ms: std::sync::atomic::AtomicU64::new(0),
        }
    }
}

/// Compression worker: takes slots, compresses (or spots zero frames), passes
/// them on to the writer.
pub(super) fn worker(
    jobs: Arc<Mutex<Receiver<Slot>>>,
    done: Sender<ToWriter>,
    shared: Arc<Shared>,
    frame_size: usize,
) {
    let mut level = shared.level.load(Ordering::Relaxed);
    let mut compressor = new_compressor(level);
    loop {
        let job = match jobs.lock() {
            Ok(rx) => rx.recv(),
            Err(_) => return,
        };
        let Ok(mut slot) = job else { return };
        let data = slot.raw.get(..slot.len).unwrap_or(&slot.raw);
        slot.zero = slot.len == frame_size && is_zero(data);
        slot.error = None;
        slot.level = None;
        if !slot.zero {
            let want = shared.level.load(Ordering::Relaxed);
            if want != level {
                level = want;
                compressor = match compressor {
                    Ok(mut c) => c.set_compression_level(level).map(|()| c),
                    Err(_) => new_compressor(level),
                };
            }
            slot.level = Some(level);
            let result = match &mut compressor {
                Ok(c) => c.compress_to_buffer(data, &mut slot.comp),
                Err(e) => Err(io::Error::new(e.kind(), e.to_string())),
            };
            if let Err(e) = result {
                slot.comp.clear();
                slot.error = Some(e);
            }
        }
        if done.send(ToWriter::Frame(slot)).is_err() {
            return;
        }
    }
}

/// A frame compressor: zstd content checksum on (the seek table copies it),
/// content size on (readers can size buffers), no dictionary ID.
pub(super) fn new_compressor(level: i32) -> io::Result<zstd::bulk::Compressor<'static>> {
    let mut c = zstd::bulk::Compressor::new(level)?;
    c.include_checksum(true)?;
    c.include_contentsize(true)?;
    c.include_dictid(false)?;
    Ok(c)
}

/// Whether `b` is all zero bytes. Checks 256-byte blocks with a branch-free
/// OR so the compiler vectorizes it; stops at the first non-zero block.
pub(super) fn is_zero(b: &[u8]) -> bool {
    let mut blocks = b.chunks_exact(256);
    for block in &mut blocks {
        if block.iter().fold(0u8, |acc, &x| acc | x) != 0 {
            return false;
        }
    }
    blocks.remainder().iter().all(|&x| x == 0)
}

/// The last four bytes of a frame with a content checksum.
pub(super) fn frame_checksum(frame: &[u8]) -> u32 {
    let mut c = [0u8; 4];
    if let Some(tail) = frame.len().checked_sub(4).and_then(|at| frame.get(at..)) {
        c.copy_from_slice(tail);
    }
    u32::from_le_bytes(c)
}

/// What the writer thread hands back when its input ends.
#[derive(Debug)]
pub(super) struct WriterEnd {
    pub entries: Entries,
    /// SHA-256 of the frames written.
    pub sha: Sha256,
    pub frames: u64,
    pub len: u64,
    pub failure: Option<WriteFailure>,
    pub levels: Option<(i32, i32)>,
}

/// The ordered writer: puts frames in index order, writes them, records
/// their entries, hashes them, flushes and drops written data from the page
/// cache, and returns each slot to the pool.
pub(super) struct OrderedWriter {
    pub file: Arc<File>,
    pub entries: Entries,
    pub zero: Arc<ZeroFrame>,
    pub shared: Arc<Shared>,
    pub pool: Sender<Slot>,
    /// SHA-256 of the image so far (the frames written).
    pub sha: Sha256,
    /// Page-cache management off (file system does not support it).
    pub no_sync_range: bool,
    /// Adaptive level: the range to move in, and its measurements.
    pub adapt: Option<Adapt>,
    /// Lowest and highest level of the frames written.
    pub levels: Option<(i32, i32)>,
}

/// The adaptive level's controller. The writer measures how long it waits
/// for the disk (writeback of the previous window) per period: mostly
/// waiting means the output volume is the bound and the CPU has time to
/// spare, so the level goes up (fewer bytes to write); hardly waiting means
/// the CPU is the bound, so it comes down. It settles where both are busy.
#[derive(Debug)]
pub(super) struct Adapt {
    pub min: i32,
    pub max: i32,
    pub waited: std::time::Duration,
    pub since: std::time::Instant,
    pub frames: u64,
}

/// Frames and time per adaptive-level decision.
const ADAPT_FRAMES: u64 = 32;
const ADAPT_PERIOD: std::time::Duration = std::time::Duration::from_millis(250);
/// Waiting for the disk more than this share of the time: level up.
const ADAPT_UP: f64 = 0.5;
/// Less than this: level down.
const ADAPT_DOWN: f64 = 0.1;

impl Adapt {
    pub(super) fn new(min: i32, max: i32) -> Self {
        Self {
            min,
            max,
            waited: std::time::Duration::ZERO,
            since: std::time::Instant::now(),
            frames: 0,
        }
    }

    /// After each frame written: every period, the new level, if it changes.
    fn decide(&mut self, current: i32) -> Option<i32> {
        self.frames += 1;
        let elapsed = self.since.elapsed();
        if self.frames < ADAPT_FRAMES || elapsed < ADAPT_PERIOD {
            return None;
        }
        let share = self.waited.as_secs_f64() / elapsed.as_secs_f64();
        self.frames = 0;
        self.waited = std::time::Duration::ZERO;
        self.since = std::time::Instant::now();
        if share > ADAPT_UP && current < self.max {
            Some(current + 1)
        } else if share < ADAPT_DOWN && current > self.min {
            Some(current - 1)
        } else {
            None
        }
    }
}

impl OrderedWriter {
    pub(super) fn run(mut self, input: Receiver<ToWriter>) -> WriterEnd {
        let mut next = 0u64;
        let mut len = 0u64;
        // Start of the window whose writeback was started but not waited for.
        let mut started = 0u64;
        // Everything before this is on disk and dropped from the cache.
        let mut dropped = 0u64;
        let mut failure: Option<WriteFailure> = None;
        let mut pending: BTreeMap<u64, Slot> = BTreeMap::new();
        let mut recover: Option<(u64, Sender<Result<Recovered, WriteFailure>>)> = None;

        loop {
            // Drain the frames that are next in order.
            while let Some(mut slot) = pending.remove(&next) {
                next += 1;
                if failure.is_some() {
                    let _ = self.pool.send(slot);
                    continue;
                }
                match self.write_frame(&slot, len) {
                    Ok(n) => {
                        len += n;
                        self.note_level(slot.level);
                        slot.written = true;
                        // The caller may be gone (finish() after its last
                        // frame): fine.
                        let _ = self.pool.send(slot);
                        if !self.no_sync_range && len - started >= CACHE_WINDOW {
                            if let Err(f) = self.flush_window(&mut started, &mut dropped, len) {
                                self.fail(f, &mut failure);
                            }
                        }
                    }
                    Err(f) => {
                        // A write may have left part of this frame behind;
                        // recovery cuts it off. The failure is flagged
                        // before the slot goes back, so the caller stops
                        // filling frames at once.
                        self.fail(f, &mut failure);
                        let _ = self.pool.send(slot);
                    }
                }
            }
            if let Some((frames, _)) = &recover {
                if *frames <= next {
                    if let Some((_, reply)) = recover.take() {
                        let written = self.entries.len();
                        let result = self.recover(&mut failure, written, len);
                        if result.is_ok() {
                            next = written;
                            started = started.min(len);
                            dropped = dropped.min(len);
                        }
                        let _ = reply.send(result);
                    }
                }
            }
            match input.recv() {
                Ok(ToWriter::Frame(slot)) => {
                    pending.insert(slot.index, slot);
                }
                Ok(ToWriter::Recover { frames, reply }) => recover = Some((frames, reply)),
                Err(_) => break,
            }
        }
        // Every sender is gone: any slot still pending is a frame whose
        // predecessors never came (a worker died); not written.
        let frames = self.entries.len();
        self.end(frames, len, failure)
    }

    /// Records a failure: kept here to decide recovery, a copy for the caller.
    fn fail(&self, f: WriteFailure, failure: &mut Option<WriteFailure>) {
        if let Ok(mut shared) = self.shared.failure.lock() {
            if shared.is_none() {
                *shared = Some(f.duplicate());
            }
        }
        self.shared.failed.store(true, Ordering::Release);
        *failure = Some(f);
    }

    fn end(self, frames: u64, len: u64, failure: Option<WriteFailure>) -> WriterEnd {
        WriterEnd {
            entries: self.entries,
            sha: self.sha,
            frames,
            len,
            failure,
            levels: self.levels,
        }
    }

    /// Records a written frame's level and lets the controller move it.
    fn note_level(&mut self, level: Option<i32>) {
        if let Some(l) = level {
            self.levels = Some(match self.levels {
                Some((lo, hi)) => (lo.min(l), hi.max(l)),
                None => (l, l),
            });
        }
        if let Some(adapt) = &mut self.adapt {
            let current = self.shared.level.load(Ordering::Relaxed);
            if let Some(next) = adapt.decide(current) {
                self.shared.level.store(next, Ordering::Relaxed);
            }
        }
    }

    /// Writes one frame; returns its compressed length.
    fn write_frame(&mut self, slot: &Slot, at: u64) -> Result<u64, WriteFailure> {
        if let Some(e) = &slot.error {
            return Err(WriteFailure::Compress {
                frame: slot.index,
                source: io::Error::new(e.kind(), e.to_string()),
            });
        }
        let (bytes, checksum): (&[u8], u32) = if slot.zero {
            (&self.zero.bytes, self.zero.checksum)
        } else {
            (&slot.comp, frame_checksum(&slot.comp))
        };
        let (Ok(compressed), Ok(decompressed)) =
            (u32::try_from(bytes.len()), u32::try_from(slot.len))
        else {
            return Err(WriteFailure::Compress {
                frame: slot.index,
                source: io::Error::other("frame larger than the seek table's u32 sizes"),
            });
        };
        // Positional writes: after a recovery truncated the file, the next
        // frame goes exactly at its end, whatever the file offset says.
        #[cfg(test)]
        {
            let limit = self.shared.inject_enospc_at.load(Ordering::SeqCst);
            if at + bytes.len() as u64 > limit {
                let room = usize::try_from(limit.saturating_sub(at)).unwrap_or(0);
                let _ = self.file.write_all_at(&bytes[..room.min(bytes.len())], at);
                return Err(WriteFailure::Write {
                    frame: slot.index,
                    source: io::Error::from_raw_os_error(libc::ENOSPC),
                });
            }
        }
        self.file
            .write_all_at(bytes, at)
            .map_err(|source| WriteFailure::Write {
                frame: slot.index,
                source,
            })?;
        self.entries
            .push(Entry {
                compressed,
                decompressed,
                checksum: Some(checksum),
            })
            .map_err(WriteFailure::Entries)?;
        // Only frames that count (written and recorded) are hashed: a
        // recovery cuts the file back to exactly these.
        self.sha.update(bytes);
        Ok(u64::from(compressed))
    }

    /// Starts writeback of the window just filled, then waits for what was
    /// started more than [`WRITEBACK_LAG`] bytes ago to reach the disk and
    /// drops it from the page cache. The lag lets the disk work on a few
    /// windows while the CPUs go on, instead of the writer stalling on the
    /// one it just started.
    fn flush_window(
        &mut self,
        started: &mut u64,
        dropped: &mut u64,
        len: u64,
    ) -> Result<(), WriteFailure> {
        match sync_range(&self.file, *started, len - *started, SyncRange::Start) {
            Ok(()) => *started = len,
            Err(e) if unsupported(&e) => {
                self.no_sync_range = true;
                return Ok(());
            }
            Err(source) => {
                return Err(WriteFailure::Writeback {
                    offset: *started,
                    source,
                });
            }
        }
        let upto = started.saturating_sub(WRITEBACK_LAG);
        if upto <= *dropped {
            return Ok(());
        }
        let t0 = std::time::Instant::now();
        let waited = sync_range(&self.file, *dropped, upto - *dropped, SyncRange::Wait);
        #[cfg(test)]
        std::thread::sleep(std::time::Duration::from_millis(
            self.shared.inject_sync_delay_ms.load(Ordering::Relaxed),
        ));
        if let Some(adapt) = &mut self.adapt {
            adapt.waited += t0.elapsed();
        }
        match waited {
            Ok(()) => {
                fv_core::fs::drop_cached(&*self.file, *dropped, upto - *dropped);
                *dropped = upto;
                Ok(())
            }
            Err(e) if unsupported(&e) => {
                self.no_sync_range = true;
                Ok(())
            }
            Err(source) => Err(WriteFailure::Writeback {
                offset: *dropped,
                source,
            }),
        }
    }

    /// Cuts the file back to the frames written completely, makes that
    /// durable and clears a recoverable failure. A failure that cannot be
    /// recovered from stays: nothing more is written.
    fn recover(
        &mut self,
        failure: &mut Option<WriteFailure>,
        frames: u64,
        len: u64,
    ) -> Result<Recovered, WriteFailure> {
        if let Some(f) = failure.take() {
            if !f.recoverable() {
                let report = f.duplicate();
                *failure = Some(f);
                return Err(report);
            }
        }
        let result = self.cut(frames, len);
        match result {
            Ok(()) => {
                if let Ok(mut shared) = self.shared.failure.lock() {
                    *shared = None;
                }
                self.shared.failed.store(false, Ordering::Release);
                Ok(Recovered { frames })
            }
            Err(f) => {
                let report = f.duplicate();
                self.fail(f, failure);
                Err(report)
            }
        }
    }

    fn cut(&mut self, frames: u64, len: u64) -> Result<(), WriteFailure> {
        self.file
            .set_len(len)
            .map_err(|source| WriteFailure::Recover {
                op: "truncate",
                source,
            })?;
        self.entries
            .truncate(frames)
            .map_err(WriteFailure::Entries)?;
        self.file
            .sync_data()
            .map_err(|source| WriteFailure::Recover {
                op: "fsync",
                source,
            })
    }
}

/// A writer that hashes and counts what passes through (the seek table).
pub(super) struct HashingWriter<'a, W: Write> {
    pub inner: W,
    pub sha: &'a mut Sha256,
    pub len: u64,
}

impl<W: Write> Write for HashingWriter<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.sha.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}
