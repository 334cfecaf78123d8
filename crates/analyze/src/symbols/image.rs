//! Reading the captured kernel image for `capture symbols`: what the table
//! takes from memory itself (`taint_flags`' real count, `kallsyms_markers`)
//! and the check that the banner it is identified by is in the image. Every
//! read goes through the capture's image as `verify` opens it.

use fv_evidence::reader::SeekableReader;
use fv_symbols::{Arch, vmcoreinfo};

use crate::error::Error;
use crate::input::Capture;

/// x86_64 `__START_KERNEL_map`: kernel-image VA − this + `phys_base` = physical.
const START_KERNEL_MAP: u64 = 0xffff_ffff_8000_0000;
/// Most bytes of `taint_flags` read to fit its count (20 entries of 3
/// bytes in every kernel).
const TAINT_FLAGS_MAX: u64 = 64 << 10;

/// Physical address of a kernel-image runtime VA (x86_64: VA −
/// `__START_KERNEL_map` + `phys_base`; arm64: VA − `kimage_voffset`), where
/// the VMCOREINFO note gives what it takes.
fn phys_of(arch: Arch, info: Option<&vmcoreinfo::VmcoreInfo>, va: u64) -> Option<u64> {
    match (arch, info) {
        (Arch::X86_64, Some(i)) => i
            .phys_base
            .map(|pb| va.wrapping_sub(START_KERNEL_MAP).wrapping_add(pb)),
        (Arch::Aarch64, Some(i)) => i.kimage_voffset.map(|v| va.wrapping_sub(v)),
        _ => None,
    }
}

/// Reads `len` bytes of kernel-image memory at runtime VA `va` from the
/// image; `None` when the address cannot be placed or was not captured.
fn read_kernel(
    c: &Capture,
    reader: &mut SeekableReader<std::fs::File>,
    phys: Option<u64>,
    len: usize,
) -> Result<Option<Vec<u8>>, Error> {
    let Some(p) = phys else { return Ok(None) };
    let Some(at) = c
        .manifest
        .ranges
        .iter()
        .find(|r| p >= r.start && p.saturating_add(len as u64) <= r.end.saturating_add(1))
        .map(|r| r.lime_offset + 32 + (p - r.start))
    else {
        return Ok(None);
    };
    let mut buf = vec![0u8; len];
    reader
        .read_exact_at(at, &mut buf)
        .map_err(|source| Error::Image {
            path: c.image_path.clone(),
            source,
        })?;
    Ok(Some(buf))
}

fn open_image(c: &Capture) -> Result<SeekableReader<std::fs::File>, Error> {
    // Relative to the capture directory, never through a symlink (as
    // verify opens it).
    let image = c
        .open_file(&c.manifest.image.file)
        .map_err(|e| Error::input_fs(&c.image_path, e))?;
    SeekableReader::open(image).map_err(|source| Error::Image {
        path: c.image_path.clone(),
        source,
    })
}

/// `taint_flags` (lsmod's taint letters) is an array whose length is a
/// `#define` (`TAINT_FLAGS_COUNT`, 18 to 20 by version), so the table first
/// sizes it by the gap to the next symbol; entries past the real ones would
/// print garbage letters. Cut the count to the entries the image holds:
/// `{c_true: 'A'-'Z', c_false: 'A'-'Z' or ' ', module: 0|1}`. Returns the
/// count kept, if the array was there to fit.
///
/// # Errors
/// [`Error::NoSymbols`] when the BTF makes the array larger than any
/// kernel's (its size times its count is checked, and capped at
/// [`TAINT_FLAGS_MAX`] bytes, before anything is allocated); image errors.
pub(super) fn fit_taint_flags(
    c: &Capture,
    isf: &mut fv_symbols::Table,
    arch: Arch,
    info: Option<&vmcoreinfo::VmcoreInfo>,
    kernel_offset: u64,
) -> Result<Option<u64>, Error> {
    let size = isf
        .user_types
        .get("taint_flag")
        .and_then(|t| t["size"].as_u64())
        .unwrap_or(0);
    let Some(sym) = isf.symbols.get("taint_flags") else {
        return Ok(None);
    };
    let (link, Some(count)) = (
        sym.address,
        sym.ty.as_ref().and_then(|t| t["count"].as_u64()),
    ) else {
        return Ok(None);
    };
    if size < 3 {
        return Ok(None);
    }
    let len = taint_flags_len(size, count).ok_or_else(|| Error::NoSymbols {
            path: c.dir.clone(),
            reason: format!(
                "the BTF makes taint_flags {count} entries of {size} bytes, more than {TAINT_FLAGS_MAX} bytes: no kernel's is, so this BTF is not a kernel's"
            ),
        })?;
    let va = link.wrapping_add(kernel_offset);
    let mut reader = open_image(c)?;
    let Some(bytes) = read_kernel(c, &mut reader, phys_of(arch, info, va), len as usize)? else {
        return Ok(None);
    };
    let valid = bytes
        .chunks_exact(size as usize)
        .take_while(|e| {
            e[0].is_ascii_uppercase() && (e[1].is_ascii_uppercase() || e[1] == b' ') && e[2] <= 1
        })
        .count() as u64;
    if let Some(t) = isf
        .symbols
        .get_mut("taint_flags")
        .and_then(|s| s.ty.as_mut())
        .and_then(serde_json::Value::as_object_mut)
    {
        t.insert("count".into(), valid.into());
    }
    Ok(Some(valid))
}

