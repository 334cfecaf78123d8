//! The evidence image writer: a LiME stream in, a seekable zstd file out,
//! with SHA-256 digests of both.
//!
//! The stream is cut into frames of a fixed uncompressed size
//! ([`DEFAULT_FRAME_SIZE`], 1 MiB). Each becomes an independent standard
//! zstd frame with a content checksum, whose last four bytes are also the
//! frame's seek-table checksum; the seek table ([`crate::seektable`]) follows
//! the last frame. `zstd -d` therefore yields exactly the LiME stream, and a
//! reader can decompress any frame alone.
//!
//! Why 1 MiB frames: a `--range` read decompresses at most two frames
//! (about a millisecond each), while zstd's fast levels use windows of
//! 512 KiB-1 MiB anyway, so larger frames would gain almost no ratio. The
//! seek table stays 12 bytes per MiB (300 MiB for 24 TiB of RAM, inside the
//! format's u32 limits), and memory in flight stays small (two buffers of a
//! frame per slot).
//!
//! Work is spread over threads (see `pipeline.rs`): `threads` compression
//! workers and an ordered writer that hashes each frame it writes, flushes
//! the written data to disk and drops it from the page cache as it goes
//! (`sync_file_range` + `posix_fadvise(DONTNEED)`, so the image does not
//! flood the suspect's page cache). The LiME stream is hashed as it comes
//! in, while it is still in the CPU's cache; the state saved at each frame
//! start lets a recovery roll the digest back, so the digests always
//! describe what is in the file. A fixed
//! number of frame buffers circulate, so memory does not depend on the input
//! size; seek-table entries beyond 64 Ki frames are spilled to an anonymous
//! file next to the output (see `entries.rs`).
//!
//! All-zero frames, common in memory images and the whole of the zero-fill
//! tail after [`ImageWriter::recover`], are not compressed: one precompressed
//! zero frame is written instead.
//!
//! The level is fixed ([`DEFAULT_LEVEL`], 1) unless [`ADAPTIVE_LEVEL`] (0)
//! asks the writer to raise it while it mostly waits for the disk and lower
//! it when the CPUs are the bound. Measurements and reasons:
//! `docs/performance.md`.

mod entries;
mod pipeline;
mod sys;

use std::collections::VecDeque;
use std::ffi::OsString;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use fv_core::fs::{Dir, FsError};
use sha2::{Digest, Sha256};

pub use entries::EntriesError;
use entries::{Entries, MEM_ENTRIES};
use pipeline::{
    HashingWriter, OrderedWriter, Shared, Slot, ToWriter, WriteFailure, WriterEnd, ZeroFrame,
};

use crate::seektable::{TableWriteError, TableWriter, table_len};

/// Default uncompressed frame size (see the module docs for why).
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

/// What a finished image is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageSummary {
    /// Bytes of LiME stream (decompressed size).
    pub lime_len: u64,
    /// SHA-256 of the LiME stream.
    pub lime_sha256: [u8; 32],
    /// Bytes of the compressed file, seek table included.
    pub zst_len: u64,
    /// SHA-256 of the compressed file.
    pub zst_sha256: [u8; 32],
    /// Number of zstd frames (seek-table entries).
    pub frames: u64,
    /// Uncompressed bytes per frame (the last may be shorter).
    pub frame_size: u32,
    /// zstd level asked for ([`ADAPTIVE_LEVEL`]: adaptive).
    pub level: i32,
    /// Lowest zstd level of any compressed frame (all-zero frames aside;
    /// equals `level` for a fixed level).
    pub level_min: i32,
    /// Highest zstd level of any compressed frame.
    pub level_max: i32,
    /// Compression threads used.
    pub threads: usize,
}

