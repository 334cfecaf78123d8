//! [`FrameStream`]: frames decoded on a pool of threads, handed out in file
//! order, with a bounded number in memory.

use std::io::{self, Read, Seek, SeekFrom};
use std::sync::mpsc::{Receiver, Sender, SyncSender, channel, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use super::frame::{Frame, FrameError, ReadError, TABLE_CHUNK, decode_frame, new_dctx};
use super::table::{FrameCursor, SeekTable};

/// Frames queued per decoding thread: enough to keep every core busy while
/// the caller consumes frames in order.
const IN_FLIGHT_PER_THREAD: usize = 2;
/// Read buffer of the reading thread (frames larger than this are read
/// straight into their own buffer).
const READ_BUF: usize = 256 << 10;
/// Memory budget for frames in flight (compressed + decompressed).
const IN_FLIGHT_BUDGET: u64 = 128 << 20;

/// Consecutive frames travel in batches of at most this many, while their
/// content stays under [`BATCH_BYTES`] (a batch may pass it by its last
/// frame): a table of millions of tiny or broken frames (a crafted image)
/// would otherwise cost a thread hand-off per frame.
const BATCH_FRAMES: usize = 256;
/// See [`BATCH_FRAMES`].
const BATCH_BYTES: u64 = 1 << 20;

/// Why the reading thread stopped early.
enum Stop {
    /// Reading failed: the consumer is told with [`Slot::Failed`].
    Failed(ReadError),
    /// The consumer or the workers are gone: nobody to tell.
    Gone,
}

/// The reading thread of a [`FrameStream`]: reads the frames in file order,
/// gathers them into batches, hands each batch to the workers and its slot
/// to the consumer, then reads the trailing bytes.
struct Reading {
    table: SeekTable,
    cursor: FrameCursor,
    slot_tx: SyncSender<Slot>,
    pool_rx: Receiver<(Vec<u8>, Vec<u8>)>,
}

impl Reading {
    /// Reads everything, tells the consumer of a failure, and gives the
    /// callback back.
    fn run<R: Read + Seek, C: OnCompressed>(
        mut self,
        inner: R,
        job_tx: SyncSender<Job>,
        trailing: u64,
        mut on_compressed: C,
    ) -> C {
        // Buffered: frames can be tiny (a crafted table of 9-byte
        // frames), and one read(2) per frame would dominate.
        let mut inner = std::io::BufReader::with_capacity(READ_BUF, inner);
        let done = self
            .frames(&mut inner, &job_tx, &mut on_compressed)
            .and_then(|(started, mut offset)| {
                if !started && trailing > 0 {
                    inner
                        .seek(SeekFrom::Start(offset))
                        .map_err(|source| Stop::Failed(ReadError::Io { offset, source }))?;
                }
                drop(job_tx);
                read_trailing(&mut inner, &mut offset, trailing, &mut on_compressed)
            });
        if let Err(Stop::Failed(e)) = done {
            let _ = self.slot_tx.send(Slot::Failed(e));
        }
        on_compressed
    }

    /// Reads the frames, in batches; returns whether there was any, and
    /// the offset after the last (without frames, "after the last frame"
    /// is the table).
    fn frames<R: Read + Seek, C: OnCompressed>(
        &mut self,
        inner: &mut R,
        job_tx: &SyncSender<Job>,
        on_compressed: &mut C,
    ) -> Result<(bool, u64), Stop> {
        let mut offset = self.table.data_len();
        let mut started = false;
        while let Some(frame) = self.next_frame(inner)? {
            if !started {
                started = true;
                offset = frame.compressed_offset;
                inner
                    .seek(SeekFrom::Start(offset))
                    .map_err(|source| Stop::Failed(ReadError::Io { offset, source }))?;
            }
            let (mut compressed, out) = self.pool_rx.try_recv().unwrap_or_default();
            compressed.clear();
            let batch = self.batch(frame, inner, &mut offset, &mut compressed)?;
            on_compressed.consume(&compressed);
            let (reply, done) = sync_channel(1);
            self.slot_tx
                .send(Slot::Frame(done))
                .map_err(|_| Stop::Gone)?;
            let job = Job {
                frames: batch,
                compressed,
                out,
                reply,
            };
            job_tx.send(job).map_err(|_| Stop::Gone)?;
        }
        Ok((started, offset))
    }

    /// A batch: `first`, then the next frames while the batch's content
    /// stays under [`BATCH_BYTES`], their bytes read into `compressed`.
    /// Frames that are no zstd frame at all (a hole, garbage) count for
    /// nothing: millions of them go in batches of [`BATCH_FRAMES`] instead
    /// of a thread hand-off each.
    fn batch<R: Read + Seek>(
        &mut self,
        first: Frame,
        inner: &mut R,
        offset: &mut u64,
        compressed: &mut Vec<u8>,
    ) -> Result<Vec<Frame>, Stop> {
        let mut batch = Vec::new();
        let mut batch_bytes = 0u64;
        let mut next = Some(first);
        while let Some(f) = next.take() {
            let at = compressed.len();
            compressed.resize(at + f.compressed_len as usize, 0);
            if let Err(source) = inner.read_exact(&mut compressed[at..]) {
                let offset = *offset;
                return Err(Stop::Failed(ReadError::Io { offset, source }));
            }
            *offset += u64::from(f.compressed_len);
            let is_frame = zstd::zstd_safe::find_frame_compressed_size(&compressed[at..])
                .is_ok_and(|n| n == f.compressed_len as usize);
            if is_frame {
                batch_bytes += u64::from(f.decompressed_len);
            }
            batch.push(f);
            if batch.len() < BATCH_FRAMES && batch_bytes < BATCH_BYTES {
                next = self.next_frame(inner)?;
            }
        }
        Ok(batch)
    }

    fn next_frame<R: Read + Seek>(&mut self, inner: &mut R) -> Result<Option<Frame>, Stop> {
        self.cursor
            .next_frame(&self.table, inner)
            .map_err(Stop::Failed)
    }
}

/// Reads the `trailing` bytes after the last frame (the seek table), for
/// the callback only.
fn read_trailing<R: Read, C: OnCompressed>(
    inner: &mut R,
    offset: &mut u64,
    trailing: u64,
    on_compressed: &mut C,
) -> Result<(), Stop> {
    let mut left = trailing;
    let mut buf = vec![0u8; TABLE_CHUNK];
    while left > 0 {
        let n = usize::try_from(left.min(TABLE_CHUNK as u64)).unwrap_or(TABLE_CHUNK);
        if let Err(source) = inner.read_exact(&mut buf[..n]) {
            let offset = *offset;
            return Err(Stop::Failed(ReadError::Io { offset, source }));
        }
        on_compressed.consume(&buf[..n]);
        *offset += n as u64;
        left -= n as u64;
    }
    Ok(())
}

/// A run of consecutive frames: one, or several small ones.
struct Job {
    frames: Vec<Frame>,
    /// Their compressed bytes, concatenated.
    compressed: Vec<u8>,
    out: Vec<u8>,
    reply: SyncSender<Done>,
}

struct Done {
    frames: Vec<Frame>,
    /// Per frame: where its content is in `out`, or what is wrong with it.
    results: Vec<Result<std::ops::Range<usize>, FrameError>>,
    compressed: Vec<u8>,
    out: Vec<u8>,
}

enum Slot {
    Frame(Receiver<Done>),
    Failed(ReadError),
}

/// Decodes a run of consecutive frames on a pool of threads and hands them
/// out in file order ([`FrameStream::next_frame`]), with a bounded number of
/// frames in memory whatever the image size.
///
/// One thread reads the file sequentially (from the first frame asked for)
/// and passes every byte it reads to `on_compressed`, so a caller can hash the
/// whole file in the same pass; [`FrameStream::finish`] gives that callback
/// back.
pub struct FrameStream<C> {
    slots: Option<Receiver<Slot>>,
    pool: Sender<(Vec<u8>, Vec<u8>)>,
    reader: Option<JoinHandle<C>>,
    workers: Vec<JoinHandle<()>>,
    /// The batch being handed out, and the index of the frame returned last.
    current: Option<(Done, usize)>,
}

impl<C> std::fmt::Debug for FrameStream<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrameStream")
            .field("workers", &self.workers.len())
            .finish_non_exhaustive()
    }
}

