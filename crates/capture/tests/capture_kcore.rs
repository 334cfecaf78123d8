//! `capture --source kcore|crash|mem|auto` end to end through the real
//! binary, on fixture `/proc` trees whose `kcore` ELF is built in code: the
//! decompressed image must equal, byte for byte, the LiME stream computed
//! independently, and the manifest's hashes and ranges must be right.
//! (The binary refuses to run without root, hence `root_` names.)

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // helpers outside #[test] fns

mod common;

use common::*;
use fv_formats::kcore::{EM_AARCH64, EM_X86_64, NO_PADDR};

const PO: u64 = 0xffff_8880_0000_0000;

/// An x86_64 guest like the Debian 6.1 one of FACTS.md, scaled down: iomem
/// RAM `00001000-0009fbff` (unaligned end) and `00100000-002fffff`; kcore
/// RAM segments are iomem rounded inwards to pages; kernel text aliases RAM
/// with a real p_paddr; vmalloc/modules have p_paddr -1.
#[test]
fn root_kcore_x86_64_paddr_text_alias_unaligned_tail() {
    require_root();
    let f = Fixture::new();
    f.iomem(
        "00000000-00000fff : Reserved\n00001000-0009fbff : System RAM\n0009fc00-0009ffff : Reserved\n000f0000-000fffff : Reserved\n  000f0000-000fffff : System ROM\n00100000-002fffff : System RAM\n  00200000-0021ffff : Kernel code\nfec00000-fec003ff : IOAPIC 0\n",
    );
    write_kcore(
        &f,
        EM_X86_64,
        &[
            // Kernel text: real p_paddr inside RAM, filled with a marker so
            // reading through it instead of the direct map is caught.
            Seg {
                seg: load(0xffff_ffff_8100_0000, 0x20_0000, 0x2_0000, 0x40_0000),
                phys: Some(0x20_0000),
                fill: Fill::Marker,
            },
            Seg {
                seg: load(0xffff_c900_0000_0000, NO_PADDR, 0x1_0000, 0x50_0000),
                phys: None,
                fill: Fill::Marker,
            },
            Seg {
                seg: load(PO + 0x1000, 0x1000, 0x9e000, 0x1000),
                phys: Some(0x1000),
                fill: Fill::Memory,
            },
            Seg {
                seg: load(PO + 0x10_0000, 0x10_0000, 0x20_0000, 0x10_0000),
                phys: Some(0x10_0000),
                fill: Fill::Memory,
            },
        ],
    );
    let out = run(&mut f.cmd("kcore"));
    assert_eq!(out.status.code(), Some(0));
    let ram = [(0x1000, 0x9fbff), (0x10_0000, 0x2f_ffff)];
    // 0x9f000-0x9fbff is RAM for iomem but no segment maps it: zeros.
    let expected = expected_lime(&ram, |p| !(0x9f000..=0x9fbff).contains(&p));
    let m = check_capture(&f.capture_dir(), &expected, &ram);
    assert_eq!(m.source.kind, "kcore");
    assert!(m.source.detail.as_deref().unwrap().contains("p_paddr"));
    assert_eq!(m.unreadable.len(), 1, "{:?}", m.unreadable);
    assert_eq!(
        (m.unreadable[0].start, m.unreadable[0].length),
        (0x9f000, 0xc00)
    );
    assert!(m.unreadable[0].error.contains("not mapped"));
    assert_eq!(m.status, fv_evidence::manifest::Status::Complete);
    assert!(m.image.compression.frames > 30, "small frames in tests");
    // Context comes from the fixture /proc, not the host's.
    let version = std::fs::read_to_string(f.capture_dir().join("context/version")).unwrap();
    assert_eq!(version, "Linux version 6.1.0-test\n");
    let build_id = std::fs::read_to_string(f.capture_dir().join("context/build-id")).unwrap();
    assert_eq!(build_id, "4a5a9b0a\n");
    assert!(m.files.iter().any(|e| e.path == "context/build-id"));
    assert_eq!(
        m.host.boot_id.as_deref(),
        Some("0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0")
    );
}

