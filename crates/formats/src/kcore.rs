//! `/proc/kcore`: an ELF64 core file (ET_CORE) whose PT_LOAD segments map
//! kernel virtual memory; the direct-map segments cover physical RAM.
//!
//! Facts relied on (linux `fs/proc/kcore.c`):
//! - The file's apparent size is huge (e.g. 128 TiB); read it with `pread` at
//!   segment offsets, never sequentially.
//! - Since 4.11, RAM segments carry their physical address in `p_paddr`; the
//!   kernel-text segment has a real `p_paddr` too (overlapping RAM); the
//!   others (vmalloc, modules, vmemmap) have `p_paddr = -1`.
//! - Before 4.11 `p_paddr` is 0 everywhere; then physical = `p_vaddr -
//!   PAGE_OFFSET` (on arm64 `PAGE_OFFSET - PHYS_OFFSET`: one constant either
//!   way), which [`map_ram`] infers and checks against iomem's RAM.
//! - RAM segments are iomem's System RAM rounded inwards to pages, so an
//!   unaligned iomem range has a few bytes no segment covers.
//!
//! [`parse_ehdr`] and [`parse_phdrs`] are pure over bytes; [`map_ram`] turns
//! segments plus RAM ranges into [`Map`], the physical-to-file-offset map,
//! with every byte of RAM mapped at most once. [`encode`] builds headers (for
//! fixtures and tests).

use crate::iomem::RamRange;

/// ELF header size (ELF64).
pub const EHDR_LEN: usize = 64;
/// Program header size (ELF64).
pub const PHDR_LEN: usize = 56;
/// Most program headers accepted (real kcores have tens to hundreds).
pub const MAX_SEGMENTS: u32 = 1 << 16;
/// `e_phnum` value meaning "the count is in section header 0's `sh_info`".
pub const PN_XNUM: u16 = 0xffff;
/// Loadable segment.
pub const PT_LOAD: u32 = 1;
/// Note segment.
pub const PT_NOTE: u32 = 4;
/// Core file.
pub const ET_CORE: u16 = 4;
/// x86_64.
pub const EM_X86_64: u16 = 62;
/// aarch64.
pub const EM_AARCH64: u16 = 183;
/// `p_paddr` of segments that are not direct-mapped RAM.
pub const NO_PADDR: u64 = u64::MAX;
/// Page size used to round iomem ranges when inferring the direct-map base.
pub const PAGE: u64 = 4096;

/// What is wrong with a kcore header.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KcoreError {
    /// Shorter than an ELF header or the program headers it announces.
    #[error("kcore ELF header: truncated ({what}: need {need} bytes, have {have})")]
    Truncated {
        /// What was being read.
        what: &'static str,
        /// Bytes needed.
        need: u64,
        /// Bytes available.
        have: u64,
    },
    /// Not ELF, not 64-bit, not little-endian, not a core file.
    #[error("kcore ELF header: {0}")]
    NotCore(&'static str),
    /// Program header entry size is not 56.
    #[error("kcore ELF header: program header size {0} (expected 56)")]
    PhentSize(u16),
    /// Too many program headers.
    #[error("kcore ELF header: {0} program headers (more than {MAX_SEGMENTS} refused)")]
    TooManySegments(u64),
    /// A segment's offset or size overflows.
    #[error("kcore segment {index}: offset {offset:#x} + size {size:#x} overflows")]
    Overflow {
        /// Segment index.
        index: usize,
        /// `p_offset`.
        offset: u64,
        /// `p_filesz`.
        size: u64,
    },
    /// No PT_LOAD segment maps any System RAM.
    #[error(
        "/proc/kcore: no PT_LOAD segment maps any System RAM from /proc/iomem ({mode}); cannot locate physical memory"
    )]
    NoRamMapped {
        /// Which mapping was tried.
        mode: &'static str,
    },
}

/// The fields of the ELF header we use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ehdr {
    /// `e_machine`.
    pub machine: u16,
    /// `e_phoff`.
    pub phoff: u64,
    /// `e_phnum` (or [`PN_XNUM`]).
    pub phnum: u16,
    /// `e_shoff` (for [`PN_XNUM`]).
    pub shoff: u64,
}

