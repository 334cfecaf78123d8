//! Feeds arbitrary text to the toolkit's `SHA256SUMS` and marker parsers
//! (`fv_mount::verify::parse_sums`, `parse_marker`), which read files from a
//! volume that was writable on a suspect host: every entry accepted must be a
//! lowercase SHA-256 and a relative path of normal components, and nothing may
//! panic.
#![no_main]

use std::path::{Component, Path};

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(entries) = fv_mount::verify::parse_sums(&text, Path::new("SHA256SUMS")) {
        assert!(!entries.is_empty());
        for e in entries {
            assert_eq!(e.sha256.len(), 64);
            assert!(
                e.sha256
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
            );
            assert!(
                e.path
                    .components()
                    .all(|c| matches!(c, Component::Normal(_)))
            );
            assert!(!e.path.as_os_str().is_empty());
        }
    }
    if let Ok(m) = fv_mount::verify::parse_marker(&text, Path::new("forensics-volume.json")) {
        assert_eq!(m.toolkit, "forensics-volume");
    }
});
