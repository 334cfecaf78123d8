//! Removing what a run created in a capture directory that produced no
//! image ([`cleanup`]): only names this run creates; nothing else is
//! touched.

use std::ffi::OsStr;

use fv_core::fs::Dir;
use fv_evidence::manifest;

use crate::host::{imds, symbols};
use crate::output;

/// Removes what this run created in a capture directory that produced no
/// image (only names we create; nothing else is touched).
pub(super) fn cleanup(root: &Dir, cdir: &Dir, name: &str) {
    let ctx = manifest::CONTEXT_DIR;
    if let Ok(c) = cdir.open_dir(OsStr::new(ctx)) {
        for f in [
            "uname",
            "version",
            "cmdline",
            "modules",
            "kallsyms",
            "iomem",
            "cpuinfo",
            "meminfo",
            "uptime",
            "boot_id",
            "mountinfo",
            "vmcoreinfo",
            "kernel-notes",
            "lockdown",
            "tainted",
            "build-id",
            imds::IMDS_DOCUMENT_FILE,
            imds::IMDS_PKCS7_FILE,
        ] {
            let _ = c.remove_file(OsStr::new(f));
        }
        symbols::remove(&c);
        let _ = cdir.remove_dir(OsStr::new(ctx));
    }
    for f in [
        manifest::IMAGE_FILE,
        output::RESERVE_FILE,
        fv_evidence::inprogress::INCOMPLETE_FILE,
    ] {
        let _ = cdir.remove_file(OsStr::new(f));
    }
    let _ = root.remove_dir(OsStr::new(name));
    let _ = root.sync();
}
