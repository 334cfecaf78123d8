//! AVML's compressed image format (`avml --compress`; AVML calls it "LiME
//! version 2"), read as the LiME stream it stands for.
//!
//! Layout (microsoft/avml `src/image.rs`, `src/io/snappy.rs`), one block
//! after another, nothing after the last:
//! ```text
//! u32 0x4C4D5641 ("AVML")   u32 2   u64 start   u64 end (inclusive)   u64 0
//! a snappy frame stream (framing format: stream identifier, then
//!   compressed/uncompressed chunks, each with a masked CRC-32C) decoding to
//!   exactly end - start + 1 bytes
//! u64 the byte length of that snappy stream
//! ```
//! AVML cuts memory into blocks of at most 16 MiB and leaves all-zero blocks
//! out, so a block is a LiME record: [`Avml`] turns each into a LiME header
//! (version 1, same range) and the decoded bytes. Every chunk's CRC is
//! checked (by `snap`), a block must decode to exactly its header's length,
//! with no decoded byte left over, and its trailer must give the length its
//! snappy stream really had; anything else is an `InvalidData` error naming
//! the block and its offset in the input. Nothing is trusted to size an
//! allocation: the decoder's buffers are snappy's fixed 64 KiB chunk bounds.

use std::io::{self, Read};

use crate::lime::{HEADER_LEN, Header};

/// AVML's block magic ("AVML" read as a little-endian u32).
pub const MAGIC: u32 = 0x4C4D_5641;
/// The version AVML writes with its magic.
pub const VERSION: u32 = 2;

/// Whether `head` (the first 8 bytes of a file) is an AVML compressed image.
pub fn is_avml(head: &[u8]) -> bool {
    head.len() >= 8
        && u32::from_le_bytes([head[0], head[1], head[2], head[3]]) == MAGIC
        && u32::from_le_bytes([head[4], head[5], head[6], head[7]]) == VERSION
}

/// Appends one block as AVML writes it (header, snappy frame stream of
/// `data`, its length): fixtures for the tests of this crate and of
/// `capture`, built the way `avml --compress` builds its output.
///
/// # Errors
/// `data` is empty or its length is not that of `start..=end`, or the
/// encoder failed.
pub fn write_block(out: &mut Vec<u8>, start: u64, end: u64, data: &[u8]) -> io::Result<()> {
    use std::io::Write as _;
    if data.is_empty()
        || end.checked_sub(start).and_then(|d| d.checked_add(1)) != Some(data.len() as u64)
    {
        return Err(io::Error::other("block data does not match its range"));
    }
    for w in [MAGIC, VERSION] {
        out.extend_from_slice(&w.to_le_bytes());
    }
    for q in [start, end, 0] {
        out.extend_from_slice(&q.to_le_bytes());
    }
    let mut enc = snap::write::FrameEncoder::new(Vec::new());
    enc.write_all(data)?;
    let stream = enc
        .into_inner()
        .map_err(|e| io::Error::other(e.to_string()))?;
    out.extend_from_slice(&stream);
    out.extend_from_slice(&(stream.len() as u64).to_le_bytes());
    Ok(())
}

/// Counts what the snappy decoder reads; when fenced, reads nothing (so
/// the decoder can be asked whether it holds decoded bytes past the block
/// without it touching the trailer).
#[derive(Debug)]
struct Counted<R> {
    inner: R,
    count: u64,
    fenced: bool,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.fenced {
            return Ok(0);
        }
        let n = self.inner.read(buf)?;
        self.count += n as u64;
        Ok(n)
    }
}

/// Where the reader is.
enum State<R: Read> {
    /// Between blocks (or before the first): the input itself.
    Between(Counted<R>),
    /// Inside a block: its decoder and what it still owes.
    Block {
        decoder: snap::read::FrameDecoder<Counted<R>>,
        left: u64,
        index: u64,
        header_at: u64,
        stream_at: u64,
    },
    /// After an error (reads fail again) or the end.
    Done,
}

impl<R: Read> std::fmt::Debug for State<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Between(_) => "Between",
            Self::Block { .. } => "Block",
            Self::Done => "Done",
        })
    }
}

/// An AVML compressed image read as a LiME stream.
#[derive(Debug)]
pub struct Avml<R: Read> {
    state: State<R>,
    /// Bytes of the current LiME header not yet handed out.
    header: [u8; HEADER_LEN],
    header_pos: usize,
    /// Input bytes consumed (headers, snappy streams, trailers).
    input_offset: u64,
    blocks: u64,
    failed: Option<String>,
}

fn bad(text: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, text)
}

impl<R: Read> Avml<R> {
    /// Reads `input`, which must start with an AVML block header.
    pub fn new(input: R) -> Self {
        Self {
            state: State::Between(Counted {
                inner: input,
                count: 0,
                fenced: false,
            }),
            header: [0; HEADER_LEN],
            header_pos: HEADER_LEN,
            input_offset: 0,
            blocks: 0,
            failed: None,
        }
    }

    /// Blocks read so far.
    pub fn blocks(&self) -> u64 {
        self.blocks
    }

    /// Input bytes consumed so far.
    pub fn input_offset(&self) -> u64 {
        self.input_offset
    }

