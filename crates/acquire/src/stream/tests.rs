//! The stream against a plain `Vec<u8>` sink: bytes as the LiME module
//! writes them, bounded records, cuts, the unreadable cap, H1.
use std::io;

use fv_evidence::manifest::{PartialCause, Span};
use fv_formats::iomem::RamRange;
use fv_formats::lime::{Header, RecordReader};

use super::*;
use crate::progress::Progress;

/// Memory whose byte at `p` is a function of `p`; fails where told.
struct Pattern {
    fail: Vec<(u64, u64)>,
    reads: usize,
}
fn byte_at(p: u64) -> u8 {
    (p.wrapping_mul(2_654_435_761) >> 13) as u8
}
impl PhysRead for Pattern {
    fn read_phys(&mut self, phys: u64, buf: &mut [u8]) -> io::Result<()> {
        self.reads += 1;
        let end = phys + buf.len() as u64;
        if self.fail.iter().any(|&(s, e)| s < end && e > phys) {
            return Err(io::Error::from_raw_os_error(libc::EIO));
        }
        for (i, b) in buf.iter_mut().enumerate() {
            *b = byte_at(phys + i as u64);
        }
        Ok(())
    }
}

fn expected(ram: &[RamRange], zero: &[(u64, u64)]) -> Vec<u8> {
    let mut out = Vec::new();
    for r in ram {
        out.extend_from_slice(&Header::new(r.start, r.end).to_bytes());
        for p in r.start..=r.end {
            let z = zero.iter().any(|&(s, e)| p >= s && p < e);
            out.push(if z { 0 } else { byte_at(p) });
        }
    }
    out
}

#[test]
fn unreadable_pages_are_zero_and_recorded_merged() {
    let ram = vec![
        RamRange {
            start: 0x1000,
            end: 0x9fbff,
        },
        RamRange {
            start: 0x10_0000,
            end: 0x82_ffff,
        },
    ];
    let layout = Layout::of_ram(&ram);
    let mut src = Pattern {
        fail: vec![(0x40_1800, 0x40_3001)],
        reads: 0,
    };
    let mut sink = Vec::new();
    let mut copied = Copied::default();
    copy_physical(
        &mut src,
        &layout,
        &mut sink,
        &mut Progress::silent(),
        &mut copied,
    )
    .unwrap();
    // Pages 0x401000..0x404000 fail (the failing span touches them).
    assert_eq!(sink, expected(&ram, &[(0x40_1000, 0x40_4000)]));
    assert_eq!(copied.unreadable.len(), 1);
    assert_eq!(copied.unreadable[0].start, 0x40_1000);
    assert_eq!(copied.unreadable[0].length, 0x3000);
    assert!(
        copied.unreadable[0].error.starts_with("EIO"),
        "{:?}",
        copied.unreadable
    );
    assert_eq!(sink.len() as u64, layout.len());
}

#[test]
fn fill_and_not_captured_complete_the_stream() {
    let ram = vec![
        RamRange {
            start: 0x1000,
            end: 0x1fff,
        },
        RamRange {
            start: 0x3000,
            end: 0x4fff,
        },
    ];
    let layout = Layout::of_ram(&ram);
    let mut full = Vec::new();
    let mut src = Pattern {
        fail: vec![],
        reads: 0,
    };
    copy_physical(
        &mut src,
        &layout,
        &mut full,
        &mut Progress::silent(),
        &mut Copied::default(),
    )
    .unwrap();
    // Cut inside the first payload, fill, compare.
    for cut in [
        0u64,
        10,
        32,
        100,
        0x1020,
        0x1030,
        0x1040,
        0x2000,
        full.len() as u64,
    ] {
        let mut s = full[..cut as usize].to_vec();
        fill_zeros(&mut s, &layout, cut).unwrap();
        assert_eq!(s.len(), full.len(), "cut {cut}");
        let mut r = RecordReader::new(&s[..]);
        let mut n = 0;
        while r.next_record().unwrap().is_some() {
            n += 1;
        }
        assert_eq!(n, 2);
        let nc = not_captured(&layout, cut, "x");
        let zeros: u64 = nc.iter().map(|s| s.length).sum();
        let expect_zero: u64 = layout
            .ranges
            .iter()
            .map(|r| {
                let p = r.lime_offset + 32;
                (p + r.length).saturating_sub(cut.max(p))
            })
            .sum();
        assert_eq!(zeros, expect_zero, "cut {cut}: {nc:?}");
    }
    let nc = not_captured(&layout, 0x30, "x");
    assert_eq!((nc[0].start, nc[0].length), (0x1010, 0xff0));
    assert_eq!(nc[1].start, 0x3000);
}

