//! The seek table of the zstd seekable format.
//!
//! Layout (little-endian), as the last bytes of the file:
//! ```text
//! u32 0x184D2A5E          skippable frame magic
//! u32 frame_size          bytes that follow in this skippable frame
//! n × { u32 compressed_size, u32 decompressed_size [, u32 checksum] }
//! u32 number_of_frames
//! u8  descriptor          bit 7: checksums present; bits 0-6 reserved, zero
//! u32 0x8F92EAB1          seekable magic
//! ```
//! The checksum is the low 32 bits of XXH64 of the frame's decompressed
//! bytes, which is also what zstd stores as a frame's content checksum: a
//! writer that enables frame checksums can copy the last 4 bytes of each frame.

use std::io::{self, Write};

/// Magic of the skippable frame that carries the table.
pub const SKIPPABLE_MAGIC: u32 = 0x184D_2A5E;
/// Magic at the very end of a seekable file.
pub const SEEKABLE_MAGIC: u32 = 0x8F92_EAB1;
/// Size of the footer (`number_of_frames`, descriptor, magic).
pub const FOOTER_LEN: usize = 9;
/// Size of the skippable frame header (magic, frame size).
pub const FRAME_HEADER_LEN: usize = 8;
/// Descriptor bit: entries carry a checksum.
pub const CHECKSUM_FLAG: u8 = 0x80;

/// One frame's entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    /// Size of the zstd frame in the file.
    pub compressed: u32,
    /// Size of its decompressed content.
    pub decompressed: u32,
    /// Low 32 bits of XXH64 of the decompressed content, when present.
    pub checksum: Option<u32>,
}

/// Bytes per entry.
pub const fn entry_len(checksums: bool) -> usize {
    if checksums { 12 } else { 8 }
}

/// Total size of the seek table (skippable frame header included) for
/// `frames` frames, or `None` if it would not fit the format's u32 size field.
pub fn table_len(frames: u64, checksums: bool) -> Option<u64> {
    let body = frames
        .checked_mul(entry_len(checksums) as u64)?
        .checked_add(FOOTER_LEN as u64)?;
    u32::try_from(body).ok()?;
    body.checked_add(FRAME_HEADER_LEN as u64)
}

/// Why a seek table cannot be written.
#[derive(Debug, thiserror::Error)]
pub enum TableWriteError {
    /// More frames than a u32 count or a u32 frame size allow.
    #[error("seek table for {frames} frames does not fit the seekable format (u32 sizes)")]
    TooManyFrames {
        /// The frame count asked for.
        frames: u64,
    },
    /// The caller pushed a different number of entries than announced.
    #[error("seek table announced {announced} frames but {pushed} entries were written")]
    CountMismatch {
        /// Frames announced to [`TableWriter::new`].
        announced: u32,
        /// Entries pushed.
        pushed: u32,
    },
    /// An entry's checksum presence disagrees with the table's descriptor.
    #[error("seek table entry {index}: checksum presence differs from the table's descriptor")]
    ChecksumMismatch {
        /// Index of the entry.
        index: u32,
    },
    /// Writing failed.
    #[error("writing seek table: {0}")]
    Io(#[from] io::Error),
}

/// Streams a seek table: the entry count is announced first (the frame size
/// field precedes the entries), so entries never need to be held in memory.
#[derive(Debug)]
pub struct TableWriter<W: Write> {
    out: W,
    frames: u32,
    pushed: u32,
    checksums: bool,
}

impl<W: Write> TableWriter<W> {
    /// Writes the skippable frame header for `frames` entries.
    ///
    /// # Errors
    /// [`TableWriteError::TooManyFrames`], or I/O.
    pub fn new(mut out: W, frames: u64, checksums: bool) -> Result<Self, TableWriteError> {
        let total =
            table_len(frames, checksums).ok_or(TableWriteError::TooManyFrames { frames })?;
        let frames32 =
            u32::try_from(frames).map_err(|_| TableWriteError::TooManyFrames { frames })?;
        // table_len checked that the body fits a u32.
        let body = u32::try_from(total - FRAME_HEADER_LEN as u64)
            .map_err(|_| TableWriteError::TooManyFrames { frames })?;
        out.write_all(&SKIPPABLE_MAGIC.to_le_bytes())?;
        out.write_all(&body.to_le_bytes())?;
        Ok(Self {
            out,
            frames: frames32,
            pushed: 0,
            checksums,
        })
    }

