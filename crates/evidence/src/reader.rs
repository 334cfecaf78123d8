//! Reading a seekable zstd image without trusting it.
//!
//! - [`SeekTable::read_from`] parses and checks the seek table at the end of
//!   a file: footer, skippable frame header, that the table fits the file
//!   before a single entry is allocated, that the frames' compressed sizes add
//!   up to exactly the bytes before the table (so truncation, appended bytes
//!   and a lying table are all caught), and a per-frame size limit.
//! - [`SeekableReader`] gives random access by decompressed (LiME stream)
//!   offset, decompressing only the frames a read touches.
//! - [`FrameStream`] decodes a run of frames on a pool of threads and hands
//!   them out in file order, with a bounded number of frames in flight; the
//!   thread reading the file hands every byte it reads to a callback, so the
//!   file can be hashed in the same pass.
//!
//! Every decoded frame is checked: it must be exactly one zstd frame of the
//! size the table gives, decompress (zstd checks its own content checksum when
//! the frame has one) to exactly the table's decompressed size, and match the
//! table's XXH64-based checksum.

use std::io::{self, Read, Seek, SeekFrom};
use std::sync::mpsc::{Receiver, Sender, SyncSender, channel, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use crate::seektable::{
    FOOTER_LEN, FRAME_HEADER_LEN, Footer, FooterError, SKIPPABLE_MAGIC, entry_len,
};
use crate::xxh64::frame_checksum;

/// Largest decompressed frame this reader accepts. The toolkit's writer uses
/// frames of a few MiB; a table claiming more is refused rather than trusted
/// with an allocation.
pub const MAX_FRAME_DECOMPRESSED: u32 = 64 << 20;

/// The smallest possible zstd frame: magic (4), frame header descriptor (1),
/// a one-byte content size or window descriptor (1), and one empty last
/// block header (3) (RFC 8878, section 3.1.1).
pub const MIN_FRAME_LEN: u32 = 9;

/// The most compressed bytes a frame holding `decompressed` bytes can take:
/// stored blocks cost 3 bytes per 128 KiB block, plus the frame header (at
/// most 18 bytes) and checksum (4); zstd's `ZSTD_compressBound` is smaller.
pub fn max_frame_len(decompressed: u32) -> u64 {
    u64::from(decompressed) + u64::from(decompressed) / 256 + 64
}

/// Entries are read from the file in chunks of this many bytes, so memory
/// grows only with table bytes actually present.
const TABLE_CHUNK: usize = 64 * 1024;

/// One data frame, located in the file and in the decompressed stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame {
    /// Index of the frame (0-based).
    pub index: u32,
    /// Offset of the frame in the file.
    pub compressed_offset: u64,
    /// Size of the frame in the file.
    pub compressed_len: u32,
    /// Offset of its content in the decompressed stream.
    pub decompressed_offset: u64,
    /// Size of its content.
    pub decompressed_len: u32,
    /// The table's checksum for it, when the table carries checksums.
    pub checksum: Option<u32>,
}

impl Frame {
    /// One past the last decompressed byte.
    pub fn decompressed_end(&self) -> u64 {
        self.decompressed_offset + u64::from(self.decompressed_len)
    }

    /// One past the last compressed byte.
    pub fn compressed_end(&self) -> u64 {
        self.compressed_offset + u64::from(self.compressed_len)
    }
}

/// What is wrong with one frame.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The bytes at the frame's place are not a zstd frame.
    #[error("not a zstd frame ({reason})")]
    NotAFrame {
        /// zstd's error name.
        reason: &'static str,
    },
    /// A zstd frame is there, but of another length than the table says.
    #[error("the zstd frame there is {actual} bytes long, the seek table says {expected}")]
    LengthMismatch {
        /// Length per the table.
        expected: u32,
        /// Length of the zstd frame found.
        actual: usize,
    },
    /// zstd failed to decompress it (corrupt data, content checksum).
    #[error("zstd cannot decompress it: {source}")]
    Decompress {
        /// zstd's error.
        #[source]
        source: io::Error,
    },
    /// It decompressed to another size than the table says.
    #[error("it decompresses to {actual} bytes, the seek table says {expected}")]
    SizeMismatch {
        /// Size per the table.
        expected: u32,
        /// Size found.
        actual: usize,
    },
    /// The content does not match the table's checksum.
    #[error(
        "checksum mismatch: the seek table says {expected:#010x}, the decompressed content hashes to {actual:#010x}"
    )]
    Checksum {
        /// Checksum in the table.
        expected: u32,
        /// XXH64 (low 32 bits) of the content.
        actual: u32,
    },
}

