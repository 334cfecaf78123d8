//! Real and realistic `/proc/iomem` files: the System RAM ranges they give,
//! and the kcore map a kernel would build for them (segments = iomem RAM
//! rounded inwards to pages): every whole page of RAM mapped once, the
//! unaligned edges reported as holes.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers

use fv_formats::iomem::{RamRange, system_ram};
use fv_formats::kcore::{Lookup, PT_LOAD, Segment, map_ram};

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/iomem")
            .join(name),
    )
    .unwrap()
}

fn pairs(r: &[RamRange]) -> Vec<(u64, u64)> {
    r.iter().map(|r| (r.start, r.end)).collect()
}

/// kcore's RAM segments for `ram` (kclist_add of each pfn range, i.e. the
/// range rounded inwards to pages), at the direct map `po`.
fn kcore_segments(ram: &[RamRange], po: u64) -> Vec<Segment> {
    let mut off = 0x1000_0000u64;
    ram.iter()
        .filter_map(|r| {
            let s = r.start.div_ceil(4096) * 4096;
            let e = (r.end + 1) / 4096 * 4096;
            (e > s).then(|| {
                let seg = Segment {
                    p_type: PT_LOAD,
                    flags: 7,
                    offset: off,
                    vaddr: po + s,
                    paddr: s,
                    filesz: e - s,
                    memsz: e - s,
                };
                off += e - s;
                seg
            })
        })
        .collect()
}

fn check_map(ram: &[RamRange], po: u64) {
    let segs = kcore_segments(ram, po);
    let map = map_ram(&segs, ram, None).unwrap();
    let whole_pages: u64 = segs.iter().map(|s| s.filesz).sum();
    assert_eq!(map.mapped_bytes(), whole_pages);
    for r in ram {
        // The first whole page of each range is mapped at its segment.
        let s = r.start.div_ceil(4096) * 4096;
        if s + 4096 <= r.end + 1 {
            assert!(matches!(map.lookup(s, 1), Lookup::Mapped { .. }), "{r}");
        }
        if r.start % 4096 != 0 {
            assert!(matches!(map.lookup(r.start, 1), Lookup::Hole { .. }), "{r}");
        }
    }
    // Same map from the pre-4.11 fallback (all p_paddr 0).
    let zero: Vec<Segment> = segs.iter().map(|s| Segment { paddr: 0, ..*s }).collect();
    let old = map_ram(&zero, ram, None).unwrap();
    assert_eq!(old.pieces, map.pieces);
}

#[test]
fn devhost_x86_64_real() {
    let ram = system_ram(&fixture("devhost-x86_64-kvm.iomem")).unwrap();
    assert_eq!(
        pairs(&ram),
        vec![
            (0x1000, 0x9fbff),
            (0x10_0000, 0xbfff_ffff),
            (0x1_0000_0000, 0x6_3fff_ffff)
        ]
    );
    check_map(&ram, 0xffff_8880_0000_0000);
}

#[test]
fn ec2_nitro_x86_64() {
    let ram = system_ram(&fixture("ec2-nitro-x86_64-m5.large.iomem")).unwrap();
    assert_eq!(
        pairs(&ram),
        vec![
            (0x1000, 0x9dfff),
            (0x10_0000, 0xbffe_9fff),
            (0x1_0000_0000, 0x2_3fff_ffff)
        ]
    );
    let total: u64 = ram.iter().map(RamRange::len).sum();
    assert!(total > 7 << 30 && total < 8 << 30, "{total}");
    check_map(&ram, 0xffff_9a3f_c000_0000);
}

#[test]
fn ec2_graviton_aarch64() {
    let ram = system_ram(&fixture("ec2-graviton-aarch64-c7g.large.iomem")).unwrap();
    assert_eq!(
        pairs(&ram),
        vec![
            (0x4000_0000, 0x7b4a_ffff),
            (0x7b57_0000, 0x7b5c_ffff),
            (0x7b5e_0000, 0x7b8e_ffff),
            (0x7b96_0000, 0x1_3fff_ffff)
        ]
    );
    check_map(&ram, 0xffff_0000_0000_0000 - 0x4000_0000);
}
