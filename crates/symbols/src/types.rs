//! BTF types to the ISF's `base_types`, `user_types` and `enums`.
//!
//! Names follow what Volatility 3 and dwarf2json use for the same kernel:
//! BTF's own names (gcc's DWARF names on gcc-built kernels), typedefs
//! resolved to what they name, anonymous structs and unions named after
//! the first typedef that names them (else `unnamed_<kind>_<id>`), and the
//! base types Volatility asks for by name (`void`, `pointer`,
//! `long unsigned int`, ...) added when the BTF spells them otherwise
//! (clang: `unsigned long`).
//!
//! Facts relied on (volatility3 `schemas/schema-6.2.0.json`,
//! `framework/symbols/intermed.py`): a bitfield's `type` must be a base or
//! enum descriptor and is read at the field's offset, little-endian, then
//! shifted by `bit_position`; a field with `anonymous: true` has its own
//! fields lifted into the parent.

use std::collections::{BTreeMap, HashMap};

use serde_json::{Value, json};

use crate::btf::{Btf, EnumValue, Kind, MAX_CHAIN, Type};

/// Why a type could not be converted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TypeError {
    /// A typedef/qualifier/pointer chain loops or is absurdly long.
    #[error(
        "BTF type {0}: its typedef/qualifier/pointer chain is longer than {MAX_CHAIN} (a cycle)"
    )]
    Chain(u32),
    /// The table would need more than [`MAX_NODES`] JSON objects.
    #[error(
        "the BTF's structs, unions and enums would make a table of {0} JSON objects, more than the {MAX_NODES} allowed (no kernel's come near)"
    )]
    TooLarge(usize),
    /// A size that does not fit 64 bits.
    #[error("BTF type {0}: its size overflows 64 bits")]
    Overflow(u32),
}

/// Most JSON objects (fields, type descriptors, enumerators) the types of
/// one table may make: counted before any is made, so a crafted BTF whose
/// members each name a long pointer chain is refused before it costs
/// anything. Each object costs about 0.7 KB (a `serde_json` map); Debian
/// 12's 6.1 kernel with 13 modules' BTF makes 240,395.
pub const MAX_NODES: usize = 1_000_000;

/// One blob's view of the type space: base BTF alone, or a module's split
/// BTF over it.
#[derive(Debug, Clone, Copy)]
pub struct View<'a> {
    /// The base (vmlinux).
    pub base: &'a Btf,
    /// A module's split BTF, with its name.
    pub split: Option<(&'a str, &'a Btf)>,
}

impl<'a> View<'a> {
    /// The type with this ID (`None` for `void` or an unknown ID).
    pub fn get(&self, id: u32) -> Option<&'a Type> {
        if id < self.base.next_id() {
            return self.base.own(id);
        }
        self.split.and_then(|(_, s)| s.own(id))
    }

    /// Key unique across views for a type ID (module types' IDs overlap).
    fn key(&self, id: u32) -> (String, u32) {
        match self.split {
            Some((m, s)) if id >= s.first_id() => (m.to_owned(), id),
            _ => (String::new(), id),
        }
    }

    /// Follows typedefs and qualifiers.
    pub fn strip(&self, mut id: u32) -> Result<u32, TypeError> {
        for _ in 0..MAX_CHAIN {
            match self.get(id).map(|t| &t.kind) {
                Some(Kind::Typedef(t) | Kind::Qualifier(t)) => id = *t,
                _ => return Ok(id),
            }
        }
        Err(TypeError::Chain(id))
    }
}

/// The names given to composite and enum types, and the ISF sections.
#[derive(Debug, Default)]
pub struct Types {
    names: HashMap<(String, u32), String>,
    /// `base_types`.
    pub base_types: BTreeMap<String, Value>,
    /// `user_types`.
    pub user_types: BTreeMap<String, Value>,
    /// `enums`.
    pub enums: BTreeMap<String, Value>,
    /// Same-named types left out because an earlier one took the name.
    pub collisions: usize,
    /// Pointer size in bytes.
    pub pointer_size: u64,
}