/// Why writing the image failed.
#[derive(Debug, thiserror::Error)]
pub enum WriterError {
    /// An option is out of range.
    #[error("image writer: {what} {value} is out of range ({range})")]
    Option {
        /// Which option.
        what: &'static str,
        /// The value given.
        value: i64,
        /// What is accepted.
        range: String,
    },
    /// The output's directory could not be opened (for the spill file).
    #[error("{path}: opening the image's directory: {source}")]
    Dir {
        /// The output path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: FsError,
    },
    /// Starting a thread failed.
    #[error("starting image writer thread: {0}")]
    Spawn(#[source] io::Error),
    /// zstd refused the level or failed to compress.
    #[error("{path}: zstd compression (level {level}) of frame {frame}: {source}")]
    Compress {
        /// The output path.
        path: PathBuf,
        /// The level.
        level: i32,
        /// Frame number.
        frame: u64,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// Writing a frame failed (`ENOSPC`, `EIO`, ...). Recoverable with
    /// [`ImageWriter::recover`].
    #[error("{path}: writing frame {frame}: {source}")]
    Write {
        /// The output path.
        path: PathBuf,
        /// Frame number.
        frame: u64,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// Written data failed to reach the disk: not recoverable.
    #[error("{path}: writeback failed at byte {offset}: {source}")]
    Writeback {
        /// The output path.
        path: PathBuf,
        /// Start of the range that failed.
        offset: u64,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The seek-table entry store failed.
    #[error("{path}: {source}")]
    Entries {
        /// The output path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: EntriesError,
    },
    /// Truncating, syncing or finishing the file failed.
    #[error("{path}: {op}: {source}")]
    Io {
        /// The output path.
        path: PathBuf,
        /// What was being done.
        op: &'static str,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// Writing the seek table failed.
    #[error("{path}: writing the seek table: {source}")]
    Table {
        /// The output path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: TableWriteError,
    },
    /// An earlier error was reported and [`ImageWriter::recover`] has not
    /// been called since.
    #[error("{path}: image writer stopped after an earlier error; recover() first")]
    NotRecovered {
        /// The output path.
        path: PathBuf,
    },
    /// A pipeline thread ended unexpectedly (a bug).
    #[error("{path}: image writer pipeline stopped unexpectedly ({what})")]
    Pipeline {
        /// The output path.
        path: PathBuf,
        /// Which part.
        what: &'static str,
    },
}

impl WriterError {
    /// The OS error number behind this error, if any (`ENOSPC` is the one a
    /// caller recovers from).
    pub fn raw_os_error(&self) -> Option<i32> {
        match self {
            Self::Dir { source, .. } => source.raw_os_error(),
            Self::Spawn(e)
            | Self::Compress { source: e, .. }
            | Self::Write { source: e, .. }
            | Self::Writeback { source: e, .. }
            | Self::Io { source: e, .. } => e.raw_os_error(),
            Self::Entries { source, .. } => source.raw_os_error(),
            Self::Table {
                source: TableWriteError::Io(e),
                ..
            } => e.raw_os_error(),
            Self::Option { .. }
            | Self::Table { .. }
            | Self::NotRecovered { .. }
            | Self::Pipeline { .. } => None,
        }
    }

    /// Whether the output file system is full.
    pub fn is_no_space(&self) -> bool {
        matches!(self.raw_os_error(), Some(libc::ENOSPC | libc::EDQUOT))
    }

    fn from_failure(path: &Path, level: i32, f: WriteFailure) -> Self {
        let path = path.to_path_buf();
        match f {
            WriteFailure::Write { frame, source } => Self::Write {
                path,
                frame,
                source,
            },
            WriteFailure::Compress { frame, source } => Self::Compress {
                path,
                level,
                frame,
                source,
            },
            WriteFailure::Entries(source) => Self::Entries { path, source },
            WriteFailure::Writeback { offset, source } => Self::Writeback {
                path,
                offset,
                source,
            },
            WriteFailure::Recover { op, source } => Self::Io { path, op, source },
        }
    }
}

/// The running pipeline's handles.
#[derive(Debug)]
struct Pipeline {
    jobs: Sender<Slot>,
    to_writer: Sender<ToWriter>,
    pool: Receiver<Slot>,
    workers: Vec<JoinHandle<()>>,
    writer: JoinHandle<WriterEnd>,
}

/// Writes a LiME stream as a seekable zstd image (see the module docs).
#[derive(Debug)]
pub struct ImageWriter {
    path: PathBuf,
    file: Arc<File>,
    opts: WriterOptions,
    shared: Arc<Shared>,
    pipeline: Pipeline,
    /// The frame being filled.
    current: Option<Slot>,
    /// SHA-256 of the LiME stream accepted so far.
    lime_sha: Sha256,
    /// The LiME digest's state at the start of each recent frame (frame
    /// number, state), oldest first: enough to go back past every frame in
    /// flight when a recovery cuts the image short.
    marks: VecDeque<(u64, Sha256)>,
    /// Frames handed to the workers.
    dispatched: u64,
    /// LiME bytes accepted.
    offset: u64,
}

impl ImageWriter {
    /// Starts the pipeline writing to `file` (new and empty, created by the
    /// caller with [`Dir::create_file`]); `path` names it in messages and
    /// places the seek-table spill file, if one is ever needed, beside it.
    ///
    /// # Errors
    /// [`WriterError::Option`] for an out-of-range option, [`WriterError::Dir`]
    /// if the directory of `path` cannot be opened safely,
    /// [`WriterError::Compress`] if zstd refuses the level, or
    /// [`WriterError::Spawn`].
    pub fn new(file: File, path: PathBuf, opts: WriterOptions) -> Result<Self, WriterError> {
        Self::with_entry_cap(file, path, opts, MEM_ENTRIES)
    }

    fn with_entry_cap(
        file: File,
        path: PathBuf,
        opts: WriterOptions,
        entry_cap: usize,
    ) -> Result<Self, WriterError> {
        check_options(&opts)?;
        let frame_size = opts.frame_size as usize;
        let zero = Arc::new(
            zero_frame(opts.frame_size, effective_level(opts.level)).map_err(|source| {
                WriterError::Compress {
                    path: path.clone(),
                    level: opts.level,
                    frame: 0,
                    source,
                }
            })?,
        );

        let parent = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let dir = Dir::open(parent).map_err(|source| WriterError::Dir {
            path: path.clone(),
            source,
        })?;
        let mut spill_name = OsString::from(".");
        spill_name.push(path.file_name().unwrap_or_else(|| "image".as_ref()));
        spill_name.push(format!(".seek-entries.{}", std::process::id()));
        let entries = Entries::new(dir, spill_name, entry_cap);

        let adaptive = opts.level == ADAPTIVE_LEVEL;
        let start_level = if adaptive { ADAPTIVE_MIN } else { opts.level };
        let shared = Arc::new(Shared::new(start_level));
        let file = Arc::new(file);

        let slots = slot_count(opts.threads);
        let (pool_tx, pool) = mpsc::channel();
        for _ in 0..slots {
            // The receiver is ours and alive.
            let _ = pool_tx.send(Slot::new(frame_size));
        }
        let (jobs, jobs_rx) = mpsc::channel::<Slot>();
        let jobs_rx = Arc::new(Mutex::new(jobs_rx));
        let (to_writer, writer_rx) = mpsc::channel::<ToWriter>();

        let spawn = |name: &str| std::thread::Builder::new().name(name.to_string());
        let mut workers = Vec::with_capacity(opts.threads);
        for i in 0..opts.threads {
            let (jobs_rx, done, shared) = (jobs_rx.clone(), to_writer.clone(), shared.clone());
            let handle = spawn(&format!("fv-zstd-{i}"))
                .spawn(move || pipeline::worker(jobs_rx, done, shared, frame_size))
                .map_err(WriterError::Spawn)?;
            workers.push(handle);
        }
        let ordered = OrderedWriter {
            file: file.clone(),
            entries,
            zero,
            shared: shared.clone(),
            pool: pool_tx,
            sha: Sha256::new(),
            no_sync_range: false,
            adapt: adaptive.then(|| pipeline::Adapt::new(ADAPTIVE_MIN, ADAPTIVE_MAX)),
            levels: None,
        };
        let writer = spawn("fv-writer")
            .spawn(move || ordered.run(writer_rx))
            .map_err(WriterError::Spawn)?;

        Ok(Self {
            path,
            file,
            opts,
            shared,
            pipeline: Pipeline {
                jobs,
                to_writer,
                pool,
                workers,
                writer,
            },
            current: None,
            lime_sha: Sha256::new(),
            marks: VecDeque::from([(0, Sha256::new())]),
            dispatched: 0,
            offset: 0,
        })
    }

    /// Appends LiME-stream bytes (headers and payloads, in order).
    ///
    /// # Errors
    /// A write error of an earlier frame (e.g. `ENOSPC`,
    /// [`WriterError::is_no_space`]) is reported by the next call after it
    /// happened; then [`WriterError::NotRecovered`] until
    /// [`ImageWriter::recover`].
    pub fn write(&mut self, mut bytes: &[u8]) -> Result<(), WriterError> {
        while !bytes.is_empty() {
            let n = self.write_with(bytes.len(), |room| {
                let n = room.len().min(bytes.len());
                room[..n].copy_from_slice(&bytes[..n]);
                n
            })?;
            bytes = &bytes[n..];
        }
        Ok(())
    }

    /// Appends up to `max` LiME-stream bytes that `fill` writes straight
    /// into the frame being filled (saving the copy [`ImageWriter::write`]
    /// makes); `fill` gets at most `max` bytes of room (less at the end of a
    /// frame) and returns how many it wrote. Returns that count.
    ///
    /// # Errors
    /// As [`ImageWriter::write`].
    pub fn write_with(
        &mut self,
        max: usize,
        fill: impl FnOnce(&mut [u8]) -> usize,
    ) -> Result<usize, WriterError> {
        self.check_failed()?;
        let mut slot = match self.current.take() {
            Some(slot) => slot,
            None => self.take_slot()?,
        };
        let room = (self.opts.frame_size as usize - slot.len).min(max);
        let n = match slot.raw.get_mut(slot.len..slot.len + room) {
            Some(room) => {
                let n = fill(room).min(room.len());
                // Hashed right away, while the bytes are in the CPU's cache.
                self.lime_sha.update(&room[..n]);
                n
            }
            None => 0,
        };
        slot.len += n;
        self.offset += n as u64;
        if slot.len == self.opts.frame_size as usize {
            self.dispatch(slot)?;
        } else {
            self.current = Some(slot);
        }
        Ok(n)
    }

    /// LiME-stream bytes accepted so far.
    pub fn stream_offset(&self) -> u64 {
        self.offset
    }

    /// The options in use.
    pub fn options(&self) -> &WriterOptions {
        &self.opts
    }

    /// After an error: waits for the frames in flight, truncates the file to
    /// the last frame that was completely written, makes it durable, and
    /// returns the LiME-stream offset to resume from (a multiple of the frame
    /// size). The digests then cover exactly the stream up to that offset;
    /// the caller feeds the rest of the stream from there (e.g. record
    /// headers with zero payloads, which cost almost nothing here), so a
    /// partial image is still a complete LiME stream. Without an earlier
    /// error it changes nothing and returns [`ImageWriter::stream_offset`].
    ///
    /// # Errors
    /// [`WriterError::Writeback`] (data already written did not reach the
    /// disk), or a truncate/fsync failure: the image cannot be completed.
    pub fn recover(&mut self) -> Result<u64, WriterError> {
        if !self.shared.failed.load(Ordering::Acquire) {
            return Ok(self.offset);
        }
        // The frame being filled was never handed over: drop its bytes (its
        // mark, taken when it was started, rolls the digest back).
        if let Some(mut slot) = self.current.take() {
            slot.len = 0;
            self.current = Some(slot);
        }
        let (reply, answer) = mpsc::channel();
        self.pipeline
            .to_writer
            .send(ToWriter::Recover {
                frames: self.dispatched,
                reply,
            })
            .map_err(|_| self.pipeline_gone("writer"))?;
        let recovered = answer
            .recv()
            .map_err(|_| self.pipeline_gone("writer"))?
            .map_err(|f| WriterError::from_failure(&self.path, self.opts.level, f))?;
        // The digest as it was when the first frame not in the file started.
        while self
            .marks
            .back()
            .is_some_and(|(frame, _)| *frame > recovered.frames)
        {
            self.marks.pop_back();
        }
        match self.marks.back() {
            Some((frame, state)) if *frame == recovered.frames => self.lime_sha = state.clone(),
            _ => return Err(self.pipeline_gone("LiME digest state of the recovered frame")),
        }
        self.dispatched = recovered.frames;
        self.offset = recovered.frames * u64::from(self.opts.frame_size);
        Ok(self.offset)
    }

    /// Flushes the pipeline, writes the seek table, fsyncs the file and drops
    /// it from the page cache; returns the summary.
    ///
    /// # Errors
    /// Any write error not yet recovered, or a failure writing the table or
    /// syncing.
    pub fn finish(mut self) -> Result<ImageSummary, WriterError> {
        self.check_failed()?;
        if let Some(slot) = self.current.take() {
            if slot.len > 0 {
                self.dispatch(slot)?;
            }
        }
        let Self {
            path,
            file,
            opts,
            shared: _,
            pipeline,
            current: _,
            lime_sha,
            marks: _,
            dispatched,
            offset,
        } = self;
        let Pipeline {
            jobs,
            to_writer,
            pool,
            workers,
            writer,
        } = pipeline;
        let gone = |what| WriterError::Pipeline {
            path: path.clone(),
            what,
        };
        drop(jobs);
        drop(to_writer);
        for w in workers {
            w.join().map_err(|_| gone("compression worker"))?;
        }
        let mut end = writer.join().map_err(|_| gone("writer"))?;
        drop(pool);
        if let Some(f) = end.failure {
            return Err(WriterError::from_failure(&path, opts.level, f));
        }
        if end.frames != dispatched {
            return Err(gone("frames lost between workers and writer"));
        }

        let mut out = HashingWriter {
            inner: BufWriter::with_capacity(
                64 << 10,
                AtWriter {
                    file: &file,
                    pos: end.len,
                },
            ),
            sha: &mut end.sha,
            len: end.len,
        };
        let table_err = |source| WriterError::Table {
            path: path.clone(),
            source,
        };
        let mut table = TableWriter::new(&mut out, end.frames, true).map_err(table_err)?;
        end.entries
            .write_table(&mut table)
            .map_err(|source| match source {
                EntriesError::Table(t) => table_err(t),
                other => WriterError::Entries {
                    path: path.clone(),
                    source: other,
                },
            })?;
        table.finish().map_err(table_err)?;
        let zst_len = out.len;
        file.sync_all().map_err(|source| WriterError::Io {
            path: path.clone(),
            op: "fsync",
            source,
        })?;
        fv_core::fs::drop_cached(&*file, 0, 0);
        Ok(ImageSummary {
            lime_len: offset,
            lime_sha256: lime_sha.finalize().into(),
            zst_len,
            zst_sha256: end.sha.finalize().into(),
            frames: end.frames,
            frame_size: opts.frame_size,
            level: opts.level,
            level_min: end.levels.map_or(effective_level(opts.level), |l| l.0),
            level_max: end.levels.map_or(effective_level(opts.level), |l| l.1),
            threads: opts.threads,
        })
    }

    /// Bytes the seek table, its spill file and an all-zero tail may need
    /// for a stream of `stream_len` bytes: what the caller keeps in reserve
    /// (e.g. as a preallocated file it deletes before [`ImageWriter::recover`])
    /// so that an image cut short by a full disk can still be completed.
    pub fn reserve_for(stream_len: u64, opts: &WriterOptions) -> u64 {
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

    fn check_failed(&mut self) -> Result<(), WriterError> {
        if !self.shared.failed.load(Ordering::Acquire) {
            return Ok(());
        }
        let taken = self.shared.failure.lock().ok().and_then(|mut f| f.take());
        Err(match taken {
            Some(f) => WriterError::from_failure(&self.path, self.opts.level, f),
            None => WriterError::NotRecovered {
                path: self.path.clone(),
            },
        })
    }

    fn take_slot(&mut self) -> Result<Slot, WriterError> {
        let mut slot = self
            .pipeline
            .pool
            .recv()
            .map_err(|_| self.pipeline_gone("writer"))?;
        slot.len = 0;
        // This frame and all before it are in the file for good: no
        // recovery goes back to them.
        if slot.written {
            while self.marks.len() > 1
                && self
                    .marks
                    .front()
                    .is_some_and(|(frame, _)| *frame <= slot.index)
            {
                self.marks.pop_front();
            }
        }
        slot.written = false;
        Ok(slot)
    }

    /// Hands a full frame to the workers and marks the digest where the
    /// next frame starts.
    fn dispatch(&mut self, mut slot: Slot) -> Result<(), WriterError> {
        slot.index = self.dispatched;
        self.pipeline
            .jobs
            .send(slot)
            .map_err(|_| self.pipeline_gone("compression workers"))?;
        self.dispatched += 1;
        // Marks of frames known to be written are dropped in take_slot():
        // the marks kept are those of the frames in flight, a few more than
        // the slots at most (the caller stops at the first failure).
        self.marks
            .push_back((self.dispatched, self.lime_sha.clone()));
        Ok(())
    }

    fn pipeline_gone(&self, what: &'static str) -> WriterError {
        WriterError::Pipeline {
            path: self.path.clone(),
            what,
        }
    }
}

/// The level frames start at.
fn effective_level(level: i32) -> i32 {
    if level == ADAPTIVE_LEVEL {
        ADAPTIVE_MIN
    } else {
        level
    }
}

fn check_options(opts: &WriterOptions) -> Result<(), WriterError> {
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

/// zstd's estimate of a compression context for `level` and inputs of
/// `frame` bytes.
fn context_size(level: i32, frame: u64) -> u64 {
    use zstd::zstd_safe::zstd_sys;
    // SAFETY: both are pure functions of their arguments (ZSTD_getCParams
    // clamps any level; the estimate reads the parameters it is given).
    let size = unsafe {
        zstd_sys::ZSTD_estimateCCtxSize_usingCParams(zstd_sys::ZSTD_getCParams(level, frame, 0))
    };
    size as u64
}

/// Frames in flight: one being compressed per worker, one being filled by
/// the caller, one being written, and spares, at least 12 in all. The
/// spares let the caller (reading and hashing the stream) and the writer
/// (writing and hashing the image) run ahead of or behind the workers for a
/// while instead of waiting on each other: on a 2-CPU machine, 12 slots
/// instead of 6 took 3 % off the benchmark's wall time. Each is a frame's
/// raw bytes plus its compressed bound: 2 MiB at the default frame size, so
/// 8 threads (12 slots) stay well inside 64 MiB.
fn slot_count(threads: usize) -> usize {
    (threads + 4).max(12)
}

/// zstd's worst-case compressed size for `n` input bytes.
fn zstd_bound(n: u64) -> u64 {
    usize::try_from(n).map_or(u64::MAX, |n| zstd::zstd_safe::compress_bound(n) as u64)
}

/// Upper bound of a compressed all-zero frame of `frame_size` bytes: frame
/// header (at most 18), per 128 KiB block a header and at most one
/// sequence (16 bytes is generous), 4-byte checksum.
fn zero_frame_bound(frame_size: u32) -> u64 {
    18 + u64::from(frame_size).div_ceil(128 << 10) * 16 + 4
}

fn zero_frame(frame_size: u32, level: i32) -> io::Result<ZeroFrame> {
    let zeros = vec![0u8; frame_size as usize];
    let bytes = pipeline::new_compressor(level)?.compress(&zeros)?;
    let checksum = pipeline::frame_checksum(&bytes);
    Ok(ZeroFrame { bytes, checksum })
}

/// Positional writes at an advancing offset (the seek table after the frames).
struct AtWriter<'a> {
    file: &'a File,
    pos: u64,
}

impl Write for AtWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write_at(buf, self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests;
