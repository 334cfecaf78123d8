//! What the analyst's `capture symbols` needs to make a Volatility symbol
//! table, taken while the kernel runs (issue 16): the kernel's BTF, its
//! VMCOREINFO note (the KASLR slide), and a check of the kallsyms copy.
//! Only `/sys` and `/proc` are read; nothing in the kernel is changed
//! (`kptr_restrict` in particular is left as it is and only reported).
//!
//! Written into `context/`, hashed in the manifest like every context file:
//! - `context/btf/vmlinux` and `context/btf/<module>`: `/sys/kernel/btf/*`
//!   (since 5.4; module split BTF since 5.11), vmlinux first, modules by
//!   name, [`BTF_TOTAL_CAP`] bytes at most in all;
//! - `context/vmcoreinfo-kcore`: the text of the `VMCOREINFO` ELF note among
//!   `/proc/kcore`'s notes (since 4.19), with `KERNELOFFSET` and, on x86_64,
//!   `NUMBER(phys_base)`.
//!
//! Warnings name what the analyst loses: no BTF, no note, zeroed kallsyms,
//! kallsyms without data symbols.

use std::ffi::OsStr;
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::Path;

use fv_core::fs::Dir;
use fv_evidence::manifest::{CONTEXT_DIR, FileEntry};
use fv_formats::kcore;
use fv_symbols::{kallsyms, vmcoreinfo};
use sha2::{Digest, Sha256};

use super::copy::copy_into;
use crate::hex::hex;
use crate::roots::Roots;

/// Folder under `context/` for the BTF files.
pub const BTF_DIR: &str = "btf";
/// File under `context/` holding the VMCOREINFO note's text.
pub const VMCOREINFO_KCORE: &str = "vmcoreinfo-kcore";
/// Most bytes of BTF copied in all (vmlinux is 4-6 MiB; a module's split
/// BTF is kilobytes; a few hundred modules stay far below this).
pub const BTF_TOTAL_CAP: u64 = 64 << 20;
/// Most BTF files copied.
pub const BTF_MAX_FILES: usize = 4096;
/// Most bytes read from kcore's note segment (the notes are a few KiB).
const NOTES_CAP: u64 = 1 << 20;

/// Copies the BTF, saves the VMCOREINFO note and checks kallsyms; appends
/// to `files` and `warnings`. Never fails: what cannot be had is a warning.
pub fn write(roots: &Roots, ctx: &Dir, files: &mut Vec<FileEntry>, warnings: &mut Vec<String>) {
    copy_btf(roots, ctx, files, warnings);
    save_vmcoreinfo(roots, ctx, files, warnings);
    check_kallsyms(ctx, warnings);
}

/// Removes what [`write`] created (a capture that produced no image).
pub fn remove(ctx: &Dir) {
    if let Ok(btf) = ctx.open_dir(OsStr::new(BTF_DIR)) {
        if let Ok(rd) = std::fs::read_dir(btf.path()) {
            for e in rd.flatten() {
                let _ = btf.remove_file(&e.file_name());
            }
        }
        let _ = ctx.remove_dir(OsStr::new(BTF_DIR));
    }
    let _ = ctx.remove_file(OsStr::new(VMCOREINFO_KCORE));
}

const NO_SYMBOLS: &str = "`capture symbols` cannot make a Volatility symbol table for this capture";