    fn fail(&mut self, e: io::Error) -> io::Error {
        self.failed = Some(e.to_string());
        self.state = State::Done;
        e
    }

    /// Reads the next block header; `Ok(false)` at a clean end of input.
    fn next_block(&mut self) -> io::Result<bool> {
        let State::Between(mut input) = std::mem::replace(&mut self.state, State::Done) else {
            return Ok(false);
        };
        let at = self.input_offset;
        let mut raw = [0u8; HEADER_LEN];
        let mut got = 0;
        while got < HEADER_LEN {
            match input.read(&mut raw[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if got == 0 {
            return Ok(false);
        }
        if got < HEADER_LEN {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "AVML block {} at input offset {at}: the input ends inside its header ({got} of {HEADER_LEN} bytes)",
                    self.blocks
                ),
            ));
        }
        let word = |i: usize| u32::from_le_bytes([raw[i], raw[i + 1], raw[i + 2], raw[i + 3]]);
        let quad = |i: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&raw[i..i + 8]);
            u64::from_le_bytes(b)
        };
        let (magic, version, start, end, padding) = (word(0), word(4), quad(8), quad(16), quad(24));
        if magic != MAGIC || version != VERSION {
            return Err(bad(format!(
                "AVML block {} at input offset {at}: magic {magic:#010x} version {version}, not an AVML block (0x4c4d5641 version 2)",
                self.blocks
            )));
        }
        if padding != 0 || end < start {
            return Err(bad(format!(
                "AVML block {} at input offset {at}: malformed header (range {start:#x}-{end:#x}, padding {padding:#x})",
                self.blocks
            )));
        }
        let len = (end - start)
            .checked_add(1)
            .ok_or_else(|| bad(format!("AVML block {} at input offset {at}: range {start:#x}-{end:#x} covers all of memory", self.blocks)))?;
        self.input_offset += HEADER_LEN as u64;
        self.header = Header::new(start, end).to_bytes();
        self.header_pos = 0;
        input.count = 0;
        self.state = State::Block {
            decoder: snap::read::FrameDecoder::new(input),
            left: len,
            index: self.blocks,
            header_at: at,
            stream_at: self.input_offset,
        };
        self.blocks += 1;
        Ok(true)
    }

    /// The block is decoded: nothing may be left over, and the trailer must
    /// give the snappy stream's length.
    fn end_block(&mut self) -> io::Result<()> {
        let State::Block {
            mut decoder,
            index,
            header_at,
            stream_at,
            ..
        } = std::mem::replace(&mut self.state, State::Done)
        else {
            return Ok(());
        };
        decoder.get_mut().fenced = true;
        let mut probe = [0u8; 1];
        if decoder.read(&mut probe)? != 0 {
            return Err(bad(format!(
                "AVML block {index} at input offset {header_at}: its snappy stream decodes to more than the header's range"
            )));
        }
        let mut input = decoder.into_inner();
        input.fenced = false;
        let used = input.count;
        let mut trailer = [0u8; 8];
        input.read_exact(&mut trailer).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("AVML block {index} at input offset {header_at}: its length trailer is missing: {e}"),
            )
        })?;
        let said = u64::from_le_bytes(trailer);
        if said != used {
            return Err(bad(format!(
                "AVML block {index} at input offset {header_at}: its trailer says the snappy stream at {stream_at} is {said} bytes, it was {used}"
            )));
        }
        self.input_offset = stream_at + used + 8;
        self.state = State::Between(input);
        Ok(())
    }

    fn read_inner(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.header_pos < HEADER_LEN {
                let n = (HEADER_LEN - self.header_pos).min(buf.len());
                buf[..n].copy_from_slice(&self.header[self.header_pos..self.header_pos + n]);
                self.header_pos += n;
                return Ok(n);
            }
            match &mut self.state {
                State::Done => return Ok(0),
                State::Between(_) => {
                    if !self.next_block()? {
                        self.state = State::Done;
                        return Ok(0);
                    }
                }
                State::Block { left: 0, .. } => self.end_block()?,
                State::Block {
                    decoder,
                    left,
                    index,
                    header_at,
                    ..
                } => {
                    let want = buf.len().min(usize::try_from(*left).unwrap_or(usize::MAX));
                    let n = decoder.read(&mut buf[..want]).map_err(|e| {
                        io::Error::new(
                            if e.kind() == io::ErrorKind::UnexpectedEof {
                                io::ErrorKind::UnexpectedEof
                            } else {
                                io::ErrorKind::InvalidData
                            },
                            format!("AVML block {index} at input offset {header_at}: {e}"),
                        )
                    })?;
                    if n == 0 {
                        return Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            format!(
                                "AVML block {index} at input offset {header_at}: its snappy stream ends {left} bytes short of the header's range"
                            ),
                        ));
                    }
                    *left -= n as u64;
                    return Ok(n);
                }
            }
        }
    }
}

impl<R: Read> Read for Avml<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(e) = &self.failed {
            return Err(bad(e.clone()));
        }
        if buf.is_empty() {
            return Ok(0);
        }
        self.read_inner(buf).map_err(|e| self.fail(e))
    }
}

#[cfg(test)]
mod tests;