/// The bytes `taint_flags` spans, `size` × `count` from the BTF, if no
/// larger than [`TAINT_FLAGS_MAX`]: both come from the evidence, and their
/// product sizes an allocation (security review S9: up to 2^48 bytes).
fn taint_flags_len(size: u64, count: u64) -> Option<u64> {
    size.checked_mul(count).filter(|&n| n <= TAINT_FLAGS_MAX)
}

/// `kallsyms_markers`, the one table of the kernel's own symbol table that
/// neither kallsyms nor VMCOREINFO lists (linux.kallsyms and
/// linux.pscallstack read it): `scripts/kallsyms.c` writes it right after
/// `kallsyms_names`, aligned to 8, so walking the names in the image
/// (`kallsyms_num_syms` of them) gives its address and its content. It is
/// added only when the image's table there equals the walk's, entry for
/// entry. Returns what happened, for the report.
pub(super) fn add_kallsyms_markers(
    c: &Capture,
    isf: &mut fv_symbols::Table,
    arch: Arch,
    info: Option<&vmcoreinfo::VmcoreInfo>,
    kernel_offset: u64,
) -> Result<Option<String>, Error> {
    let syms = &isf.symbols;
    if syms.contains_key("kallsyms_markers") {
        return Ok(None);
    }
    let (Some(names), Some(num_at)) = (
        syms.get("kallsyms_names").map(|s| s.address),
        syms.get("kallsyms_num_syms").map(|s| s.address),
    ) else {
        return Ok(None);
    };
    let at = |link: u64| phys_of(arch, info, link.wrapping_add(kernel_offset));
    let mut reader = open_image(c)?;
    let Some(n) = read_kernel(c, &mut reader, at(num_at), 4)? else {
        return Ok(Some(
            "left out: kallsyms_num_syms is not in the image".into(),
        ));
    };
    let num = u32::from_le_bytes([n[0], n[1], n[2], n[3]]);
    if num == 0 || num > 4_000_000 {
        return Ok(Some(format!(
            "left out: kallsyms_num_syms reads {num} in the image"
        )));
    }
    // The names take ~13 bytes a symbol: read 1 MiB, then more, up to 64 MiB
    // or the end of the captured range.
    let mut len: u64 = 1 << 20;
    let walked = loop {
        let room = at(names).and_then(|p| {
            c.manifest
                .ranges
                .iter()
                .find(|r| p >= r.start && p <= r.end)
                .map(|r| r.end - p + 1)
        });
        let Some(room) = room else {
            return Ok(Some("left out: kallsyms_names is not in the image".into()));
        };
        let want = len.min(room);
        let Some(buf) = read_kernel(c, &mut reader, at(names), want as usize)? else {
            return Ok(Some("left out: kallsyms_names is not in the image".into()));
        };
        if let Some(w) = fv_symbols::kallsyms::walk_names(&buf, num) {
            break w;
        }
        if want < len || len >= 64 << 20 {
            return Ok(Some(format!(
                "left out: the {num} names of kallsyms_names do not end within {want} bytes of the image"
            )));
        }
        len *= 2;
    };
    let (end, want) = walked;
    let markers = (names + end as u64).next_multiple_of(8);
    let got = read_kernel(c, &mut reader, at(markers), want.len() * 4)?.map(|b| {
        b.chunks_exact(4)
            .map(|w| u32::from_le_bytes([w[0], w[1], w[2], w[3]]))
            .collect::<Vec<u32>>()
    });
    if got.as_ref() != Some(&want) {
        return Ok(Some(format!(
            "left out: the image's table after kallsyms_names ({markers:#x}) is not the {} markers of its {num} names",
            want.len()
        )));
    }
    isf.symbols.insert(
        "kallsyms_markers".into(),
        fv_symbols::Symbol {
            address: markers,
            ty: Some(serde_json::json!({"kind": "array", "count": want.len(),
                     "subtype": {"kind": "base", "name": "unsigned int"}})),
            constant_data: None,
        },
    );
    Ok(Some(format!(
        "{markers:#x}, after kallsyms_names: {} entries for {num} symbols, each equal to the image's",
        want.len()
    )))
}