#[test]
fn clip_removes_tail_overlap() {
    let mut u = vec![
        Span {
            start: 0x1000,
            length: 0x1000,
            error: "e".into(),
        },
        Span {
            start: 0x5000,
            length: 0x1000,
            error: "e".into(),
        },
    ];
    clip_unreadable(
        &mut u,
        &[Span {
            start: 0x1800,
            length: 0x8000,
            error: "cut".into(),
        }],
    );
    assert_eq!(u.len(), 1);
    assert_eq!((u[0].start, u[0].length), (0x1000, 0x800));
}

#[test]
fn lime_ingest_round_trip_and_truncation() {
    let ram = vec![
        RamRange {
            start: 0x1000,
            end: 0x2fff,
        },
        RamRange {
            start: 0x10_0000,
            end: 0x10_0fff,
        },
    ];
    let dump = expected(&ram, &[]);
    let mut layout = Layout::default();
    let mut sink = Vec::new();
    ingest_lime(
        &dump[..],
        None,
        &mut layout,
        &mut sink,
        &mut Progress::silent(),
        &mut Copied::default(),
        |_| {},
    )
    .unwrap();
    assert_eq!(sink, dump);
    assert_eq!(layout, Layout::of_ram(&ram));

    let cut = &dump[..100];
    let mut layout = Layout::default();
    let mut sink = Vec::new();
    let err = ingest_lime(
        cut,
        None,
        &mut layout,
        &mut sink,
        &mut Progress::silent(),
        &mut Copied::default(),
        |_| {},
    )
    .unwrap_err();
    assert!(matches!(
        err,
        Stop::Source {
            cause: PartialCause::SourceTruncated,
            ..
        }
    ));
    assert_eq!(layout.ranges.len(), 1);
    // The reader hands back no bytes of a payload read that ended
    // early: the stream resumes where the sink is.
    let at = sink.offset();
    assert!((32..=100).contains(&at));
    fill_zeros(&mut sink, &layout, at).unwrap();
    assert_eq!(sink.len() as u64, layout.len());
    assert_eq!(&sink[..at as usize], &cut[..at as usize]);
    assert!(sink[at as usize..].iter().all(|&b| b == 0));
}

/// A header lying about its range (H1): a stream of this host whose
/// record is not inside System RAM is refused before a byte of it is
/// written, instead of starting a zero-fill of up to 16 EiB.
#[test]
fn host_stream_records_must_lie_in_system_ram() {
    let ram = [RamRange {
        start: 0x10_0000,
        end: 0x3fff_ffff,
    }];
    let mut lie = Header::new(0x10_0000, u64::MAX - 1).to_bytes().to_vec();
    lie.resize(32 + (1 << 20), 0xAB);
    let mut layout = Layout::default();
    let mut sink = Vec::new();
    let err = ingest_lime(
        &lie[..],
        Some(&ram),
        &mut layout,
        &mut sink,
        &mut Progress::silent(),
        &mut Copied::default(),
        |_| {},
    )
    .unwrap_err();
    let Stop::Source { cause, error } = err else {
        panic!("not a source error")
    };
    assert_eq!(cause, PartialCause::SourceError);
    assert!(error.to_string().contains("System RAM"), "{error}");
    assert!(layout.is_empty() && sink.is_empty());
}

