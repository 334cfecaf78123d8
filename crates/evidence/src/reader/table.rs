//! [`SeekTable`]: the checked seek table, held as a sparse index.
//!
//! Memory must not grow with the image: a 24 TiB capture has 25 M frames,
//! and a copy of 40-byte entries per frame (several copies, as `verify` and
//! `extract` once made) was gigabytes. The table is therefore checked in
//! one streaming pass over its bytes and kept as one 16-byte checkpoint per
//! [`BLOCK`] frames (about 100 KiB for 24 TiB, 1.4 MiB for the largest table
//! the format can hold); entries are read back from the file a block at a
//! time when they are needed ([`FrameCursor`], [`BlockCache`]). Every block
//! read back is checked again, and must end exactly at the next checkpoint,
//! so a file changed underneath cannot slip a different table in.
//! [`SeekTable`] is an `Arc` inside: clones share the one index.

use std::io::{Read, Seek, SeekFrom};
use std::ops::Range;
use std::sync::Arc;

use super::frame::{Frame, MAX_FRAME_DECOMPRESSED, MIN_FRAME_LEN, ReadError, io_at, max_frame_len};
use crate::seektable::{FOOTER_LEN, FRAME_HEADER_LEN, Footer, SKIPPABLE_MAGIC, entry_len};

/// Frames per block: one checkpoint each in memory, one read of
/// `BLOCK * 12` bytes (48 KiB) and `BLOCK * 40` bytes of frames (160 KiB)
/// when a block is loaded.
pub const BLOCK: u32 = 4096;

/// Entries are read from the file in chunks of this many bytes while the
/// table is checked, so memory grows only with table bytes actually present.
const TABLE_CHUNK: usize = 64 * 1024;

/// Where a block starts, in the file and in the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Checkpoint {
    compressed: u64,
    decompressed: u64,
}

#[derive(Debug, PartialEq, Eq)]
struct Index {
    checksums: bool,
    count: u32,
    /// File offset of entry 0.
    entries_at: u64,
    table_offset: u64,
    table_len: u64,
    decompressed_len: u64,
    /// Largest compressed + decompressed size of one frame.
    largest: u64,
    /// Smallest and largest decompressed size of the frames but the last,
    /// and the last one's (to check frame sizes without reading entries).
    sizes: Option<(u32, u32, u32)>,
    /// `checkpoints[k]`: offsets of frame `k * BLOCK`; one more at the end
    /// with the totals.
    checkpoints: Vec<Checkpoint>,
}

/// The parsed, checked seek table (see the module documentation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeekTable {
    index: Arc<Index>,
}

/// Why an entry cannot describe a zstd frame, if it cannot.
fn check_entry(index: u32, compressed: u32, decompressed: u32) -> Result<(), ReadError> {
    if decompressed > MAX_FRAME_DECOMPRESSED {
        return Err(ReadError::FrameTooLarge {
            index,
            size: decompressed,
        });
    }
    // Bounds the memory a frame's compressed bytes take, and the number of
    // entries to the bytes before the table / 9.
    if compressed < MIN_FRAME_LEN || u64::from(compressed) > max_frame_len(decompressed) {
        return Err(ReadError::ImpossibleFrame {
            index,
            compressed,
            decompressed,
        });
    }
    Ok(())
}

fn word(e: &[u8], i: usize) -> u32 {
    u32::from_le_bytes([e[i], e[i + 1], e[i + 2], e[i + 3]])
}

pub(super) fn read_exact_at<R: Read + Seek>(
    r: &mut R,
    offset: u64,
    buf: &mut [u8],
) -> Result<(), ReadError> {
    r.seek(SeekFrom::Start(offset)).map_err(io_at(offset))?;
    r.read_exact(buf).map_err(io_at(offset))
}

