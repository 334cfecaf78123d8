//! VMCOREINFO: the kernel's `KEY=VALUE` description of itself for crash
//! tools, found as an ELF note named `VMCOREINFO` among `/proc/kcore`'s
//! notes (since 4.19, linux commit 23c85094fe18) and saved by `capture` as
//! `context/vmcoreinfo-kcore`.
//!
//! Facts relied on (linux `kernel/crash_core.c`/`vmcore_info.c`,
//! `arch/x86/kernel/crash_core_64.c`, `arch/arm64/kernel/crash_core.c`):
//! `OSRELEASE=%s`; `KERNELOFFSET=%lx` (hex, no `0x`: runtime minus link
//! address of the kernel image, i.e. the KASLR slide); on x86_64
//! `NUMBER(phys_base)=%ld`; on arm64 `NUMBER(kimage_voffset)=0x%llx`;
//! `SYMBOL(name)=%lx` (hex, no `0x`: the runtime address), which includes
//! the kallsyms tables themselves (`kallsyms_names`, `kallsyms_num_syms`,
//! `kallsyms_offsets`, ...: left out of kallsyms by `scripts/kallsyms.c`).

/// The values used from VMCOREINFO.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VmcoreInfo {
    /// `OSRELEASE`.
    pub osrelease: Option<String>,
    /// `KERNELOFFSET`: the KASLR slide of the kernel image.
    pub kernel_offset: Option<u64>,
    /// `NUMBER(phys_base)` (x86_64): physical = VA − `__START_KERNEL_map` + this.
    pub phys_base: Option<u64>,
    /// `NUMBER(kimage_voffset)` (arm64): physical = kernel-image VA − this.
    pub kimage_voffset: Option<u64>,
    /// `NUMBER(pgtable_l5_enabled)` (x86_64): 5-level page tables in use.
    pub pgtable_l5: bool,
    /// `SYMBOL(name)`: runtime addresses, in the note's order.
    pub symbols: Vec<(String, u64)>,
}

/// Finds the VMCOREINFO note's text among ELF notes (a PT_NOTE segment's
/// bytes). Pure; stops at the first malformed note.
pub fn find_note(notes: &[u8]) -> Option<&[u8]> {
    let desc = crate::elfnote::iter(notes)
        .find(|n| n.name == b"VMCOREINFO")?
        .desc;
    // The kernel pads the text with NULs up to the note size.
    let end = desc.iter().position(|&b| b == 0).unwrap_or(desc.len());
    Some(&desc[..end])
}

fn number(v: &str) -> Option<u64> {
    let v = v.trim();
    if let Some(h) = v.strip_prefix("0x") {
        return u64::from_str_radix(h, 16).ok();
    }
    if let Some(neg) = v.strip_prefix('-') {
        return neg.parse::<u64>().ok().map(u64::wrapping_neg);
    }
    v.parse().ok()
}

/// Parses VMCOREINFO text. Unknown keys and malformed lines are ignored.
pub fn parse(text: &[u8]) -> VmcoreInfo {
    let mut info = VmcoreInfo::default();
    for line in String::from_utf8_lossy(text).lines() {
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        match k {
            "OSRELEASE" => info.osrelease = Some(v.to_owned()),
            "KERNELOFFSET" => info.kernel_offset = u64::from_str_radix(v.trim(), 16).ok(),
            "NUMBER(phys_base)" => info.phys_base = number(v),
            "NUMBER(kimage_voffset)" => info.kimage_voffset = number(v),
            "NUMBER(pgtable_l5_enabled)" => info.pgtable_l5 = number(v).is_some_and(|n| n != 0),
            _ => {
                if let Some(name) = k.strip_prefix("SYMBOL(").and_then(|r| r.strip_suffix(')'))
                    && let Ok(addr) = u64::from_str_radix(v.trim(), 16)
                    && !name.is_empty()
                {
                    info.symbols.push((name.to_owned(), addr));
                }
            }
        }
    }
    info
}

/// Encodes one ELF note (fixtures and tests).
pub use crate::elfnote::encode as encode_note;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_note_among_kcore_notes_and_parses_it() {
        let text = b"OSRELEASE=6.1.0-57-amd64\nPAGESIZE=4096\nSYMBOL(init_top_pgt)=ffffffff9c80a000\nNUMBER(phys_base)=-1015021568\nKERNELOFFSET=1a000000\n\0\0\0";
        let mut notes = encode_note(b"CORE\0", 1, &[0u8; 336]);
        notes.extend(encode_note(b"VMCOREINFO\0", 0, text));
        let found = find_note(&notes).unwrap();
        assert!(found.ends_with(b"KERNELOFFSET=1a000000\n"));
        let info = parse(found);
        assert_eq!(info.osrelease.as_deref(), Some("6.1.0-57-amd64"));
        assert_eq!(info.kernel_offset, Some(0x1a00_0000));
        assert_eq!(info.phys_base, Some((-1_015_021_568i64) as u64));
        assert_eq!(find_note(&notes[..40]), None);
        assert_eq!(
            info.symbols,
            vec![("init_top_pgt".to_owned(), 0xffff_ffff_9c80_a000)]
        );
        assert!(
            parse(b"SYMBOL()=1\nSYMBOL(x)=zz\nSYMBOL(y=1\n")
                .symbols
                .is_empty()
        );
        assert!(!info.pgtable_l5);
        assert!(parse(b"NUMBER(pgtable_l5_enabled)=1\n").pgtable_l5);
        let arm = parse(b"NUMBER(kimage_voffset)=0xffff7fff3f600000\nKERNELOFFSET=0\n");
        assert_eq!(arm.kimage_voffset, Some(0xffff_7fff_3f60_0000));
        assert_eq!(arm.kernel_offset, Some(0));
    }
}