/// aarch64 `-M virt`: one RAM range at 1 GiB (scaled down), linear map with
/// p_paddr, kernel text at a random VA with a real p_paddr.
#[test]
fn root_kcore_aarch64_layout() {
    require_root();
    let f = Fixture::new();
    f.iomem("09000000-09000fff : pl011@9000000\n40000000-403fffff : System RAM\n  40210000-4035ffff : Kernel code\n4010000000-401fffffff : PCI ECAM\n");
    write_kcore(
        &f,
        EM_AARCH64,
        &[
            Seg {
                seg: load(0xffff_a3c1_0021_0000, 0x4021_0000, 0x15_0000, 0x80_0000),
                phys: Some(0x4021_0000),
                fill: Fill::Marker,
            },
            Seg {
                seg: load(0xffff_0000_0000_0000, 0x4000_0000, 0x40_0000, 0x10_0000),
                phys: Some(0x4000_0000),
                fill: Fill::Memory,
            },
        ],
    );
    let out = run(&mut f.cmd("auto"));
    assert_eq!(out.status.code(), Some(0));
    let ram = [(0x4000_0000, 0x403f_ffff)];
    let m = check_capture(&f.capture_dir(), &expected_lime(&ram, |_| true), &ram);
    assert!(m.unreadable.is_empty());
    assert_eq!(m.source.attempts.len(), 1);
    assert_eq!(m.source.attempts[0].outcome, "used");
    assert_eq!(m.source.requested, "auto");
}

/// Before 4.11 every p_paddr is 0: physical = p_vaddr - PAGE_OFFSET,
/// inferred and checked against iomem; text and vmalloc are ignored.
#[test]
fn root_kcore_pre_411_zero_paddr() {
    require_root();
    let f = Fixture::new();
    let old_po = 0xffff_8800_0000_0000u64;
    f.iomem("00001000-0009ffff : System RAM\n00100000-001fffff : System RAM\n");
    write_kcore(
        &f,
        EM_X86_64,
        &[
            Seg {
                seg: load(0xffff_ffff_8100_0000, 0, 0x1_0000, 0x40_0000),
                phys: None,
                fill: Fill::Marker,
            },
            Seg {
                seg: load(0xffff_c900_0000_0000, 0, 0x1_0000, 0x50_0000),
                phys: None,
                fill: Fill::Marker,
            },
            Seg {
                seg: load(old_po + 0x1000, 0, 0x9f000, 0x1000),
                phys: Some(0x1000),
                fill: Fill::Memory,
            },
            Seg {
                seg: load(old_po + 0x10_0000, 0, 0x10_0000, 0x20_0000),
                phys: Some(0x10_0000),
                fill: Fill::Memory,
            },
        ],
    );
    let out = run(&mut f.cmd("kcore"));
    assert_eq!(out.status.code(), Some(0));
    let ram = [(0x1000, 0x9ffff), (0x10_0000, 0x1f_ffff)];
    let m = check_capture(&f.capture_dir(), &expected_lime(&ram, |_| true), &ram);
    let detail = m.source.detail.unwrap();
    assert!(detail.contains("0xffff880000000000"), "{detail}");
    assert!(detail.contains("inferred"), "{detail}");

    // A wrong --page-offset maps nothing: a clear error, nothing written.
    let f2 = Fixture::new();
    std::fs::copy(f.proc().join("iomem"), f2.proc().join("iomem")).unwrap();
    std::fs::copy(f.proc().join("kcore"), f2.proc().join("kcore")).unwrap();
    let out = run(f2
        .cmd("kcore")
        .arg("--page-offset")
        .arg("0xffff888000000000"));
    assert_eq!(out.status.code(), Some(12));
    assert!(stderr(&out).contains("no PT_LOAD segment maps any System RAM"));
    assert!(f2.capture_entries().is_empty());
}