/// Records are split at every RECORD_MAX boundary of physical memory,
/// from a physical layout and from a LiME input alike, with the same
/// payload bytes.
#[test]
fn long_ranges_become_bounded_records() {
    let ram = [RamRange {
        start: 0x3ff0_0000,
        end: 0x1_8000_0fff,
    }];
    let l = Layout::of_ram(&ram);
    let spans: Vec<_> = l.ranges.iter().map(|r| (r.start, r.end)).collect();
    assert_eq!(
        spans,
        vec![
            (0x3ff0_0000, 0x3fff_ffff),
            (0x4000_0000, 0x7fff_ffff),
            (0x8000_0000, 0xbfff_ffff),
            (0xc000_0000, 0xffff_ffff),
            (0x1_0000_0000, 0x1_3fff_ffff),
            (0x1_4000_0000, 0x1_7fff_ffff),
            (0x1_8000_0000, 0x1_8000_0fff),
        ]
    );
    assert_eq!(l.ram_bytes(), ram[0].end - ram[0].start + 1);
    // A LiME input record across a boundary: split the same way, payload
    // unchanged.
    let small = [RamRange {
        start: RECORD_MAX - 0x2000,
        end: RECORD_MAX + 0xfff,
    }];
    let dump = expected(&small, &[]);
    let mut layout = Layout::default();
    let mut sink = Vec::new();
    ingest_lime(
        &dump[..],
        Some(&small),
        &mut layout,
        &mut sink,
        &mut Progress::silent(),
        &mut Copied::default(),
        |_| {},
    )
    .unwrap();
    assert_eq!(layout, Layout::of_ram(&small));
    assert_eq!(layout.ranges.len(), 2);
    let mut want = Header::new(RECORD_MAX - 0x2000, RECORD_MAX - 1)
        .to_bytes()
        .to_vec();
    want.extend_from_slice(&dump[32..32 + 0x2000]);
    want.extend_from_slice(&Header::new(RECORD_MAX, RECORD_MAX + 0xfff).to_bytes());
    want.extend_from_slice(&dump[32 + 0x2000..]);
    assert_eq!(sink, want);
}

/// A stop (M3): the record the writer resumed in is kept and completed,
/// later ones are listed as omitted, not written; at a record boundary
/// nothing is zero-filled.
#[test]
fn a_cut_fills_one_record_and_omits_the_rest() {
    let ram = [
        RamRange {
            start: 0x1000,
            end: 0x1fff,
        },
        RamRange {
            start: 0x3000,
            end: 0x4fff,
        },
        RamRange {
            start: 0x8000,
            end: 0x8fff,
        },
    ];
    let full = Layout::of_ram(&ram);
    // Inside the second record's payload.
    let mut l = full.clone();
    let from = full.ranges[1].lime_offset + 32 + 0x100;
    let c = cut(&mut l, from, "x");
    assert_eq!(l.ranges.len(), 2);
    assert_eq!(
        c.not_captured
            .iter()
            .map(|s| (s.start, s.length))
            .collect::<Vec<_>>(),
        vec![(0x3100, 0x1f00)]
    );
    assert_eq!(
        c.omitted
            .iter()
            .map(|s| (s.start, s.length))
            .collect::<Vec<_>>(),
        vec![(0x8000, 0x1000)]
    );
    let mut s = vec![0u8; from as usize];
    fill_zeros(&mut s, &l, from).unwrap();
    assert_eq!(s.len() as u64, l.len());
    // Exactly at the third record's header: two records, nothing to fill.
    let mut l = full.clone();
    let c = cut(&mut l, full.ranges[2].lime_offset, "x");
    assert_eq!(l.ranges.len(), 2);
    assert!(c.not_captured.is_empty());
    assert_eq!(c.omitted.len(), 1);
    // Nothing written at all: the first record is kept, zero-filled.
    let mut l = full.clone();
    let c = cut(&mut l, 0, "x");
    assert_eq!(l.ranges.len(), 1);
    assert_eq!(c.not_captured[0].length, 0x1000);
    assert_eq!(c.omitted.len(), 2);
    // At the end: nothing changes.
    let mut l = full.clone();
    assert_eq!(cut(&mut l, full.len(), "x"), Cut::default());
    assert_eq!(l, full);
}

/// L2: a source failing every other page lists at most MAX_UNREADABLE
/// spans plus one summary per record, and the summary accounts for the
/// rest.
#[test]
fn unreadable_list_is_bounded() {
    let pages = (MAX_UNREADABLE as u64 + 500) * 2;
    let ram = [RamRange {
        start: 0,
        end: pages * PAGE - 1,
    }];
    let layout = Layout::of_ram(&ram);
    let mut src = Pattern {
        fail: (0..pages / 2)
            .map(|i| (2 * i * PAGE, 2 * i * PAGE + 1))
            .collect(),
        reads: 0,
    };
    let mut sink = Vec::new();
    let mut copied = Copied::default();
    copy_physical(
        &mut src,
        &layout,
        &mut sink,
        &mut Progress::silent(),
        &mut copied,
    )
    .unwrap();
    copied.close_summaries();
    assert_eq!(copied.unreadable.len(), MAX_UNREADABLE + 1);
    let last = copied.unreadable.last().unwrap();
    assert!(last.error.starts_with("500 unreadable span(s)"), "{last:?}");
    assert_eq!(
        last.start + last.length,
        (pages - 2) * PAGE + PAGE,
        "the summary reaches the last failure"
    );
}

