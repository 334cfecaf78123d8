#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Read;

use super::*;

/// Position-dependent bytes with runs of zeros (compressible, as memory).
fn data(start: u64, len: usize) -> Vec<u8> {
    (0..len as u64)
        .map(|i| {
            let p = start + i;
            if (p / 4096) % 3 == 0 {
                0
            } else {
                (p.wrapping_mul(2_654_435_761) >> 13) as u8
            }
        })
        .collect()
}

const RANGES: [(u64, u64); 3] = [
    (0x1000, 0x9_ffff),
    (0x10_0000, 0x2f_ffff),
    (0x1_0000_0000, 0x1_0000_0fff),
];

fn lime_and_avml() -> (Vec<u8>, Vec<u8>) {
    let (mut lime, mut avml) = (Vec::new(), Vec::new());
    for (s, e) in RANGES {
        let d = data(s, (e - s + 1) as usize);
        lime.extend_from_slice(&Header::new(s, e).to_bytes());
        lime.extend_from_slice(&d);
        write_block(&mut avml, s, e, &d).unwrap();
    }
    (lime, avml)
}

fn read_all(input: &[u8]) -> Result<Vec<u8>, io::Error> {
    let mut out = Vec::new();
    // Odd-sized reads, to cross chunk and block boundaries.
    let mut r = Avml::new(input);
    let mut buf = [0u8; 7777];
    loop {
        let n = r.read(&mut buf)?;
        if n == 0 {
            return Ok(out);
        }
        out.extend_from_slice(&buf[..n]);
    }
}

#[test]
fn avml_reads_as_the_lime_stream_it_stands_for() {
    let (lime, avml) = lime_and_avml();
    assert!(is_avml(&avml[..8]));
    assert!(!is_avml(&lime[..8]));
    assert!(avml.len() < lime.len());
    assert!(read_all(&avml).unwrap() == lime);
    let mut r = Avml::new(&avml[..]);
    std::io::copy(&mut r, &mut std::io::sink()).unwrap();
    assert_eq!(r.blocks(), 3);
    assert_eq!(r.input_offset(), avml.len() as u64);
}

#[test]
fn damage_is_an_error_naming_the_block() {
    let (_, avml) = lime_and_avml();
    // A flipped byte inside the second block's snappy data: CRC or decode.
    let first = {
        let mut one = Vec::new();
        let (s, e) = RANGES[0];
        write_block(&mut one, s, e, &data(s, (e - s + 1) as usize)).unwrap();
        one.len()
    };
    let mut flipped = avml.clone();
    flipped[first + 32 + 200] ^= 0x20;
    let e = read_all(&flipped).unwrap_err();
    assert!(e.to_string().contains("AVML block 1"), "{e}");

    // Cut inside a block, inside a trailer, inside a header.
    for cut in [first + 32 + 100, first - 3, first + 10] {
        let e = read_all(&avml[..cut]).unwrap_err();
        assert!(e.to_string().contains("AVML block"), "{cut}: {e}");
    }

    // A trailer that lies about the snappy stream's length.
    let mut lying = avml.clone();
    lying[first - 8] ^= 1;
    let e = read_all(&lying).unwrap_err();
    assert!(e.to_string().contains("its trailer says"), "{e}");

    // A header that claims less than the snappy stream holds.
    let mut short = avml.clone();
    let end = u64::from_le_bytes(short[16..24].try_into().unwrap());
    short[16..24].copy_from_slice(&(end - 1).to_le_bytes());
    let e = read_all(&short).unwrap_err();
    assert!(e.to_string().contains("decodes to more"), "{e}");

    // And more than it holds.
    let mut long = avml.clone();
    long[16..24].copy_from_slice(&(end + 1).to_le_bytes());
    assert!(read_all(&long).is_err());

    // Garbage after the last block, and a bad magic on a later block.
    let mut trailing = avml.clone();
    trailing.extend_from_slice(b"LiME\x01\0\0\0");
    let e = read_all(&trailing).unwrap_err();
    assert!(e.to_string().contains("AVML block 3"), "{e}");

    // An error sticks: later reads fail too.
    let mut r = Avml::new(&flipped[..]);
    let mut sink = Vec::new();
    assert!(r.read_to_end(&mut sink).is_err());
    assert!(r.read(&mut [0u8; 16]).is_err());
}

#[test]
fn empty_input_is_an_empty_stream() {
    assert_eq!(read_all(&[]).unwrap(), Vec::<u8>::new());
}
