//! `capture` collects what a Volatility symbol table needs (BTF, the
//! VMCOREINFO note from kcore, kallsyms), and `capture symbols` turns it
//! into an ISF, end to end through the real binary on fixture trees: a
//! synthetic kernel (BTF built in code), captured at two KASLR slides, must
//! give byte-identical tables; the banner must be found in the image.
//! (The binary refuses to capture without root, hence `root_` names.)

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::Path;

use common::*;
use fv_formats::kcore::{self, EM_X86_64, Segment};

const PO: u64 = 0xffff_8880_0000_0000;
const RAM: (u64, u64) = (0x10_0000, 0x4f_ffff);
const BANNER: &[u8] = b"Linux version 6.1.0-test\n";
/// Where the fixture kernel's `linux_banner` is in physical memory.
const BANNER_PHYS: u64 = 0x20_0300;
/// Offset of `linux_banner` from `_text` in the fixture kallsyms.
const BANNER_FROM_TEXT: u64 = 0x10_0300;
/// Offsets from `_text` of the kernel's own symbol tables in the fixture
/// (VMCOREINFO lists them, kallsyms does not): `kallsyms_num_syms`, then
/// `kallsyms_names` (300 names of 4 bytes), then `kallsyms_markers`, aligned
/// to 8 (issue 26).
const NUM_SYMS_FROM_TEXT: u64 = 0x30_0000;
const NAMES_FROM_TEXT: u64 = 0x30_0008;
const MARKERS_FROM_TEXT: u64 = 0x30_04b8;
const NOTE_AT: u64 = 0x800;
const RAM_AT: u64 = 0x1_0000;

/// A fixture host whose kernel runs at slide `ko`, its banner at
/// [`BANNER_PHYS`] (`phys_base` chosen to put it there) when `banner`.
fn host(ko: u64, banner: bool, btf: bool) -> Fixture {
    host_with(ko, banner, btf, &[0, 1024])
}

/// [`host`], with `markers` written after the fixture's `kallsyms_names`
/// (`[0, 1024]`: the real ones for its 300 names).
fn host_with(ko: u64, banner: bool, btf: bool, markers: &[u32]) -> Fixture {
    let f = Fixture::new();
    f.iomem("00100000-004fffff : System RAM\n");
    std::fs::write(f.proc().join("kallsyms"), fv_symbols::fixture::kallsyms(ko)).unwrap();
    if btf {
        std::fs::create_dir_all(f.sys().join("kernel/btf")).unwrap();
        std::fs::write(
            f.sys().join("kernel/btf/vmlinux"),
            fv_symbols::fixture::kernel_btf(),
        )
        .unwrap();
    }
    let va = fv_symbols::fixture::TEXT + ko + BANNER_FROM_TEXT;
    let phys_base = BANNER_PHYS.wrapping_sub(va.wrapping_sub(0xffff_ffff_8000_0000)) as i64;
    let text0 = fv_symbols::fixture::TEXT + ko;
    let text = format!(
        "OSRELEASE=6.1.0-test\nSYMBOL(kallsyms_num_syms)={:x}\nSYMBOL(kallsyms_names)={:x}\nNUMBER(phys_base)={phys_base}\nKERNELOFFSET={ko:x}\n",
        text0 + NUM_SYMS_FROM_TEXT,
        text0 + NAMES_FROM_TEXT
    );
    let notes = fv_symbols::vmcoreinfo::encode_note(b"VMCOREINFO\0", 0, text.as_bytes());
    let len = RAM.1 - RAM.0 + 1;
    let segs = [
        Segment {
            p_type: kcore::PT_NOTE,
            flags: 0,
            offset: NOTE_AT,
            vaddr: 0,
            paddr: 0,
            filesz: notes.len() as u64,
            memsz: 0,
        },
        load(PO + RAM.0, RAM.0, len, RAM_AT),
    ];
    let file = std::fs::File::create(f.proc().join("kcore")).unwrap();
    file.write_all_at(&kcore::encode(EM_X86_64, &segs), 0)
        .unwrap();
    file.write_all_at(&notes, NOTE_AT).unwrap();
    let mut mem: Vec<u8> = (RAM.0..=RAM.1).map(mem_byte).collect();
    if banner {
        let at = (BANNER_PHYS - RAM.0) as usize;
        mem[at..at + BANNER.len()].copy_from_slice(BANNER);
    }
    // Kernel image offset X from _text is physical BANNER_PHYS - BANNER_FROM_TEXT + X.
    let put = |mem: &mut Vec<u8>, from_text: u64, bytes: &[u8]| {
        let at = (BANNER_PHYS - BANNER_FROM_TEXT + from_text - RAM.0) as usize;
        mem[at..at + bytes.len()].copy_from_slice(bytes);
    };
    put(&mut mem, NUM_SYMS_FROM_TEXT, &300u32.to_le_bytes());
    put(&mut mem, NAMES_FROM_TEXT, &b"\x03abc".repeat(300));
    let m: Vec<u8> = markers.iter().flat_map(|m| m.to_le_bytes()).collect();
    put(&mut mem, MARKERS_FROM_TEXT, &m);
    file.write_all_at(&mem, RAM_AT).unwrap();
    f
}

