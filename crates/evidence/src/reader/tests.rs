//! Tests of the reader on images built in code with zstd and the table writer.

use super::*;
use crate::seektable::{Entry, TableWriter};
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
    assert_eq!(t.frames().len(), 10);
    assert_eq!(t.decompressed_len(), 10_000);
    assert_eq!(t.file_len(), img.len() as u64);
    assert_eq!(t.frame_at(1023).unwrap().index, 0);
    assert_eq!(t.frame_at(1024).unwrap().index, 1);
    assert!(t.frame_at(10_000).is_none());
    assert_eq!(t.frames_in(1000, 2100).len(), 3);
    assert_eq!(t.frames_in(9999, 10_000).len(), 1);
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
        t.frames(),
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
    let mid = &t.frames()[5..8];
    let mut s = FrameStream::start(Cursor::new(img), mid, 0, 2, ()).unwrap();
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
    let f2 = t.frames()[2];
    img[(f2.compressed_offset + u64::from(f2.compressed_len) / 2) as usize] ^= 0x40;
    let mut s = FrameStream::start(Cursor::new(img.clone()), t.frames(), 0, 2, ()).unwrap();
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
    let f1 = t.frames()[1];
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
    let c0 = t.frames()[0].compressed_len;
    let c1 = t.frames()[1].compressed_len;
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
