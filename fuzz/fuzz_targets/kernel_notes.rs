//! Feeds arbitrary bytes to `fv_acquire::host::build_id`, the ELF note parser
//! for `/sys/kernel/notes` (a file the suspect's kernel writes, so a hostile
//! one can put anything there): it must return a build ID or nothing, never
//! panic, loop or index out of bounds.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some(id) = fv_acquire::host::build_id(data) {
        // Hex of a non-empty descriptor that lies inside the input.
        assert!(!id.is_empty() && id.len() % 2 == 0);
        assert!(id.len() / 2 <= data.len());
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
    }
});
