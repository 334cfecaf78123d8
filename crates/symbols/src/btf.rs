//! A BTF parser: the kernel's own type information, as exposed at
//! `/sys/kernel/btf/vmlinux` (base BTF) and `/sys/kernel/btf/<module>`
//! (split BTF, whose type IDs and string offsets continue the base's).
//!
//! Why our own parser and not a crate: the format is small (a 24-byte
//! header, 20 kinds, a string table), every byte of it comes from a
//! suspect machine, and this code must refuse malformed input with a clear
//! error rather than panic; the one maintained Rust parser that handles
//! split BTF (`btf-rs`) is LGPL, awkward for our static MIT/Apache binary.
//! The parser is fuzzed (`fuzz/fuzz_targets/btf.rs`).
//!
//! Facts relied on (linux `include/uapi/linux/btf.h`,
//! `Documentation/bpf/btf.rst`, `kernel/bpf/btf.c`):
//! - header: magic `0xeB9F` (u16, the file's byte order), version 1, flags,
//!   `hdr_len`, then `type_off`, `type_len`, `str_off`, `str_len` (u32),
//!   offsets counted from the end of the header;
//! - a type is `name_off`, `info` (vlen bits 0-15, kind bits 24-28,
//!   kind_flag bit 31), `size`/`type`, followed by kind-specific data;
//! - type ID 0 is `void`; base BTF's first type is ID 1; split BTF's first
//!   type is the base's last ID + 1, and its string offsets start at the
//!   base's `str_len`;
//! - struct members carry a bit offset; with kind_flag set, bits 24-31 are
//!   the bitfield size and bits 0-23 the bit offset;
//! - the kernel loads no BTF with a name of `KSYM_NAME_LEN` (512, since
//!   6.1; 128 before) bytes or more (`__btf_name_valid`,
//!   `btf_name_valid_section`), so no real name is longer than [`MAX_NAME`].
//!
//! Memory is bounded whatever the bytes: a name is copied at most once per
//! use and is at most [`MAX_NAME`] bytes, and a blob, like all the blobs of
//! one table together (see `isf::generate`), holds at most [`MAX_ITEMS`]
//! types, members, enumerators and section variables, naming at most
//! [`MAX_NAME_BYTES`] bytes in all (each use counted). A crafted blob that
//! names one 1 MB string from every member (1.5 GB before these limits) is
//! refused at its first long name. The figures are in docs/analyst.md.

/// `BTF_MAGIC` as read little-endian.
pub const MAGIC: u16 = 0xeb9f;
/// Longest typedef/qualifier chain followed before a type is declared
/// cyclic (real kernels need fewer than ten).
pub const MAX_CHAIN: usize = 64;
/// Longest name accepted, in bytes: `KSYM_NAME_LEN` (512) less its NUL, the
/// kernel's own limit for every BTF name it checks.
pub const MAX_NAME: usize = 511;
/// Most types, struct/union members, enumerators and DATASEC variables, in
/// one blob and in all the blobs of one table together. Debian 12's
/// 6.1 kernel has 173,386 in vmlinux (100,810 of them types).
pub const MAX_ITEMS: usize = 1_000_000;
/// Most name bytes all those items may name together (each use counted):
/// what the table will copy. Debian 12's 6.1 kernel: 1.8 MB.
pub const MAX_NAME_BYTES: usize = 32 << 20;

/// What is wrong with a BTF blob.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BtfError {
    /// Shorter than a header or a section it announces.
    #[error("BTF: truncated ({what})")]
    Truncated {
        /// What was being read.
        what: String,
    },
    /// No BTF magic.
    #[error("BTF: no magic 0xeB9F at the start (not a BTF blob)")]
    NoMagic,
    /// Big-endian BTF (a big-endian kernel): not supported.
    #[error("BTF: big-endian BTF is not supported (only little-endian kernels: x86_64, aarch64)")]
    BigEndian,
    /// A version other than 1.
    #[error("BTF: version {0} (only version 1 is known)")]
    Version(u8),
    /// A header field or section out of bounds.
    #[error("BTF: bad header: {0}")]
    Header(String),
    /// A type is malformed.
    #[error("BTF: type {id}: {reason}")]
    Type {
        /// Type ID.
        id: u32,
        /// What is wrong.
        reason: String,
    },
    /// A string offset points outside the string section or to a string
    /// without its terminating NUL or that is not UTF-8.
    #[error(
        "BTF: string at offset {0} is out of bounds, unterminated, longer than {MAX_NAME} bytes (the kernel's KSYM_NAME_LEN) or not UTF-8"
    )]
    String(u32),
    /// More than the parser's limits ([`MAX_ITEMS`], [`MAX_NAME_BYTES`]):
    /// no kernel's BTF is this large.
    #[error("BTF: {0}")]
    TooLarge(String),
}