impl SeekTable {
    /// Reads and checks the seek table at the end of `r` (which is left at an
    /// unspecified position), keeping only the sparse index.
    ///
    /// # Errors
    /// Every [`ReadError`] but `Frame`, `OutOfRange` and `TableChanged`.
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
        let magic = word(&header, 0);
        let size = word(&header, 4);
        let expected_size = table_len - FRAME_HEADER_LEN as u64;
        if magic != SKIPPABLE_MAGIC || u64::from(size) != expected_size {
            return Err(ReadError::BadTableHeader {
                offset: table_offset,
                magic,
                size,
                expected_size,
            });
        }

        let width = entry_len(footer.checksums);
        let entries_at = table_offset + FRAME_HEADER_LEN as u64;
        let mut chunk = vec![0u8; TABLE_CHUNK - TABLE_CHUNK % width];
        let mut left = u64::from(footer.frames) * width as u64;
        let mut at = entries_at;
        let mut pos = Checkpoint {
            compressed: 0,
            decompressed: 0,
        };
        let mut checkpoints = Vec::new();
        let mut largest = 0u64;
        let mut sizes: Option<(u32, u32, u32)> = None;
        let mut index = 0u32;
        'read: while left > 0 {
            let n = usize::try_from(left.min(chunk.len() as u64)).unwrap_or(chunk.len());
            read_exact_at(r, at, &mut chunk[..n])?;
            at += n as u64;
            left -= n as u64;
            for e in chunk[..n].chunks_exact(width) {
                let (compressed_len, decompressed_len) = (word(e, 0), word(e, 4));
                check_entry(index, compressed_len, decompressed_len)?;
                if index % BLOCK == 0 {
                    checkpoints.push(pos);
                }
                largest = largest.max(u64::from(compressed_len) + u64::from(decompressed_len));
                sizes = Some(match sizes {
                    None => (u32::MAX, 0, decompressed_len),
                    Some((lo, hi, prev)) => (lo.min(prev), hi.max(prev), decompressed_len),
                });
                // At most 2^32 entries of at most 2^32 bytes: no overflow.
                pos.compressed += u64::from(compressed_len);
                pos.decompressed += u64::from(decompressed_len);
                index = index.wrapping_add(1);
                // Stop early rather than walk a table that already claims
                // more than the file holds.
                if pos.compressed > table_offset {
                    break 'read;
                }
            }
        }
        if pos.compressed != table_offset {
            let hint = if pos.compressed > table_offset {
                "the file is truncated, or the table is damaged"
            } else {
                "bytes were inserted before the table, or the table is damaged"
            };
            return Err(ReadError::DataLenMismatch {
                frames: footer.frames,
                frames_len: pos.compressed,
                data_len: table_offset,
                hint,
            });
        }
        checkpoints.push(pos);
        checkpoints.shrink_to_fit();
        Ok(Self {
            index: Arc::new(Index {
                checksums: footer.checksums,
                count: footer.frames,
                entries_at,
                table_offset,
                table_len,
                decompressed_len: pos.decompressed,
                largest,
                sizes,
                checkpoints,
            }),
        })
    }

    /// How many data frames there are.
    pub fn frame_count(&self) -> u32 {
        self.index.count
    }

    /// Whether entries carry checksums.
    pub fn checksums(&self) -> bool {
        self.index.checksums
    }

    /// Bytes of data frames, i.e. the offset of the table in the file.
    pub fn data_len(&self) -> u64 {
        self.index.table_offset
    }

    /// Size of the table, skippable frame header and footer included.
    pub fn table_len(&self) -> u64 {
        self.index.table_len
    }

    /// Total file length the table implies.
    pub fn file_len(&self) -> u64 {
        self.index.table_offset + self.index.table_len
    }

    /// Length of the decompressed stream.
    pub fn decompressed_len(&self) -> u64 {
        self.index.decompressed_len
    }

    /// The largest compressed plus decompressed size of one frame (what one
    /// frame in flight costs).
    pub fn largest_frame(&self) -> u64 {
        self.index.largest
    }

    /// The smallest and largest decompressed sizes of every frame but the
    /// last, and the last one's (`None` without frames; the first two are
    /// `u32::MAX, 0` with one frame).
    pub fn frame_sizes(&self) -> Option<(u32, u32, u32)> {
        self.index.sizes
    }

    /// Bytes the index itself takes in memory (for tests and docs).
    pub fn index_bytes(&self) -> usize {
        self.index.checkpoints.capacity() * std::mem::size_of::<Checkpoint>()
    }

    fn blocks(&self) -> u32 {
        self.index.count.div_ceil(BLOCK)
    }

    fn checkpoint(&self, k: u32) -> Checkpoint {
        self.index
            .checkpoints
            .get(k as usize)
            .copied()
            .unwrap_or(Checkpoint {
                compressed: self.index.table_offset,
                decompressed: self.index.decompressed_len,
            })
    }

    /// Reads block `k`'s entries from `r` into `out`, checked as when the
    /// table was read, and checked to end at the next checkpoint.
    fn read_block<R: Read + Seek>(
        &self,
        r: &mut R,
        k: u32,
        out: &mut Vec<Frame>,
    ) -> Result<(), ReadError> {
        let first = k * BLOCK;
        let n = BLOCK.min(self.index.count.saturating_sub(first));
        let width = entry_len(self.index.checksums);
        let mut buf = vec![0u8; n as usize * width];
        read_exact_at(
            r,
            self.index.entries_at + u64::from(first) * width as u64,
            &mut buf,
        )?;
        let mut pos = self.checkpoint(k);
        out.clear();
        for (j, e) in buf.chunks_exact(width).enumerate() {
            let index = first + j as u32;
            let (compressed_len, decompressed_len) = (word(e, 0), word(e, 4));
            check_entry(index, compressed_len, decompressed_len)?;
            out.push(Frame {
                index,
                compressed_offset: pos.compressed,
                compressed_len,
                decompressed_offset: pos.decompressed,
                decompressed_len,
                checksum: self.index.checksums.then(|| word(e, 8)),
            });
            pos.compressed += u64::from(compressed_len);
            pos.decompressed += u64::from(decompressed_len);
        }
        if pos != self.checkpoint(k + 1) {
            return Err(ReadError::TableChanged { first_frame: first });
        }
        Ok(())
    }

    /// Every frame, read from `r` into one vector. Memory grows with the
    /// frame count (40 bytes each): for tests and small images only; the
    /// commands use [`FrameCursor`] and [`BlockCache`].
    ///
    /// # Errors
    /// [`ReadError::Io`], [`ReadError::TableChanged`].
    pub fn read_all_frames<R: Read + Seek>(&self, r: &mut R) -> Result<Vec<Frame>, ReadError> {
        let mut all = Vec::new();
        let mut block = Vec::new();
        for k in 0..self.blocks() {
            self.read_block(r, k, &mut block)?;
            all.extend_from_slice(&block);
        }
        Ok(all)
    }

    /// A cursor over frames `range` (indices), in order.
    pub fn cursor(&self, range: Range<u32>) -> FrameCursor {
        FrameCursor {
            next: range.start,
            end: range.end.min(self.index.count),
            cache: BlockCache::default(),
        }
    }

    /// The frame holding decompressed byte `offset` (empty frames are never
    /// returned), or `None` past the end.
    ///
    /// # Errors
    /// As [`BlockCache::get`].
    pub fn frame_at<R: Read + Seek>(
        &self,
        r: &mut R,
        cache: &mut BlockCache,
        offset: u64,
    ) -> Result<Option<Frame>, ReadError> {
        if offset >= self.index.decompressed_len {
            return Ok(None);
        }
        // The first frame whose end is past `offset` lies in the first block
        // whose end is past it.
        let k = partition(self.blocks(), |k| {
            self.checkpoint(k + 1).decompressed <= offset
        });
        let frames = cache.get(self, r, k)?;
        let i = frames.partition_point(|f| f.decompressed_end() <= offset);
        Ok(frames.get(i).copied())
    }

    /// The indices of the frames whose content intersects stream bytes
    /// `[start, end)`.
    ///
    /// # Errors
    /// As [`BlockCache::get`].
    pub fn frame_range<R: Read + Seek>(
        &self,
        r: &mut R,
        cache: &mut BlockCache,
        start: u64,
        end: u64,
    ) -> Result<Range<u32>, ReadError> {
        let first = self.first_where(r, cache, |f| f.decompressed_end() > start)?;
        if start >= end {
            return Ok(first..first);
        }
        let last = self.first_where(r, cache, |f| f.decompressed_offset >= end)?;
        Ok(first..last.max(first))
    }

    /// Index of the first frame for which `pred` holds (`pred` must be
    /// monotonic in file order), or the frame count.
    fn first_where<R: Read + Seek>(
        &self,
        r: &mut R,
        cache: &mut BlockCache,
        pred: impl Fn(&Frame) -> bool,
    ) -> Result<u32, ReadError> {
        // Block k holds the answer if its last frame satisfies `pred`;
        // the first such block, found by binary search over blocks.
        let blocks = self.blocks();
        let (mut lo, mut hi) = (0u32, blocks);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let last = cache.get(self, r, mid)?.last().copied();
            if last.is_some_and(|f| pred(&f)) {
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
        if lo == blocks {
            return Ok(self.index.count);
        }
        let frames = cache.get(self, r, lo)?;
        let i = frames.partition_point(|f| !pred(f));
        Ok(lo * BLOCK + i as u32)
    }
}

