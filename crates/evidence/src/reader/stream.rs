//! [`FrameStream`]: frames decoded on a pool of threads, handed out in file
//! order, with a bounded number in memory.

use std::io::{self, Read, Seek, SeekFrom};
use std::sync::mpsc::{Receiver, Sender, SyncSender, channel, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use super::{Frame, FrameError, ReadError, TABLE_CHUNK, decode_frame, new_dctx};

/// Frames queued per decoding thread: enough to keep every core busy while
/// the caller consumes frames in order.
const IN_FLIGHT_PER_THREAD: usize = 2;
/// Memory budget for frames in flight (compressed + decompressed).
const IN_FLIGHT_BUDGET: u64 = 128 << 20;

struct Job {
    frame: Frame,
    compressed: Vec<u8>,
    out: Vec<u8>,
    reply: SyncSender<Done>,
}

struct Done {
    frame: Frame,
    result: Result<(), FrameError>,
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
    current: Option<Done>,
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
    /// Starts decoding `frames` (consecutive entries of one table) from
    /// `inner` on `threads` threads. When `trailing` is non-zero, that many
    /// bytes after the last frame (the seek table) are read too and passed to
    /// `on_compressed`.
    ///
    /// # Errors
    /// [`ReadError::Io`] if the threads cannot be started.
    pub fn start<R>(
        mut inner: R,
        frames: &[Frame],
        trailing: u64,
        threads: usize,
        mut on_compressed: C,
    ) -> Result<Self, ReadError>
    where
        R: Read + Seek + Send + 'static,
    {
        let threads = threads.max(1);
        let largest = frames
            .iter()
            .map(|f| u64::from(f.decompressed_len) + u64::from(f.compressed_len))
            .max()
            .unwrap_or(1)
            .max(1);
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

        let frames = frames.to_vec();
        let reader = std::thread::Builder::new()
            .name("fv-read".into())
            .spawn(move || {
                let start = frames.first().map_or(0, |f| f.compressed_offset);
                let mut offset = start;
                if let Err(source) = inner.seek(SeekFrom::Start(start)) {
                    let _ = slot_tx.send(Slot::Failed(ReadError::Io { offset, source }));
                    return on_compressed;
                }
                for frame in frames {
                    let (mut compressed, out) = pool_rx.try_recv().unwrap_or_default();
                    compressed.resize(frame.compressed_len as usize, 0);
                    if let Err(source) = inner.read_exact(&mut compressed) {
                        let _ = slot_tx.send(Slot::Failed(ReadError::Io { offset, source }));
                        return on_compressed;
                    }
                    offset += compressed.len() as u64;
                    on_compressed.consume(&compressed);
                    let (reply, done) = sync_channel(1);
                    if slot_tx.send(Slot::Frame(done)).is_err() {
                        return on_compressed;
                    }
                    let job = Job {
                        frame,
                        compressed,
                        out,
                        reply,
                    };
                    if job_tx.send(job).is_err() {
                        return on_compressed;
                    }
                }
                drop(job_tx);
                let mut left = trailing;
                let mut buf = vec![0u8; TABLE_CHUNK];
                while left > 0 {
                    let n = usize::try_from(left.min(TABLE_CHUNK as u64)).unwrap_or(TABLE_CHUNK);
                    if let Err(source) = inner.read_exact(&mut buf[..n]) {
                        let _ = slot_tx.send(Slot::Failed(ReadError::Io { offset, source }));
                        return on_compressed;
                    }
                    on_compressed.consume(&buf[..n]);
                    offset += n as u64;
                    left -= n as u64;
                }
                on_compressed
            });
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
        if let Some(done) = self.current.take() {
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
        let Done {
            frame,
            result,
            compressed,
            out,
        } = done;
        match result {
            Ok(()) => {
                let done = self.current.insert(Done {
                    frame,
                    result: Ok(()),
                    compressed,
                    out,
                });
                Some(Ok((frame, &done.out)))
            }
            Err(kind) => {
                let _ = self.pool.send((compressed, out));
                Some(Err(ReadError::Frame { frame, kind }))
            }
        }
    }

    /// The frame last returned by [`FrameStream::next_frame`] and its content,
    /// until the next call.
    pub fn current(&self) -> Option<(Frame, &[u8])> {
        self.current.as_ref().map(|d| (d.frame, d.out.as_slice()))
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
    loop {
        let job = {
            let Ok(guard) = jobs.lock() else { return };
            match guard.recv() {
                Ok(job) => job,
                Err(_) => return,
            }
        };
        let Job {
            frame,
            compressed,
            mut out,
            reply,
        } = job;
        let result = match dctx.as_mut() {
            Some(d) => decode_frame(&frame, &compressed, d, &mut out),
            None => Err(FrameError::Decompress {
                source: io::Error::other("cannot create a zstd decompression context"),
            }),
        };
        // The consumer may have stopped; nothing to do then.
        let _ = reply.send(Done {
            frame,
            result,
            compressed,
            out,
        });
    }
}