    /// Appends one entry.
    ///
    /// # Errors
    /// Count or checksum mismatches, or I/O.
    pub fn push(&mut self, entry: Entry) -> Result<(), TableWriteError> {
        if self.pushed == self.frames {
            return Err(TableWriteError::CountMismatch {
                announced: self.frames,
                pushed: self.pushed.saturating_add(1),
            });
        }
        let mut buf = [0u8; 12];
        buf[0..4].copy_from_slice(&entry.compressed.to_le_bytes());
        buf[4..8].copy_from_slice(&entry.decompressed.to_le_bytes());
        match (self.checksums, entry.checksum) {
            (true, Some(c)) => buf[8..12].copy_from_slice(&c.to_le_bytes()),
            (false, None) => {}
            _ => return Err(TableWriteError::ChecksumMismatch { index: self.pushed }),
        }
        self.out.write_all(&buf[..entry_len(self.checksums)])?;
        self.pushed += 1;
        Ok(())
    }

    /// Writes the footer and returns the inner writer.
    ///
    /// # Errors
    /// [`TableWriteError::CountMismatch`] if fewer entries were pushed, or I/O.
    pub fn finish(mut self) -> Result<W, TableWriteError> {
        if self.pushed != self.frames {
            return Err(TableWriteError::CountMismatch {
                announced: self.frames,
                pushed: self.pushed,
            });
        }
        self.out
            .write_all(&encode_footer(self.frames, self.checksums))?;
        self.out.flush()?;
        Ok(self.out)
    }
}

/// The 9-byte footer.
pub fn encode_footer(frames: u32, checksums: bool) -> [u8; FOOTER_LEN] {
    let mut b = [0u8; FOOTER_LEN];
    b[0..4].copy_from_slice(&frames.to_le_bytes());
    b[4] = if checksums { CHECKSUM_FLAG } else { 0 };
    b[5..9].copy_from_slice(&SEEKABLE_MAGIC.to_le_bytes());
    b
}

/// What a footer says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Footer {
    /// Number of frames (entries).
    pub frames: u32,
    /// Entries carry checksums.
    pub checksums: bool,
}

/// Why a footer is not a seekable footer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FooterError {
    /// The last four bytes are not the seekable magic.
    #[error(
        "no seek table: the file does not end in the seekable magic 0x8F92EAB1 (found {found:#010x})"
    )]
    BadMagic {
        /// What the last four bytes hold.
        found: u32,
    },
    /// Reserved descriptor bits are set.
    #[error("seek table footer: reserved descriptor bits set ({descriptor:#04x})")]
    ReservedBits {
        /// The descriptor byte.
        descriptor: u8,
    },
}

impl Footer {
    /// Parses the last 9 bytes of a file.
    ///
    /// # Errors
    /// [`FooterError`].
    pub fn parse(bytes: &[u8; FOOTER_LEN]) -> Result<Self, FooterError> {
        let frames = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
        let descriptor = bytes[4];
        let magic = u32::from_le_bytes([bytes[5], bytes[6], bytes[7], bytes[8]]);
        if magic != SEEKABLE_MAGIC {
            return Err(FooterError::BadMagic { found: magic });
        }
        if descriptor & !CHECKSUM_FLAG != 0 {
            return Err(FooterError::ReservedBits { descriptor });
        }
        Ok(Self {
            frames,
            checksums: descriptor & CHECKSUM_FLAG != 0,
        })
    }

