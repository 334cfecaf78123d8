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
//!
//! Files: this one holds [`ImageWriter`] (start, write, recover, finish);
//! `options.rs` the options, their limits and what they cost in memory and
//! disk; `error.rs` [`WriterError`]; `pipeline.rs` the threads; `entries.rs`
//! the seek-table entries; `sys.rs` the calls below the standard library.

mod entries;
mod error;
mod options;
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

use fv_core::fs::Dir;
use sha2::{Digest, Sha256};

pub use entries::EntriesError;
use entries::{Entries, MEM_ENTRIES};
pub use error::WriterError;
pub use options::{
    ADAPTIVE_LEVEL, ADAPTIVE_MAX, ADAPTIVE_MIN, DEFAULT_FRAME_SIZE, DEFAULT_LEVEL, MAX_FRAME_SIZE,
    MAX_THREADS, MEMORY_BUDGET, MIN_FRAME_SIZE, WriterOptions, memory_estimate, threads_within,
};
use options::{check_options, effective_level, slot_count, zero_frame};
use pipeline::{HashingWriter, OrderedWriter, Shared, Slot, ToWriter, WriterEnd};

use crate::seektable::TableWriter;

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
        options::reserve(stream_len, opts)
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
