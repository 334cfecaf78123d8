//! One data frame ([`Frame`]): where it is, how it is decoded and checked
//! ([`decode_frame`]), and what is wrong when it fails ([`FrameError`],
//! [`ReadError`]); shared by the table, the random-access reader and the
//! frame stream.

use std::io;

use crate::seektable::{FooterError, SKIPPABLE_MAGIC};
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

/// Trailing bytes (the seek table) are hashed in chunks of this size.
pub(super) const TABLE_CHUNK: usize = 64 * 1024;

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
    /// Seek table entries read back from the file disagree with the ones
    /// checked when the table was read (the file changed meanwhile).
    #[error(
        "the seek table's entries from frame {first_frame} on changed since the table was checked (the file is being modified?)"
    )]
    TableChanged {
        /// First frame of the block read back.
        first_frame: u32,
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

pub(super) fn io_at(offset: u64) -> impl FnOnce(io::Error) -> ReadError {
    move |source| ReadError::Io { offset, source }
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

pub(super) fn new_dctx() -> io::Result<zstd::bulk::Decompressor<'static>> {
    zstd::bulk::Decompressor::new()
}