fn base_entry(size: u64, signed: bool, kind: &str) -> Value {
    json!({"size": size, "signed": signed, "kind": kind, "endian": "little"})
}

/// Base-type names Volatility asks for, with the other spellings a
/// compiler may give them; the first one present is copied.
const BASE_ALIASES: &[(&str, &[&str])] = &[
    ("long unsigned int", &["unsigned long", "unsigned long int"]),
    ("long int", &["long"]),
    (
        "long long unsigned int",
        &["unsigned long long", "long long unsigned"],
    ),
    ("long long int", &["long long"]),
    ("short unsigned int", &["unsigned short"]),
    ("short int", &["short"]),
    ("unsigned int", &["unsigned"]),
];

impl Types {
    /// Converts the base BTF and the modules' split BTF (in the order
    /// given: the first definition of a name wins, so the kernel's own
    /// types take precedence over a module's same-named ones).
    ///
    /// # Errors
    /// [`TypeError`] for a cyclic type chain.
    pub fn build(views: &[View<'_>], pointer_size: u64) -> Result<Self, TypeError> {
        let mut t = Self {
            pointer_size,
            ..Self::default()
        };
        let nodes = cost(views)?;
        if nodes > MAX_NODES {
            return Err(TypeError::TooLarge(nodes));
        }
        t.name_types(views);
        for v in views {
            t.convert(v)?;
        }
        t.base_types
            .insert("void".into(), base_entry(0, false, "void"));
        t.base_types
            .insert("pointer".into(), base_entry(pointer_size, false, "int"));
        for (want, others) in BASE_ALIASES {
            if !t.base_types.contains_key(*want)
                && let Some(v) = others.iter().find_map(|o| t.base_types.get(*o).cloned())
            {
                t.base_types.insert((*want).into(), v);
            }
        }
        // Every base an enum names must exist, whatever the compiler called it.
        for size in [1u32, 2, 4, 8] {
            for signed in [false, true] {
                let name = enum_base(size, signed);
                if !t.base_types.contains_key(name) {
                    let kind = if size == 1 { "char" } else { "int" };
                    t.base_types
                        .insert(name.into(), base_entry(u64::from(size), signed, kind));
                }
            }
        }
        Ok(t)
    }

    /// The ISF name of a composite or enum type.
    fn name_of(&self, v: &View<'_>, id: u32) -> String {
        self.names
            .get(&v.key(id))
            .cloned()
            .unwrap_or_else(|| format!("unnamed_{id}"))
    }

    /// Names every struct, union and enum: own names first, then the first
    /// typedef naming an anonymous one, then `unnamed_<kind>_<id>`.
    fn name_types(&mut self, views: &[View<'_>]) {
        let mut taken_user: HashMap<String, ()> = HashMap::new();
        let mut taken_enum: HashMap<String, ()> = HashMap::new();
        for v in views {
            for (id, ty) in own_types(v) {
                if ty.name.is_empty() {
                    continue;
                }
                let taken = match ty.kind {
                    Kind::Composite { .. } => &mut taken_user,
                    Kind::Enum { .. } => &mut taken_enum,
                    _ => continue,
                };
                if taken.insert(ty.name.clone(), ()).is_none() {
                    self.names.insert(v.key(id), ty.name.clone());
                } else {
                    self.collisions += 1;
                    // References to it use the name; its definition is the first one's.
                    self.names.insert(v.key(id), ty.name.clone());
                }
            }
        }
        for v in views {
            for (_, ty) in own_types(v) {
                let Kind::Typedef(target) = ty.kind else {
                    continue;
                };
                let Ok(target) = v.strip(target) else {
                    continue;
                };
                let Some(tt) = v.get(target) else { continue };
                if !tt.name.is_empty() || self.names.contains_key(&v.key(target)) {
                    continue;
                }
                let taken = match tt.kind {
                    Kind::Composite { .. } => &mut taken_user,
                    Kind::Enum { .. } => &mut taken_enum,
                    _ => continue,
                };
                if taken.insert(ty.name.clone(), ()).is_none() {
                    self.names.insert(v.key(target), ty.name.clone());
                }
            }
        }
        for v in views {
            let module = v.split.map(|(m, _)| format!("{m}_")).unwrap_or_default();
            for (id, ty) in own_types(v) {
                let kind = match ty.kind {
                    Kind::Composite { union: false, .. } => "struct",
                    Kind::Composite { union: true, .. } => "union",
                    Kind::Enum { .. } => "enum",
                    _ => continue,
                };
                self.names
                    .entry(v.key(id))
                    .or_insert_with(|| format!("unnamed_{kind}_{module}{id}"));
            }
        }
    }

    /// Size in bytes of a type, where it has one.
    ///
    /// # Errors
    /// [`TypeError::Chain`] for a cycle, [`TypeError::Overflow`] for an
    /// array whose size does not fit 64 bits.
    pub fn size_of(&self, v: &View<'_>, id: u32) -> Result<Option<u64>, TypeError> {
        self.size_at(v, id, 0)
    }

    fn size_at(&self, v: &View<'_>, id: u32, depth: usize) -> Result<Option<u64>, TypeError> {
        if depth > MAX_CHAIN {
            return Err(TypeError::Chain(id));
        }
        let id = v.strip(id)?;
        Ok(match v.get(id).map(|t| &t.kind) {
            Some(Kind::Int { size, .. } | Kind::Float(size)) => Some(u64::from(*size)),
            Some(Kind::Enum { size, .. } | Kind::Composite { size, .. }) => Some(u64::from(*size)),
            Some(Kind::Ptr(_)) => Some(self.pointer_size),
            Some(Kind::Array { elem, count }) => match self.size_at(v, *elem, depth + 1)? {
                Some(s) => Some(
                    s.checked_mul(u64::from(*count))
                        .ok_or(TypeError::Overflow(id))?,
                ),
                None => None,
            },
            _ => None,
        })
    }

    /// The ISF type descriptor of a BTF type.
    ///
    /// # Errors
    /// [`TypeError::Chain`] for a cycle.
    pub fn descriptor(&self, v: &View<'_>, id: u32) -> Result<Value, TypeError> {
        self.descriptor_at(v, id, 0)
    }

    fn descriptor_at(&self, v: &View<'_>, id: u32, depth: usize) -> Result<Value, TypeError> {
        if depth > MAX_CHAIN {
            return Err(TypeError::Chain(id));
        }
        let Some(ty) = v.get(id) else {
            return Ok(json!({"kind": "base", "name": "void"}));
        };
        Ok(match &ty.kind {
            Kind::Int { size, encoding, .. } => {
                json!({"kind": "base", "name": base_name(&ty.name, *size, *encoding)})
            }
            Kind::Float(size) => json!({"kind": "base", "name": float_name(&ty.name, *size)}),
            Kind::Ptr(t) => {
                json!({"kind": "pointer", "subtype": self.descriptor_at(v, *t, depth + 1)?})
            }
            Kind::Array { elem, count } => json!({
                "kind": "array",
                "count": count,
                "subtype": self.descriptor_at(v, *elem, depth + 1)?
            }),
            Kind::Composite { union, .. } => json!({
                "kind": if *union { "union" } else { "struct" },
                "name": self.name_of(v, id)
            }),
            Kind::Enum { .. } => json!({"kind": "enum", "name": self.name_of(v, id)}),
            Kind::Fwd { union } => json!({
                "kind": if *union { "union" } else { "struct" },
                "name": ty.name
            }),
            Kind::Typedef(t) | Kind::Qualifier(t) => self.descriptor_at(v, *t, depth + 1)?,
            Kind::FuncProto | Kind::Func => json!({"kind": "function"}),
            Kind::Var(_) | Kind::Datasec(_) | Kind::DeclTag => {
                json!({"kind": "base", "name": "void"})
            }
        })
    }

    fn convert(&mut self, v: &View<'_>) -> Result<(), TypeError> {
        for (id, ty) in own_types(v) {
            match &ty.kind {
                Kind::Int { size, encoding, .. } => {
                    let name = base_name(&ty.name, *size, *encoding);
                    let kind = if encoding & 4 != 0 {
                        "bool"
                    } else if encoding & 2 != 0 || name.contains("char") {
                        "char"
                    } else {
                        "int"
                    };
                    self.base_types
                        .entry(name)
                        .or_insert_with(|| base_entry(u64::from(*size), encoding & 1 != 0, kind));
                }
                Kind::Float(size) => {
                    self.base_types
                        .entry(float_name(&ty.name, *size))
                        .or_insert_with(|| base_entry(u64::from(*size), true, "float"));
                }
                Kind::Enum {
                    size,
                    signed,
                    values,
                } => {
                    let name = self.name_of(v, id);
                    if self.enums.contains_key(&name) {
                        continue;
                    }
                    let base = enum_base(*size, *signed);
                    let constants: serde_json::Map<String, Value> = values
                        .iter()
                        .map(|(n, val)| {
                            let j = match val {
                                EnumValue::Signed(s) => json!(s),
                                EnumValue::Unsigned(u) => json!(u),
                            };
                            (n.clone(), j)
                        })
                        .collect();
                    self.enums.insert(
                        name,
                        json!({"size": size, "base": base, "constants": constants}),
                    );
                }
                Kind::Composite {
                    union,
                    size,
                    members,
                } => {
                    let name = self.name_of(v, id);
                    if self.user_types.contains_key(&name) {
                        continue;
                    }
                    let mut fields = serde_json::Map::new();
                    for (i, m) in members.iter().enumerate() {
                        let (field_name, anonymous) = if m.name.is_empty() {
                            (format!("unnamed_field_{i}"), true)
                        } else {
                            (m.name.clone(), false)
                        };
                        let mut f = self.field(v, m.ty, m.bit_offset, m.bitfield)?;
                        if anonymous && let Some(o) = f.as_object_mut() {
                            o.insert("anonymous".into(), Value::Bool(true));
                        }
                        fields.insert(field_name, f);
                    }
                    self.user_types.insert(
                        name,
                        json!({
                            "kind": if *union { "union" } else { "struct" },
                            "size": size,
                            "fields": fields
                        }),
                    );
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// One field: an ordinary member at its byte offset, or a bitfield
    /// read through its storage unit.
    fn field(
        &self,
        v: &View<'_>,
        ty: u32,
        bit_offset: u32,
        bitfield: u8,
    ) -> Result<Value, TypeError> {
        let stripped = v.strip(ty)?;
        // Old-style bitfields (no kind_flag): the INT itself is narrower.
        let (length, extra) = match (bitfield, v.get(stripped).map(|t| &t.kind)) {
            (
                0,
                Some(Kind::Int {
                    size, bits, offset, ..
                }),
            ) if u32::from(*bits) < size * 8 => (u32::from(*bits), u32::from(*offset)),
            (b, _) => (u32::from(b), 0),
        };
        let bit_offset = bit_offset.saturating_add(extra);
        if length == 0 && bit_offset % 8 == 0 {
            return Ok(json!({"type": self.descriptor(v, ty)?, "offset": bit_offset / 8}));
        }
        let underlying = match v.get(stripped).map(|t| &t.kind) {
            Some(Kind::Int { .. } | Kind::Enum { .. }) => self.descriptor(v, stripped)?,
            _ => json!({"kind": "base", "name": "unsigned int"}),
        };
        let storage = self.size_of(v, stripped)?.filter(|s| *s > 0).unwrap_or(4);
        let length = if length == 0 { 1 } else { length };
        // Checked: a crafted storage type of 2^61 bytes made this wrap to 0
        // and the division below panic (release builds do not check).
        let unit_bits = storage.checked_mul(8).ok_or(TypeError::Overflow(ty))?;
        let mut offset = u64::from(bit_offset) / unit_bits * storage;
        let mut position = u64::from(bit_offset) - offset * 8;
        if position + u64::from(length) > unit_bits {
            offset = u64::from(bit_offset) / 8;
            position = u64::from(bit_offset) % 8;
        }
        Ok(json!({
            "type": {"kind": "bitfield", "bit_position": position, "bit_length": length, "type": underlying},
            "offset": offset
        }))
    }
}

/// How many JSON objects converting the views' structs, unions and enums
/// makes at most: per struct or union two, per member one field, one
/// bitfield wrapper and its descriptor's objects, per enum two and one per
/// constant. Stops counting past
/// [`MAX_NODES`].
///
/// # Errors
/// [`TypeError::Chain`] for a cycle.
pub fn cost(views: &[View<'_>]) -> Result<usize, TypeError> {
    let mut memo: HashMap<(String, u32), usize> = HashMap::new();
    let mut total = 0usize;
    for v in views {
        for (_, ty) in own_types(v) {
            match &ty.kind {
                Kind::Composite { members, .. } => {
                    // The type's object and its `fields`.
                    total += 2;
                    for m in members {
                        // Field, bitfield wrapper, and the descriptor.
                        total += 2 + descriptor_nodes(v, m.ty, 0, &mut memo)?;
                    }
                }
                // The type's object, its `constants`, one per constant.
                Kind::Enum { values, .. } => total += 2 + values.len(),
                _ => {}
            }
            if total > MAX_NODES {
                return Ok(total);
            }
        }
    }
    Ok(total)
}

/// JSON objects in [`Types::descriptor`] of `id` (as it nests them).
fn descriptor_nodes(
    v: &View<'_>,
    id: u32,
    depth: usize,
    memo: &mut HashMap<(String, u32), usize>,
) -> Result<usize, TypeError> {
    if depth > MAX_CHAIN {
        return Err(TypeError::Chain(id));
    }
    if let Some(n) = memo.get(&v.key(id)) {
        return Ok(*n);
    }
    let n = match v.get(id).map(|t| &t.kind) {
        Some(Kind::Ptr(t) | Kind::Array { elem: t, .. }) => {
            1 + descriptor_nodes(v, *t, depth + 1, memo)?
        }
        Some(Kind::Typedef(t) | Kind::Qualifier(t)) => descriptor_nodes(v, *t, depth + 1, memo)?,
        _ => 1,
    };
    memo.insert(v.key(id), n);
    Ok(n)
}

/// The types a view adds: all of the base's, or the module's own.
fn own_types<'a>(v: &View<'a>) -> Vec<(u32, &'a Type)> {
    match v.split {
        None => v.base.iter().collect(),
        Some((_, s)) => s.iter().collect(),
    }
}

fn base_name(name: &str, size: u32, encoding: u8) -> String {
    if !name.is_empty() {
        return name.to_owned();
    }
    format!(
        "{}int{}",
        if encoding & 1 != 0 { "" } else { "u" },
        size * 8
    )
}

fn float_name(name: &str, size: u32) -> String {
    if name.is_empty() {
        format!("float{}", size * 8)
    } else {
        name.to_owned()
    }
}

/// The base type an enum is read as (these names are always present: they
/// are the kernel's own or added as aliases).
fn enum_base(size: u32, signed: bool) -> &'static str {
    match (size, signed) {
        (1, false) => "unsigned char",
        (1, true) => "signed char",
        (2, false) => "short unsigned int",
        (2, true) => "short int",
        (8, false) => "long long unsigned int",
        (8, true) => "long long int",
        (_, false) => "unsigned int",
        (_, true) => "int",
    }
}
