//! Unpacks arbitrary bytes as a small archive into a fresh capture
//! directory (files, directories, symlinks pointing anywhere, FIFOs) and
//! runs `capture verify` (human and JSON), `info` and `extract` on it, as an
//! analyst would on a volume that was writable on a compromised host. The
//! seed is a complete capture (manifest, image, sidecar, a context file).
//!
//! Invariants: every command returns (a FIFO or a symlink to one must never
//! hang it: libFuzzer's timeout catches that), a `VERIFIED` report has no
//! problem, human output holds no control character but newlines, and no
//! file outside the directory is read (symlinks are refused: a link to a
//! FIFO outside would hang a reader that followed it).
//!
//! Archive: entries of `kind u8, name_len u8, name, data_len u16 LE, data`;
//! kind % 4: 0 file, 1 directory, 2 symlink to `data`, 3 FIFO. Names are
//! `/`-separated relative paths; entries that would leave the directory are
//! skipped.
#![no_main]

use fv_analyze::{Command, ExtractArgs, Format, InfoArgs, VerifyArgs};
use libfuzzer_sys::fuzz_target;

#[path = "common/archive.rs"]
mod archive;
use archive::{printable, scratch, unpack};

fuzz_target!(|data: &[u8]| {
    let root = scratch().join("cap");
    let _ = std::fs::remove_dir_all(&root);
    if std::fs::create_dir(&root).is_err() {
        return;
    }
    unpack(data, &root);
    let threads = std::num::NonZeroUsize::new(2);

    let (mut o, mut e) = (Vec::new(), Vec::new());
    let verify = |json| {
        Command::Verify(VerifyArgs {
            path: root.clone(),
            json,
            sha256: None,
            expect_manifest_sha256: None,
            expect_sha256: None,
            expect_lime_sha256: None,
            custody_record: None,
            threads,
        })
    };
    let _ = fv_analyze::run_with(&verify(false), &mut o, &mut e);
    printable(&o);
    printable(&e);
    let (mut o, mut e) = (Vec::new(), Vec::new());
    if let Ok(exit) = fv_analyze::run_with(&verify(true), &mut o, &mut e) {
        let v: serde_json::Value = serde_json::from_slice(&o).expect("verify --json is JSON");
        let problems = v["problems"].as_array().map_or(0, Vec::len);
        assert_eq!(v["verified"] == true, problems == 0);
        assert_eq!(exit == fv_analyze::Exit::Ok, problems == 0);
    }
    let (mut o, mut e) = (Vec::new(), Vec::new());
    let info = Command::Info(InfoArgs {
        path: root.clone(),
        json: false,
    });
    let _ = fv_analyze::run_with(&info, &mut o, &mut e);
    printable(&o);
    let out = scratch().join("out.lime");
    let _ = std::fs::remove_file(&out);
    let extract = Command::Extract(ExtractArgs {
        image: root.clone(),
        output: Some(out.clone()),
        format: Format::Lime,
        range: None,
        force: true,
        threads,
    });
    let (mut o, mut e) = (Vec::new(), Vec::new());
    let _ = fv_analyze::run_with(&extract, &mut o, &mut e);
    printable(&o);
    printable(&e);
});
