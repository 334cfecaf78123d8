//! The copy from a physical source ([`copy_physical`]): one record per
//! RAM range, large aligned reads, a page-by-page retry, unreadable pages
//! as recorded zeros.

use fv_formats::lime::{HEADER_LEN, Header};

use super::copied::{Copied, Stop};
use super::layout::Layout;
use super::sink::{PhysRead, Sink};
use crate::progress::Progress;
use crate::stop;

/// Most bytes read from a physical source per call, and the alignment of
/// the reads in physical memory: large reads keep `/proc/kcore` and
/// `/dev/*` fast. The reads go straight into the sink's buffer, which may
/// offer less (the image writer: the rest of a 1 MiB frame).
pub const CHUNK: usize = 4 << 20;
/// Granularity of the page-by-page retry after a failed large read.
pub const PAGE: u64 = 4096;

/// Copies every range of `layout` from `src` into `sink` as a LiME stream.
/// A failed read is retried page by page; pages that still fail become
/// zeros and are recorded. Checks for a stop signal between chunks.
///
/// # Errors
/// [`Stop::Signal`] or [`Stop::Sink`], with what was copied so far in
/// `copied` (the sink's offset says where the stream stopped).
pub fn copy_physical<S: Sink>(
    src: &mut dyn PhysRead,
    layout: &Layout,
    sink: &mut S,
    progress: &mut Progress,
    copied: &mut Copied,
) -> Result<(), Stop<S::Error>> {
    for r in &layout.ranges {
        copied.range_start = r.start;
        sink.write(&Header::new(r.start, r.end).to_bytes())
            .map_err(Stop::Sink)?;
        progress.advance(HEADER_LEN as u64);
        let mut pos = r.start;
        let mut left = r.length;
        while left > 0 {
            if let Some(sig) = stop::requested() {
                return Err(Stop::Signal(sig));
            }
            // Align chunks to CHUNK boundaries of physical memory so the
            // page retry below works on whole pages.
            let to_boundary = CHUNK as u64 - (pos % CHUNK as u64);
            let want = left.min(to_boundary) as usize;
            // Read straight into the sink's buffer (it may offer less).
            let n = sink
                .write_with(want, |chunk| {
                    if src.read_phys(pos, chunk).is_err() {
                        read_by_page(src, pos, chunk, copied);
                    }
                    chunk.len()
                })
                .map_err(Stop::Sink)?;
            progress.advance(n as u64);
            pos += n as u64;
            left -= n as u64;
            src.drop_cache();
        }
    }
    Ok(())
}

fn read_by_page(src: &mut dyn PhysRead, start: u64, chunk: &mut [u8], out: &mut Copied) {
    let mut off = 0usize;
    while off < chunk.len() {
        let phys = start + off as u64;
        let n = ((PAGE - phys % PAGE) as usize).min(chunk.len() - off);
        let page = &mut chunk[off..off + n];
        if let Err(e) = src.read_phys(phys, page) {
            page.fill(0);
            out.unreadable(phys, n as u64, &e);
        }
        off += n;
    }
}