/// Why an image cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// Too small to hold even a footer and an empty table.
    #[error("the file is {len} bytes long, too short to be a seekable zstd image (no seek table)")]
    TooShort {
        /// File length.
        len: u64,
    },
    /// The last bytes are not a seekable footer.
    #[error(transparent)]
    Footer(#[from] FooterError),
    /// The footer announces a table larger than the file.
    #[error(
        "seek table footer announces {frames} frames ({table_len} bytes of table) but the file is only {file_len} bytes (damaged footer, or not a seekable image)"
    )]
    TableExceedsFile {
        /// Frames announced.
        frames: u32,
        /// Table length implied.
        table_len: u64,
        /// File length.
        file_len: u64,
    },
    /// The skippable frame header before the entries is wrong.
    #[error(
        "seek table at byte {offset}: expected a skippable frame (magic {SKIPPABLE_MAGIC:#010x}, size {expected_size}), found magic {magic:#010x}, size {size} (damaged seek table or footer)"
    )]
    BadTableHeader {
        /// Offset of the table in the file.
        offset: u64,
        /// Magic found.
        magic: u32,
        /// Frame size found.
        size: u32,
        /// Frame size the footer implies.
        expected_size: u64,
    },
    /// An entry whose compressed size no zstd frame can have for its
    /// decompressed size.
    #[error(
        "seek table entry {index}: a zstd frame of {compressed} bytes cannot hold {decompressed} decompressed bytes (damaged seek table)"
    )]
    ImpossibleFrame {
        /// Entry index.
        index: u32,
        /// Compressed size announced.
        compressed: u32,
        /// Decompressed size announced.
        decompressed: u32,
    },
    /// An entry announcing more than [`MAX_FRAME_DECOMPRESSED`].
    #[error(
        "seek table entry {index}: decompressed size {size} is over this reader's limit of {MAX_FRAME_DECOMPRESSED} bytes per frame"
    )]
    FrameTooLarge {
        /// Entry index.
        index: u32,
        /// Size announced.
        size: u32,
    },
    /// The frames do not fill the bytes before the table exactly.
    #[error(
        "seek table: the compressed sizes of its {frames} frames reach {frames_len} bytes, but {data_len} bytes precede the table ({hint})"
    )]
    DataLenMismatch {
        /// Frame count.
        frames: u32,
        /// Sum of the entries' compressed sizes (summing stops once it
        /// passes `data_len`).
        frames_len: u64,
        /// Bytes before the table.
        data_len: u64,
        /// Likely cause.
        hint: &'static str,
    },
    /// One frame is bad.
    #[error(
        "frame {} (file bytes {}-{}, stream bytes {}-{}): {kind}",
        frame.index,
        frame.compressed_offset,
        frame.compressed_end().saturating_sub(1),
        frame.decompressed_offset,
        frame.decompressed_end().saturating_sub(1)
    )]
    Frame {
        /// The frame.
        frame: Frame,
        /// What is wrong.
        #[source]
        kind: FrameError,
    },
    /// A read past the end of the decompressed stream.
    #[error("stream offset {offset} is past the end of the decompressed stream ({len} bytes)")]
    OutOfRange {
        /// Offset asked for.
        offset: u64,
        /// Stream length.
        len: u64,
    },
    /// Reading the file failed.
    #[error("reading the image at byte {offset}: {source}")]
    Io {
        /// Offset of the read.
        offset: u64,
        /// The cause.
        #[source]
        source: io::Error,
    },
}

fn io_at(offset: u64) -> impl FnOnce(io::Error) -> ReadError {
    move |source| ReadError::Io { offset, source }
}

