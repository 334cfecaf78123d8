//! `capture extract`: the LiME stream (byte-identical to `zstd -d`), padded
//! or raw, of the whole image or of one physical range.
//!
//! The address map comes from the stream's own headers (hopping from header
//! to header, decompressing only frames that hold one); then only the frames
//! covering the bytes asked for are decoded, on all cores, each checked
//! against the seek table before a byte of it is written.

use std::io::Write;
use std::path::Path;

use fv_core::progress::Progress;
use fv_evidence::reader::FrameStream;
use fv_formats::lime::Header;
use sha2::{Digest, Sha256};

use crate::error::Error;
use crate::input::Input;
use crate::lime_map::{FileAt, ImageAt, Located, StreamAt, walk};
use crate::output::{OutFile, Sink, identity};
use crate::range::PhysRange;
use crate::text::write_line;
use crate::{Exit, ExtractArgs, Format};

/// Chunk size when reading a plain LiME file.
const FILE_CHUNK: usize = 4 << 20;

/// One contiguous run of payload to emit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Piece {
    /// Physical range.
    start: u64,
    end: u64,
    /// Where its bytes are in the stream.
    stream_offset: u64,
    /// Where they go in the output (after any header for LiME).
    out_offset: u64,
}

impl Piece {
    fn len(&self) -> u64 {
        self.end - self.start + 1
    }
}

/// The largest offset a file can have (`off_t` is signed 64-bit).
const MAX_FILE_OFFSET: u64 = i64::MAX as u64;

/// Which pieces to write and where, for a format and optional range.
///
/// # Errors
/// [`Error::Usage`] when padded output would need file offsets past
/// [`MAX_FILE_OFFSET`] (memory at the top of the 64-bit address space: its
/// end wrapped to 0 and an empty file was reported as a success).
fn plan(map: &[Located], format: Format, range: Option<PhysRange>) -> Result<Vec<Piece>, Error> {
    let mut pieces = Vec::new();
    let mut out = 0u64;
    let too_far = |what: String| {
        Error::Usage(format!(
            "{what}: past the largest file offset ({MAX_FILE_OFFSET:#x}); padded output puts physical address A at file offset A, so it cannot hold this memory: use --format lime or raw, or a --range below it"
        ))
    };
    for r in map {
        let Some(sel) = (match range {
            Some(want) => want.intersect(r.start, r.end),
            None => Some(PhysRange {
                start: r.start,
                end: r.end,
            }),
        }) else {
            continue;
        };
        let stream_offset = r.payload_offset + (sel.start - r.start);
        let len = sel.end - sel.start + 1;
        let out_offset = match format {
            Format::Lime => out + Header::new(0, 0).to_bytes().len() as u64,
            Format::Raw => out,
            Format::Padded if sel.end >= MAX_FILE_OFFSET => {
                return Err(too_far(format!(
                    "memory {:#x}-{:#x} ends at file offset {:#x}",
                    sel.start, sel.end, sel.end
                )));
            }
            Format::Padded => sel.start,
        };
        pieces.push(Piece {
            start: sel.start,
            end: sel.end,
            stream_offset,
            out_offset,
        });
        out = out_offset
            .checked_add(len)
            .ok_or_else(|| too_far(format!("output of {:#x}-{:#x}", sel.start, sel.end)))?;
    }
    Ok(pieces)
}

/// Runs `extract`.
///
/// # Errors
/// Any [`Error`]; the output is removed unless complete.
pub fn run(args: &ExtractArgs, out: &mut dyn Write, err: &mut dyn Write) -> Result<Exit, Error> {
    let input = Input::open(&args.image)?;
    let threads = crate::threads(args.threads);
    let to_stdout = args.output.as_deref() == Some(Path::new("-"));
    if to_stdout && args.format == Format::Padded {
        return Err(Error::Usage(
            "padded output needs a file (it is sparse: holes are seeked over); give -o FILE".into(),
        ));
    }
    let data_path = input.data_path().to_path_buf();
    let mut src = open_stream(&input, &data_path)?;
    let map = walk(src.as_mut())?;
    check_manifest_ranges(&input, &map, &data_path, &args.image)?;
    let pieces = plan(&map, args.format, args.range)?;
    if pieces.is_empty() {
        let have: Vec<String> = map
            .iter()
            .map(|r| format!("{:#x}-{:#x}", r.start, r.end))
            .collect();
        return Err(Error::Usage(format!(
            "range {} covers no captured memory; the image holds {}",
            args.range.map(|r| r.to_string()).unwrap_or_default(),
            have.join(", ")
        )));
    }
    warn(err, &input, &data_path, args.format)?;

    let sink = if to_stdout {
        Sink::Stream(&mut *out)
    } else {
        open_file(args, &input, &data_path)?
    };
    let whole_lime = args.format == Format::Lime && args.range.is_none();
    let mut writer = Emit {
        sink,
        pieces: &pieces,
        next: 0,
        format: args.format,
        whole_lime,
        hasher: (args.format != Format::Padded).then(Sha256::new),
        stream_end: src.stream_len(),
    };
    let (lo, hi) = if whole_lime {
        (0, src.stream_len())
    } else {
        let first = pieces.first().map_or(0, |p| p.stream_offset);
        let last = pieces.last().map_or(0, |p| p.stream_offset + p.len());
        (first, last)
    };
    let frames_decoded = copy(src.as_mut(), &input, &mut writer, (lo, hi), threads)?;
    let (len, digest) = writer.finish_len();
    let written = writer.sink_written();
    let path = writer.sink.finish(len)?;

    let done = Done {
        path,
        frames_decoded,
        digest,
        written,
    };
    let line = summary(args, &input, &pieces, &done)?;
    // On stdout the data goes there; the summary goes to stderr.
    if to_stdout {
        write_line(err, &line).map_err(Error::Report)?;
    } else {
        write_line(out, &line).map_err(Error::Report)?;
    }
    Ok(Exit::Ok)
}

