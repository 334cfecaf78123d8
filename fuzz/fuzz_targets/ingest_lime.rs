//! Feeds arbitrary bytes as a LiME input to `fv_acquire::stream::ingest_lime`
//! and completes a stopped stream with `fill_zeros`, as a capture does, into
//! a sink that keeps the first bytes and only counts the rest (so a header
//! claiming exabytes costs counting, not memory). Like the forensics volume,
//! the sink has a capacity: past it, writes fail as a full disk would.
//!
//! Invariants: the bytes passed through are the input's own (ingest copies
//! records verbatim); when the zero-fill completes, the stream is exactly as
//! long as the layout says, and the layout's records are ordered and each
//! starts where the previous one ended.
#![no_main]

use std::io;

use fv_acquire::progress::Progress;
use fv_acquire::stream::{Copied, Layout, RECORD_MAX, Sink, fill_zeros, ingest_lime};
use libfuzzer_sys::fuzz_target;

/// What the sink holds before it reports a full disk.
const CAPACITY: u64 = 256 << 20;

struct Counting {
    kept: Vec<u8>,
    keep: usize,
    count: u64,
}

impl Counting {
    fn room(&self, n: u64) -> Result<(), io::Error> {
        if self.count.saturating_add(n) > CAPACITY {
            return Err(io::Error::from_raw_os_error(28)); // ENOSPC
        }
        Ok(())
    }
}

impl Sink for Counting {
    type Error = io::Error;
    fn write(&mut self, bytes: &[u8]) -> Result<(), io::Error> {
        self.room(bytes.len() as u64)?;
        let take = self.keep.saturating_sub(self.kept.len()).min(bytes.len());
        self.kept.extend_from_slice(&bytes[..take]);
        self.count += bytes.len() as u64;
        Ok(())
    }
    fn write_with(
        &mut self,
        max: usize,
        fill: impl FnOnce(&mut [u8]) -> usize,
    ) -> Result<usize, io::Error> {
        // Odd-sized room, as the image writer gives at frame ends.
        let mut buf = vec![0u8; max.min(7919)];
        let n = fill(&mut buf);
        self.write(&buf[..n])?;
        Ok(n)
    }
    fn offset(&self) -> u64 {
        self.count
    }
}

fuzz_target!(|data: &[u8]| {
    let mut layout = Layout::default();
    let mut sink = Counting {
        kept: Vec::new(),
        keep: data.len(),
        count: 0,
    };
    let mut progress = Progress::silent();
    let mut copied = Copied::default();
    let result = ingest_lime(
        data,
        None,
        &mut layout,
        &mut sink,
        &mut progress,
        &mut copied,
        |_| {},
    );
    let ingested = sink.count;
    // A record is split at every RECORD_MAX boundary of physical memory
    // (its pieces get headers of their own); a stream of whole records is
    // copied byte for byte, reserved header bytes included.
    let split = layout
        .ranges
        .iter()
        .any(|r| r.end.wrapping_add(1) % RECORD_MAX == 0);
    if !split {
        assert!(ingested <= data.len() as u64);
        assert_eq!(&sink.kept[..], &data[..sink.kept.len()]);
    }
    let mut end = 0u64;
    for r in &layout.ranges {
        assert!(r.start <= r.end);
        assert_eq!(r.lime_offset, end);
        end = r.lime_offset + 32 + r.length;
    }
    if result.is_err() && fill_zeros(&mut sink, &layout, ingested).is_ok() {
        assert_eq!(sink.count, layout.len());
    }
    if result.is_ok() {
        assert_eq!(ingested, layout.len());
    }
});