/// One program header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    /// `p_type`.
    pub p_type: u32,
    /// `p_flags`.
    pub flags: u32,
    /// `p_offset`: where its bytes are in the file.
    pub offset: u64,
    /// `p_vaddr`.
    pub vaddr: u64,
    /// `p_paddr`.
    pub paddr: u64,
    /// `p_filesz`.
    pub filesz: u64,
    /// `p_memsz`.
    pub memsz: u64,
}

fn u16_at(b: &[u8], i: usize) -> u16 {
    u16::from_le_bytes([b[i], b[i + 1]])
}
fn u32_at(b: &[u8], i: usize) -> u32 {
    u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]])
}
fn u64_at(b: &[u8], i: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[i..i + 8]);
    u64::from_le_bytes(w)
}

/// Parses and checks the ELF header (64-bit, little-endian, ET_CORE,
/// 56-byte program headers).
///
/// # Errors
/// [`KcoreError::Truncated`], [`KcoreError::NotCore`], [`KcoreError::PhentSize`].
pub fn parse_ehdr(b: &[u8]) -> Result<Ehdr, KcoreError> {
    if b.len() < EHDR_LEN {
        return Err(KcoreError::Truncated {
            what: "ELF header",
            need: EHDR_LEN as u64,
            have: b.len() as u64,
        });
    }
    if &b[0..4] != b"\x7fELF" {
        return Err(KcoreError::NotCore("no ELF magic"));
    }
    if b[4] != 2 {
        return Err(KcoreError::NotCore("not ELFCLASS64"));
    }
    if b[5] != 1 {
        return Err(KcoreError::NotCore("not little-endian (ELFDATA2LSB)"));
    }
    if u16_at(b, 16) != ET_CORE {
        return Err(KcoreError::NotCore("e_type is not ET_CORE"));
    }
    let phentsize = u16_at(b, 54);
    if usize::from(phentsize) != PHDR_LEN {
        return Err(KcoreError::PhentSize(phentsize));
    }
    Ok(Ehdr {
        machine: u16_at(b, 18),
        phoff: u64_at(b, 32),
        shoff: u64_at(b, 40),
        phnum: u16_at(b, 56),
    })
}

/// With `e_phnum == PN_XNUM`, the real count from section header 0
/// (`sh_info`, at byte 44 of the 64-byte section header).
///
/// # Errors
/// [`KcoreError::Truncated`] if fewer than 48 bytes are given.
pub fn phnum_from_section0(shdr0: &[u8]) -> Result<u32, KcoreError> {
    if shdr0.len() < 48 {
        return Err(KcoreError::Truncated {
            what: "section header 0",
            need: 48,
            have: shdr0.len() as u64,
        });
    }
    Ok(u32_at(shdr0, 44))
}

/// Bytes of program headers to read for `count` entries, checked.
///
/// # Errors
/// [`KcoreError::TooManySegments`].
pub fn phdrs_len(count: u64) -> Result<usize, KcoreError> {
    if count > u64::from(MAX_SEGMENTS) {
        return Err(KcoreError::TooManySegments(count));
    }
    // Bounded above, so the product fits.
    Ok(count as usize * PHDR_LEN)
}

/// Parses `count` program headers from `b`.
///
/// # Errors
/// [`KcoreError::TooManySegments`], [`KcoreError::Truncated`],
/// [`KcoreError::Overflow`] (a PT_LOAD whose `p_offset + p_filesz`
/// overflows: a lying header).
pub fn parse_phdrs(b: &[u8], count: u64) -> Result<Vec<Segment>, KcoreError> {
    let need = phdrs_len(count)?;
    if b.len() < need {
        return Err(KcoreError::Truncated {
            what: "program headers",
            need: need as u64,
            have: b.len() as u64,
        });
    }
    let mut out = Vec::with_capacity(count as usize);
    for (index, p) in b[..need].chunks_exact(PHDR_LEN).enumerate() {
        let seg = Segment {
            p_type: u32_at(p, 0),
            flags: u32_at(p, 4),
            offset: u64_at(p, 8),
            vaddr: u64_at(p, 16),
            paddr: u64_at(p, 24),
            filesz: u64_at(p, 32),
            memsz: u64_at(p, 40),
        };
        if seg.p_type == PT_LOAD && seg.offset.checked_add(seg.filesz).is_none() {
            return Err(KcoreError::Overflow {
                index,
                offset: seg.offset,
                size: seg.filesz,
            });
        }
        out.push(seg);
    }
    Ok(out)
}

