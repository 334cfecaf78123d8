//! Walks arbitrary bytes as a LiME stream with `fv_formats::lime::RecordReader`:
//! it must return records or a named error, never panic, hang or allocate for
//! a length it read from a header.
#![no_main]

use fv_formats::lime::RecordReader;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut reader = RecordReader::new(data);
    let mut buf = [0u8; 4096];
    let mut payload_total = 0u64;
    loop {
        match reader.next_record() {
            Ok(Some(record)) => {
                assert!(record.header.start <= record.header.end);
                assert_eq!(record.payload_offset, record.header_offset + 32);
                // Read half the records' payloads, skip the others, so both
                // paths run.
                if record.index % 2 == 0 {
                    loop {
                        match reader.read_payload(&mut buf) {
                            Ok(0) => break,
                            Ok(n) => payload_total += n as u64,
                            Err(_) => return,
                        }
                    }
                }
            }
            Ok(None) => break,
            Err(_) => return,
        }
    }
    // A clean end means every byte was a header or a payload.
    assert!(reader.offset() == data.len() as u64);
    assert!(payload_total <= data.len() as u64);
});
