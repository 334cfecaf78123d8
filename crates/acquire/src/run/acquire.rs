//! Phase 4, the copy: from the physical source or the LiME input into the
//! image writer, until the end, a signal, a full disk or a source failure.

use std::io::Read;
use std::time::Duration;

use fv_evidence::writer::{ImageWriter, WriterError};
use fv_formats::iomem::RamRange;

use super::state::{Acquired, OutputState, SourceState};
use crate::progress::Progress;
use crate::source::lime::avml::LimeOrAvml;
use crate::source::{LimeInput, Opened};
use crate::stop::StopAware;
use crate::stream::{self, Copied, Layout, Sink, Stop};

/// Drop a LiME input file's pages from the cache every this many bytes.
const INPUT_DROP_STEP: u64 = 64 << 20;

impl Sink for ImageWriter {
    type Error = WriterError;
    fn write(&mut self, bytes: &[u8]) -> Result<(), WriterError> {
        ImageWriter::write(self, bytes)
    }
    fn write_with(
        &mut self,
        max: usize,
        fill: impl FnOnce(&mut [u8]) -> usize,
    ) -> Result<usize, WriterError> {
        ImageWriter::write_with(self, max, fill)
    }
    fn offset(&self) -> u64 {
        self.stream_offset()
    }
}

/// Phase 4, the copy: from the physical source or the LiME input into the
/// image writer, until the end, a signal, a full disk or a source failure.
pub(super) fn acquire(
    stall: Duration,
    source: &mut SourceState,
    out: &mut OutputState,
) -> Acquired {
    let mut layout = Layout::default();
    let mut copied = Copied::default();
    let writer = &mut out.writer;
    let progress = &mut out.progress;
    let ram = source.host_ram.as_deref();
    let (result, input_note) = match &mut source.opened {
        Opened::Phys(p) => {
            layout = Layout::of_ram(&p.ram);
            let r =
                stream::copy_physical(p.reader.as_mut(), &layout, writer, progress, &mut copied);
            (r, None)
        }
        Opened::Lime { input, .. } => {
            let mut into = Dest {
                ram,
                layout: &mut layout,
                writer,
                progress,
                copied: &mut copied,
            };
            ingest(input, stall, &mut into)
        }
    };
    progress.finish();
    copied.close_summaries();
    if let Some(note) = input_note {
        out.detail = Some(match out.detail.take() {
            Some(d) => format!("{d}; {note}"),
            None => note,
        });
    }
    Acquired {
        layout,
        copied,
        result,
    }
}

/// Where a LiME input's records go, and what they are checked against.
struct Dest<'a> {
    ram: Option<&'a [RamRange]>,
    layout: &'a mut Layout,
    writer: &'a mut ImageWriter,
    progress: &'a mut Progress,
    copied: &'a mut Copied,
}

/// Reads a LiME input into the image, each read waiting at most `stall`
/// and noticing a stop signal. A file or stdin may be AVML's compressed
/// image, repackaged (issue 23; docs/capture.md, `lime:PATH` and
/// `lime:-`): the note says so. A module's FIFO and a LiME TCP socket carry
/// what the LiME module writes, LiME only. A file's pages are dropped from
/// the page cache as they are read.
fn ingest(
    input: &LimeInput,
    stall: Duration,
    into: &mut Dest<'_>,
) -> (Result<(), Stop<WriterError>>, Option<String>) {
    match input {
        LimeInput::File(f) => {
            let file = f;
            let mut dropped = 0u64;
            let mut reader = LimeOrAvml::new(StopAware::new(file, stall));
            let r = ingest_from(&mut reader, into, |off| {
                if off >= dropped + INPUT_DROP_STEP {
                    fv_core::fs::drop_cached(file, 0, off);
                    dropped = off;
                }
            });
            (r, reader.note())
        }
        LimeInput::Stdin => {
            let mut reader = LimeOrAvml::new(StopAware::new(std::io::stdin(), stall));
            let r = ingest_from(&mut reader, into, |_| {});
            (r, reader.note())
        }
        LimeInput::Fifo(fifo) => {
            let r = ingest_from(StopAware::new(&fifo.reader, stall), into, |_| {});
            (r, None)
        }
        LimeInput::Tcp(s) => {
            let r = ingest_from(StopAware::new(s, stall), into, |_| {});
            (r, None)
        }
    }
}

/// The one call of [`stream::ingest_lime`] for every LiME input.
fn ingest_from<R: Read>(
    reader: R,
    into: &mut Dest<'_>,
    after_chunk: impl FnMut(u64),
) -> Result<(), Stop<WriterError>> {
    stream::ingest_lime(
        reader,
        into.ram,
        into.layout,
        into.writer,
        into.progress,
        into.copied,
        after_chunk,
    )
}
