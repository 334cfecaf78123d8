//! The address map of a LiME stream found by hopping from header to header
//! with random access: a seekable image decompresses only the frames holding
//! headers, a plain LiME file reads 32 bytes per record. The same checks as
//! [`fv_formats::lime::RecordReader`] apply (valid headers, ascending
//! non-overlapping ranges, the stream ends exactly after the last record), and
//! with the same error variants.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use fv_evidence::reader::SeekableReader;
use fv_formats::lime::{HEADER_LEN, Header, LimeError};

use crate::error::Error;

/// More records than this is not a memory dump (real ones have a few dozen
/// RAM ranges at most); refusing bounds the map's memory.
pub const MAX_RECORDS: usize = 1 << 20;

/// One record located in the stream. In JSON (`info --json`) its keys are
/// the manifest's and `verify --json`'s (`start`, `end`, `length`,
/// `lime_offset`), plus `payload_offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Located {
    /// First physical address.
    pub start: u64,
    /// Last physical address (inclusive).
    pub end: u64,
    /// Offset of the record's header in the stream.
    #[serde(rename = "lime_offset")]
    pub header_offset: u64,
    /// Offset of its first payload byte.
    pub payload_offset: u64,
    /// Payload length.
    #[serde(rename = "length")]
    pub len: u64,
}

impl Located {
    /// One past the last payload byte in the stream.
    pub fn payload_end(&self) -> u64 {
        // Saturating: a map built from a manifest carries the manifest's
        // numbers, which may be anything.
        self.payload_offset.saturating_add(self.len)
    }
}

/// Random access to a decompressed LiME stream.
pub trait StreamAt {
    /// Length of the stream.
    fn stream_len(&self) -> u64;
    /// Fills `buf` from stream offset `offset`.
    ///
    /// # Errors
    /// [`Error::Image`] or [`Error::Input`], naming the file.
    fn read_exact_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), Error>;
    /// The file, for messages.
    fn path(&self) -> &Path;
    /// The seekable image behind this stream, if it is one.
    fn image(&mut self) -> Option<&mut ImageAt> {
        None
    }
}

/// A seekable image.
#[derive(Debug)]
pub struct ImageAt {
    /// The image file.
    pub path: PathBuf,
    /// Its reader.
    pub reader: SeekableReader<File>,
}

impl ImageAt {
    /// Checks the seek table of the opened image `f` (`path` names it in
    /// messages).
    ///
    /// # Errors
    /// [`Error::Image`].
    pub fn new(f: File, path: &Path) -> Result<Self, Error> {
        let reader = SeekableReader::open(f).map_err(|source| Error::Image {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(Self {
            path: path.to_path_buf(),
            reader,
        })
    }
}

impl StreamAt for ImageAt {
    fn stream_len(&self) -> u64 {
        self.reader.table().decompressed_len()
    }
    fn read_exact_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), Error> {
        self.reader
            .read_exact_at(offset, buf)
            .map_err(|source| Error::Image {
                path: self.path.clone(),
                source,
            })
    }
    fn path(&self) -> &Path {
        &self.path
    }
    fn image(&mut self) -> Option<&mut ImageAt> {
        Some(self)
    }
}

/// A plain LiME file.
#[derive(Debug)]
pub struct FileAt {
    /// The file.
    pub path: PathBuf,
    /// It, open read-only.
    pub file: File,
    /// Its length.
    pub len: u64,
}

impl FileAt {
    /// Takes the opened plain file `file` (`path` names it in messages).
    ///
    /// # Errors
    /// [`Error::Input`] if its length cannot be read.
    pub fn new(file: File, path: &Path) -> Result<Self, Error> {
        let len = file
            .metadata()
            .map_err(|source| Error::Input {
                path: path.to_path_buf(),
                source,
            })?
            .len();
        Ok(Self {
            path: path.to_path_buf(),
            file,
            len,
        })
    }
}

impl StreamAt for FileAt {
    fn stream_len(&self) -> u64 {
        self.len
    }
    fn read_exact_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), Error> {
        self.file
            .read_exact_at(buf, offset)
            .map_err(|source| Error::Input {
                path: self.path.clone(),
                source,
            })
    }
    fn path(&self) -> &Path {
        &self.path
    }
}

