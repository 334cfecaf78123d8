//! `capture symbols` on a real kernel stays within the bound docs/analyst.md
//! gives (256 MiB): Debian 12's `6.1.0-57-amd64`, its BTF with 13 modules'
//! split BTF, kallsyms and VMCOREINFO as `capture` took them under the VM
//! bench (the data of fv-symbols' `debian_kernel` test), in a capture
//! directory built here. It peaked at 552 MiB when the table was built as
//! one JSON value and then copied whole. Its own test binary, so that the
//! process's peak RSS is this command's.
//!
//! `FV_SYMBOLS_CAPTURE=DIR` keeps the capture directory at DIR (new), for
//! measuring the release binary on it (bench/RESULTS-symbols.md).

// Test code: a panic is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::Read;
use std::path::{Path, PathBuf};

use common::symbols::{Kernel, capture_of_kernel};
use common::*;

/// The bound docs/analyst.md gives for a distro kernel, in MiB.
const BOUND_MIB: u64 = 256;

fn data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../symbols/tests/data/debian-6.1.0-57-amd64")
}

fn unxz(name: &str) -> Vec<u8> {
    let mut out = Vec::new();
    liblzma::read::XzDecoder::new(std::fs::File::open(data().join(name)).unwrap())
        .read_to_end(&mut out)
        .unwrap();
    out
}

fn vm_hwm_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn symbols_of_debian_6_1_stays_within_the_documented_bound() {
    let mut modules: Vec<(String, Vec<u8>)> = std::fs::read_dir(data().join("modules"))
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().into_string().unwrap(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    modules.sort();
    let k = Kernel {
        vmlinux: unxz("vmlinux.btf.xz"),
        modules,
        kallsyms: unxz("boot-a.kallsyms.xz"),
        version: std::fs::read(data().join("version")).unwrap(),
        vmcoreinfo: std::fs::read(data().join("boot-a.vmcoreinfo")).unwrap(),
    };
    let t = tempfile::tempdir().unwrap();
    let (root, name) = match std::env::var_os("FV_SYMBOLS_CAPTURE").map(PathBuf::from) {
        Some(p) => (
            p.parent().unwrap().to_path_buf(),
            p.file_name().unwrap().to_str().unwrap().to_owned(),
        ),
        None => (t.path().to_path_buf(), "debian".to_owned()),
    };
    let mut f = capture_of_kernel(&root, &name, &k);
    f.manifest.host.kernel_release = "6.1.0-57-amd64".into();
    f.save_manifest();
    drop(k);
    let before = vm_hwm_kib();
    let out = t.path().join("debian.json.xz");
    let started = std::time::Instant::now();
    let r = run(&["symbols", f.d(), "-o", out.to_str().unwrap()]);
    let took = started.elapsed();
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("init_task (struct task_struct)"), "{r:?}");
    let after = vm_hwm_kib();
    eprintln!(
        "capture symbols on Debian 6.1: peak RSS {} MiB (before: {} MiB), {took:?} (debug build)",
        after / 1024,
        before / 1024
    );
    assert!(
        after < BOUND_MIB * 1024,
        "peak RSS {} MiB, bound {BOUND_MIB} MiB",
        after / 1024
    );
}