/// A struct or union member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Its name (empty for an anonymous member).
    pub name: String,
    /// Its type ID.
    pub ty: u32,
    /// Offset from the start of the struct, in bits.
    pub bit_offset: u32,
    /// Bitfield width in bits; 0 for an ordinary member.
    pub bitfield: u8,
}

/// One enum constant's value (`ENUM64` may need the full u64 range).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnumValue {
    /// A signed value.
    Signed(i64),
    /// An unsigned value.
    Unsigned(u64),
}

/// A BTF type's kind and data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// `BTF_KIND_INT`.
    Int {
        /// Size in bytes.
        size: u32,
        /// `BTF_INT_SIGNED` (1), `BTF_INT_CHAR` (2), `BTF_INT_BOOL` (4).
        encoding: u8,
        /// Width in bits (narrower than `size` only in old-style bitfields).
        bits: u8,
        /// Bit offset of the value (old-style bitfields).
        offset: u8,
    },
    /// `BTF_KIND_PTR` to a type.
    Ptr(u32),
    /// `BTF_KIND_ARRAY`.
    Array {
        /// Element type.
        elem: u32,
        /// Element count.
        count: u32,
    },
    /// `BTF_KIND_STRUCT` (false) or `BTF_KIND_UNION` (true).
    Composite {
        /// A union.
        union: bool,
        /// Size in bytes.
        size: u32,
        /// Members in order.
        members: Vec<Member>,
    },
    /// `BTF_KIND_ENUM` / `BTF_KIND_ENUM64`.
    Enum {
        /// Size in bytes.
        size: u32,
        /// kind_flag: the values are signed.
        signed: bool,
        /// Constants in order.
        values: Vec<(String, EnumValue)>,
    },
    /// `BTF_KIND_FWD` (kind_flag: a union).
    Fwd {
        /// A union.
        union: bool,
    },
    /// `BTF_KIND_TYPEDEF`.
    Typedef(u32),
    /// `BTF_KIND_VOLATILE`, `CONST`, `RESTRICT`, `TYPE_TAG`: the type itself
    /// for every use here.
    Qualifier(u32),
    /// `BTF_KIND_FUNC`.
    Func,
    /// `BTF_KIND_FUNC_PROTO`.
    FuncProto,
    /// `BTF_KIND_VAR` of a type.
    Var(u32),
    /// `BTF_KIND_DATASEC`: (variable type ID, offset, size).
    Datasec(Vec<(u32, u32, u32)>),
    /// `BTF_KIND_FLOAT` of a size.
    Float(u32),
    /// `BTF_KIND_DECL_TAG`.
    DeclTag,
}

/// One type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Type {
    /// Its name (empty when anonymous).
    pub name: String,
    /// Its kind and data.
    pub kind: Kind,
}

/// A parsed BTF blob: base BTF, or split BTF parsed against its base.
#[derive(Debug, Clone, Default)]
pub struct Btf {
    /// ID of `types[0]` (1 for base BTF).
    first_id: u32,
    /// Length of the string section, plus the base's for split BTF (where
    /// the next split BTF's offsets would start).
    str_end: u32,
    types: Vec<Type>,
    /// Types, members, enumerators and DATASEC variables parsed.
    items: usize,
    /// Bytes of names they name (each use counted).
    name_bytes: usize,
}

/// What a blob holds, against [`MAX_ITEMS`] and [`MAX_NAME_BYTES`].
#[derive(Debug, Default)]
struct Budget {
    items: usize,
    name_bytes: usize,
}