/// What the reading thread of a [`FrameStream`] hands every byte of the file
/// to, in order (a hasher, or `()` for nothing).
pub trait OnCompressed: Send + 'static {
    /// Called with the next bytes of the file.
    fn consume(&mut self, bytes: &[u8]);
}

impl OnCompressed for () {
    fn consume(&mut self, _: &[u8]) {}
}

impl OnCompressed for sha2::Sha256 {
    fn consume(&mut self, bytes: &[u8]) {
        sha2::Digest::update(self, bytes);
    }
}

impl<C: OnCompressed> FrameStream<C> {
    /// Starts decoding the frames `frames` (indices into `table`, the seek
    /// table of `inner`) on `threads` threads. When `trailing` is non-zero,
    /// that many bytes after the last frame (the seek table) are read too and
    /// passed to `on_compressed`. The frames' entries are read from `inner`
    /// a block at a time as the reading thread goes ([`SeekTable::cursor`]):
    /// nothing per frame is copied up front.
    ///
    /// # Errors
    /// [`ReadError::Io`] if the threads cannot be started.
    pub fn start<R>(
        inner: R,
        table: &SeekTable,
        frames: std::ops::Range<u32>,
        trailing: u64,
        threads: usize,
        on_compressed: C,
    ) -> Result<Self, ReadError>
    where
        R: Read + Seek + Send + 'static,
    {
        let threads = threads.max(1);
        // A batch holds at most BATCH_BYTES plus one frame.
        let largest = table.largest_frame().max(1) + BATCH_BYTES;
        let by_budget = usize::try_from(IN_FLIGHT_BUDGET / largest).unwrap_or(usize::MAX);
        // Large frames mean fewer in flight (and fewer workers), so memory
        // stays near the budget whatever the frame size.
        let in_flight = (threads * IN_FLIGHT_PER_THREAD).min(by_budget).max(1);
        let threads = threads.min(in_flight);

        let (job_tx, job_rx) = sync_channel::<Job>(in_flight);
        let job_rx = Arc::new(Mutex::new(job_rx));
        let (slot_tx, slot_rx) = sync_channel::<Slot>(in_flight);
        let (pool_tx, pool_rx) = channel::<(Vec<u8>, Vec<u8>)>();

        let spawn_failed = |source| ReadError::Io { offset: 0, source };
        let workers = (0..threads)
            .map(|i| {
                let job_rx = Arc::clone(&job_rx);
                std::thread::Builder::new()
                    .name(format!("fv-decode-{i}"))
                    .spawn(move || worker(&job_rx))
                    .map_err(spawn_failed)
            })
            .collect::<Result<Vec<_>, _>>()?;

        let reading = Reading {
            table: table.clone(),
            cursor: table.cursor(frames),
            slot_tx,
            pool_rx,
        };
        let reader = std::thread::Builder::new()
            .name("fv-read".into())
            .spawn(move || reading.run(inner, job_tx, trailing, on_compressed));
        let reader = reader.map_err(spawn_failed)?;

        Ok(Self {
            slots: Some(slot_rx),
            pool: pool_tx,
            reader: Some(reader),
            workers,
            current: None,
        })
    }