/// RAM split into adjacent and unaligned ranges, one segment spanning two
/// of them, and a hole no segment maps: each range is its own record, the
/// hole is zeros and recorded.
#[test]
fn root_kcore_split_unaligned_ranges_and_holes() {
    require_root();
    let f = Fixture::new();
    f.iomem("00001000-00057fff : System RAM\n00058000-0009efff : System RAM\n000a0000-000a07ff : Reserved\n00100400-0017fbff : System RAM\n00200000-0027ffff : System RAM\n");
    write_kcore(
        &f,
        EM_X86_64,
        &[
            Seg {
                seg: load(PO + 0x1000, 0x1000, 0x9e000, 0x1000),
                phys: Some(0x1000),
                fill: Fill::Memory,
            },
            // 0x100400-0x17fbff rounds inwards to 0x101000-0x17efff.
            Seg {
                seg: load(PO + 0x10_1000, 0x10_1000, 0x7e000, 0x20_0000),
                phys: Some(0x10_1000),
                fill: Fill::Memory,
            },
            // 0x200000-0x27ffff: only the first half is mapped (a hole).
            Seg {
                seg: load(PO + 0x20_0000, 0x20_0000, 0x4_0000, 0x30_0000),
                phys: Some(0x20_0000),
                fill: Fill::Memory,
            },
        ],
    );
    let out = run(&mut f.cmd("kcore"));
    assert_eq!(out.status.code(), Some(0));
    let ram = [
        (0x1000, 0x57fff),
        (0x58000, 0x9efff),
        (0x10_0400, 0x17_fbff),
        (0x20_0000, 0x27_ffff),
    ];
    let mapped = |p: u64| {
        (0x1000..0x9f000).contains(&p)
            || (0x10_1000..0x17_f000).contains(&p)
            || (0x20_0000..0x24_0000).contains(&p)
    };
    let m = check_capture(&f.capture_dir(), &expected_lime(&ram, mapped), &ram);
    let spans: Vec<(u64, u64)> = m.unreadable.iter().map(|s| (s.start, s.length)).collect();
    assert_eq!(
        spans,
        vec![
            (0x10_0400, 0xc00),
            (0x17_f000, 0xc00),
            (0x24_0000, 0x4_0000)
        ]
    );
}

/// A kcore whose data ends early (pread returns end of file): the pages
/// are retried one by one, zero-filled and recorded; the capture completes.
#[test]
fn root_kcore_unreadable_span_is_zeroed_and_recorded() {
    require_root();
    let f = Fixture::new();
    f.iomem("00100000-004fffff : System RAM\n");
    write_kcore(
        &f,
        EM_X86_64,
        &[Seg {
            seg: load(PO + 0x10_0000, 0x10_0000, 0x40_0000, 0x10_0000),
            phys: Some(0x10_0000),
            fill: Fill::Memory,
        }],
    );
    // Cut the file 0x2345 bytes into the last 1 MiB: the tail cannot be read.
    let kcore = f.proc().join("kcore");
    let cut = 0x10_0000 + 0x30_0000 + 0x2345;
    std::fs::OpenOptions::new()
        .write(true)
        .open(&kcore)
        .unwrap()
        .set_len(cut)
        .unwrap();
    let out = run(&mut f.cmd("kcore"));
    assert_eq!(out.status.code(), Some(0));
    let ram = [(0x10_0000, 0x4f_ffff)];
    // The page holding the cut is partly readable, but pages are the unit
    // of retry: from its start on, zeros.
    let first_bad = 0x10_0000 + 0x30_2000;
    let m = check_capture(
        &f.capture_dir(),
        &expected_lime(&ram, |p| p < first_bad),
        &ram,
    );
    assert_eq!(m.unreadable.len(), 1, "{:?}", m.unreadable);
    assert_eq!(m.unreadable[0].start, first_bad);
    assert_eq!(m.unreadable[0].length, 0x50_0000 - first_bad);
    assert!(
        m.unreadable[0].error.contains("end of file"),
        "{:?}",
        m.unreadable
    );
    assert_eq!(m.status, fv_evidence::manifest::Status::Complete);
}