/// The stream to read: a seekable image (of a capture or alone) or a LiME
/// file; a zstd stream without a seek table is refused.
fn open_stream(input: &Input, data_path: &Path) -> Result<Box<dyn StreamAt>, Error> {
    Ok(match input {
        Input::Capture(_) | Input::Seekable(_) => {
            Box::new(ImageAt::new(input.open_data()?, data_path)?)
        }
        Input::PlainLime(p) => Box::new(FileAt::new(input.open_data()?, p)?),
        Input::PlainZstd(p) => {
            return Err(Error::Unrecognised {
                path: p.clone(),
                reason: "is a zstd stream without a seek table: extract needs random access; decompress it with `zstd -d` and extract from the LiME file".into(),
            });
        }
    })
}

/// A capture's image must hold the LiME records its manifest lists.
fn check_manifest_ranges(
    input: &Input,
    map: &[Located],
    data_path: &Path,
    image: &Path,
) -> Result<(), Error> {
    if let Input::Capture(c) = input {
        // The manifest is checked by `verify`; here the ranges must at least
        // agree, or the analyst would be extracting something else.
        let same = c.manifest.ranges.len() == map.len()
            && c.manifest.ranges.iter().zip(map).all(|(m, r)| {
                m.start == r.start && m.end == r.end && m.lime_offset == r.header_offset
            });
        if !same {
            return Err(Error::Mismatch {
                path: data_path.to_path_buf(),
                what: format!(
                    "the LiME records in the image differ from the manifest's ranges (run `capture verify {}`)",
                    image.display()
                ),
            });
        }
    }
    Ok(())
}

/// What the analyst must know before using the output, on `err`: an
/// aborted capture, zeros that are not memory, addresses lost.
fn warn(err: &mut dyn Write, input: &Input, data_path: &Path, format: Format) -> Result<(), Error> {
    if !matches!(input, Input::Capture(_))
        && let Some(marker) = crate::input::aborted_marker_near(data_path)
    {
        write_line(
            err,
            &format!(
                "warning: aborted capture: no manifest ({} is next to the image): the image is an unfinished prefix",
                marker.display()
            ),
        )
        .map_err(Error::Report)?;
    }
    if let Input::Capture(c) = input {
        // Zeros that are not memory must not surprise the analyst.
        let m = &c.manifest;
        if m.status == fv_evidence::manifest::Status::Partial {
            let why = m
                .partial_reason
                .as_ref()
                .map(|p| format!(" ({}: {})", p.cause, p.detail))
                .unwrap_or_default();
            write_line(
                err,
                &format!(
                    "warning: this capture is PARTIAL{why}: {} span(s) not captured are zeros in the image (see `capture info`)",
                    m.not_captured.len()
                ),
            )
            .map_err(Error::Report)?;
        }
        if !m.unreadable.is_empty() {
            let bytes = m
                .unreadable
                .iter()
                .fold(0u64, |a, u| a.saturating_add(u.length));
            writeln!(
                err,
                "warning: {} unreadable span(s), {bytes} bytes, are zeros in the image (see `capture info`)",
                m.unreadable.len()
            )
            .map_err(Error::Report)?;
        }
    }
    if format == Format::Raw {
        write_line(
            err,
            "warning: raw output concatenates the ranges: physical addresses are lost (use --format lime or padded to keep them)",
        )
        .map_err(Error::Report)?;
    }
    Ok(())
}