/// The parsed, checked seek table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeekTable {
    frames: Vec<Frame>,
    checksums: bool,
    table_offset: u64,
    table_len: u64,
    decompressed_len: u64,
}

impl SeekTable {
    /// Reads and checks the seek table at the end of `r` (which is left at an
    /// unspecified position).
    ///
    /// # Errors
    /// Every [`ReadError`] but `Frame` and `OutOfRange`.
    pub fn read_from<R: Read + Seek>(r: &mut R) -> Result<Self, ReadError> {
        let file_len = r.seek(SeekFrom::End(0)).map_err(io_at(0))?;
        let min = (FRAME_HEADER_LEN + FOOTER_LEN) as u64;
        if file_len < min {
            return Err(ReadError::TooShort { len: file_len });
        }
        let footer_at = file_len - FOOTER_LEN as u64;
        let mut footer = [0u8; FOOTER_LEN];
        read_exact_at(r, footer_at, &mut footer)?;
        let footer = Footer::parse(&footer)?;
        let table_len = footer.table_len();
        if table_len > file_len {
            return Err(ReadError::TableExceedsFile {
                frames: footer.frames,
                table_len,
                file_len,
            });
        }
        let table_offset = file_len - table_len;
        let mut header = [0u8; FRAME_HEADER_LEN];
        read_exact_at(r, table_offset, &mut header)?;
        let magic = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
        let size = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
        let expected_size = table_len - FRAME_HEADER_LEN as u64;
        if magic != SKIPPABLE_MAGIC || u64::from(size) != expected_size {
            return Err(ReadError::BadTableHeader {
                offset: table_offset,
                magic,
                size,
                expected_size,
            });
        }

        // The table's bytes are in the file (checked above), so the entries
        // allocated below never exceed what was actually read.
        let width = entry_len(footer.checksums);
        let mut frames = Vec::new();
        let mut chunk = vec![0u8; TABLE_CHUNK - TABLE_CHUNK % width];
        let mut left = u64::from(footer.frames) * width as u64;
        let mut at = table_offset + FRAME_HEADER_LEN as u64;
        let (mut compressed_offset, mut decompressed_offset) = (0u64, 0u64);
        let mut index = 0u32;
        while left > 0 {
            let n = usize::try_from(left.min(chunk.len() as u64)).unwrap_or(chunk.len());
            read_exact_at(r, at, &mut chunk[..n])?;
            at += n as u64;
            left -= n as u64;
            for e in chunk[..n].chunks_exact(width) {
                let word = |i: usize| u32::from_le_bytes([e[i], e[i + 1], e[i + 2], e[i + 3]]);
                let (compressed_len, decompressed_len) = (word(0), word(4));
                if decompressed_len > MAX_FRAME_DECOMPRESSED {
                    return Err(ReadError::FrameTooLarge {
                        index,
                        size: decompressed_len,
                    });
                }
                // Bounds the memory a frame's compressed bytes take, and
                // the number of entries to the bytes before the table / 9.
                if compressed_len < MIN_FRAME_LEN
                    || u64::from(compressed_len) > max_frame_len(decompressed_len)
                {
                    return Err(ReadError::ImpossibleFrame {
                        index,
                        compressed: compressed_len,
                        decompressed: decompressed_len,
                    });
                }
                frames.push(Frame {
                    index,
                    compressed_offset,
                    compressed_len,
                    decompressed_offset,
                    decompressed_len,
                    checksum: footer.checksums.then(|| word(8)),
                });
                // At most 2^32 entries of at most 2^32 bytes: no overflow.
                compressed_offset += u64::from(compressed_len);
                decompressed_offset += u64::from(decompressed_len);
                index = index.wrapping_add(1);
                // Stop early rather than walk a table that already claims more
                // than the file holds.
                if compressed_offset > table_offset {
                    break;
                }
            }
            if compressed_offset > table_offset {
                break;
            }
        }
        if compressed_offset != table_offset {
            let hint = if compressed_offset > table_offset {
                "the file is truncated, or the table is damaged"
            } else {
                "bytes were inserted before the table, or the table is damaged"
            };
            return Err(ReadError::DataLenMismatch {
                frames: footer.frames,
                frames_len: compressed_offset,
                data_len: table_offset,
                hint,
            });
        }
        Ok(Self {
            frames,
            checksums: footer.checksums,
            table_offset,
            table_len,
            decompressed_len: decompressed_offset,
        })
    }