    /// The next frame in order with its decoded content, `Some(Err)` for a
    /// frame that fails its checks ([`ReadError::Frame`], after which later
    /// frames still come) or a read error (after which nothing comes), and
    /// `None` after the last frame.
    pub fn next_frame(&mut self) -> Option<Result<(Frame, &[u8]), ReadError>> {
        // The next frame of the current batch, if any.
        let more = self
            .current
            .as_ref()
            .is_some_and(|(d, i)| i + 1 < d.frames.len());
        if more {
            if let Some((_, i)) = self.current.as_mut() {
                *i += 1;
            }
            return self.at_current();
        }
        if let Some((done, _)) = self.current.take() {
            let _ = self.pool.send((done.compressed, done.out));
        }
        let slot = self.slots.as_ref()?.recv().ok()?;
        let done = match slot {
            Slot::Failed(e) => {
                self.slots = None;
                return Some(Err(e));
            }
            Slot::Frame(done) => match done.recv() {
                Ok(done) => done,
                // A worker can only vanish by panicking; end the stream and
                // let `finish` report it.
                Err(_) => {
                    self.slots = None;
                    return None;
                }
            },
        };
        self.current = Some((done, 0));
        self.at_current()
    }

    /// The result for the frame `current` points at. A failed frame's error
    /// is taken out (it is reported once).
    fn at_current(&mut self) -> Option<Result<(Frame, &[u8]), ReadError>> {
        let (done, i) = self.current.as_mut()?;
        let frame = *done.frames.get(*i)?;
        let slot = done.results.get_mut(*i)?;
        if slot.is_err() {
            let taken = std::mem::replace(slot, Ok(0..0));
            if let Err(kind) = taken {
                return Some(Err(ReadError::Frame { frame, kind }));
            }
        }
        let (done, i) = self.current.as_ref()?;
        let range = done.results.get(*i)?.as_ref().ok()?.clone();
        Some(Ok((frame, done.out.get(range)?)))
    }

