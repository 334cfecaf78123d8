//! Parses arbitrary bytes as `/proc/iomem`: a list of System RAM ranges or a
//! named error, never a panic; the ranges returned ascend without overlap.
#![no_main]

use fv_formats::iomem::system_ram;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(ram) = system_ram(data) {
        assert!(!ram.is_empty());
        for r in &ram {
            assert!(r.start <= r.end);
            assert!(r.len() >= 1);
        }
        for w in ram.windows(2) {
            assert!(w[0].end < w[1].start);
        }
    }
});