/// Builds an ELF header plus program headers (phoff 64), as the kernel lays
/// them out. For fixtures: the caller puts segment data at their offsets.
pub fn encode(machine: u16, segments: &[Segment]) -> Vec<u8> {
    let mut b = vec![0u8; EHDR_LEN + segments.len() * PHDR_LEN];
    b[0..4].copy_from_slice(b"\x7fELF");
    b[4] = 2; // ELFCLASS64
    b[5] = 1; // ELFDATA2LSB
    b[6] = 1; // EV_CURRENT
    b[16..18].copy_from_slice(&ET_CORE.to_le_bytes());
    b[18..20].copy_from_slice(&machine.to_le_bytes());
    b[20..24].copy_from_slice(&1u32.to_le_bytes());
    b[32..40].copy_from_slice(&(EHDR_LEN as u64).to_le_bytes());
    b[52..54].copy_from_slice(&(EHDR_LEN as u16).to_le_bytes());
    b[54..56].copy_from_slice(&(PHDR_LEN as u16).to_le_bytes());
    let phnum = u16::try_from(segments.len()).unwrap_or(PN_XNUM);
    b[56..58].copy_from_slice(&phnum.to_le_bytes());
    for (i, s) in segments.iter().enumerate() {
        let p = &mut b[EHDR_LEN + i * PHDR_LEN..EHDR_LEN + (i + 1) * PHDR_LEN];
        p[0..4].copy_from_slice(&s.p_type.to_le_bytes());
        p[4..8].copy_from_slice(&s.flags.to_le_bytes());
        p[8..16].copy_from_slice(&s.offset.to_le_bytes());
        p[16..24].copy_from_slice(&s.vaddr.to_le_bytes());
        p[24..32].copy_from_slice(&s.paddr.to_le_bytes());
        p[32..40].copy_from_slice(&s.filesz.to_le_bytes());
        p[40..48].copy_from_slice(&s.memsz.to_le_bytes());
        p[48..56].copy_from_slice(&PAGE.to_le_bytes());
    }
    b
}

/// How physical addresses were found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressMode {
    /// From `p_paddr` (Linux 4.11 and later, RHEL 7 backport).
    Paddr,
    /// `p_paddr` was zero everywhere (before 4.11): physical =
    /// `p_vaddr - offset`, the offset inferred (or given) and checked.
    VaddrMinus {
        /// The direct-map base used (`PAGE_OFFSET`, minus `PHYS_OFFSET` on arm64).
        offset: u64,
        /// Whether it was given by the caller rather than inferred.
        given: bool,
    },
}

/// One contiguous piece of RAM readable at a file offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Piece {
    /// First physical address.
    pub phys: u64,
    /// Length in bytes.
    pub len: u64,
    /// File offset of `phys`.
    pub file_offset: u64,
}

/// Physical RAM to kcore file offsets; each RAM byte at most once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Map {
    /// Pieces, ascending by `phys`, not overlapping.
    pub pieces: Vec<Piece>,
    /// How addresses were found.
    pub mode: AddressMode,
}

/// Where a physical address is in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    /// Readable at `file_offset` for `len` bytes (contiguously).
    Mapped {
        /// File offset.
        file_offset: u64,
        /// Contiguous bytes from there (capped by the asked length).
        len: u64,
    },
    /// Not mapped by any segment for `len` bytes (to the next piece or the
    /// asked length).
    Hole {
        /// Length of the hole within the asked span.
        len: u64,
    },
}

impl Map {
    /// What is at `phys`, for at most `max` bytes (`max > 0`).
    pub fn lookup(&self, phys: u64, max: u64) -> Lookup {
        let idx = self
            .pieces
            .partition_point(|p| p.phys.saturating_add(p.len) <= phys);
        match self.pieces.get(idx) {
            Some(p) if p.phys <= phys => Lookup::Mapped {
                file_offset: p.file_offset + (phys - p.phys),
                len: (p.phys.saturating_add(p.len) - phys).min(max),
            },
            Some(p) => Lookup::Hole {
                len: (p.phys - phys).min(max),
            },
            None => Lookup::Hole { len: max },
        }
    }

    /// Bytes of RAM the map covers.
    pub fn mapped_bytes(&self) -> u64 {
        self.pieces.iter().map(|p| p.len).sum()
    }
}

