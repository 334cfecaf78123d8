//! One sequential pass over an image that computes everything `verify`
//! needs: the SHA-256 of the file, of the decompressed LiME stream, every
//! frame's checks, and the LiME records (walked by
//! [`fv_formats::lime::RecordReader`]). Seekable images are decoded on all
//! cores with a bounded number of frames in memory; plain zstd and plain
//! LiME files are streamed. Progress goes to stderr
//! ([`fv_core::progress`]): a bar on a terminal, a few lines otherwise.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;

use fv_core::progress::Progress;
use fv_evidence::reader::{Frame, FrameStream, OnCompressed, ReadError, SeekTable};
use fv_formats::lime::{LimeError, Record, RecordReader};
use sha2::{Digest, Sha256};

use crate::error::Error;
use crate::lime_map::MAX_RECORDS;

/// Bad frames kept with their details (the report lists 20).
pub const BAD_FRAMES_KEPT: usize = 20;

/// Read buffer for streamed files.
const STREAM_BUF: usize = 1 << 20;

/// A frame that failed its checks.
#[derive(Debug)]
pub struct BadFrame {
    /// The frame.
    pub frame: Frame,
    /// What is wrong (the [`ReadError::Frame`] message).
    pub error: ReadError,
}

/// What one pass found.
#[derive(Debug, Default)]
pub struct Scan {
    /// Length of the file.
    pub file_len: u64,
    /// SHA-256 of the whole file, when it could be read to the end.
    pub file_sha256: Option<String>,
    /// SHA-256 of the decompressed stream, when every byte of it decoded.
    pub lime_sha256: Option<String>,
    /// Decompressed bytes seen.
    pub lime_len: u64,
    /// The seek table, when the file has a valid one.
    pub table: Option<SeekTable>,
    /// Why the seek table is unusable (seekable images only).
    pub table_error: Option<ReadError>,
    /// The first [`BAD_FRAMES_KEPT`] frames that failed their checks (a
    /// crafted image can make every one of millions fail: only the count
    /// grows with them).
    pub bad_frames: Vec<BadFrame>,
    /// How many frames failed their checks.
    pub bad_frame_count: u64,
    /// Records, in order, as far as the stream could be walked.
    pub records: Vec<Record>,
    /// Why the LiME walk stopped early, if it did (not counting a failed
    /// frame, reported in `bad_frames`).
    pub lime_error: Option<LimeError>,
    /// Why decompressing a plain zstd stream failed.
    pub zstd_error: Option<io::Error>,
    /// A read error that stopped the pass.
    pub io_error: Option<ReadError>,
}

/// Hashes what passes through (and counts it as progress, if given).
struct HashRead<R> {
    inner: R,
    hasher: Sha256,
    len: u64,
    progress: Option<Progress>,
}

impl<R> HashRead<R> {
    fn new(inner: R, progress: Option<Progress>) -> Self {
        Self {
            inner,
            hasher: Sha256::new(),
            len: 0,
            progress,
        }
    }

    fn finish_progress(&mut self) {
        if let Some(p) = self.progress.as_mut() {
            p.finish();
        }
    }
}

impl<R: Read> Read for HashRead<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.len += n as u64;
        if let Some(p) = self.progress.as_mut() {
            p.advance(n as u64);
        }
        Ok(n)
    }
}

/// Progress over a file of `len` bytes (`label` begins each line).
fn file_progress(label: &'static str, f: &File) -> Progress {
    Progress::on_stderr(label, false, f.metadata().ok().map(|m| m.len()))
}

/// Marks an error that came from zstd rather than from reading the file.
#[derive(Debug)]
struct FromZstd(io::Error);

impl std::fmt::Display for FromZstd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for FromZstd {}

/// Walks records, keeping them (bounded by [`MAX_RECORDS`]); returns the
/// error that stopped the walk, if any.
fn walk<R: Read>(reader: &mut RecordReader<R>, records: &mut Vec<Record>) -> Option<LimeError> {
    loop {
        match reader.next_record() {
            Ok(Some(r)) => {
                if records.len() < MAX_RECORDS {
                    records.push(r);
                }
            }
            Ok(None) => return None,
            Err(e) => return Some(e),
        }
    }
}

fn hex_digest(h: Sha256) -> String {
    crate::hex(&h.finalize())
}

/// Reads the decoded frames of a [`FrameStream`] as one stream, hashing it.
struct Frames<'s, C> {
    stream: &'s mut FrameStream<C>,
    pos: usize,
    started: bool,
    hasher: Option<Sha256>,
    len: u64,
    bad: Vec<BadFrame>,
    bad_count: u64,
    io_error: Option<ReadError>,
    progress: Progress,
}