impl Budget {
    /// Counts one item named `name`; refuses past the limits.
    fn add(&mut self, name: &str) -> Result<(), BtfError> {
        self.items += 1;
        self.name_bytes += name.len();
        if self.items > MAX_ITEMS {
            return Err(BtfError::TooLarge(format!(
                "more than {MAX_ITEMS} types, members and enumerators (no kernel has so many)"
            )));
        }
        if self.name_bytes > MAX_NAME_BYTES {
            return Err(BtfError::TooLarge(format!(
                "its types and members name more than {MAX_NAME_BYTES} bytes (no kernel's do)"
            )));
        }
        Ok(())
    }
}

fn u16_at(b: &[u8], i: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(i..i + 2)?.try_into().ok()?))
}
fn u32_at(b: &[u8], i: usize) -> Option<u32> {
    Some(u32::from_le_bytes(
        b.get(i..i.checked_add(4)?)?.try_into().ok()?,
    ))
}

/// The header's sections, as slices.
struct Sections<'a> {
    types: &'a [u8],
    strings: &'a [u8],
}

fn sections(data: &[u8]) -> Result<Sections<'_>, BtfError> {
    let trunc = |what: &str| BtfError::Truncated { what: what.into() };
    let magic = u16_at(data, 0).ok_or_else(|| trunc("header"))?;
    if magic == MAGIC.swap_bytes() {
        return Err(BtfError::BigEndian);
    }
    if magic != MAGIC {
        return Err(BtfError::NoMagic);
    }
    let version = *data.get(2).ok_or_else(|| trunc("header"))?;
    if version != 1 {
        return Err(BtfError::Version(version));
    }
    let field = |i: usize| u32_at(data, i).ok_or_else(|| trunc("header"));
    let hdr_len = field(4)? as usize;
    let (type_off, type_len, str_off, str_len) = (field(8)?, field(12)?, field(16)?, field(20)?);
    if hdr_len < 24 || hdr_len > data.len() {
        return Err(BtfError::Header(format!(
            "header length {hdr_len} (file {} bytes)",
            data.len()
        )));
    }
    let body = &data[hdr_len..];
    let slice = |off: u32, len: u32, what: &str| {
        let end = (off as usize).checked_add(len as usize);
        match end {
            Some(end) if end <= body.len() => Ok(&body[off as usize..end]),
            _ => Err(BtfError::Header(format!(
                "{what} section {off}+{len} beyond the {} bytes after the header",
                body.len()
            ))),
        }
    };
    let types = slice(type_off, type_len, "type")?;
    let strings = slice(str_off, str_len, "string")?;
    if type_len % 4 != 0 || type_off % 4 != 0 {
        return Err(BtfError::Header("type section not 4-byte aligned".into()));
    }
    if strings.last().is_some_and(|&b| b != 0) {
        return Err(BtfError::Header(
            "string section does not end in NUL".into(),
        ));
    }
    Ok(Sections { types, strings })
}

/// String lookup across a base's strings and this blob's own: read in
/// place from the string sections (any offset, as the kernel allows), at
/// most [`MAX_NAME`] bytes looked at per name.
struct Strings<'a> {
    base: &'a [u8],
    base_len: u32,
    own: &'a [u8],
}

impl Strings<'_> {
    fn get(&self, off: u32) -> Result<String, BtfError> {
        let (section, at) = if off < self.base_len {
            // Split BTF naming a base string.
            (self.base, off as usize)
        } else {
            (self.own, (off - self.base_len) as usize)
        };
        let rest = section.get(at..).ok_or(BtfError::String(off))?;
        let window = &rest[..rest.len().min(MAX_NAME + 1)];
        let end = window
            .iter()
            .position(|&b| b == 0)
            .ok_or(BtfError::String(off))?;
        std::str::from_utf8(&window[..end])
            .map(str::to_owned)
            .map_err(|_| BtfError::String(off))
    }
}