    /// The frame last returned by [`FrameStream::next_frame`] and its content,
    /// until the next call (`None` if it failed its checks).
    pub fn current(&self) -> Option<(Frame, &[u8])> {
        let (done, i) = self.current.as_ref()?;
        let frame = *done.frames.get(*i)?;
        let range = done.results.get(*i)?.as_ref().ok()?.clone();
        if range.is_empty() && frame.decompressed_len != 0 {
            return None;
        }
        Some((frame, done.out.get(range)?))
    }

    /// Stops the threads and gives back `on_compressed` (with whatever state
    /// it accumulated, e.g. a hasher that saw the whole file).
    ///
    /// # Errors
    /// [`ReadError::Io`] if a thread died (a bug: threads do not panic by
    /// design).
    pub fn finish(mut self) -> Result<C, ReadError> {
        self.slots = None;
        self.current = None;
        let reader = self.reader.take();
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
        match reader.map(JoinHandle::join) {
            Some(Ok(c)) => Ok(c),
            _ => Err(ReadError::Io {
                offset: 0,
                source: io::Error::other("the image reading thread failed"),
            }),
        }
    }
}

impl<C> Drop for FrameStream<C> {
    fn drop(&mut self) {
        // Closing our end unblocks the reader, which then closes the job
        // queue, which stops the workers.
        self.slots = None;
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

fn worker(jobs: &Mutex<Receiver<Job>>) {
    let mut dctx = new_dctx().ok();
    // Small frames of a batch are decoded here, then appended to `out`.
    let mut scratch = Vec::new();
    loop {
        let job = {
            let Ok(guard) = jobs.lock() else { return };
            match guard.recv() {
                Ok(job) => job,
                Err(_) => return,
            }
        };
        let Job {
            frames,
            compressed,
            mut out,
            reply,
        } = job;
        let mut results = Vec::with_capacity(frames.len());
        let mut at = 0usize;
        if let [frame] = frames[..] {
            // One frame: decoded straight into `out`, no copy.
            results.push(match dctx.as_mut() {
                Some(d) => decode_frame(&frame, &compressed, d, &mut out).map(|()| 0..out.len()),
                None => Err(no_context()),
            });
        } else {
            out.clear();
            for frame in &frames {
                let end = at + frame.compressed_len as usize;
                let bytes = compressed.get(at..end).unwrap_or(&[]);
                at = end;
                let r = match dctx.as_mut() {
                    Some(d) => decode_frame(frame, bytes, d, &mut scratch).map(|()| {
                        let start = out.len();
                        out.extend_from_slice(&scratch);
                        start..out.len()
                    }),
                    None => Err(no_context()),
                };
                results.push(r);
            }
        }
        // The consumer may have stopped; nothing to do then.
        let _ = reply.send(Done {
            frames,
            results,
            compressed,
            out,
        });
    }
}

fn no_context() -> FrameError {
    FrameError::Decompress {
        source: io::Error::other("cannot create a zstd decompression context"),
    }
}
