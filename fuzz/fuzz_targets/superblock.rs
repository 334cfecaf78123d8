//! Feeds arbitrary bytes to `fv_ebs::superblock::read` as a device: the
//! superblock reader runs on evidence disks (and on the forensics volume
//! before it is trusted), so it must return a superblock or a named error
//! whatever the bytes, never panic.
#![no_main]

use std::io::Cursor;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(sb) = fv_ebs::superblock::read(&mut Cursor::new(data)) {
        // The label comes from at most 16 bytes of the superblock; the UUID
        // is always formatted 8-4-4-4-12.
        assert!(sb.label.chars().count() <= 16 || sb.label.contains('\u{fffd}'));
        assert_eq!(sb.uuid.len(), 36);
    }
});