/// The output file (`-o`, or a name made from the image's), created as
/// [`OutFile::create`] does: never over the evidence.
fn open_file<'w>(args: &ExtractArgs, input: &Input, data_path: &Path) -> Result<Sink<'w>, Error> {
    let path = args
        .output
        .clone()
        .unwrap_or_else(|| crate::output::default_name(data_path, args.format, args.range));
    let mut inputs = vec![];
    inputs.extend(identity(data_path));
    if let Input::Capture(c) = input {
        inputs.extend(identity(&c.manifest_path));
    }
    Ok(Sink::File {
        out: OutFile::create(
            &path,
            args.force,
            &inputs,
            &crate::output::evidence_dirs(input),
        )?,
        sparse: args.format == Format::Padded,
        written: 0,
    })
}

/// Feeds the stream bytes `lo..hi` to `writer`, with progress on stderr:
/// from an image, only the frames holding them, decoded on `threads`
/// threads and each checked against the seek table; from a LiME file, read
/// a chunk at a time. Returns the number of frames decoded (images only).
fn copy(
    src: &mut dyn StreamAt,
    input: &Input,
    writer: &mut Emit<'_, '_>,
    (lo, hi): (u64, u64),
    threads: usize,
) -> Result<Option<usize>, Error> {
    let data_path = input.data_path().to_path_buf();
    let image_err = |source| Error::Image {
        path: data_path.clone(),
        source,
    };
    // On stderr (stdout may be the output, or carry the result line).
    let mut progress = Progress::on_stderr("capture extract", false, Some(hi - lo));
    let mut advance = |offset: u64, len: usize| {
        let end = offset.saturating_add(len as u64).min(hi);
        progress.advance(end.saturating_sub(offset.max(lo)));
    };
    let frames_decoded = match src.image() {
        Some(img) => {
            // The one table, shared; only the frames' index range is passed.
            let frames = img.reader.frame_range(lo, hi).map_err(image_err)?;
            let table = img.reader.table().clone();
            let file = input.open_data()?;
            let count = frames.len();
            let mut stream =
                FrameStream::start(file, &table, frames, 0, threads, ()).map_err(|source| {
                    Error::Image {
                        path: data_path.clone(),
                        source,
                    }
                })?;
            while let Some(next) = stream.next_frame() {
                let (frame, data) = next.map_err(|source| Error::Image {
                    path: data_path.clone(),
                    source,
                })?;
                writer.feed(frame.decompressed_offset, data)?;
                advance(frame.decompressed_offset, data.len());
            }
            stream.finish().map_err(|source| Error::Image {
                path: data_path.clone(),
                source,
            })?;
            Some(count)
        }
        None => {
            let mut buf = vec![0u8; FILE_CHUNK];
            let mut at = lo;
            while at < hi {
                let n = usize::try_from((hi - at).min(FILE_CHUNK as u64)).unwrap_or(FILE_CHUNK);
                src.read_exact_at(at, &mut buf[..n])?;
                writer.feed(at, &buf[..n])?;
                advance(at, n);
                at += n as u64;
            }
            None
        }
    };
    progress.finish();
    Ok(frames_decoded)
}

/// What was written.
struct Done {
    /// The output ("-" for stdout).
    path: std::path::PathBuf,
    frames_decoded: Option<usize>,
    /// The output's SHA-256 (not for padded output).
    digest: Option<String>,
    /// Bytes of data written to a sparse file.
    written: Option<u64>,
}

/// The result line. A whole LiME export of a capture whose digest is not
/// the manifest's is an error (the output stays for the analyst to see).
fn summary(
    args: &ExtractArgs,
    input: &Input,
    pieces: &[Piece],
    done: &Done,
) -> Result<String, Error> {
    let whole_lime = args.format == Format::Lime && args.range.is_none();
    let bytes: u64 = pieces.iter().map(Piece::len).sum();
    let mut line = format!(
        "extracted {} {} of {} to {}: {} bytes of memory in {} range(s)",
        args.format.name(),
        args.range
            .map_or_else(|| "image".to_string(), |r| format!("range {r}")),
        args.image.display(),
        done.path.display(),
        bytes,
        pieces.len(),
    );
    if let Some(n) = done.frames_decoded {
        line.push_str(&format!(
            ", {n} frame(s) decompressed and checked against the seek table"
        ));
    }
    if let Some(d) = &done.digest {
        line.push_str(&format!(", output sha256 {d}"));
        if let (true, Input::Capture(c)) = (whole_lime, input) {
            if *d == c.manifest.image.lime_sha256 {
                line.push_str(" (matches the manifest)");
            } else {
                return Err(Error::Mismatch {
                    path: done.path.clone(),
                    what: format!(
                        "extracted LiME stream hashes to {d}, the manifest says {}: the image does not match its manifest (the output was written; run verify)",
                        c.manifest.image.lime_sha256
                    ),
                });
            }
        }
    }
    if let Some(w) = done.written {
        line.push_str(&format!(
            ", {} bytes of data written, the rest left as holes",
            w
        ));
    }
    // Only a whole LiME export of a capture is compared with a digest; the
    // seek table sits next to the frames and proves nothing on its own
    // (L14).
    if !(whole_lime && matches!(input, Input::Capture(_))) {
        line.push_str(&format!(
            "; NOT compared with any recorded digest: run `capture verify {}` to check the image",
            args.image.display()
        ));
    }
    Ok(line)
}