fn copy_btf(roots: &Roots, ctx: &Dir, files: &mut Vec<FileEntry>, warnings: &mut Vec<String>) {
    let src = roots.sys.join("kernel/btf");
    let vmlinux = src.join("vmlinux");
    if !vmlinux.exists() {
        warnings.push(format!(
            "{} does not exist (kernel before 5.4 or built without CONFIG_DEBUG_INFO_BTF): {NO_SYMBOLS}",
            vmlinux.display()
        ));
        return;
    }
    let dir = match ctx.create_dir(OsStr::new(BTF_DIR)) {
        Ok(d) => d,
        Err(e) => {
            warnings.push(format!("context/{BTF_DIR}: {e}"));
            return;
        }
    };
    let mut modules: Vec<String> = match std::fs::read_dir(&src) {
        Ok(rd) => rd
            .flatten()
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| n != "vmlinux" && plain_name(n))
            .collect(),
        Err(e) => {
            warnings.push(format!("{}: {e}", src.display()));
            Vec::new()
        }
    };
    modules.sort();
    let mut total = 0u64;
    let mut skipped = 0usize;
    for (i, name) in std::iter::once("vmlinux".to_owned())
        .chain(modules)
        .enumerate()
    {
        if i >= BTF_MAX_FILES || total >= BTF_TOTAL_CAP {
            skipped += 1;
            continue;
        }
        match copy_into(&src.join(&name), &dir, &name, BTF_TOTAL_CAP - total) {
            Ok((size, sha256)) => {
                total += size;
                files.push(FileEntry {
                    path: format!("{CONTEXT_DIR}/{BTF_DIR}/{name}"),
                    size,
                    sha256,
                });
            }
            Err(e) => {
                // A module unloaded since the listing is not worth a warning.
                if name == "vmlinux" || src.join(&name).exists() {
                    warnings.push(format!("context/{BTF_DIR}/{name}: {e}"));
                }
                let _ = dir.remove_file(OsStr::new(&name));
            }
        }
    }
    if skipped > 0 {
        warnings.push(format!(
            "context/{BTF_DIR}: {skipped} module BTF file(s) not copied (more than {BTF_MAX_FILES} files or {} MiB): types that live only in those modules are missing from `capture symbols` tables",
            BTF_TOTAL_CAP >> 20
        ));
    }
    if let Err(e) = dir.sync() {
        warnings.push(format!("context/{BTF_DIR}: {e}"));
    }
}

/// A sysfs entry name we may use as a file name.
fn plain_name(n: &str) -> bool {
    !n.is_empty() && n != "." && n != ".." && !n.contains('/') && n.len() <= 255
}

/// The VMCOREINFO note's text from `/proc/kcore`'s PT_NOTE segments.
///
/// # Errors
/// Why it could not be read, as text for the warning.
pub fn kcore_vmcoreinfo(kcore_path: &Path) -> Result<Vec<u8>, String> {
    let f = File::open(kcore_path).map_err(|e| format!("{}: {e}", kcore_path.display()))?;
    let read = |at: u64, buf: &mut [u8]| -> Result<usize, String> {
        let mut got = 0;
        while got < buf.len() {
            match f.read_at(&mut buf[got..], at + got as u64) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("{}: {e}", kcore_path.display())),
            }
        }
        Ok(got)
    };
    let mut eh = [0u8; kcore::EHDR_LEN];
    let got = read(0, &mut eh)?;
    let ehdr = kcore::parse_ehdr(&eh[..got]).map_err(|e| e.to_string())?;
    let count = if ehdr.phnum == kcore::PN_XNUM {
        let mut sh = [0u8; 64];
        let got = read(ehdr.shoff, &mut sh)?;
        u64::from(kcore::phnum_from_section0(&sh[..got]).map_err(|e| e.to_string())?)
    } else {
        u64::from(ehdr.phnum)
    };
    let mut ph = vec![0u8; kcore::phdrs_len(count).map_err(|e| e.to_string())?];
    let got = read(ehdr.phoff, &mut ph)?;
    let segments = kcore::parse_phdrs(&ph[..got], count).map_err(|e| e.to_string())?;
    for s in segments.iter().filter(|s| s.p_type == kcore::PT_NOTE) {
        let mut notes = vec![0u8; s.filesz.min(NOTES_CAP) as usize];
        let got = read(s.offset, &mut notes)?;
        if let Some(text) = vmcoreinfo::find_note(&notes[..got]) {
            return Ok(text.to_vec());
        }
    }
    Err("no VMCOREINFO note among /proc/kcore's notes (kernel before 4.19?)".into())
}