/// Confirms the banner is in the image: first at `linux_banner`'s
/// physical address, else anywhere in captured memory. Returns the
/// physical address found.
pub(super) fn find_banner(
    c: &Capture,
    arch: Arch,
    info: Option<&vmcoreinfo::VmcoreInfo>,
    banner_va: u64,
    banner: &[u8],
) -> Result<u64, Error> {
    let mut reader = open_image(c)?;
    let phys = phys_of(arch, info, banner_va);
    if let Some(got) = read_kernel(c, &mut reader, phys, banner.len())?
        && got == banner
        && let Some(p) = phys
    {
        return Ok(p);
    }
    let ranges = &c.manifest.ranges;
    let img_err = |source| Error::Image {
        path: c.image_path.clone(),
        source,
    };
    // Anywhere: range by range, in chunks overlapping by the banner's length.
    const CHUNK: usize = 8 << 20;
    let mut buf = vec![0u8; CHUNK + banner.len()];
    for r in ranges {
        let mut off = 0u64;
        while off < r.length {
            let n = (r.length - off).min(buf.len() as u64) as usize;
            reader
                .read_exact_at(r.lime_offset + 32 + off, &mut buf[..n])
                .map_err(img_err)?;
            if let Some(i) = find(&buf[..n], banner) {
                return Ok(r.start + off + i as u64);
            }
            if n < buf.len() {
                break;
            }
            off += CHUNK as u64;
        }
    }
    Err(Error::Mismatch {
        path: c.image_path.clone(),
        what: format!(
            "the banner of context/version ({:?}) does not occur in the captured memory: a symbol table identified by it would not match this image",
            String::from_utf8_lossy(&banner[..banner.len().min(80)])
        ),
    })
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    let (&first, rest) = needle.split_first()?;
    let mut at = 0;
    while at + needle.len() <= hay.len() {
        let i = hay[at..=hay.len() - needle.len()]
            .iter()
            .position(|&b| b == first)?;
        let p = at + i;
        if &hay[p + 1..p + needle.len()] == rest {
            return Some(p);
        }
        at = p + 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::{TAINT_FLAGS_MAX, find, taint_flags_len};

    /// S9: a BTF size and count from the evidence never size an allocation
    /// past the cap, nor wrap.
    #[test]
    fn taint_flags_len_is_capped_and_never_wraps() {
        assert_eq!(taint_flags_len(3, 20), Some(60));
        assert_eq!(taint_flags_len(1 << 32, 1 << 16), None);
        assert_eq!(taint_flags_len(u64::MAX, 2), None);
        assert_eq!(taint_flags_len(TAINT_FLAGS_MAX, 1), Some(TAINT_FLAGS_MAX));
        assert_eq!(taint_flags_len(TAINT_FLAGS_MAX + 1, 1), None);
    }

    #[test]
    fn find_locates_needles_at_edges() {
        assert_eq!(find(b"abcLinux", b"Linux"), Some(3));
        assert_eq!(find(b"Linuxabc", b"Linux"), Some(0));
        assert_eq!(find(b"LinuLinux", b"Linux"), Some(4));
        assert_eq!(find(b"Linu", b"Linux"), None);
        assert_eq!(find(b"", b"L"), None);
    }
}