/// The first `k` in `0..n` for which `pred(k)` is false (`pred` true then
/// false).
fn partition(n: u32, pred: impl Fn(u32) -> bool) -> u32 {
    let (mut lo, mut hi) = (0u32, n);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if pred(mid) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    lo
}

/// One block of frames read back from the file, reused while reads stay in
/// it.
#[derive(Debug, Default)]
pub struct BlockCache {
    block: Option<u32>,
    frames: Vec<Frame>,
}

impl BlockCache {
    /// Block `k` of `table`, read from `r` unless cached. `r`'s position is
    /// restored, so a sequential reader of the data can share it.
    ///
    /// # Errors
    /// [`ReadError::Io`]; [`ReadError::TableChanged`] when the entries read
    /// now disagree with those checked when the table was read;
    /// [`ReadError::FrameTooLarge`] or [`ReadError::ImpossibleFrame`].
    pub fn get<R: Read + Seek>(
        &mut self,
        table: &SeekTable,
        r: &mut R,
        k: u32,
    ) -> Result<&[Frame], ReadError> {
        if self.block != Some(k) {
            self.block = None;
            let back = r.stream_position().map_err(io_at(0))?;
            table.read_block(r, k, &mut self.frames)?;
            r.seek(SeekFrom::Start(back)).map_err(io_at(back))?;
            self.block = Some(k);
        }
        Ok(&self.frames)
    }
}

/// Frames of a range in order, read a block at a time
/// ([`SeekTable::cursor`]).
#[derive(Debug)]
pub struct FrameCursor {
    next: u32,
    end: u32,
    cache: BlockCache,
}

impl FrameCursor {
    /// The next frame, or `None` after the last.
    ///
    /// # Errors
    /// As [`BlockCache::get`].
    pub fn next_frame<R: Read + Seek>(
        &mut self,
        table: &SeekTable,
        r: &mut R,
    ) -> Result<Option<Frame>, ReadError> {
        if self.next >= self.end {
            return Ok(None);
        }
        let i = self.next;
        let frames = self.cache.get(table, r, i / BLOCK)?;
        let frame = frames.get((i % BLOCK) as usize).copied();
        self.next += 1;
        Ok(frame)
    }

    /// Frames left.
    pub fn remaining(&self) -> u32 {
        self.end.saturating_sub(self.next)
    }
}
