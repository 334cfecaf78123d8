//! ELF notes (`Elf64_Nhdr` + name + desc, each padded to 4 bytes), as the
//! kernel exposes them in `/sys/kernel/notes` and in `/proc/kcore`'s
//! PT_NOTE segment. One walker for every note `capture` reads (the GNU build
//! ID, VMCOREINFO), bounded by the buffer: a lying size ends the walk.

/// One note: its name without the trailing NUL, type and descriptor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Note<'a> {
    /// `namesz` bytes, the trailing NUL stripped.
    pub name: &'a [u8],
    /// `n_type`.
    pub kind: u32,
    /// `descsz` bytes.
    pub desc: &'a [u8],
}

/// The notes in `bytes`, in order; stops at the first malformed one.
pub fn iter(bytes: &[u8]) -> impl Iterator<Item = Note<'_>> {
    let mut at = Some(0usize);
    std::iter::from_fn(move || {
        let (note, next) = parse_at(bytes, at?)?;
        at = Some(next);
        Some(note)
    })
    .fuse()
}

fn parse_at(bytes: &[u8], at: usize) -> Option<(Note<'_>, usize)> {
    let u32_at = |i: usize| -> Option<u32> {
        Some(u32::from_le_bytes(
            bytes.get(i..i.checked_add(4)?)?.try_into().ok()?,
        ))
    };
    let namesz = u32_at(at)? as usize;
    let descsz = u32_at(at.checked_add(4)?)? as usize;
    let kind = u32_at(at.checked_add(8)?)?;
    let name_at = at.checked_add(12)?;
    let desc_at = name_at.checked_add(namesz.checked_add(3)? & !3)?;
    let next = desc_at.checked_add(descsz.checked_add(3)? & !3)?;
    let name = bytes.get(name_at..name_at.checked_add(namesz)?)?;
    let desc = bytes.get(desc_at..desc_at.checked_add(descsz)?)?;
    let name = name.strip_suffix(b"\0").unwrap_or(name);
    Some((Note { name, kind, desc }, next))
}

/// Encodes one note (fixtures and tests). `name` as stored, NUL included.
pub fn encode(name: &[u8], kind: u32, desc: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&(name.len() as u32).to_le_bytes());
    v.extend_from_slice(&(desc.len() as u32).to_le_bytes());
    v.extend_from_slice(&kind.to_le_bytes());
    v.extend_from_slice(name);
    v.resize(v.len().div_ceil(4) * 4, 0);
    v.extend_from_slice(desc);
    v.resize(v.len().div_ceil(4) * 4, 0);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walks_notes_and_stops_at_a_lying_size() {
        let mut notes = encode(b"Xen\0", 1, b"abc");
        notes.extend(encode(b"GNU\0", 3, &[1, 2, 3, 4, 5]));
        let got: Vec<_> = iter(&notes).map(|n| (n.name, n.kind, n.desc)).collect();
        assert_eq!(
            got,
            [
                (&b"Xen"[..], 1, &b"abc"[..]),
                (&b"GNU"[..], 3, &[1, 2, 3, 4, 5][..])
            ]
        );
        assert_eq!(iter(&notes[..20]).count(), 1);
        let mut bad = notes.clone();
        bad[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(iter(&bad).count(), 0);
    }
}
