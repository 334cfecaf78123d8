//! `capture symbols` and the symbols line of `capture info` on capture
//! directories crafted by whoever had the volume last (security review S5,
//! S7): context files that are FIFOs or symlinks are refused, promptly and
//! by name, as `verify` refuses them; the report cannot drive the terminal.

// Test code: a panic is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::os::unix::fs::symlink;
use std::path::Path;

use common::symbols::{Kernel, capture_of_kernel, synthetic};
use common::*;

fn symbols(f: &Fixture, out: &Path) -> Option<Run> {
    within(
        60,
        &["symbols", f.d(), "-o", out.to_str().unwrap(), "--force"],
    )
}

/// `info`'s symbols line.
fn symbols_line(r: &Run) -> &str {
    r.stdout
        .lines()
        .find(|l| l.starts_with("symbols "))
        .unwrap_or_else(|| panic!("{r:?}"))
}

fn kernel() -> Kernel {
    synthetic(0x1a00_0000)
}

#[test]
fn a_good_capture_gives_a_table() {
    // The fixture the refusals below start from makes a table.
    // (`FV_SYMBOLS_SEED=DIR`, a new directory, keeps it there: the fuzz
    // seed `fuzz/seeds/symbols_dir/synthetic` is this capture, packed.)
    let t = tempfile::tempdir().unwrap();
    let (root, name) = match std::env::var_os("FV_SYMBOLS_SEED").map(std::path::PathBuf::from) {
        Some(p) => (
            p.parent().unwrap().to_path_buf(),
            p.file_name().unwrap().to_str().unwrap().to_owned(),
        ),
        None => (t.path().to_path_buf(), "cap".to_owned()),
    };
    let f = capture_of_kernel(&root, &name, &kernel());
    let r = within(20, &["info", f.d()]).expect("info hung");
    assert!(r.stdout.contains("symbols        yes"), "{r:?}");
    let r = symbols(&f, &t.path().join("t.json.xz")).expect("symbols hung");
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("init_task (struct task_struct)"), "{r:?}");
}

#[test]
fn a_fifo_context_file_is_refused_without_hanging() {
    let t = tempfile::tempdir().unwrap();
    let f = capture_of_kernel(t.path(), "cap", &kernel());
    let ks = f.dir.join("context/kallsyms");
    std::fs::remove_file(&ks).unwrap();
    mkfifo(&ks);
    let r = within(20, &["info", f.d()]).expect("info hung on a FIFO context/kallsyms");
    assert_eq!(r.code, 0, "{r:?}");
    let line = symbols_line(&r);
    assert!(line.contains("no: ") && line.contains("FIFO"), "{line}");
    let r =
        symbols(&f, &t.path().join("t.json.xz")).expect("symbols hung on a FIFO context/kallsyms");
    assert_eq!(r.code, 1, "{r:?}");
    let e = r.error.unwrap();
    assert!(e.contains("context/kallsyms") && e.contains("FIFO"), "{e}");
    assert!(!t.path().join("t.json.xz").exists());
}

#[test]
fn a_symlinked_context_file_is_not_followed() {
    let t = tempfile::tempdir().unwrap();
    let k = kernel();
    // "The analysis host's file", with exactly the content and hash the
    // manifest lists: followed, it would be read and accepted.
    let outside = t.path().join("host-passwd");
    std::fs::write(&outside, &k.kallsyms).unwrap();
    let f = capture_of_kernel(t.path(), "cap", &k);
    let ks = f.dir.join("context/kallsyms");
    std::fs::remove_file(&ks).unwrap();
    symlink(&outside, &ks).unwrap();
    let r = within(20, &["info", f.d()]).expect("info hung");
    assert_eq!(r.code, 0, "{r:?}");
    let line = symbols_line(&r);
    assert!(
        line.contains("no: ") && line.contains("symbolic link"),
        "{line}"
    );
    let r = symbols(&f, &t.path().join("t.json.xz")).expect("symbols hung");
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.error.unwrap().contains("symbolic link"));

    // A symlinked context/ directory is not followed either.
    let g = capture_of_kernel(t.path(), "cap2", &k);
    let real = t.path().join("elsewhere");
    std::fs::rename(g.dir.join("context"), &real).unwrap();
    symlink(&real, g.dir.join("context")).unwrap();
    let r = symbols(&g, &t.path().join("t2.json.xz")).expect("symbols hung");
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.error.unwrap().contains("symbolic link"));

    // Nor a symlinked image.
    let h = capture_of_kernel(t.path(), "cap3", &k);
    let img = t.path().join("image-elsewhere");
    std::fs::rename(h.image(), &img).unwrap();
    symlink(&img, h.image()).unwrap();
    let r = symbols(&h, &t.path().join("t3.json.xz")).expect("symbols hung");
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.error.unwrap().contains("symbolic link"));
}

#[test]
fn terminal_escapes_in_the_release_and_module_names_are_printed_escaped() {
    let t = tempfile::tempdir().unwrap();
    let mut k = kernel();
    // A module whose BTF is not usable: its name is printed on the
    // "module skipped" line.
    let module = "evil\u{1b}]52;c;cm0gLXJmIH4K\u{7}\u{1b}[2K";
    k.modules
        .push((module.into(), b"not BTF at all, long enough".to_vec()));
    let mut f = capture_of_kernel(t.path(), "cap", &k);
    // The suspect's uname -r, with a CSI that erases the line and an OSC 52
    // clipboard write.
    f.manifest.host.kernel_release = "6.1.0\u{1b}[2K\r\u{1b}]52;c;ZWNobyBvd25lZAo=\u{7}".into();
    f.save_manifest();
    let r = symbols(&f, &t.path().join("t.json.xz")).expect("symbols hung");
    assert_eq!(r.code, 0, "{r:?}");
    for (i, c) in r.stdout.char_indices() {
        assert!(
            c == '\n' || !c.is_control(),
            "control character {c:?} at byte {i} in:\n{:?}",
            r.stdout
        );
    }
    assert!(
        r.stdout
            .contains("6.1.0\\x1b[2K\\x0d\\x1b]52;c;ZWNobyBvd25lZAo=\\x07"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("module skipped evil\\x1b]52;"),
        "{}",
        r.stdout
    );
}
