//! Tests of the reader on images built in code with zstd and the table writer.

use super::*;
use crate::seektable::{Entry, FooterError, TableWriter};
use crate::xxh64::frame_checksum;
use std::io::Cursor;

/// A seekable image of `data` in frames of `frame` bytes, with checksums.
fn image(data: &[u8], frame: usize) -> Vec<u8> {
    let mut enc = zstd::bulk::Compressor::new(1).unwrap();
    enc.include_checksum(true).unwrap();
    let mut file = Vec::new();
    let mut entries = Vec::new();
    for chunk in data.chunks(frame) {
        let z = enc.compress(chunk).unwrap();
        entries.push(Entry {
            compressed: z.len() as u32,
            decompressed: chunk.len() as u32,
            checksum: Some(u32::from_le_bytes(z[z.len() - 4..].try_into().unwrap())),
        });
        file.extend_from_slice(&z);
    }
    let mut w = TableWriter::new(&mut file, entries.len() as u64, true).unwrap();
    for e in entries {
        w.push(e).unwrap();
    }
    w.finish().unwrap();
    file
}

fn data(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| ((i as u64).wrapping_mul(0x9E37_79B9) >> 7) as u8)
        .collect()
}

#[test]
fn table_and_random_access() {
    let d = data(10_000);
    let img = image(&d, 1024);
    let mut r = SeekableReader::open(Cursor::new(img.clone())).unwrap();
    let t = r.table().clone();
    assert_eq!(t.frame_count(), 10);
    assert_eq!(t.decompressed_len(), 10_000);
    assert_eq!(t.file_len(), img.len() as u64);
    let mut c = Cursor::new(img.clone());
    let mut cache = BlockCache::default();
    let at = |c: &mut Cursor<Vec<u8>>, cache: &mut BlockCache, o| t.frame_at(c, cache, o).unwrap();
    assert_eq!(at(&mut c, &mut cache, 1023).unwrap().index, 0);
    assert_eq!(at(&mut c, &mut cache, 1024).unwrap().index, 1);
    assert!(at(&mut c, &mut cache, 10_000).is_none());
    assert_eq!(t.frame_range(&mut c, &mut cache, 1000, 2100).unwrap(), 0..3);
    assert_eq!(
        t.frame_range(&mut c, &mut cache, 9999, 10_000).unwrap(),
        9..10
    );
    assert_eq!(
        t.frame_range(&mut c, &mut cache, 5000, 5000).unwrap().len(),
        0
    );
    // A read spanning frames, and one at the very end, decode only the
    // frames they touch.
    let mut buf = vec![0u8; 100];
    r.read_exact_at(1000, &mut buf).unwrap();
    assert_eq!(&buf[..], &d[1000..1100]);
    assert_eq!(r.frames_decoded(), 2);
    let mut last = [0u8; 16];
    r.read_exact_at(10_000 - 16, &mut last).unwrap();
    assert_eq!(&last[..], &d[10_000 - 16..]);
    assert_eq!(r.frames_decoded(), 3);
    assert!(matches!(
        r.read_exact_at(9_990, &mut buf),
        Err(ReadError::OutOfRange { offset: 10_000, .. })
    ));
    // zstd -d view: the frames, without the table.
    assert_eq!(zstd::stream::decode_all(&img[..]).unwrap(), d);
}

#[test]
fn frame_stream_in_order_with_the_file_hashed() {
    use sha2::Digest;
    let d = data(50_000);
    let img = image(&d, 4096);
    let t = SeekTable::read_from(&mut Cursor::new(&img)).unwrap();
    let mut s = FrameStream::start(
        Cursor::new(img.clone()),
        &t,
        0..t.frame_count(),
        t.table_len(),
        3,
        sha2::Sha256::new(),
    )
    .unwrap();
    let mut out = Vec::new();
    while let Some(f) = s.next_frame() {
        let (frame, bytes) = f.unwrap();
        assert_eq!(frame.decompressed_offset, out.len() as u64);
        out.extend_from_slice(bytes);
    }
    let h = s.finish().unwrap();
    assert_eq!(out, d);
    assert_eq!(h.finalize()[..], sha2::Sha256::digest(&img)[..]);
    // A sub-run from the middle.
    let mut s = FrameStream::start(Cursor::new(img), &t, 5..8, 0, 2, ()).unwrap();
    let mut got = Vec::new();
    while let Some(f) = s.next_frame() {
        got.extend_from_slice(f.unwrap().1);
    }
    assert_eq!(got, &d[5 * 4096..8 * 4096]);
}