impl Btf {
    /// Parses base BTF (`/sys/kernel/btf/vmlinux`).
    ///
    /// # Errors
    /// A [`BtfError`] naming what is malformed.
    pub fn parse(data: &[u8]) -> Result<Self, BtfError> {
        let s = sections(data)?;
        if s.strings.first().is_some_and(|&b| b != 0) {
            return Err(BtfError::Header(
                "base BTF's string section does not start with the empty string".into(),
            ));
        }
        let strings = Strings {
            base: &[],
            base_len: 0,
            own: s.strings,
        };
        let (types, budget) = parse_types(s.types, 1, &strings)?;
        let btf = Self {
            first_id: 1,
            str_end: s.strings.len() as u32,
            types,
            items: budget.items,
            name_bytes: budget.name_bytes,
        };
        btf.check_refs()?;
        Ok(btf)
    }

    /// Parses split BTF (`/sys/kernel/btf/<module>`) against its base,
    /// `base` parsed from `base_data`, whose strings it may name. (The base
    /// is base BTF: split BTF over split BTF is not read.)
    ///
    /// # Errors
    /// A [`BtfError`] naming what is malformed.
    pub fn parse_split(data: &[u8], base: &Self, base_data: &[u8]) -> Result<Self, BtfError> {
        let base_sections = sections(base_data)?;
        if base.first_id != 1 || base_sections.strings.len() != base.str_end as usize {
            return Err(BtfError::Header(
                "the base given is not the base BTF the split BTF was parsed against".into(),
            ));
        }
        let s = sections(data)?;
        let strings = Strings {
            base: base_sections.strings,
            base_len: base.str_end,
            own: s.strings,
        };
        let first_id = base.next_id();
        let (types, budget) = parse_types(s.types, first_id, &strings)?;
        let btf = Self {
            first_id,
            str_end: base.str_end.saturating_add(s.strings.len() as u32),
            types,
            items: budget.items,
            name_bytes: budget.name_bytes,
        };
        btf.check_refs()?;
        Ok(btf)
    }

    /// Types, members, enumerators and DATASEC variables in this blob
    /// (counted against [`MAX_ITEMS`]).
    pub fn items(&self) -> usize {
        self.items
    }

    /// Bytes of names they name, each use counted (against
    /// [`MAX_NAME_BYTES`]).
    pub fn name_bytes(&self) -> usize {
        self.name_bytes
    }

    /// The ID the next split BTF starts at.
    pub fn next_id(&self) -> u32 {
        self.first_id + self.types.len() as u32
    }

    /// ID of the first type in this blob.
    pub fn first_id(&self) -> u32 {
        self.first_id
    }

    /// Number of types in this blob.
    pub fn len(&self) -> usize {
        self.types.len()
    }

    /// Whether the blob holds no type.
    pub fn is_empty(&self) -> bool {
        self.types.is_empty()
    }

    /// The type of this blob with ID `id`, if it is one of this blob's.
    pub fn own(&self, id: u32) -> Option<&Type> {
        id.checked_sub(self.first_id)
            .and_then(|i| self.types.get(i as usize))
    }

    /// This blob's types with their IDs.
    pub fn iter(&self) -> impl Iterator<Item = (u32, &Type)> {
        (self.first_id..).zip(self.types.iter())
    }

