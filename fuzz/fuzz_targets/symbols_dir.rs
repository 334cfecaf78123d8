//! `capture symbols` end to end on a capture directory unpacked from
//! arbitrary bytes (the archive of `common/archive.rs`: files, directories,
//! symlinks pointing anywhere, FIFOs), then `capture info`, whose symbols
//! line loads the same context. Seeded with a capture of the synthetic
//! kernel that makes a table (`seeds/symbols_dir/synthetic`): manifest,
//! image with the banner, `context/btf/vmlinux`, `kallsyms`, `version`,
//! `vmcoreinfo-kcore`.
//!
//! Invariants: every command returns (a FIFO context file or a symlink to
//! the FIFO outside must never hang it: libFuzzer's timeout catches that),
//! never panics, stays within `-rss_limit_mb` (the bounds of
//! docs/analyst.md), prints no control character but newlines, and a table
//! it says it wrote is there and is a Volatility ISF.
#![no_main]

use std::io::Read;

use fv_analyze::{Command, InfoArgs, SymbolsArgs};
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
    let out = scratch().join("table.json.xz");
    let _ = std::fs::remove_file(&out);
    let symbols = Command::Symbols(SymbolsArgs {
        path: root.clone(),
        output: Some(out.clone()),
        force: true,
        kernel_offset: None,
    });
    let (mut o, mut e) = (Vec::new(), Vec::new());
    let r = fv_analyze::run_with(&symbols, &mut o, &mut e);
    printable(&o);
    printable(&e);
    if r.is_ok() {
        let mut text = Vec::new();
        liblzma::read::XzDecoder::new(std::fs::File::open(&out).expect("the table written"))
            .read_to_end(&mut text)
            .expect("the table is xz");
        let v: serde_json::Value = serde_json::from_slice(&text).expect("the table is JSON");
        assert_eq!(v["metadata"]["format"], "6.2.0");
        assert!(v["symbols"]["linux_banner"]["constant_data"].is_string());
    } else {
        assert!(!out.exists(), "a failed run left a table");
    }
    let info = Command::Info(InfoArgs {
        path: root.clone(),
        json: false,
    });
    let (mut o, mut e) = (Vec::new(), Vec::new());
    let _ = fv_analyze::run_with(&info, &mut o, &mut e);
    printable(&o);
});