    /// Size of the whole table (skippable header included) this footer implies.
    pub fn table_len(&self) -> u64 {
        // At most 2^32 * 12 + 17 bytes: no overflow in u64.
        FRAME_HEADER_LEN as u64
            + u64::from(self.frames) * entry_len(self.checksums) as u64
            + FOOTER_LEN as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_bytes_follow_the_format() {
        let mut w = TableWriter::new(Vec::new(), 2, true).unwrap();
        w.push(Entry {
            compressed: 10,
            decompressed: 100,
            checksum: Some(0xdead_beef),
        })
        .unwrap();
        w.push(Entry {
            compressed: 11,
            decompressed: 50,
            checksum: Some(1),
        })
        .unwrap();
        let bytes = w.finish().unwrap();
        assert_eq!(bytes.len() as u64, table_len(2, true).unwrap());
        assert_eq!(&bytes[0..4], &0x184D_2A5Eu32.to_le_bytes());
        assert_eq!(&bytes[4..8], &(2 * 12 + 9u32).to_le_bytes());
        assert_eq!(&bytes[8..12], &10u32.to_le_bytes());
        assert_eq!(&bytes[16..20], &0xdead_beefu32.to_le_bytes());
        let tail: [u8; 9] = bytes[bytes.len() - 9..].try_into().unwrap();
        assert_eq!(tail, [2, 0, 0, 0, 0x80, 0xB1, 0xEA, 0x92, 0x8F]);
        let footer = Footer::parse(&tail).unwrap();
        assert_eq!(
            footer,
            Footer {
                frames: 2,
                checksums: true
            }
        );
        assert_eq!(footer.table_len(), bytes.len() as u64);
    }

    #[test]
    fn count_and_checksum_mismatches_are_refused() {
        let w = TableWriter::new(Vec::new(), 1, true).unwrap();
        assert!(matches!(
            w.finish(),
            Err(TableWriteError::CountMismatch {
                announced: 1,
                pushed: 0
            })
        ));
        let mut w = TableWriter::new(Vec::new(), 1, true).unwrap();
        assert!(matches!(
            w.push(Entry {
                compressed: 1,
                decompressed: 1,
                checksum: None
            }),
            Err(TableWriteError::ChecksumMismatch { index: 0 })
        ));
        assert!(table_len(u64::from(u32::MAX), true).is_none());
    }

    #[test]
    fn bad_footers_are_named() {
        let mut f = encode_footer(3, false);
        assert_eq!(
            Footer::parse(&f).unwrap(),
            Footer {
                frames: 3,
                checksums: false
            }
        );
        f[4] = 0x81;
        assert_eq!(
            Footer::parse(&f),
            Err(FooterError::ReservedBits { descriptor: 0x81 })
        );
        f[8] = 0;
        assert!(matches!(
            Footer::parse(&f),
            Err(FooterError::BadMagic { .. })
        ));
    }

    #[test]
    fn zstd_skips_the_table() {
        // A frame with a content checksum, then our table: zstd decodes the
        // frame's content only, and the checksum in the frame's last 4 bytes is
        // what the seek table carries.
        let data = b"LiME stream bytes".repeat(100);
        let mut enc = zstd::bulk::Compressor::new(1).unwrap();
        enc.include_checksum(true).unwrap();
        let frame = enc.compress(&data).unwrap();
        let checksum = u32::from_le_bytes(frame[frame.len() - 4..].try_into().unwrap());
        let mut file = frame.clone();
        let mut w = TableWriter::new(&mut file, 1, true).unwrap();
        w.push(Entry {
            compressed: frame.len() as u32,
            decompressed: data.len() as u32,
            checksum: Some(checksum),
        })
        .unwrap();
        w.finish().unwrap();
        assert_eq!(zstd::stream::decode_all(&file[..]).unwrap(), data);
    }
}