    /// Every type reference points at `void` or a type of this blob or of
    /// its base (whose IDs are all below `first_id`).
    fn check_refs(&self) -> Result<(), BtfError> {
        let end = self.next_id();
        for (id, t) in self.iter() {
            let bad = |r: u32| BtfError::Type {
                id,
                reason: format!("refers to type {r}, beyond the last type {}", end - 1),
            };
            let check = |r: u32| if r >= end { Err(bad(r)) } else { Ok(()) };
            match &t.kind {
                Kind::Ptr(r) | Kind::Typedef(r) | Kind::Qualifier(r) | Kind::Var(r) => check(*r)?,
                Kind::Array { elem, .. } => check(*elem)?,
                Kind::Composite { members, .. } => {
                    for m in members {
                        check(m.ty)?;
                    }
                }
                Kind::Datasec(vars) => {
                    for v in vars {
                        check(v.0)?;
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// A position in the type section, in the record of type `id`.
struct Cursor<'a> {
    sec: &'a [u8],
    at: usize,
    id: u32,
}

impl Cursor<'_> {
    fn trunc(&self) -> BtfError {
        BtfError::Truncated {
            what: format!("type {}", self.id),
        }
    }

    /// The 32-bit word `i` bytes past the cursor.
    fn word(&self, i: usize) -> Result<u32, BtfError> {
        u32_at(self.sec, self.at + i).ok_or_else(|| self.trunc())
    }

    fn bad(&self, reason: String) -> BtfError {
        BtfError::Type {
            id: self.id,
            reason,
        }
    }
}

/// A type record's header (`struct btf_type`) past its name.
struct Header {
    kind_no: u32,
    kind_flag: bool,
    vlen: usize,
    size_or_type: u32,
}

fn parse_types(
    sec: &[u8],
    first_id: u32,
    strings: &Strings<'_>,
) -> Result<(Vec<Type>, Budget), BtfError> {
    let mut types = Vec::new();
    let mut budget = Budget::default();
    let mut c = Cursor {
        sec,
        at: 0,
        id: first_id,
    };
    while c.at < sec.len() {
        c.id = first_id.saturating_add(types.len() as u32);
        let name_off = c.word(0)?;
        let info = c.word(4)?;
        let size_or_type = c.word(8)?;
        c.at += 12;
        let h = Header {
            vlen: (info & 0xffff) as usize,
            kind_flag: info >> 31 == 1,
            kind_no: (info >> 24) & 0x1f,
            size_or_type,
        };
        let name = strings.get(name_off)?;
        budget.add(&name)?;
        let kind = parse_kind(&mut c, &h, strings, &mut budget)?;
        if c.at > sec.len() {
            return Err(c.trunc());
        }
        types.push(Type { name, kind });
        if types.len() >= (u32::MAX - first_id) as usize {
            return Err(BtfError::Header("too many types".into()));
        }
    }
    Ok((types, budget))
}

/// The kind-specific part of a record, from the cursor on (left past it).
fn parse_kind(
    c: &mut Cursor<'_>,
    h: &Header,
    strings: &Strings<'_>,
    budget: &mut Budget,
) -> Result<Kind, BtfError> {
    let size_or_type = h.size_or_type;
    Ok(match h.kind_no {
        1 => {
            let enc = c.word(0)?;
            c.at += 4;
            let bits = enc & 0xff;
            if bits > 128 || size_or_type > 16 || size_or_type == 0 {
                return Err(c.bad(format!("INT of {size_or_type} bytes, {bits} bits")));
            }
            Kind::Int {
                size: size_or_type,
                encoding: ((enc >> 24) & 0x0f) as u8,
                bits: bits as u8,
                offset: ((enc >> 16) & 0xff) as u8,
            }
        }
        2 => Kind::Ptr(size_or_type),
        3 => {
            let elem = c.word(0)?;
            let count = c.word(8)?;
            c.at += 12;
            Kind::Array { elem, count }
        }
        4 | 5 => parse_composite(c, h, strings, budget)?,
        6 | 19 => parse_enum(c, h, strings, budget)?,
        7 => Kind::Fwd { union: h.kind_flag },
        8 => Kind::Typedef(size_or_type),
        9..=11 | 18 => Kind::Qualifier(size_or_type),
        12 => Kind::Func,
        13 => {
            c.at =
                c.at.checked_add(h.vlen * 8)
                    .filter(|&e| e <= c.sec.len())
                    .ok_or_else(|| c.trunc())?;
            Kind::FuncProto
        }
        14 => {
            c.word(0)?;
            c.at += 4;
            Kind::Var(size_or_type)
        }
        15 => {
            let mut vars = Vec::with_capacity(h.vlen.min(c.sec.len() / 12));
            for _ in 0..h.vlen {
                budget.add("")?;
                vars.push((c.word(0)?, c.word(4)?, c.word(8)?));
                c.at += 12;
            }
            Kind::Datasec(vars)
        }
        16 => {
            if !matches!(size_or_type, 2 | 4 | 8 | 12 | 16) {
                return Err(c.bad(format!("FLOAT of {size_or_type} bytes")));
            }
            Kind::Float(size_or_type)
        }
        17 => {
            c.word(0)?;
            c.at += 4;
            Kind::DeclTag
        }
        other => return Err(c.bad(format!("unknown kind {other}"))),
    })
}

/// A struct's or union's members (`struct btf_member`, `vlen` of them).
fn parse_composite(
    c: &mut Cursor<'_>,
    h: &Header,
    strings: &Strings<'_>,
    budget: &mut Budget,
) -> Result<Kind, BtfError> {
    let mut members = Vec::with_capacity(h.vlen.min(c.sec.len() / 12));
    for _ in 0..h.vlen {
        let m_name = strings.get(c.word(0)?)?;
        budget.add(&m_name)?;
        let ty = c.word(4)?;
        let off = c.word(8)?;
        c.at += 12;
        let (bit_offset, bitfield) = if h.kind_flag {
            (off & 0x00ff_ffff, (off >> 24) as u8)
        } else {
            (off, 0)
        };
        members.push(Member {
            name: m_name,
            ty,
            bit_offset,
            bitfield,
        });
    }
    Ok(Kind::Composite {
        union: h.kind_no == 5,
        size: h.size_or_type,
        members,
    })
}

/// An enum's values: `struct btf_enum` (kind 6) or `btf_enum64` (kind 19).
fn parse_enum(
    c: &mut Cursor<'_>,
    h: &Header,
    strings: &Strings<'_>,
    budget: &mut Budget,
) -> Result<Kind, BtfError> {
    let wide = h.kind_no == 19;
    let mut values = Vec::with_capacity(h.vlen.min(c.sec.len() / 8));
    for _ in 0..h.vlen {
        let v_name = strings.get(c.word(0)?)?;
        budget.add(&v_name)?;
        let lo = c.word(4)?;
        let value = if wide {
            let hi = c.word(8)?;
            c.at += 12;
            let v = u64::from(hi) << 32 | u64::from(lo);
            if h.kind_flag {
                EnumValue::Signed(v as i64)
            } else {
                EnumValue::Unsigned(v)
            }
        } else {
            c.at += 8;
            if h.kind_flag {
                EnumValue::Signed(i64::from(lo as i32))
            } else {
                EnumValue::Unsigned(u64::from(lo))
            }
        };
        values.push((v_name, value));
    }
    if !matches!(h.size_or_type, 1 | 2 | 4 | 8) {
        return Err(c.bad(format!("enum of {} bytes", h.size_or_type)));
    }
    Ok(Kind::Enum {
        size: h.size_or_type,
        signed: h.kind_flag,
        values,
    })
}

/// Encoders for BTF fixtures (tests and fuzz seeds).
pub mod encode {
    /// Builds a BTF blob from raw type records and a string section.
    pub fn blob(types: &[u8], strings: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&super::MAGIC.to_le_bytes());
        v.push(1);
        v.push(0);
        v.extend_from_slice(&24u32.to_le_bytes());
        v.extend_from_slice(&0u32.to_le_bytes());
        v.extend_from_slice(&(types.len() as u32).to_le_bytes());
        v.extend_from_slice(&(types.len() as u32).to_le_bytes());
        v.extend_from_slice(&(strings.len() as u32).to_le_bytes());
        v.extend_from_slice(types);
        v.extend_from_slice(strings);
        v
    }

    /// One type record's fixed part.
    pub fn ty(
        out: &mut Vec<u8>,
        name_off: u32,
        kind: u32,
        vlen: u32,
        kind_flag: bool,
        size_or_type: u32,
    ) {
        out.extend_from_slice(&name_off.to_le_bytes());
        let info = (u32::from(kind_flag) << 31) | (kind << 24) | vlen;
        out.extend_from_slice(&info.to_le_bytes());
        out.extend_from_slice(&size_or_type.to_le_bytes());
    }

    /// Appends little-endian u32 words.
    pub fn words(out: &mut Vec<u8>, w: &[u32]) {
        for x in w {
            out.extend_from_slice(&x.to_le_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::encode::{blob, ty, words};
    use super::*;

    /// "\0int\0task\0pid\0next\0" offsets: int=1, task=5, pid=10, next=14.
    const STR: &[u8] = b"\0int\0task\0pid\0next\0";

    fn sample() -> Vec<u8> {
        let mut t = Vec::new();
        ty(&mut t, 1, 1, 0, false, 4); // 1: int
        words(&mut t, &[(1 << 24) | 32]);
        ty(&mut t, 5, 4, 2, true, 16); // 2: struct task { int pid:3; task *next; }
        words(&mut t, &[10, 1, 3 << 24, 14, 3, 64]);
        ty(&mut t, 0, 2, 0, false, 2); // 3: ptr -> 2
        blob(&t, STR)
    }

    #[test]
    fn parses_types_members_and_bitfields() {
        let btf = Btf::parse(&sample()).unwrap();
        assert_eq!(btf.len(), 3);
        assert_eq!(btf.own(1).unwrap().name, "int");
        let Kind::Composite {
            members,
            size,
            union,
        } = &btf.own(2).unwrap().kind
        else {
            panic!("not a struct")
        };
        assert!(!union);
        assert_eq!(*size, 16);
        assert_eq!(members[0].name, "pid");
        assert_eq!(members[0].bitfield, 3);
        assert_eq!(members[1].bit_offset, 64);
        assert_eq!(btf.own(3).unwrap().kind, Kind::Ptr(2));
    }

    #[test]
    fn split_btf_continues_ids_and_strings() {
        let base_bytes = sample();
        let base = Btf::parse(&base_bytes).unwrap();
        // Split strings start at the base's length: "mod\0" is offset 19.
        let mut t = Vec::new();
        ty(&mut t, STR.len() as u32, 8, 0, false, 3); // 4: typedef mod -> ptr(task)
        ty(&mut t, 5, 2, 0, false, 4); // 5: ptr -> 4 (name "task" from base)
        let split = Btf::parse_split(&blob(&t, b"mod\0"), &base, &base_bytes).unwrap();
        assert_eq!(split.first_id(), 4);
        assert_eq!(split.own(4).unwrap().name, "mod");
        assert_eq!(split.own(5).unwrap().name, "task");
        assert_eq!(split.own(5).unwrap().kind, Kind::Ptr(4));
    }

    #[test]
    fn refuses_malformed_blobs() {
        let good = sample();
        assert_eq!(
            Btf::parse(&good[..10]).unwrap_err(),
            BtfError::Truncated {
                what: "header".into()
            }
        );
        let mut be = good.clone();
        be[0..2].copy_from_slice(&MAGIC.to_be_bytes());
        assert_eq!(Btf::parse(&be).unwrap_err(), BtfError::BigEndian);
        let mut v2 = good.clone();
        v2[2] = 2;
        assert_eq!(Btf::parse(&v2).unwrap_err(), BtfError::Version(2));
        assert_eq!(
            Btf::parse(b"hello world, not btf at all....").unwrap_err(),
            BtfError::NoMagic
        );
        // A type section running past the file.
        let mut long = good.clone();
        long[12..16].copy_from_slice(&4096u32.to_le_bytes());
        assert!(matches!(
            Btf::parse(&long).unwrap_err(),
            BtfError::Header(_)
        ));
        // A reference to a type that does not exist.
        let mut t = Vec::new();
        ty(&mut t, 0, 2, 0, false, 7);
        assert!(matches!(
            Btf::parse(&blob(&t, b"\0")).unwrap_err(),
            BtfError::Type { id: 1, .. }
        ));
        // A name offset beyond the strings.
        let mut t = Vec::new();
        ty(&mut t, 99, 2, 0, false, 0);
        assert_eq!(
            Btf::parse(&blob(&t, b"\0")).unwrap_err(),
            BtfError::String(99)
        );
        // A struct announcing more members than there are bytes.
        let mut t = Vec::new();
        ty(&mut t, 0, 4, 1000, false, 8);
        assert!(matches!(
            Btf::parse(&blob(&t, b"\0")).unwrap_err(),
            BtfError::Truncated { .. }
        ));
        // An unknown kind.
        let mut t = Vec::new();
        ty(&mut t, 0, 31, 0, false, 0);
        assert!(matches!(
            Btf::parse(&blob(&t, b"\0")).unwrap_err(),
            BtfError::Type { .. }
        ));
    }
}