#[test]
fn a_flipped_byte_is_located_and_later_frames_still_checked() {
    let d = data(20_000);
    let mut img = image(&d, 4096);
    let t = SeekTable::read_from(&mut Cursor::new(&img)).unwrap();
    let f2 = t.read_all_frames(&mut Cursor::new(&img)).unwrap()[2];
    img[(f2.compressed_offset + u64::from(f2.compressed_len) / 2) as usize] ^= 0x40;
    let mut s =
        FrameStream::start(Cursor::new(img.clone()), &t, 0..t.frame_count(), 0, 2, ()).unwrap();
    let mut bad = Vec::new();
    let mut good = 0;
    while let Some(f) = s.next_frame() {
        match f {
            Ok(_) => good += 1,
            Err(ReadError::Frame { frame, .. }) => bad.push(frame.index),
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(bad, vec![2]);
    assert_eq!(good, 4);
    let mut r = SeekableReader::open(Cursor::new(img)).unwrap();
    let err = r.read_exact_at(2 * 4096 + 5, &mut [0u8; 4]).unwrap_err();
    let msg = err.to_string();
    assert!(msg.starts_with("frame 2 (file bytes"), "{msg}");
    assert!(msg.contains("stream bytes 8192-12287"), "{msg}");
}

#[test]
fn frames_without_their_own_checksum_are_checked_by_xxh64() {
    let d = data(3000);
    let mut enc = zstd::bulk::Compressor::new(1).unwrap();
    enc.include_checksum(false).unwrap();
    let mut file = Vec::new();
    let mut entries = Vec::new();
    for chunk in d.chunks(1000) {
        let z = enc.compress(chunk).unwrap();
        assert_eq!(z[4] & 0x04, 0, "frame has no checksum");
        entries.push(Entry {
            compressed: z.len() as u32,
            decompressed: chunk.len() as u32,
            checksum: Some(frame_checksum(chunk)),
        });
        file.extend_from_slice(&z);
    }
    entries[2].checksum = Some(entries[2].checksum.unwrap() ^ 1);
    let mut w = TableWriter::new(&mut file, 3, true).unwrap();
    for e in entries {
        w.push(e).unwrap();
    }
    w.finish().unwrap();
    let mut r = SeekableReader::open(Cursor::new(file)).unwrap();
    let mut buf = vec![0u8; 2000];
    r.read_exact_at(0, &mut buf).unwrap();
    assert_eq!(&buf[..], &d[..2000]);
    let err = r.read_exact_at(2500, &mut [0u8; 1]).unwrap_err();
    assert!(
        matches!(
            err,
            ReadError::Frame {
                kind: FrameError::Checksum { .. },
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn a_wrong_table_checksum_is_named() {
    let d = data(3000);
    let mut img = image(&d, 1000);
    // Entry 1's checksum: table header 8 bytes, 12 per entry.
    let t = SeekTable::read_from(&mut Cursor::new(&img)).unwrap();
    let at = (t.data_len() + 8 + 12 + 8) as usize;
    img[at] ^= 1;
    let mut r = SeekableReader::open(Cursor::new(img)).unwrap();
    let err = r.read_exact_at(1500, &mut [0u8; 1]).unwrap_err();
    assert!(
        matches!(
            err,
            ReadError::Frame {
                kind: FrameError::Checksum { .. },
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn damaged_tables_truncation_and_garbage_are_named() {
    let d = data(5000);
    let img = image(&d, 1000);
    let table = |b: &[u8]| SeekTable::read_from(&mut Cursor::new(b.to_vec()));

    // Truncated: the footer is gone.
    let err = table(&img[..img.len() - 100]).unwrap_err();
    assert!(
        matches!(err, ReadError::Footer(FooterError::BadMagic { .. })),
        "{err}"
    );
    // Trailing garbage after the table.
    let mut g = img.clone();
    g.extend_from_slice(b"garbage");
    assert!(matches!(table(&g).unwrap_err(), ReadError::Footer(_)));
    // A frame removed from the middle: sizes no longer add up.
    let t = table(&img).unwrap();
    let f1 = t.read_all_frames(&mut Cursor::new(&img)).unwrap()[1];
    let mut cut = img[..f1.compressed_offset as usize].to_vec();
    cut.extend_from_slice(&img[f1.compressed_end() as usize..]);
    let err = table(&cut).unwrap_err();
    assert!(matches!(err, ReadError::DataLenMismatch { .. }), "{err}");
    assert!(err.to_string().contains("truncated"), "{err}");
    // Bytes inserted before the table.
    let mut ins = img[..t.data_len() as usize].to_vec();
    ins.extend_from_slice(b"xx");
    ins.extend_from_slice(&img[t.data_len() as usize..]);
    let err = table(&ins).unwrap_err();
    assert!(err.to_string().contains("inserted"), "{err}");
    // A footer claiming 4 billion frames is refused before allocating.
    let mut big = img.clone();
    let n = big.len();
    big[n - 9..n - 5].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(matches!(
        table(&big).unwrap_err(),
        ReadError::TableExceedsFile { .. }
    ));
    // A damaged skippable header.
    let mut hdr = img.clone();
    hdr[t.data_len() as usize] ^= 0xff;
    assert!(matches!(
        table(&hdr).unwrap_err(),
        ReadError::BadTableHeader { .. }
    ));
    // An entry claiming a huge decompressed size.
    let mut huge = img.clone();
    let e0 = t.data_len() as usize + 8 + 4;
    huge[e0..e0 + 4].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(matches!(
        table(&huge).unwrap_err(),
        ReadError::FrameTooLarge { index: 0, .. }
    ));
    // An entry with compressed size 0.
    let mut zero = img.clone();
    let e0 = t.data_len() as usize + 8;
    zero[e0..e0 + 4].copy_from_slice(&0u32.to_le_bytes());
    assert!(matches!(
        table(&zero).unwrap_err(),
        ReadError::ImpossibleFrame { index: 0, .. }
    ));
    // A compressed size larger than any frame of its content can be.
    let mut fat = img.clone();
    fat[e0..e0 + 4].copy_from_slice(&5000u32.to_le_bytes());
    assert!(matches!(
        table(&fat).unwrap_err(),
        ReadError::ImpossibleFrame {
            index: 0,
            compressed: 5000,
            decompressed: 1000
        }
    ));
    assert!(matches!(
        table(&[0u8; 5]).unwrap_err(),
        ReadError::TooShort { len: 5 }
    ));
}

#[test]
fn entries_that_lie_about_frame_boundaries_are_caught() {
    let d = data(4000);
    let img = image(&d, 2000);
    let t = SeekTable::read_from(&mut Cursor::new(&img)).unwrap();
    // Move one byte from frame 0's size to frame 1's: the totals still
    // add up, but neither entry covers exactly one zstd frame.
    let mut lie = img.clone();
    let e0 = t.data_len() as usize + 8;
    let all = t.read_all_frames(&mut Cursor::new(&img)).unwrap();
    let c0 = all[0].compressed_len;
    let c1 = all[1].compressed_len;
    lie[e0..e0 + 4].copy_from_slice(&(c0 - 1).to_le_bytes());
    lie[e0 + 12..e0 + 16].copy_from_slice(&(c1 + 1).to_le_bytes());
    let mut r = SeekableReader::open(Cursor::new(lie)).unwrap();
    let err = r.read_exact_at(0, &mut [0u8; 1]).unwrap_err();
    assert!(
        matches!(
            err,
            ReadError::Frame {
                kind: FrameError::NotAFrame { .. } | FrameError::LengthMismatch { .. },
                ..
            }
        ),
        "{err}"
    );
    let err = r.read_exact_at(3000, &mut [0u8; 1]).unwrap_err();
    assert!(matches!(err, ReadError::Frame { .. }), "{err}");
    // A decompressed size that disagrees with the frame.
    let mut size = img.clone();
    size[e0 + 4..e0 + 8].copy_from_slice(&1999u32.to_le_bytes());
    size[e0 + 16..e0 + 20].copy_from_slice(&2001u32.to_le_bytes());
    let mut r = SeekableReader::open(Cursor::new(size)).unwrap();
    let err = r.read_exact_at(0, &mut [0u8; 1]).unwrap_err();
    assert!(
        matches!(
            err,
            ReadError::Frame {
                kind: FrameError::Decompress { .. } | FrameError::SizeMismatch { .. },
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn the_sparse_index_spans_blocks_and_notices_a_changed_table() {
    // 3 blocks and a bit: frames of 3 bytes.
    let n = 3 * BLOCK as usize + 17;
    let d = data(n * 3);
    let img = image(&d, 3);
    let t = SeekTable::read_from(&mut Cursor::new(&img)).unwrap();
    assert_eq!(t.frame_count() as usize, n);
    // Four checkpoints and the totals, not 13k entries.
    assert!(t.index_bytes() <= 5 * 16, "{}", t.index_bytes());
    let all = t.read_all_frames(&mut Cursor::new(&img)).unwrap();
    assert_eq!(all.len(), n);
    let mut c = Cursor::new(img.clone());
    let mut cache = BlockCache::default();
    for i in [0, 4095, 4096, 8191, 8192, n - 1] {
        let f = t
            .frame_at(&mut c, &mut cache, 3 * i as u64 + 1)
            .unwrap()
            .unwrap();
        assert_eq!(f, all[i]);
    }
    let b = 3 * u64::from(BLOCK);
    assert_eq!(
        t.frame_range(&mut c, &mut cache, b - 1, b + 1).unwrap(),
        BLOCK - 1..BLOCK + 1
    );
    let mut r = SeekableReader::open(Cursor::new(img.clone())).unwrap();
    let mut buf = vec![0u8; 30];
    r.read_exact_at(b - 15, &mut buf).unwrap();
    assert_eq!(&buf[..], &d[b as usize - 15..b as usize + 15]);
    let mut s = FrameStream::start(Cursor::new(img.clone()), &t, 4000..9000, 0, 2, ()).unwrap();
    let mut got = Vec::new();
    while let Some(f) = s.next_frame() {
        got.extend_from_slice(f.unwrap().1);
    }
    assert_eq!(got, &d[4000 * 3..9000 * 3]);

    // The table as checked, then entries swapped in block 1: its frames
    // no longer end where the checkpoint says.
    let mut changed = img.clone();
    let width = 12;
    let entries = img.len() - 9 - n * width;
    let e = |i: usize| entries + i * width;
    let (a, z) = (e(5000), e(5001));
    // Move one decompressed byte from frame 5000 to a frame of block 2.
    let dec = |b: &[u8], at: usize| u32::from_le_bytes(b[at + 4..at + 8].try_into().unwrap());
    let (da, dz) = (dec(&img, a), dec(&img, e(9000)));
    changed[a + 4..a + 8].copy_from_slice(&(da + 1).to_le_bytes());
    changed[e(9000) + 4..e(9000) + 8].copy_from_slice(&(dz - 1).to_le_bytes());
    let _ = z;
    let mut c = Cursor::new(changed);
    let err = t
        .frame_at(&mut c, &mut BlockCache::default(), 5000 * 3)
        .unwrap_err();
    assert!(
        matches!(err, ReadError::TableChanged { first_frame: 4096 }),
        "{err}"
    );
}