/// What a stopped LiME file still held is read from its headers.
#[test]
fn a_files_remaining_headers_are_listed() {
    let ram = [
        RamRange {
            start: 0x1000,
            end: 0x1fff,
        },
        RamRange {
            start: 0x3000,
            end: 0x4fff,
        },
    ];
    let dump = expected(&ram, &[]);
    let t = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(t.path(), &dump).unwrap();
    let f = std::fs::File::open(t.path()).unwrap();
    assert_eq!(
        headers_from(&f, 0x1020, Some(0x1fff)).unwrap(),
        vec![(0x3000, 0x4fff)]
    );
    assert!(headers_from(&f, 0x1021, None).is_err());
    assert_eq!(
        ram_gaps(&ram, &[(0x1000, 0x1fff), (0x3000, 0x3fff)]),
        vec![(0x4000, 0x4fff)]
    );
}

/// S4: what a stream of this host did not send, wherever it is: a range
/// never sent, the start or end of one, everything after the last record.
#[test]
fn ram_gaps_lists_every_byte_not_sent() {
    let ram = [
        RamRange {
            start: 0x1000,
            end: 0x9fbff,
        },
        RamRange {
            start: 0x10_0000,
            end: 0x2f_ffff,
        },
        RamRange {
            start: 0x40_0000,
            end: u64::MAX,
        },
    ];
    assert_eq!(
        ram_gaps(&ram, &[]),
        vec![
            (0x1000, 0x9fbff),
            (0x10_0000, 0x2f_ffff),
            (0x40_0000, u64::MAX)
        ]
    );
    let all = [
        (0x1000, 0x9fbff),
        (0x10_0000, 0x2f_ffff),
        (0x40_0000, u64::MAX),
    ];
    assert_eq!(ram_gaps(&ram, &all), vec![]);
    assert_eq!(
        ram_gaps(
            &ram,
            &[
                (0x1000, 0x9fbff),
                (0x20_0000, 0x20_ffff),
                (0x50_0000, u64::MAX - 1)
            ]
        ),
        vec![
            (0x10_0000, 0x1f_ffff),
            (0x21_0000, 0x2f_ffff),
            (0x40_0000, 0x4f_ffff),
            (u64::MAX, u64::MAX)
        ]
    );
    // The first range only (a module that died between ranges).
    assert_eq!(
        ram_gaps(&ram, &all[..1]),
        vec![(0x10_0000, 0x2f_ffff), (0x40_0000, u64::MAX)]
    );
}

#[test]
fn lime_ingest_keeps_reserved_header_bytes() {
    // fuzz/artifacts/ingest_lime/crash-1ff71ef4…: a record [0, 0] whose
    // reserved bytes end in 'M', then its one payload byte. The copy was
    // re-encoded with zero reserved bytes, so the stored stream (and its
    // digest) differed from the input.
    let mut dump = Header::new(0, 0).to_bytes().to_vec();
    dump[31] = b'M';
    dump.push(b'i');
    let mut layout = Layout::default();
    let mut sink = Vec::new();
    ingest_lime(
        &dump[..],
        None,
        &mut layout,
        &mut sink,
        &mut Progress::silent(),
        &mut Copied::default(),
        |_| {},
    )
    .unwrap();
    assert_eq!(sink, dump);
}

#[test]
fn lime_ingest_refuses_a_record_whose_stream_end_overflows() {
    // fuzz/artifacts/ingest_lime/crash-3d1dd8b3…: one header
    // 0x10-0xffffffffffffffff and no payload. Its stream end,
    // 32 + 2^64 - 16, overflowed Layout::len and fill_zeros.
    let dump = Header::new(0x10, u64::MAX).to_bytes();
    let mut layout = Layout::default();
    let mut sink = Vec::new();
    let err = ingest_lime(
        &dump[..],
        None,
        &mut layout,
        &mut sink,
        &mut Progress::silent(),
        &mut Copied::default(),
        |_| {},
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            Stop::Source {
                cause: PartialCause::SourceError,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(layout.is_empty());
    assert_eq!(layout.len(), 0);
    fill_zeros(&mut sink, &layout, 0).unwrap();
    assert!(sink.is_empty());
}