    /// The frames in file order.
    pub fn frames(&self) -> &[Frame] {
        &self.frames
    }

    /// Whether entries carry checksums.
    pub fn checksums(&self) -> bool {
        self.checksums
    }

    /// Bytes of data frames, i.e. the offset of the table in the file.
    pub fn data_len(&self) -> u64 {
        self.table_offset
    }

    /// Size of the table, skippable frame header and footer included.
    pub fn table_len(&self) -> u64 {
        self.table_len
    }

    /// Total file length the table implies.
    pub fn file_len(&self) -> u64 {
        self.table_offset + self.table_len
    }

    /// Length of the decompressed stream.
    pub fn decompressed_len(&self) -> u64 {
        self.decompressed_len
    }

    /// The frame holding decompressed byte `offset` (empty frames are never
    /// returned), or `None` past the end.
    pub fn frame_at(&self, offset: u64) -> Option<&Frame> {
        if offset >= self.decompressed_len {
            return None;
        }
        // First frame whose end is past `offset`.
        let i = self
            .frames
            .partition_point(|f| f.decompressed_end() <= offset);
        self.frames.get(i)
    }

    /// Frames whose content intersects stream bytes `[start, end)`.
    pub fn frames_in(&self, start: u64, end: u64) -> &[Frame] {
        let first = self
            .frames
            .partition_point(|f| f.decompressed_end() <= start);
        let last = self.frames.partition_point(|f| f.decompressed_offset < end);
        self.frames.get(first..last.max(first)).unwrap_or(&[])
    }
}

fn read_exact_at<R: Read + Seek>(r: &mut R, offset: u64, buf: &mut [u8]) -> Result<(), ReadError> {
    r.seek(SeekFrom::Start(offset)).map_err(io_at(offset))?;
    r.read_exact(buf).map_err(io_at(offset))
}

/// Decodes one frame's compressed bytes into `out` (cleared first) and checks
/// it against its table entry.
///
/// # Errors
/// [`FrameError`].
pub fn decode_frame(
    frame: &Frame,
    compressed: &[u8],
    dctx: &mut zstd::bulk::Decompressor<'_>,
    out: &mut Vec<u8>,
) -> Result<(), FrameError> {
    let actual = zstd::zstd_safe::find_frame_compressed_size(compressed).map_err(|code| {
        FrameError::NotAFrame {
            reason: zstd::zstd_safe::get_error_name(code),
        }
    })?;
    if actual != compressed.len() {
        return Err(FrameError::LengthMismatch {
            expected: frame.compressed_len,
            actual,
        });
    }
    out.clear();
    // The table's size was bounded by MAX_FRAME_DECOMPRESSED; one byte more
    // lets an overlong frame be told apart from an exact fit.
    out.reserve_exact(frame.decompressed_len as usize + 1);
    let got = dctx
        .decompress_to_buffer(compressed, out)
        .map_err(|source| FrameError::Decompress { source })?;
    if got != frame.decompressed_len as usize {
        return Err(FrameError::SizeMismatch {
            expected: frame.decompressed_len,
            actual: got,
        });
    }
    if let Some(expected) = frame.checksum {
        // zstd has just checked the content against the frame's own
        // checksum; when that is the table's value, hashing again proves
        // nothing new.
        if stored_checksum(compressed) == Some(expected) {
            return Ok(());
        }
        let actual = frame_checksum(out);
        if actual != expected {
            return Err(FrameError::Checksum { expected, actual });
        }
    }
    Ok(())
}