/// `/dev/mem` and `/dev/crash` are read at offset = physical address.
#[test]
fn root_dev_mem_and_crash_read_at_physical_offsets() {
    require_root();
    for name in ["mem", "crash"] {
        let f = Fixture::new();
        f.iomem("00001000-0009fbff : System RAM\n00100000-0017ffff : System RAM\n");
        let ram = [(0x1000u64, 0x9fbffu64), (0x10_0000, 0x17_ffff)];
        let file = std::fs::File::create(f.dev().join(name)).unwrap();
        for &(s, e) in &ram {
            let data: Vec<u8> = (s..=e).map(mem_byte).collect();
            std::os::unix::fs::FileExt::write_all_at(&file, &data, s).unwrap();
        }
        let out = run(&mut f.cmd(name));
        assert_eq!(out.status.code(), Some(0), "{name}");
        let m = check_capture(&f.capture_dir(), &expected_lime(&ram, |_| true), &ram);
        assert_eq!(m.source.kind, name);
    }
}

/// `auto` with nothing usable: each source's reason and the LiME path.
#[test]
fn root_auto_explains_every_failure() {
    require_root();
    let f = Fixture::new();
    f.iomem("00001000-0009fbff : System RAM\n");
    std::fs::write(
        f.sys().join("kernel/security/lockdown"),
        "none integrity [confidentiality]\n",
    )
    .ok();
    let out = run(&mut f.cmd("auto"));
    assert_eq!(out.status.code(), Some(11));
    let err = stderr(&out);
    assert!(err.contains("kcore: missing"), "{err}");
    assert!(err.contains("CONFIG_PROC_KCORE"), "{err}");
    assert!(err.contains("crash: missing"), "{err}");
    assert!(err.contains("mem: missing"), "{err}");
    assert!(err.contains("lime-module"), "{err}");
    assert!(f.capture_entries().is_empty(), "{:?}", f.capture_entries());
}

/// iomem read without CAP_SYS_ADMIN (all 0-0), or without RAM: named.
#[test]
fn root_bad_iomem_is_named() {
    require_root();
    let f = Fixture::new();
    f.iomem("00000000-00000000 : Reserved\n00000000-00000000 : System RAM\n");
    let out = run(&mut f.cmd("kcore"));
    assert_eq!(out.status.code(), Some(12));
    assert!(stderr(&out).contains("CAP_SYS_ADMIN"));
    let f = Fixture::new();
    f.iomem("00000000-00000fff : Reserved\n");
    let out = run(&mut f.cmd("auto"));
    assert_eq!(out.status.code(), Some(12));
    assert!(stderr(&out).contains("no top-level \"System RAM\""));
}

/// A truncated or lying kcore ELF header.
#[test]
fn root_lying_kcore_header() {
    require_root();
    let f = Fixture::new();
    f.iomem("00100000-001fffff : System RAM\n");
    std::fs::write(f.proc().join("kcore"), b"\x7fELF\x02\x01\x01").unwrap();
    let out = run(&mut f.cmd("kcore"));
    assert_eq!(out.status.code(), Some(12));
    assert!(stderr(&out).contains("truncated"), "{}", stderr(&out));
    // phnum says 1000 headers, the file holds one.
    let mut h = fv_formats::kcore::encode(EM_X86_64, &[load(PO, 0x10_0000, 0x1000, 0x1000)]);
    h[56..58].copy_from_slice(&1000u16.to_le_bytes());
    std::fs::write(f.proc().join("kcore"), &h).unwrap();
    let out = run(&mut f.cmd("kcore"));
    assert_eq!(out.status.code(), Some(12));
    assert!(stderr(&out).contains("program headers"), "{}", stderr(&out));
    assert!(f.capture_entries().is_empty());
}