impl<C: OnCompressed> Frames<'_, C> {
    /// Moves to the next good frame; `Ok(false)` at the end, `Err` once a
    /// frame failed (recorded) or reading stopped.
    fn advance(&mut self) -> Result<bool, ()> {
        match self.stream.next_frame() {
            None => Ok(false),
            Some(Ok((_, data))) => {
                if let Some(h) = self.hasher.as_mut() {
                    h.update(data);
                }
                self.len += data.len() as u64;
                self.progress.advance(data.len() as u64);
                self.pos = 0;
                self.started = true;
                Ok(true)
            }
            Some(Err(error @ ReadError::Frame { .. })) => {
                let ReadError::Frame { frame, .. } = &error else {
                    return Err(());
                };
                let frame = *frame;
                self.len += u64::from(frame.decompressed_len);
                self.progress.advance(u64::from(frame.decompressed_len));
                self.hasher = None;
                self.started = false;
                self.bad_count += 1;
                if self.bad.len() < BAD_FRAMES_KEPT {
                    self.bad.push(BadFrame { frame, error });
                }
                Err(())
            }
            Some(Err(e)) => {
                self.hasher = None;
                self.started = false;
                self.io_error = Some(e);
                Err(())
            }
        }
    }
}

impl<C: OnCompressed> Read for Frames<'_, C> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.started
                && let Some((_, data)) = self.stream.current()
                && self.pos < data.len()
            {
                let n = (data.len() - self.pos).min(buf.len());
                buf[..n].copy_from_slice(&data[self.pos..self.pos + n]);
                self.pos += n;
                return Ok(n);
            }
            match self.advance() {
                Ok(true) => {}
                Ok(false) => return Ok(0),
                Err(()) => return Err(io::Error::other("frame failed")),
            }
        }
    }
}

/// Scans a seekable image. Falls back to a plain zstd pass when the seek
/// table is unusable, so the data frames are still checked. Progress lines
/// begin with `label`.
///
/// # Errors
/// [`Error::Input`] if the file cannot be read from its start again.
pub fn seekable(
    mut f: File,
    path: &Path,
    threads: usize,
    label: &'static str,
) -> Result<Scan, Error> {
    let table = match SeekTable::read_from(&mut f) {
        Ok(t) => t,
        Err(e) => {
            f.seek(SeekFrom::Start(0)).map_err(|source| Error::Input {
                path: path.to_path_buf(),
                source,
            })?;
            let mut scan = plain_zstd(f, label)?;
            scan.table_error = Some(e);
            return Ok(scan);
        }
    };
    let file_len = table.file_len();
    let progress = Progress::on_stderr(label, false, Some(table.decompressed_len()));
    let all = 0..table.frame_count();
    let mut stream =
        match FrameStream::start(f, &table, all, table.table_len(), threads, Sha256::new()) {
            Ok(s) => s,
            Err(e) => {
                return Ok(Scan {
                    file_len,
                    io_error: Some(e),
                    table: Some(table),
                    ..Scan::default()
                });
            }
        };
    let mut scan = Scan {
        file_len,
        ..Scan::default()
    };
    let mut frames = Frames {
        stream: &mut stream,
        pos: 0,
        started: false,
        hasher: Some(Sha256::new()),
        len: 0,
        bad: Vec::new(),
        bad_count: 0,
        io_error: None,
        progress,
    };
    let mut reader = RecordReader::new(&mut frames);
    let err = walk(&mut reader, &mut scan.records);
    let _ = reader.into_inner();
    // A frame failure or read error surfaces as LiME `Io`; the real cause is
    // recorded in `frames`. Anything else is the stream's structure.
    match err {
        Some(LimeError::Io { .. }) | None => {}
        Some(other) => scan.lime_error = Some(other),
    }
    // Drain what the walk did not read: later frames are still checked (and
    // hashed while every frame so far was good).
    while frames.io_error.is_none() {
        match frames.advance() {
            Ok(true) | Err(()) => {}
            Ok(false) => break,
        }
    }
    frames.progress.finish();
    let Frames {
        hasher,
        len,
        bad,
        bad_count,
        io_error,
        ..
    } = frames;
    scan.lime_len = len;
    scan.bad_frames = bad;
    scan.bad_frame_count = bad_count;
    scan.io_error = io_error;
    if scan.io_error.is_none() {
        scan.lime_sha256 = hasher.map(hex_digest);
    } else {
        scan.lime_sha256 = None;
    }
    match stream.finish() {
        Ok(h) if scan.io_error.is_none() => scan.file_sha256 = Some(hex_digest(h)),
        Ok(_) => {}
        Err(e) => scan.io_error = Some(e),
    }
    scan.table = Some(table);
    Ok(scan)
}