fn symbols(dir: &Path, out: &Path) -> std::process::Output {
    run(std::process::Command::new(bin())
        .arg("symbols")
        .arg(dir)
        .arg("-o")
        .arg(out))
}

fn unxz(path: &Path) -> serde_json::Value {
    let mut text = Vec::new();
    liblzma::read::XzDecoder::new(std::fs::File::open(path).unwrap())
        .read_to_end(&mut text)
        .unwrap();
    serde_json::from_slice(&text).unwrap()
}

#[test]
fn root_symbols_from_two_slides_are_identical_and_match_the_image() {
    require_root();
    let out_dir = tempfile::tempdir().unwrap();
    let mut tables = Vec::new();
    for (i, ko) in [0x1a00_0000u64, 0x3c40_0000].into_iter().enumerate() {
        let f = host(ko, true, true);
        let o = run(&mut f.cmd("kcore"));
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        let dir = f.capture_dir();
        let m = manifest(&dir);
        for p in [
            "context/btf/vmlinux",
            "context/vmcoreinfo-kcore",
            "context/kallsyms",
        ] {
            let e = m
                .files
                .iter()
                .find(|e| e.path == p)
                .unwrap_or_else(|| panic!("{p} not listed"));
            let data = std::fs::read(dir.join(p)).unwrap();
            assert_eq!(e.sha256, sha_hex(&data), "{p}");
        }
        assert_eq!(
            std::fs::read(dir.join("context/btf/vmlinux")).unwrap(),
            fv_symbols::fixture::kernel_btf()
        );
        assert!(
            !m.warnings
                .iter()
                .any(|w| w.contains("kallsyms") || w.contains("btf")),
            "{:?}",
            m.warnings
        );
        let info = run(std::process::Command::new(bin()).arg("info").arg(&dir));
        assert!(
            stdout(&info).contains("symbols        yes"),
            "{}",
            stdout(&info)
        );

        let table = out_dir.path().join(format!("t{i}.json.xz"));
        let o = symbols(&dir, &table);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        // Issue 23: its steps on stderr while it runs, never on stdout.
        assert!(
            stderr(&o).contains("capture symbols: building the table"),
            "{}",
            stderr(&o)
        );
        assert!(!stdout(&o).contains("capture symbols:"), "{}", stdout(&o));
        if i == 0 {
            // Issue 23: never into the evidence directory.
            let inside = symbols(&dir, &dir.join("t.json.xz"));
            assert_eq!(inside.status.code(), Some(3), "{}", stderr(&inside));
            assert!(
                stderr(&inside).contains("is inside the capture directory"),
                "{}",
                stderr(&inside)
            );
            assert!(!dir.join("t.json.xz").exists());
        }
        let text = stdout(&o);
        assert!(
            text.contains(&format!("found in the image at physical {BANNER_PHYS:#x}")),
            "{text}"
        );
        assert!(
            text.contains(&format!("KASLR slide {ko:#x} (VMCOREINFO KERNELOFFSET)")),
            "{text}"
        );
        assert!(text.contains("init_task (struct task_struct)"), "{text}");
        tables.push(std::fs::read(&table).unwrap());
        let isf = unxz(&table);
        assert_eq!(isf["metadata"]["format"], "6.2.0");
        assert_eq!(
            isf["symbols"]["init_task"]["address"],
            fv_symbols::fixture::TEXT + 0x10_0000
        );
        // The kernel's symbol tables: from VMCOREINFO at link-time
        // addresses, and kallsyms_markers found after the names (issue 26).
        let text0 = fv_symbols::fixture::TEXT;
        assert_eq!(
            isf["symbols"]["kallsyms_names"]["address"],
            text0 + NAMES_FROM_TEXT
        );
        assert_eq!(
            isf["symbols"]["kallsyms_num_syms"]["type"]["name"],
            "unsigned int"
        );
        assert_eq!(
            isf["symbols"]["kallsyms_markers"],
            serde_json::json!({"address": text0 + MARKERS_FROM_TEXT,
                "type": {"kind": "array", "count": 2,
                         "subtype": {"kind": "base", "name": "unsigned int"}}})
        );
        assert!(
            text.contains(&format!(
                "kallsyms_markers {:#x}, after kallsyms_names: 2 entries for 300 symbols",
                text0 + MARKERS_FROM_TEXT
            )),
            "{text}"
        );
        // The stock hidden-module carving refuses this table: the report
        // names the upstream defect and the volume's plugin that works.
        assert!(
            text.contains("malware/hidden_modules.py lines 34-36 in 2.28.2")
                && text.contains("vol -p <volume>/volatility -s ")
                && text.contains(" fv.hidden_modules`"),
            "{text}"
        );
        // No overwrite without --force.
        let again = symbols(&dir, &table);
        assert_eq!(again.status.code(), Some(3), "{}", stderr(&again));
    }
    assert_eq!(tables[0], tables[1], "two slides, one kernel: one table");
}