/// Intersects a physical span with RAM minus what is already covered,
/// pushing new pieces.
fn add_span(ram: &[RamRange], covered: &mut Vec<Piece>, phys: u64, len: u64, file_offset: u64) {
    let Some(last) = phys.checked_add(len.saturating_sub(1)) else {
        return;
    };
    if len == 0 {
        return;
    }
    for r in ram {
        let lo = phys.max(r.start);
        let hi = last.min(r.end);
        if lo > hi {
            continue;
        }
        // Subtract existing pieces from [lo, hi].
        let mut cur = lo;
        let mut new = Vec::new();
        let mut sorted: Vec<&Piece> = covered
            .iter()
            .filter(|p| p.phys <= hi && p.phys.saturating_add(p.len) > lo)
            .collect();
        sorted.sort_by_key(|p| p.phys);
        for p in sorted {
            if p.phys > cur {
                new.push((cur, p.phys - 1));
            }
            cur = cur.max(p.phys.saturating_add(p.len));
            if cur > hi {
                break;
            }
        }
        if cur <= hi {
            new.push((cur, hi));
        }
        for (a, b) in new {
            covered.push(Piece {
                phys: a,
                len: (b - a).saturating_add(1),
                file_offset: file_offset + (a - phys),
            });
        }
    }
}

fn loads(segments: &[Segment]) -> impl Iterator<Item = &Segment> {
    segments
        .iter()
        .filter(|s| s.p_type == PT_LOAD && s.filesz.min(s.memsz) > 0)
}

fn build(ram: &[RamRange], spans: &mut [(u64, u64, u64)]) -> Vec<Piece> {
    // Largest segment first: the direct map wins over the kernel-text
    // alias of the same RAM, so text is not copied twice.
    spans.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let mut covered = Vec::new();
    for &(phys, len, off) in spans.iter() {
        add_span(ram, &mut covered, phys, len, off);
    }
    covered.sort_by_key(|p| p.phys);
    covered
}

/// Segments read under a direct-map offset: only those lying wholly inside
/// one RAM range count (that is the check against iomem).
fn spans_under(segments: &[Segment], ram: &[RamRange], offset: u64) -> Vec<(u64, u64, u64)> {
    loads(segments)
        .filter_map(|s| {
            let len = s.filesz.min(s.memsz);
            let phys = s.vaddr.checked_sub(offset)?;
            let last = phys.checked_add(len - 1)?;
            ram.iter()
                .any(|r| r.start <= phys.saturating_add(PAGE - 1) && last <= r.end | (PAGE - 1))
                .then_some((phys, len, s.offset))
        })
        .collect()
}

/// Builds the physical map from the segments and iomem's RAM ranges.
/// `page_offset` overrides the inferred direct-map base for kernels before
/// 4.11 (ignored when `p_paddr` is set).
///
/// # Errors
/// [`KcoreError::NoRamMapped`] when nothing maps RAM.
pub fn map_ram(
    segments: &[Segment],
    ram: &[RamRange],
    page_offset: Option<u64>,
) -> Result<Map, KcoreError> {
    // Before 4.11 every p_paddr is 0; since then RAM segments have a real
    // one and the rest all ones. Only the former needs the fallback.
    let pre_411 = loads(segments).all(|s| s.paddr == 0);
    if !pre_411 {
        let mut spans: Vec<_> = loads(segments)
            .filter(|s| s.paddr != NO_PADDR)
            .map(|s| (s.paddr, s.filesz.min(s.memsz), s.offset))
            .collect();
        let pieces = build(ram, &mut spans);
        if pieces.is_empty() {
            return Err(KcoreError::NoRamMapped { mode: "p_paddr" });
        }
        return Ok(Map {
            pieces,
            mode: AddressMode::Paddr,
        });
    }
    let (offset, given) = match page_offset {
        Some(o) => (o, true),
        None => (infer_offset(segments, ram)?, false),
    };
    let mut spans = spans_under(segments, ram, offset);
    let pieces = build(ram, &mut spans);
    if pieces.is_empty() {
        return Err(KcoreError::NoRamMapped {
            mode: "p_vaddr - PAGE_OFFSET",
        });
    }
    Ok(Map {
        pieces,
        mode: AddressMode::VaddrMinus { offset, given },
    })
}

