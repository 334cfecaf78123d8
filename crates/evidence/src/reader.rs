//! Reading a seekable zstd image without trusting it.
//!
//! - [`SeekTable::read_from`] parses and checks the seek table at the end of
//!   a file: footer, skippable frame header, that the table fits the file,
//!   that the frames' compressed sizes add up to exactly the bytes before the
//!   table (so truncation, appended bytes and a lying table are all caught),
//!   and a per-frame size limit. It keeps a sparse index (16 bytes per 4096
//!   frames), not the entries: memory does not grow with the image.
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

use std::io::{Read, Seek};

/// Random access to the decompressed stream of a seekable image.
#[derive(Debug)]
pub struct SeekableReader<R> {
    inner: R,
    table: SeekTable,
    blocks: BlockCache,
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

    /// Uses an already parsed table (a clone shares its index).
    ///
    /// # Errors
    /// [`ReadError::Io`] if no zstd context can be made.
    pub fn with_table(inner: R, table: SeekTable) -> Result<Self, ReadError> {
        let dctx = new_dctx().map_err(io_at(0))?;
        Ok(Self {
            inner,
            table,
            blocks: BlockCache::default(),
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

    /// The indices of the frames holding stream bytes `[start, end)`.
    ///
    /// # Errors
    /// As [`SeekTable::frame_range`].
    pub fn frame_range(&mut self, start: u64, end: u64) -> Result<std::ops::Range<u32>, ReadError> {
        self.table
            .frame_range(&mut self.inner, &mut self.blocks, start, end)
    }

    /// Reads up to `buf.len()` bytes at stream offset `offset`, decompressing
    /// only the frames needed; returns the count (0 at or past the end).
    ///
    /// # Errors
    /// [`ReadError::Frame`] for a bad frame, [`ReadError::Io`],
    /// [`ReadError::TableChanged`].
    pub fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<usize, ReadError> {
        let mut done = 0;
        while done < buf.len() {
            let at = offset + done as u64;
            let Some(frame) = self.table.frame_at(&mut self.inner, &mut self.blocks, at)? else {
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

mod frame;
mod stream;
mod table;
pub use frame::{
    Frame, FrameError, MAX_FRAME_DECOMPRESSED, MIN_FRAME_LEN, ReadError, decode_frame,
    max_frame_len,
};
use frame::{io_at, new_dctx};
pub use stream::{FrameStream, OnCompressed};
use table::read_exact_at;
pub use table::{BLOCK, BlockCache, FrameCursor, SeekTable};

#[cfg(test)]
mod tests;