/// Writes decoded stream bytes as the chosen format.
struct Emit<'p, 'w> {
    sink: Sink<'w>,
    pieces: &'p [Piece],
    next: usize,
    format: Format,
    whole_lime: bool,
    hasher: Option<Sha256>,
    stream_end: u64,
}

impl Emit<'_, '_> {
    fn put(&mut self, at: u64, data: &[u8]) -> Result<(), Error> {
        if let Some(h) = self.hasher.as_mut() {
            h.update(data);
        }
        self.sink.write_at(at, data)
    }

    /// Takes stream bytes `[offset, offset + data.len())`, arriving in order.
    fn feed(&mut self, offset: u64, data: &[u8]) -> Result<(), Error> {
        if self.whole_lime {
            return self.put(offset, data);
        }
        let end = offset + data.len() as u64;
        while let Some(&p) = self.pieces.get(self.next) {
            let p_end = p.stream_offset + p.len();
            if p.stream_offset >= end {
                break;
            }
            let s = offset.max(p.stream_offset);
            let e = end.min(p_end);
            if s < e {
                if s == p.stream_offset && self.format == Format::Lime {
                    let h = Header::new(p.start, p.end).to_bytes();
                    self.put(p.out_offset - h.len() as u64, &h)?;
                }
                let chunk = &data[(s - offset) as usize..(e - offset) as usize];
                self.put(p.out_offset + (s - p.stream_offset), chunk)?;
            }
            if p_end <= end {
                self.next += 1;
            } else {
                break;
            }
        }
        Ok(())
    }

    /// Output length and digest.
    fn finish_len(&mut self) -> (u64, Option<String>) {
        let len = if self.whole_lime {
            self.stream_end
        } else {
            self.pieces.last().map_or(0, |p| p.out_offset + p.len())
        };
        (len, self.hasher.take().map(|h| crate::hex(&h.finalize())))
    }

    fn sink_written(&self) -> Option<u64> {
        match &self.sink {
            Sink::File {
                sparse: true,
                written,
                ..
            } => Some(*written),
            _ => None,
        }
    }
}

#[cfg(test)]
fn planned_len(map: &[Located], format: Format, range: Option<PhysRange>) -> u64 {
    plan(map, format, range)
        .unwrap()
        .last()
        .map_or(0, |p| p.out_offset + p.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map() -> Vec<Located> {
        vec![
            Located {
                start: 0x1000,
                end: 0x1fff,
                header_offset: 0,
                payload_offset: 32,
                len: 0x1000,
            },
            Located {
                start: 0x10_0000,
                end: 0x10_0fff,
                header_offset: 32 + 0x1000,
                payload_offset: 64 + 0x1000,
                len: 0x1000,
            },
        ]
    }

    #[test]
    fn plans_each_format() {
        let lime = plan(&map(), Format::Lime, None).unwrap();
        assert_eq!(lime[0].out_offset, 32);
        assert_eq!(lime[1].out_offset, 64 + 0x1000);
        let raw = plan(&map(), Format::Raw, None).unwrap();
        assert_eq!(raw[1].out_offset, 0x1000);
        let padded = plan(&map(), Format::Padded, None).unwrap();
        assert_eq!(padded[1].out_offset, 0x10_0000);
        assert_eq!(planned_len(&map(), Format::Padded, None), 0x10_1000);
    }

    #[test]
    fn plans_a_range_across_a_gap() {
        let r = Some(PhysRange {
            start: 0x1ff0,
            end: 0x10_000f,
        });
        let raw = plan(&map(), Format::Raw, r).unwrap();
        assert_eq!(raw.len(), 2);
        assert_eq!(
            (raw[0].start, raw[0].end, raw[0].stream_offset),
            (0x1ff0, 0x1fff, 32 + 0xff0)
        );
        assert_eq!(
            (raw[1].start, raw[1].end, raw[1].out_offset),
            (0x10_0000, 0x10_000f, 0x10)
        );
        assert!(
            plan(
                &map(),
                Format::Raw,
                Some(PhysRange {
                    start: 0x3000,
                    end: 0x4000
                })
            )
            .unwrap()
            .is_empty()
        );
    }
}