#[test]
fn root_symbols_leaves_out_kallsyms_markers_the_image_contradicts() {
    require_root();
    let out_dir = tempfile::tempdir().unwrap();
    // The second marker should be 1024 (256 names of 4 bytes).
    let f = host_with(0x200_0000, true, true, &[0, 1028]);
    assert_eq!(run(&mut f.cmd("kcore")).status.code(), Some(0));
    let table = out_dir.path().join("t.json.xz");
    let o = symbols(&f.capture_dir(), &table);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("kallsyms_markers left out: the image's table after kallsyms_names"),
        "{}",
        stdout(&o)
    );
    let isf = unxz(&table);
    assert!(isf["symbols"].get("kallsyms_markers").is_none());
    assert!(isf["symbols"].get("kallsyms_names").is_some());
}

#[test]
fn root_symbols_refuses_a_banner_not_in_the_image_and_a_capture_without_btf() {
    require_root();
    let out_dir = tempfile::tempdir().unwrap();
    let f = host(0x200_0000, false, true);
    assert_eq!(run(&mut f.cmd("kcore")).status.code(), Some(0));
    let table = out_dir.path().join("t.json.xz");
    let o = symbols(&f.capture_dir(), &table);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("does not occur in the captured memory"),
        "{}",
        stderr(&o)
    );
    assert!(!table.exists());
    // A context file that no longer matches the manifest is refused.
    let ks = f.capture_dir().join("context/kallsyms");
    let mut bytes = std::fs::read(&ks).unwrap();
    bytes[0] ^= 1;
    std::fs::write(&ks, bytes).unwrap();
    let o = symbols(&f.capture_dir(), &table);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("run `capture verify`"),
        "{}",
        stderr(&o)
    );

    let f = host(0x200_0000, true, false);
    assert_eq!(run(&mut f.cmd("kcore")).status.code(), Some(0));
    let m = manifest(&f.capture_dir());
    assert!(
        m.warnings
            .iter()
            .any(|w| w.contains("kernel/btf/vmlinux does not exist")),
        "{:?}",
        m.warnings
    );
    let info = run(std::process::Command::new(bin())
        .arg("info")
        .arg(f.capture_dir()));
    assert!(
        stdout(&info).contains("symbols        no: no context/btf/vmlinux"),
        "{}",
        stdout(&info)
    );
    let o = symbols(&f.capture_dir(), &table);
    assert_eq!(o.status.code(), Some(5), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("CONFIG_DEBUG_INFO_BTF"),
        "{}",
        stderr(&o)
    );
}

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}