/// The content checksum a zstd frame carries, if it has one: bit 2 of the
/// frame header descriptor (the byte after the magic) says so, and the
/// checksum is the frame's last 4 bytes (RFC 8878, 3.1.1).
fn stored_checksum(frame: &[u8]) -> Option<u32> {
    let descriptor = *frame.get(4)?;
    if descriptor & 0x04 == 0 || frame.len() < MIN_FRAME_LEN as usize + 4 {
        return None;
    }
    let tail = frame.get(frame.len() - 4..)?;
    Some(u32::from_le_bytes([tail[0], tail[1], tail[2], tail[3]]))
}

fn new_dctx() -> io::Result<zstd::bulk::Decompressor<'static>> {
    zstd::bulk::Decompressor::new()
}

/// Random access to the decompressed stream of a seekable image.
#[derive(Debug)]
pub struct SeekableReader<R> {
    inner: R,
    table: SeekTable,
    dctx: DctxSlot,
    compressed: Vec<u8>,
    cached: Option<Frame>,
    cache: Vec<u8>,
    frames_decoded: u64,
}

/// `zstd::bulk::Decompressor` is not `Debug`.
struct DctxSlot(zstd::bulk::Decompressor<'static>);

impl std::fmt::Debug for DctxSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("zstd::bulk::Decompressor")
    }
}

impl<R: Read + Seek> SeekableReader<R> {
    /// Reads and checks the seek table of `inner`.
    ///
    /// # Errors
    /// As [`SeekTable::read_from`].
    pub fn open(mut inner: R) -> Result<Self, ReadError> {
        let table = SeekTable::read_from(&mut inner)?;
        Self::with_table(inner, table)
    }

    /// Uses an already parsed table.
    ///
    /// # Errors
    /// [`ReadError::Io`] if no zstd context can be made.
    pub fn with_table(inner: R, table: SeekTable) -> Result<Self, ReadError> {
        let dctx = new_dctx().map_err(io_at(0))?;
        Ok(Self {
            inner,
            table,
            dctx: DctxSlot(dctx),
            compressed: Vec::new(),
            cached: None,
            cache: Vec::new(),
            frames_decoded: 0,
        })
    }

    /// The seek table.
    pub fn table(&self) -> &SeekTable {
        &self.table
    }

    /// How many frames have been decompressed so far (a read touching a frame
    /// already cached does not count).
    pub fn frames_decoded(&self) -> u64 {
        self.frames_decoded
    }

    /// Gives back the underlying reader.
    pub fn into_inner(self) -> R {
        self.inner
    }

    /// Reads up to `buf.len()` bytes at stream offset `offset`, decompressing
    /// only the frames needed; returns the count (0 at or past the end).
    ///
    /// # Errors
    /// [`ReadError::Frame`] for a bad frame, [`ReadError::Io`].
    pub fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<usize, ReadError> {
        let mut done = 0;
        while done < buf.len() {
            let at = offset + done as u64;
            let Some(&frame) = self.table.frame_at(at) else {
                break;
            };
            self.load(frame)?;
            let from = (at - frame.decompressed_offset) as usize;
            let n = (self.cache.len() - from).min(buf.len() - done);
            buf[done..done + n].copy_from_slice(&self.cache[from..from + n]);
            done += n;
        }
        Ok(done)
    }

