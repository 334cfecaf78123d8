//! Hands arbitrary bytes to `capture extract` as an image file, with the
//! format and an optional physical range chosen from the bytes' length and
//! sum (so the image itself is the whole input and seeds keep their magic):
//! every path through input detection, the header walk, planning (padded
//! offsets at the top of the address space: L1), the frame stream and the
//! output must end in an extracted file or a named error, never a panic, a
//! hang or a wrapped size.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use fv_analyze::range::PhysRange;
use fv_analyze::{Command, ExtractArgs, Format};
use libfuzzer_sys::fuzz_target;

fn scratch() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        // On disk, not tmpfs: a few KiB of image can decompress to many MiB.
        let dir = std::env::temp_dir().join(format!("fv-fuzz-extract-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        dir
    })
}

fuzz_target!(|data: &[u8]| {
    let image = scratch().join("image");
    let out = scratch().join("out");
    if std::fs::write(&image, data).is_err() {
        return;
    }
    let _ = std::fs::remove_file(&out);
    let sum = data
        .iter()
        .fold(0u64, |a, &b| a.wrapping_mul(31).wrapping_add(u64::from(b)));
    let format = [Format::Lime, Format::Raw, Format::Padded][data.len() % 3];
    let range = match sum % 4 {
        0 => None,
        1 => Some(PhysRange {
            start: 0,
            end: u64::MAX,
        }),
        2 => Some(PhysRange {
            start: sum % 0x10_0000,
            end: sum % 0x10_0000 + (sum >> 40),
        }),
        _ => Some(PhysRange {
            start: u64::MAX - (sum & 0xffff),
            end: u64::MAX,
        }),
    };
    let args = ExtractArgs {
        image: image.clone(),
        output: Some(out.clone()),
        format,
        range,
        force: true,
        threads: std::num::NonZeroUsize::new(2),
    };
    let (mut o, mut e) = (Vec::new(), Vec::new());
    let result = fv_analyze::run_with(&Command::Extract(args), &mut o, &mut e);
    match result {
        Ok(_) => {
            // A success names a file that exists, and padded output never
            // reports memory it could not place.
            let meta = std::fs::metadata(&out).expect("extract succeeded without an output");
            let text = String::from_utf8_lossy(&o);
            assert!(text.starts_with("extracted "), "{text}");
            if format != Format::Padded {
                assert!(meta.len() <= 64 * (data.len() as u64).max(1) << 20);
            }
        }
        Err(_) => {
            // Nothing half-written is left under the final name.
            assert!(!out.exists());
        }
    }
    // Human output is printable whatever the input.
    for c in String::from_utf8_lossy(&e).chars() {
        assert!(c == '\n' || !c.is_control(), "control character in {e:?}");
    }
});