/// The offset `p_vaddr - phys` under which the most RAM is covered by
/// segments that lie inside RAM. Candidates pair each PT_LOAD with each RAM
/// range's start (as is and rounded up to a page, since segments are iomem
/// rounded inwards).
fn infer_offset(segments: &[Segment], ram: &[RamRange]) -> Result<u64, KcoreError> {
    let mut candidates = Vec::new();
    for s in loads(segments) {
        for r in ram {
            for start in [r.start, r.start.div_ceil(PAGE).saturating_mul(PAGE)] {
                if let Some(c) = s.vaddr.checked_sub(start) {
                    candidates.push(c);
                }
            }
        }
        if candidates.len() > 8192 {
            break;
        }
    }
    candidates.sort_unstable();
    candidates.dedup();
    let mut best: Option<(u64, u64)> = None;
    for c in candidates {
        let mut spans = spans_under(segments, ram, c);
        let score: u64 = build(ram, &mut spans).iter().map(|p| p.len).sum();
        if score > 0 && best.is_none_or(|(_, s)| score > s) {
            best = Some((c, score));
        }
    }
    best.map(|(c, _)| c).ok_or(KcoreError::NoRamMapped {
        mode: "p_vaddr - PAGE_OFFSET (no consistent PAGE_OFFSET found)",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(vaddr: u64, paddr: u64, len: u64, offset: u64) -> Segment {
        Segment {
            p_type: PT_LOAD,
            flags: 7,
            offset,
            vaddr,
            paddr,
            filesz: len,
            memsz: len,
        }
    }

    const PO: u64 = 0xffff_8880_0000_0000;

    fn debian_ram() -> Vec<RamRange> {
        vec![
            RamRange {
                start: 0x1000,
                end: 0x9fbff,
            },
            RamRange {
                start: 0x100000,
                end: 0x3ffd4fff,
            },
        ]
    }

    #[test]
    fn header_round_trip_and_checks() {
        let segs = vec![
            Segment {
                p_type: PT_NOTE,
                flags: 0,
                offset: 0x1000,
                vaddr: 0,
                paddr: 0,
                filesz: 0x100,
                memsz: 0,
            },
            load(PO + 0x1000, 0x1000, 0x9e000, 0x2000),
        ];
        let bytes = encode(EM_X86_64, &segs);
        let eh = parse_ehdr(&bytes).unwrap();
        assert_eq!(eh.machine, EM_X86_64);
        assert_eq!(eh.phnum, 2);
        let got = parse_phdrs(&bytes[eh.phoff as usize..], u64::from(eh.phnum)).unwrap();
        assert_eq!(got, segs);

        assert!(matches!(
            parse_ehdr(&bytes[..63]),
            Err(KcoreError::Truncated { .. })
        ));
        let mut bad = bytes.clone();
        bad[4] = 1;
        assert_eq!(parse_ehdr(&bad), Err(KcoreError::NotCore("not ELFCLASS64")));
        let mut bad = bytes.clone();
        bad[16] = 2;
        assert!(matches!(parse_ehdr(&bad), Err(KcoreError::NotCore(_))));
        let mut bad = bytes.clone();
        bad[54] = 32;
        assert_eq!(parse_ehdr(&bad), Err(KcoreError::PhentSize(32)));
        // A lying phnum: more headers than bytes.
        assert!(matches!(
            parse_phdrs(&bytes[64..], 3),
            Err(KcoreError::Truncated { .. })
        ));
        assert!(matches!(
            parse_phdrs(&[], u64::from(u32::MAX)),
            Err(KcoreError::TooManySegments(_))
        ));
        let lying = encode(EM_X86_64, &[load(PO, 0, u64::MAX, 0x1000)]);
        assert!(matches!(
            parse_phdrs(&lying[64..], 1),
            Err(KcoreError::Overflow { index: 0, .. })
        ));
    }

    #[test]
    fn paddr_mode_maps_rounded_segments_and_leaves_unaligned_tails() {
        let segs = vec![
            load(0xffff_ffff_c000_0000, NO_PADDR, 0x1000_0000, 0x10_0000_0000), // vmalloc
            load(PO + 0x1000, 0x1000, 0x9e000, 0x1000),
            load(PO + 0x100000, 0x100000, 0x3fed5000, 0x200000),
        ];
        let map = map_ram(&segs, &debian_ram(), None).unwrap();
        assert_eq!(map.mode, AddressMode::Paddr);
        assert_eq!(map.pieces.len(), 2);
        assert_eq!(
            map.lookup(0x1000, 0x100),
            Lookup::Mapped {
                file_offset: 0x1000,
                len: 0x100
            }
        );
        // 0x9f000-0x9fbff is RAM per iomem but no segment covers it.
        assert_eq!(
            map.lookup(0x9e000, 0x10000),
            Lookup::Mapped {
                file_offset: 0x9e000,
                len: 0x1000
            }
        );
        assert_eq!(map.lookup(0x9f000, 0xc00), Lookup::Hole { len: 0xc00 });
        assert_eq!(
            map.lookup(0x200000, 8),
            Lookup::Mapped {
                file_offset: 0x300000,
                len: 8
            }
        );
    }

    #[test]
    fn text_alias_is_not_copied_twice() {
        let ram = vec![RamRange {
            start: 0x4000_0000,
            end: 0x7fff_ffff,
        }];
        let segs = vec![
            // arm64 kernel text at a random VA, real paddr inside RAM.
            load(0xffff_a000_1000_0000, 0x4100_0000, 0x200_0000, 0x9000_0000),
            load(0xffff_0000_0000_0000, 0x4000_0000, 0x4000_0000, 0x1000),
        ];
        let map = map_ram(&segs, &ram, None).unwrap();
        assert_eq!(map.pieces.len(), 1);
        assert_eq!(map.mapped_bytes(), 0x4000_0000);
        assert_eq!(
            map.lookup(0x4100_0000, 1),
            Lookup::Mapped {
                file_offset: 0x1000 + 0x100_0000,
                len: 1
            }
        );
    }

    #[test]
    fn pre_411_zero_paddr_infers_page_offset_and_checks_iomem() {
        let old_po = 0xffff_8800_0000_0000;
        let segs = vec![
            load(0xffff_ffff_8100_0000, 0, 0x100_0000, 0x7fff_8100_0000), // text
            load(0xffff_c900_0000_0000, 0, 0x2000_0000, 0x4900_0000_0000), // vmalloc
            load(old_po + 0x1000, 0, 0x9e000, 0x1000),
            load(old_po + 0x100000, 0, 0x3fed5000, 0x100000),
        ];
        let map = map_ram(&segs, &debian_ram(), None).unwrap();
        assert_eq!(
            map.mode,
            AddressMode::VaddrMinus {
                offset: old_po,
                given: false
            }
        );
        assert_eq!(map.mapped_bytes(), 0x9e000 + 0x3fed5000);
        // A wrong override maps nothing and says so.
        let err = map_ram(&segs, &debian_ram(), Some(0x1234_0000)).unwrap_err();
        assert!(matches!(err, KcoreError::NoRamMapped { .. }));
        let given = map_ram(&segs, &debian_ram(), Some(old_po)).unwrap();
        assert_eq!(given.pieces, map.pieces);
    }

    #[test]
    fn nothing_mapped_is_an_error() {
        let segs = vec![load(0xffff_c900_0000_0000, NO_PADDR, 0x1000, 0x1000)];
        assert!(matches!(
            map_ram(&segs, &debian_ram(), None),
            Err(KcoreError::NoRamMapped { .. })
        ));
    }

    #[test]
    fn split_ram_and_holes() {
        let ram = vec![
            RamRange {
                start: 0x1000,
                end: 0x1fff,
            },
            RamRange {
                start: 0x2000,
                end: 0x5fff,
            },
        ];
        // One segment spans both ranges; a hole at 0x4000-0x4fff.
        let segs = vec![
            load(PO + 0x1000, 0x1000, 0x3000, 0x10000),
            load(PO + 0x5000, 0x5000, 0x1000, 0x20000),
        ];
        let map = map_ram(&segs, &ram, None).unwrap();
        assert_eq!(map.lookup(0x4000, 0x2000), Lookup::Hole { len: 0x1000 });
        assert_eq!(
            map.lookup(0x2800, 0x1000),
            Lookup::Mapped {
                file_offset: 0x11800,
                len: 0x800 + 0x800
            }
        );
        assert_eq!(
            map.lookup(0x5800, 0x1000),
            Lookup::Mapped {
                file_offset: 0x20800,
                len: 0x800
            }
        );
    }
}