    /// Fills `buf` from stream offset `offset`.
    ///
    /// # Errors
    /// [`ReadError::OutOfRange`] if the stream ends first; as
    /// [`SeekableReader::read_at`].
    pub fn read_exact_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), ReadError> {
        let n = self.read_at(offset, buf)?;
        if n < buf.len() {
            return Err(ReadError::OutOfRange {
                offset: offset + n as u64,
                len: self.table.decompressed_len(),
            });
        }
        Ok(())
    }

    fn load(&mut self, frame: Frame) -> Result<(), ReadError> {
        if self.cached == Some(frame) {
            return Ok(());
        }
        self.cached = None;
        self.compressed.resize(frame.compressed_len as usize, 0);
        read_exact_at(
            &mut self.inner,
            frame.compressed_offset,
            &mut self.compressed,
        )?;
        self.frames_decoded += 1;
        decode_frame(&frame, &self.compressed, &mut self.dctx.0, &mut self.cache)
            .map_err(|kind| ReadError::Frame { frame, kind })?;
        self.cached = Some(frame);
        Ok(())
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seektable::{Entry, TableWriter};
    use std::io::Cursor;

    /// A seekable image of `data` in frames of `frame` bytes, with checksums.
    fn image(data: &[u8], frame: usize) -> Vec<u8> {
        let mut enc = zstd::bulk::Compressor::new(1).unwrap();
        enc.include_checksum(true).unwrap();
        let mut file = Vec::new();
        let mut entries = Vec::new();
        for chunk in data.chunks(frame) {
            let z = enc.compress(chunk).unwrap();
            entries.push(Entry {
                compressed: z.len() as u32,
                decompressed: chunk.len() as u32,
                checksum: Some(u32::from_le_bytes(z[z.len() - 4..].try_into().unwrap())),
            });
            file.extend_from_slice(&z);
        }
        let mut w = TableWriter::new(&mut file, entries.len() as u64, true).unwrap();
        for e in entries {
            w.push(e).unwrap();
        }
        w.finish().unwrap();
        file
    }

    fn data(len: usize) -> Vec<u8> {
        (0..len)
            .map(|i| ((i as u64).wrapping_mul(0x9E37_79B9) >> 7) as u8)
            .collect()
    }

    #[test]
    fn table_and_random_access() {
        let d = data(10_000);
        let img = image(&d, 1024);
        let mut r = SeekableReader::open(Cursor::new(img.clone())).unwrap();
        let t = r.table().clone();
        assert_eq!(t.frames().len(), 10);
        assert_eq!(t.decompressed_len(), 10_000);
        assert_eq!(t.file_len(), img.len() as u64);
        assert_eq!(t.frame_at(1023).unwrap().index, 0);
        assert_eq!(t.frame_at(1024).unwrap().index, 1);
        assert!(t.frame_at(10_000).is_none());
        assert_eq!(t.frames_in(1000, 2100).len(), 3);
        assert_eq!(t.frames_in(9999, 10_000).len(), 1);
        // A read spanning frames, and one at the very end, decode only the
        // frames they touch.
        let mut buf = vec![0u8; 100];
        r.read_exact_at(1000, &mut buf).unwrap();
        assert_eq!(&buf[..], &d[1000..1100]);
        assert_eq!(r.frames_decoded(), 2);
        let mut last = [0u8; 16];
        r.read_exact_at(10_000 - 16, &mut last).unwrap();
        assert_eq!(&last[..], &d[10_000 - 16..]);
        assert_eq!(r.frames_decoded(), 3);
        assert!(matches!(
            r.read_exact_at(9_990, &mut buf),
            Err(ReadError::OutOfRange { offset: 10_000, .. })
        ));
        // zstd -d view: the frames, without the table.
        assert_eq!(zstd::stream::decode_all(&img[..]).unwrap(), d);
    }

    #[test]
    fn frame_stream_in_order_with_the_file_hashed() {
        use sha2::Digest;
        let d = data(50_000);
        let img = image(&d, 4096);
        let t = SeekTable::read_from(&mut Cursor::new(&img)).unwrap();
        let mut s = FrameStream::start(
            Cursor::new(img.clone()),
            t.frames(),
            t.table_len(),
            3,
            sha2::Sha256::new(),
        )
        .unwrap();
        let mut out = Vec::new();
        while let Some(f) = s.next_frame() {
            let (frame, bytes) = f.unwrap();
            assert_eq!(frame.decompressed_offset, out.len() as u64);
            out.extend_from_slice(bytes);
        }
        let h = s.finish().unwrap();
        assert_eq!(out, d);
        assert_eq!(h.finalize()[..], sha2::Sha256::digest(&img)[..]);
        // A sub-run from the middle.
        let mid = &t.frames()[5..8];
        let mut s = FrameStream::start(Cursor::new(img), mid, 0, 2, ()).unwrap();
        let mut got = Vec::new();
        while let Some(f) = s.next_frame() {
            got.extend_from_slice(f.unwrap().1);
        }
        assert_eq!(got, &d[5 * 4096..8 * 4096]);
    }

    #[test]
    fn a_flipped_byte_is_located_and_later_frames_still_checked() {
        let d = data(20_000);
        let mut img = image(&d, 4096);
        let t = SeekTable::read_from(&mut Cursor::new(&img)).unwrap();
        let f2 = t.frames()[2];
        img[(f2.compressed_offset + u64::from(f2.compressed_len) / 2) as usize] ^= 0x40;
        let mut s = FrameStream::start(Cursor::new(img.clone()), t.frames(), 0, 2, ()).unwrap();
        let mut bad = Vec::new();
        let mut good = 0;
        while let Some(f) = s.next_frame() {
            match f {
                Ok(_) => good += 1,
                Err(ReadError::Frame { frame, .. }) => bad.push(frame.index),
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(bad, vec![2]);
        assert_eq!(good, 4);
        let mut r = SeekableReader::open(Cursor::new(img)).unwrap();
        let err = r.read_exact_at(2 * 4096 + 5, &mut [0u8; 4]).unwrap_err();
        let msg = err.to_string();
        assert!(msg.starts_with("frame 2 (file bytes"), "{msg}");
        assert!(msg.contains("stream bytes 8192-12287"), "{msg}");
    }

    #[test]
    fn frames_without_their_own_checksum_are_checked_by_xxh64() {
        let d = data(3000);
        let mut enc = zstd::bulk::Compressor::new(1).unwrap();
        enc.include_checksum(false).unwrap();
        let mut file = Vec::new();
        let mut entries = Vec::new();
        for chunk in d.chunks(1000) {
            let z = enc.compress(chunk).unwrap();
            assert_eq!(z[4] & 0x04, 0, "frame has no checksum");
            entries.push(Entry {
                compressed: z.len() as u32,
                decompressed: chunk.len() as u32,
                checksum: Some(frame_checksum(chunk)),
            });
            file.extend_from_slice(&z);
        }
        entries[2].checksum = Some(entries[2].checksum.unwrap() ^ 1);
        let mut w = TableWriter::new(&mut file, 3, true).unwrap();
        for e in entries {
            w.push(e).unwrap();
        }
        w.finish().unwrap();
        let mut r = SeekableReader::open(Cursor::new(file)).unwrap();
        let mut buf = vec![0u8; 2000];
        r.read_exact_at(0, &mut buf).unwrap();
        assert_eq!(&buf[..], &d[..2000]);
        let err = r.read_exact_at(2500, &mut [0u8; 1]).unwrap_err();
        assert!(
            matches!(
                err,
                ReadError::Frame {
                    kind: FrameError::Checksum { .. },
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn a_wrong_table_checksum_is_named() {
        let d = data(3000);
        let mut img = image(&d, 1000);
        // Entry 1's checksum: table header 8 bytes, 12 per entry.
        let t = SeekTable::read_from(&mut Cursor::new(&img)).unwrap();
        let at = (t.data_len() + 8 + 12 + 8) as usize;
        img[at] ^= 1;
        let mut r = SeekableReader::open(Cursor::new(img)).unwrap();
        let err = r.read_exact_at(1500, &mut [0u8; 1]).unwrap_err();
        assert!(
            matches!(
                err,
                ReadError::Frame {
                    kind: FrameError::Checksum { .. },
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn damaged_tables_truncation_and_garbage_are_named() {
        let d = data(5000);
        let img = image(&d, 1000);
        let table = |b: &[u8]| SeekTable::read_from(&mut Cursor::new(b.to_vec()));

        // Truncated: the footer is gone.
        let err = table(&img[..img.len() - 100]).unwrap_err();
        assert!(
            matches!(err, ReadError::Footer(FooterError::BadMagic { .. })),
            "{err}"
        );
        // Trailing garbage after the table.
        let mut g = img.clone();
        g.extend_from_slice(b"garbage");
        assert!(matches!(table(&g).unwrap_err(), ReadError::Footer(_)));
        // A frame removed from the middle: sizes no longer add up.
        let t = table(&img).unwrap();
        let f1 = t.frames()[1];
        let mut cut = img[..f1.compressed_offset as usize].to_vec();
        cut.extend_from_slice(&img[f1.compressed_end() as usize..]);
        let err = table(&cut).unwrap_err();
        assert!(matches!(err, ReadError::DataLenMismatch { .. }), "{err}");
        assert!(err.to_string().contains("truncated"), "{err}");
        // Bytes inserted before the table.
        let mut ins = img[..t.data_len() as usize].to_vec();
        ins.extend_from_slice(b"xx");
        ins.extend_from_slice(&img[t.data_len() as usize..]);
        let err = table(&ins).unwrap_err();
        assert!(err.to_string().contains("inserted"), "{err}");
        // A footer claiming 4 billion frames is refused before allocating.
        let mut big = img.clone();
        let n = big.len();
        big[n - 9..n - 5].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            table(&big).unwrap_err(),
            ReadError::TableExceedsFile { .. }
        ));
        // A damaged skippable header.
        let mut hdr = img.clone();
        hdr[t.data_len() as usize] ^= 0xff;
        assert!(matches!(
            table(&hdr).unwrap_err(),
            ReadError::BadTableHeader { .. }
        ));
        // An entry claiming a huge decompressed size.
        let mut huge = img.clone();
        let e0 = t.data_len() as usize + 8 + 4;
        huge[e0..e0 + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            table(&huge).unwrap_err(),
            ReadError::FrameTooLarge { index: 0, .. }
        ));
        // An entry with compressed size 0.
        let mut zero = img.clone();
        let e0 = t.data_len() as usize + 8;
        zero[e0..e0 + 4].copy_from_slice(&0u32.to_le_bytes());
        assert!(matches!(
            table(&zero).unwrap_err(),
            ReadError::ImpossibleFrame { index: 0, .. }
        ));
        // A compressed size larger than any frame of its content can be.
        let mut fat = img.clone();
        fat[e0..e0 + 4].copy_from_slice(&5000u32.to_le_bytes());
        assert!(matches!(
            table(&fat).unwrap_err(),
            ReadError::ImpossibleFrame {
                index: 0,
                compressed: 5000,
                decompressed: 1000
            }
        ));
        assert!(matches!(
            table(&[0u8; 5]).unwrap_err(),
            ReadError::TooShort { len: 5 }
        ));
    }

    #[test]
    fn entries_that_lie_about_frame_boundaries_are_caught() {
        let d = data(4000);
        let img = image(&d, 2000);
        let t = SeekTable::read_from(&mut Cursor::new(&img)).unwrap();
        // Move one byte from frame 0's size to frame 1's: the totals still
        // add up, but neither entry covers exactly one zstd frame.
        let mut lie = img.clone();
        let e0 = t.data_len() as usize + 8;
        let c0 = t.frames()[0].compressed_len;
        let c1 = t.frames()[1].compressed_len;
        lie[e0..e0 + 4].copy_from_slice(&(c0 - 1).to_le_bytes());
        lie[e0 + 12..e0 + 16].copy_from_slice(&(c1 + 1).to_le_bytes());
        let mut r = SeekableReader::open(Cursor::new(lie)).unwrap();
        let err = r.read_exact_at(0, &mut [0u8; 1]).unwrap_err();
        assert!(
            matches!(
                err,
                ReadError::Frame {
                    kind: FrameError::NotAFrame { .. } | FrameError::LengthMismatch { .. },
                    ..
                }
            ),
            "{err}"
        );
        let err = r.read_exact_at(3000, &mut [0u8; 1]).unwrap_err();
        assert!(matches!(err, ReadError::Frame { .. }), "{err}");
        // A decompressed size that disagrees with the frame.
        let mut size = img.clone();
        size[e0 + 4..e0 + 8].copy_from_slice(&1999u32.to_le_bytes());
        size[e0 + 16..e0 + 20].copy_from_slice(&2001u32.to_le_bytes());
        let mut r = SeekableReader::open(Cursor::new(size)).unwrap();
        let err = r.read_exact_at(0, &mut [0u8; 1]).unwrap_err();
        assert!(
            matches!(
                err,
                ReadError::Frame {
                    kind: FrameError::Decompress { .. } | FrameError::SizeMismatch { .. },
                    ..
                }
            ),
            "{err}"
        );
    }
}
