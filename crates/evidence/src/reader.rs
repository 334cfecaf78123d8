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

mod stream;
pub use stream::{FrameStream, OnCompressed};

#[cfg(test)]
mod tests;