fn save_vmcoreinfo(
    roots: &Roots,
    ctx: &Dir,
    files: &mut Vec<FileEntry>,
    warnings: &mut Vec<String>,
) {
    let text = match kcore_vmcoreinfo(&roots.proc.join("kcore")) {
        Ok(t) => t,
        Err(e) => {
            warnings.push(format!(
                "context/{VMCOREINFO_KCORE} not written: {e}; `capture symbols` will have to guess the KASLR slide"
            ));
            return;
        }
    };
    let info = vmcoreinfo::parse(&text);
    if info.kernel_offset.is_none() {
        warnings.push(format!(
            "context/{VMCOREINFO_KCORE}: VMCOREINFO has no KERNELOFFSET; `capture symbols` will have to guess the KASLR slide"
        ));
    }
    let written = ctx
        .create_file(OsStr::new(VMCOREINFO_KCORE))
        .map_err(|e| e.to_string())
        .and_then(|mut f| {
            f.write_all(&text)
                .and_then(|()| f.sync_all())
                .map_err(|e| e.to_string())
        });
    match written {
        Ok(()) => files.push(FileEntry {
            path: format!("{CONTEXT_DIR}/{VMCOREINFO_KCORE}"),
            size: text.len() as u64,
            sha256: hex(&Sha256::digest(&text)),
        }),
        Err(e) => {
            warnings.push(format!("context/{VMCOREINFO_KCORE}: {e}"));
            let _ = ctx.remove_file(OsStr::new(VMCOREINFO_KCORE));
        }
    }
}

/// Reads the kallsyms copy back from the volume (not `/proc` again: the
/// kernel takes a quarter second of CPU per read) and warns when it cannot
/// serve a symbol table.
fn check_kallsyms(ctx: &Dir, warnings: &mut Vec<String>) {
    let Ok(f) = ctx.open_file(OsStr::new("kallsyms")) else {
        return;
    };
    let mut counter = kallsyms::HealthCounter::default();
    let mut reader = std::io::BufReader::with_capacity(1 << 16, f);
    let mut line = Vec::with_capacity(256);
    loop {
        line.clear();
        match std::io::BufRead::read_until(&mut reader, b'\n', &mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) => counter.line(&line),
        }
    }
    fv_core::fs::drop_cached(reader.get_ref(), 0, 0);
    warnings.extend(counter.health().warnings());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vmcoreinfo_from_a_kcore_built_in_code() {
        let dir = tempfile::tempdir().unwrap();
        let text = b"OSRELEASE=6.1.0\nKERNELOFFSET=2e000000\nNUMBER(phys_base)=123\n";
        let mut notes = vmcoreinfo::encode_note(b"CORE\0", 1, &[0u8; 64]);
        notes.extend(vmcoreinfo::encode_note(b"VMCOREINFO\0", 0, text));
        let note_at = 64 + 2 * 56;
        let segs = [
            kcore::Segment {
                p_type: kcore::PT_NOTE,
                flags: 0,
                offset: note_at,
                vaddr: 0,
                paddr: 0,
                filesz: notes.len() as u64,
                memsz: 0,
            },
            kcore::Segment {
                p_type: kcore::PT_LOAD,
                flags: 0,
                offset: 4096,
                vaddr: 0xffff_8880_0000_0000,
                paddr: 0,
                filesz: 4096,
                memsz: 4096,
            },
        ];
        let mut img = kcore::encode(kcore::EM_X86_64, &segs);
        img.resize(note_at as usize, 0);
        img.extend_from_slice(&notes);
        let path = dir.path().join("kcore");
        std::fs::write(&path, &img).unwrap();
        assert_eq!(kcore_vmcoreinfo(&path).unwrap(), text);
        // Without the note: a reason, not a panic.
        img.truncate(note_at as usize);
        img.extend(vmcoreinfo::encode_note(b"CORE\0", 1, &[0u8; 64]));
        std::fs::write(&path, &img).unwrap();
        assert!(
            kcore_vmcoreinfo(&path)
                .unwrap_err()
                .contains("no VMCOREINFO")
        );
    }
}
