//! Arbitrary bytes as a `/proc/kcore` header (ELF header + program headers)
//! mapped against RAM ranges taken from the input: a map or a named error,
//! never a panic or an allocation for a count read from the header beyond
//! the cap; every mapped piece lies inside RAM, pieces ascend without
//! overlap, and lookups agree with the pieces.
#![no_main]

use fv_formats::iomem::RamRange;
use fv_formats::kcore::{self, Lookup};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // First 1 + 16*n bytes: RAM ranges (count byte, then start/len pairs).
    let Some((&n, rest)) = data.split_first() else {
        return;
    };
    let n = usize::from(n % 8);
    if rest.len() < n * 16 {
        return;
    }
    let (ram_bytes, elf) = rest.split_at(n * 16);
    let mut ram = Vec::new();
    let mut next = 0u64;
    for c in ram_bytes.chunks_exact(16) {
        let gap = u64::from_le_bytes(c[..8].try_into().unwrap()) % (1 << 40);
        let len = u64::from_le_bytes(c[8..].try_into().unwrap()) % (1 << 36) + 1;
        let Some(start) = next.checked_add(gap) else { return };
        let Some(end) = start.checked_add(len - 1) else { return };
        ram.push(RamRange { start, end });
        let Some(n2) = end.checked_add(1) else { return };
        next = n2;
    }
    let Ok(eh) = kcore::parse_ehdr(elf) else { return };
    let count = if eh.phnum == kcore::PN_XNUM {
        let Some(sh) = usize::try_from(eh.shoff).ok().and_then(|o| elf.get(o..)) else {
            return;
        };
        match kcore::phnum_from_section0(sh) {
            Ok(c) => u64::from(c),
            Err(_) => return,
        }
    } else {
        u64::from(eh.phnum)
    };
    let Some(ph) = usize::try_from(eh.phoff).ok().and_then(|o| elf.get(o..)) else {
        return;
    };
    let Ok(segs) = kcore::parse_phdrs(ph, count) else { return };
    let page_offset = (elf.len() % 3 == 0).then_some(0xffff_8880_0000_0000);
    let Ok(map) = kcore::map_ram(&segs, &ram, page_offset) else { return };
    for p in &map.pieces {
        assert!(p.len > 0);
        let last = p.phys + (p.len - 1);
        assert!(ram.iter().any(|r| r.start <= p.phys && last <= r.end));
        assert_eq!(
            map.lookup(p.phys, 1),
            Lookup::Mapped { file_offset: p.file_offset, len: 1 }
        );
    }
    for w in map.pieces.windows(2) {
        assert!(w[0].phys + w[0].len <= w[1].phys);
    }
});
