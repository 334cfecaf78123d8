//! Reads arbitrary bytes as a seekable zstd image with
//! `fv_evidence::reader`: the seek table parse, random reads, and the
//! parallel frame stream must return data or a named error, never panic,
//! hang, or allocate for a size they read from the file.
#![no_main]

use std::io::Cursor;

use fv_evidence::reader::{FrameStream, SeekTable, SeekableReader};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(table) = SeekTable::read_from(&mut Cursor::new(data)) else {
        return;
    };
    // A table that parsed accounts for every byte of the file.
    assert_eq!(table.file_len(), data.len() as u64);
    // The sparse index reads the same entries back, block by block.
    let Ok(frames) = table.read_all_frames(&mut Cursor::new(data)) else {
        panic!("a table that parsed cannot be read back");
    };
    assert_eq!(frames.len(), table.frame_count() as usize);
    let compressed: u64 = frames.iter().map(|f| u64::from(f.compressed_len)).sum();
    assert_eq!(compressed, table.data_len());

    let len = table.decompressed_len();
    let mut reader = match SeekableReader::with_table(Cursor::new(data), table.clone()) {
        Ok(r) => r,
        Err(_) => return,
    };
    let mut buf = [0u8; 64];
    for at in [0, len / 2, len.saturating_sub(1), len, len + 1] {
        if let Ok(n) = reader.read_at(at, &mut buf) {
            assert!(n as u64 <= len.saturating_sub(at.min(len)));
        }
    }

    let Ok(mut stream) = FrameStream::start(
        Cursor::new(data.to_vec()),
        &table,
        0..table.frame_count(),
        table.table_len(),
        2,
        (),
    ) else {
        return;
    };
    let mut seen = 0usize;
    while let Some(next) = stream.next_frame() {
        if let Ok((frame, content)) = next {
            assert_eq!(content.len(), frame.decompressed_len as usize);
        }
        seen += 1;
    }
    assert!(seen <= frames.len());
    let _ = stream.finish();
});
