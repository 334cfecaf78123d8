//! Capture directories with what `capture symbols` reads: `context/btf/`,
//! `context/kallsyms`, `context/version`, `context/vmcoreinfo-kcore`, all
//! listed in the manifest with their hashes, and the banner in the image.

use std::path::Path;

use fv_evidence::manifest::FileEntry;

use super::{Fixture, capture_of, lime, sha};

/// The kernel a symbols capture is made of.
pub struct Kernel {
    /// `context/btf/vmlinux`.
    pub vmlinux: Vec<u8>,
    /// `context/btf/<module>`.
    pub modules: Vec<(String, Vec<u8>)>,
    /// `context/kallsyms`.
    pub kallsyms: Vec<u8>,
    /// `context/version`: the banner, also put in the image.
    pub version: Vec<u8>,
    /// `context/vmcoreinfo-kcore`.
    pub vmcoreinfo: Vec<u8>,
}

/// The synthetic kernel of `fv_symbols::fixture` at slide `ko`.
pub fn synthetic(ko: u64) -> Kernel {
    Kernel {
        vmlinux: fv_symbols::fixture::kernel_btf(),
        modules: Vec::new(),
        kallsyms: fv_symbols::fixture::kallsyms(ko),
        version: b"Linux version 6.1.0-test (gcc) #1 SMP\n".to_vec(),
        vmcoreinfo: format!("OSRELEASE=6.1.0-test\nKERNELOFFSET={ko:x}\n").into_bytes(),
    }
}

/// One range of memory whose payload holds the banner (small: the fuzz
/// seed made from this capture keeps every file under 64 KiB).
pub const RANGE: (u64, u64) = (0x10_0000, 0x11_ffff);

/// Writes `path` (relative) with `data` and lists it in the manifest.
pub fn add_listed(f: &mut Fixture, rel: &str, data: &[u8]) {
    let path = f.dir.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, data).unwrap();
    f.manifest.files.push(FileEntry {
        path: rel.into(),
        size: data.len() as u64,
        sha256: sha(data),
    });
}

/// A capture of `k` named `name` under `root`, every context file listed.
pub fn capture_of_kernel(root: &Path, name: &str, k: &Kernel) -> Fixture {
    let mut stream = lime(&[RANGE]);
    let at = 32 + 0x1_0000;
    stream[at..at + k.version.len()].copy_from_slice(&k.version);
    let mut f = capture_of(root, name, &[RANGE], stream);
    add_listed(&mut f, "context/btf/vmlinux", &k.vmlinux);
    for (n, d) in &k.modules {
        add_listed(&mut f, &format!("context/btf/{n}"), d);
    }
    add_listed(&mut f, "context/kallsyms", &k.kallsyms);
    add_listed(&mut f, "context/version", &k.version);
    add_listed(&mut f, "context/vmcoreinfo-kcore", &k.vmcoreinfo);
    f.save_manifest();
    f
}