/// Walks the stream's headers.
///
/// # Errors
/// [`Error::Lime`] for a malformed stream (with the record and offset),
/// or the source's read errors.
pub fn walk(src: &mut dyn StreamAt) -> Result<Vec<Located>, Error> {
    let len = src.stream_len();
    let lime = |source: LimeError, path: &Path| Error::Lime {
        path: path.to_path_buf(),
        source,
    };
    let mut records: Vec<Located> = Vec::new();
    let mut offset = 0u64;
    while offset < len {
        let index = records.len() as u64;
        if records.len() >= MAX_RECORDS {
            return Err(Error::Unrecognised {
                path: src.path().to_path_buf(),
                reason: format!(
                    "LiME stream has more than {MAX_RECORDS} records: not a memory dump this tool handles"
                ),
            });
        }
        let left = len - offset;
        if left < HEADER_LEN as u64 {
            return Err(lime(
                LimeError::TrailingBytes {
                    offset,
                    len: left as usize,
                },
                src.path(),
            ));
        }
        let mut buf = [0u8; HEADER_LEN];
        src.read_exact_at(offset, &mut buf)?;
        let header = Header::parse(&buf, index, offset).map_err(|e| lime(e, src.path()))?;
        if let Some(prev) = records.last()
            && header.start <= prev.end
        {
            return Err(lime(
                LimeError::Unordered {
                    record: index,
                    offset,
                    start: header.start,
                    end: header.end,
                    previous_end: prev.end,
                },
                src.path(),
            ));
        }
        // `parse` rejected lengths that overflow.
        let plen = header.payload_len().unwrap_or(0);
        let payload_offset = offset + HEADER_LEN as u64;
        let available = len - payload_offset;
        if plen > available {
            return Err(lime(
                LimeError::Truncated {
                    record: index,
                    start: header.start,
                    end: header.end,
                    got: available,
                    expected: plen,
                },
                src.path(),
            ));
        }
        records.push(Located {
            start: header.start,
            end: header.end,
            header_offset: offset,
            payload_offset,
            len: plen,
        });
        offset = payload_offset + plen;
    }
    if records.is_empty() {
        return Err(lime(LimeError::Empty, src.path()));
    }
    Ok(records)
}

/// The physical ranges (end inclusive) and LiME headers that stream bytes
/// `[from, to)` hold, as text for messages: `0x1000-0x1fff`, or
/// `header of record 2`.
pub fn describe_stream_span(map: &[Located], from: u64, to: u64) -> Vec<String> {
    let mut out = Vec::new();
    for (i, r) in map.iter().enumerate() {
        if from < r.payload_offset && to > r.header_offset {
            out.push(format!(
                "header of record {i} ({:#x}-{:#x})",
                r.start, r.end
            ));
        }
        let s = from.max(r.payload_offset);
        let e = to.min(r.payload_end());
        if s < e {
            // s >= payload_offset and e > s: no underflow; the sums saturate
            // for maps taken from a manifest with impossible values.
            let a = r.start.saturating_add(s - r.payload_offset);
            let b = r.start.saturating_add(e - 1 - r.payload_offset);
            out.push(format!("{a:#x}-{b:#x}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Mem(Vec<u8>, PathBuf);

    impl StreamAt for Mem {
        fn stream_len(&self) -> u64 {
            self.0.len() as u64
        }
        fn read_exact_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), Error> {
            let o = offset as usize;
            buf.copy_from_slice(&self.0[o..o + buf.len()]);
            Ok(())
        }
        fn path(&self) -> &Path {
            &self.1
        }
    }

    fn stream(records: &[(u64, u64)]) -> Vec<u8> {
        let mut out = Vec::new();
        for &(s, e) in records {
            out.extend_from_slice(&Header::new(s, e).to_bytes());
            out.resize(out.len() + (e - s + 1) as usize, 0xab);
        }
        out
    }

    fn walk_bytes(b: Vec<u8>) -> Result<Vec<Located>, Error> {
        walk(&mut Mem(b, PathBuf::from("mem")))
    }

    #[test]
    fn maps_records_and_locates_spans() {
        let map = walk_bytes(stream(&[(0x1000, 0x1fff), (0x10_0000, 0x10_00ff)])).unwrap();
        assert_eq!(map.len(), 2);
        assert_eq!(map[1].header_offset, 32 + 0x1000);
        assert_eq!(map[1].payload_offset, 64 + 0x1000);
        // Stream bytes from the middle of record 0 into record 1's payload.
        let span = describe_stream_span(&map, 32 + 0x800, 64 + 0x1000 + 0x10);
        assert_eq!(
            span,
            vec![
                "0x1800-0x1fff".to_string(),
                "header of record 1 (0x100000-0x1000ff)".to_string(),
                "0x100000-0x10000f".to_string()
            ]
        );
    }

    #[test]
    fn malformed_streams_are_named() {
        let mut trailing = stream(&[(0, 0xff)]);
        trailing.extend_from_slice(b"junk");
        assert!(matches!(
            walk_bytes(trailing),
            Err(Error::Lime {
                source: LimeError::TrailingBytes { len: 4, .. },
                ..
            })
        ));
        assert!(matches!(
            walk_bytes(stream(&[(0x1000, 0x10ff), (0x1000, 0x10ff)])),
            Err(Error::Lime {
                source: LimeError::Unordered { record: 1, .. },
                ..
            })
        ));
        let mut short = stream(&[(0, 0xff), (0x1000, 0x10ff)]);
        short.truncate(short.len() - 1);
        assert!(matches!(
            walk_bytes(short),
            Err(Error::Lime {
                source: LimeError::Truncated {
                    record: 1,
                    got: 0xff,
                    expected: 0x100,
                    ..
                },
                ..
            })
        ));
        let mut huge = Header::new(0, u64::MAX - 1).to_bytes().to_vec();
        huge.extend_from_slice(&[0; 10]);
        assert!(matches!(
            walk_bytes(huge),
            Err(Error::Lime {
                source: LimeError::Truncated { got: 10, .. },
                ..
            })
        ));
        assert!(matches!(
            walk_bytes(Vec::new()),
            Err(Error::Lime {
                source: LimeError::Empty,
                ..
            })
        ));
    }
}