/// Scans a zstd stream without using a seek table (skippable frames such as
/// a seek table are skipped by zstd). Progress (of the file read) lines
/// begin with `label`.
///
/// # Errors
/// None today; `Result` for the callers' sake.
pub fn plain_zstd(f: File, label: &'static str) -> Result<Scan, Error> {
    let progress = file_progress(label, &f);
    let mut file = HashRead::new(io::BufReader::with_capacity(STREAM_BUF, f), Some(progress));
    let mut scan = Scan::default();
    let decoder = match zstd::stream::read::Decoder::with_buffer(io::BufReader::new(&mut file)) {
        Ok(d) => d,
        Err(e) => {
            scan.zstd_error = Some(e);
            return Ok(scan);
        }
    };
    let mut reader = RecordReader::new(HashRead::new(ZstdErrors(decoder), None));
    let err = walk(&mut reader, &mut scan.records);
    let lime = reader.into_inner();
    let mut read_failure = None;
    match err {
        Some(LimeError::Io { source, .. }) => {
            match source.get_ref().and_then(|e| e.downcast_ref::<FromZstd>()) {
                Some(z) => scan.zstd_error = Some(io::Error::new(z.0.kind(), z.0.to_string())),
                None => read_failure = Some(source),
            }
        }
        Some(other) => {
            scan.lime_error = Some(other);
        }
        None => {}
    }
    scan.lime_len = lime.len;
    let decoded_all = scan.zstd_error.is_none() && read_failure.is_none();
    // Structure errors leave part of the stream unread: finish it so both
    // digests still cover everything.
    let mut lime = lime;
    if decoded_all && scan.lime_error.is_some() {
        if let Err(e) = io::copy(&mut lime, &mut io::sink()) {
            scan.zstd_error = Some(e);
        }
        scan.lime_len = lime.len;
    }
    if scan.zstd_error.is_none() && read_failure.is_none() {
        scan.lime_sha256 = Some(hex_digest(lime.hasher));
        drop(lime.inner);
        // Hash whatever zstd did not need to read (nothing, normally).
        if let Err(source) = io::copy(&mut file, &mut io::sink()) {
            scan.io_error = Some(ReadError::Io {
                offset: file.len,
                source,
            });
        }
    } else {
        drop(lime.inner);
    }
    if let Some(source) = read_failure {
        scan.io_error = Some(ReadError::Io {
            offset: file.len,
            source,
        });
    }
    file.finish_progress();
    scan.file_len = file.len;
    if scan.io_error.is_none() {
        scan.file_sha256 = Some(hex_digest(file.hasher));
    }
    Ok(scan)
}

/// Tags zstd's errors so they can be told from the file's.
struct ZstdErrors<R>(R);

impl<R: Read> Read for ZstdErrors<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0
            .read(buf)
            .map_err(|e| io::Error::new(e.kind(), FromZstd(e)))
    }
}

/// Scans a plain LiME file. Progress lines begin with `label`.
///
/// # Errors
/// None today; `Result` for the callers' sake.
pub fn plain_lime(f: File, label: &'static str) -> Result<Scan, Error> {
    let progress = file_progress(label, &f);
    let mut reader = RecordReader::new(HashRead::new(
        io::BufReader::with_capacity(STREAM_BUF, f),
        Some(progress),
    ));
    let mut scan = Scan::default();
    let err = walk(&mut reader, &mut scan.records);
    let mut file = reader.into_inner();
    match err {
        Some(LimeError::Io { offset, source }) => {
            scan.io_error = Some(ReadError::Io { offset, source });
        }
        Some(other) => scan.lime_error = Some(other),
        None => {}
    }
    if scan.io_error.is_none() {
        if let Err(source) = io::copy(&mut file, &mut io::sink()) {
            scan.io_error = Some(ReadError::Io {
                offset: file.len,
                source,
            });
        }
    }
    file.finish_progress();
    scan.file_len = file.len;
    scan.lime_len = file.len;
    if scan.io_error.is_none() {
        let digest = hex_digest(file.hasher);
        scan.lime_sha256 = Some(digest.clone());
        scan.file_sha256 = Some(digest);
    }
    Ok(scan)
}
