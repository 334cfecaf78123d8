//! The Volatility 3 symbol table (ISF) of a capture: types from BTF,
//! symbols from kallsyms at link-time addresses, typed entry points.
//!
//! Facts relied on (volatility3 `schemas/schema-6.2.0.json`,
//! `framework/automagic/linux.py`, `symbols/linux/__init__.py`; see
//! shared/design/VOLATILITY-SYMBOLS.md):
//! - `metadata.linux.symbols[].kind` must be `dwarf`, `symtab` or
//!   `system-map`: kallsyms is described as `system-map`, and no `types`
//!   item is written (the schema has no kind for BTF);
//! - the VMCOREINFO stacker adds `KERNELOFFSET` to every symbol itself, so
//!   symbols must be at link-time addresses (runtime minus the slide) for
//!   the kernel image (every non-module symbol from `_text` up); per-CPU
//!   symbols (small absolute values) stay as they are;
//! - `LinuxKernelIntermedSymbols` refuses to load without the user types
//!   of [`REQUIRED_TYPES`];
//! - the banner scan identifies the table by `linux_banner`'s
//!   `constant_data`.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::btf::{self, Btf, Kind};
use crate::entry::{Arch, Count, ENTRIES, Spec};
use crate::error::Error;
use crate::kallsyms;
use crate::types::{Types, View};

/// User types Volatility's Linux symbol class needs at load time
/// (`LinuxKernelIntermedSymbols.__init__`, `set_type_class`).
pub const REQUIRED_TYPES: &[&str] = &[
    "file",
    "list_head",
    "hlist_head",
    "mm_struct",
    "super_block",
    "task_struct",
    "vm_area_struct",
    "qstr",
    "dentry",
    "fs_struct",
    "files_struct",
    "kobject",
    "cred",
    "inode",
    "idr",
    "address_space",
    "page",
    "vfsmount",
    "net",
    "socket",
    "sock",
    "inet_sock",
    "unix_sock",
];

/// What the table is made from.
#[derive(Debug, Clone, Copy)]
pub struct Inputs<'a> {
    /// `context/btf/vmlinux`.
    pub vmlinux: &'a [u8],
    /// `context/btf/<module>` files, by module name.
    pub modules: &'a [(String, Vec<u8>)],
    /// `context/kallsyms`.
    pub kallsyms: &'a [u8],
    /// Symbols kallsyms may not list, at runtime addresses: VMCOREINFO's
    /// `SYMBOL(...)` lines. Only the kallsyms tables (`kallsyms_*`, which
    /// `scripts/kallsyms.c` leaves out before 6.x) are taken, and only when
    /// kallsyms does not have them.
    pub extra_symbols: &'a [(String, u64)],
    /// `context/version` (`/proc/version`: the `linux_banner` text).
    pub banner: &'a [u8],
    /// The KASLR slide (`KERNELOFFSET`).
    pub kernel_offset: u64,
    /// The captured machine's architecture.
    pub arch: Arch,
    /// The producer version written into the metadata (`x.y.z`).
    pub producer_version: &'a str,
}

/// What was made, besides the table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Symbols written.
    pub symbols: usize,
    /// User types, enums and base types written.
    pub user_types: usize,
    /// Enums written.
    pub enums: usize,
    /// Base types written.
    pub base_types: usize,
    /// Same-named types defined more than once (the first kept).
    pub type_collisions: usize,
    /// kallsyms names listed more than once (a global one preferred).
    pub duplicate_symbols: usize,
    /// Entry points typed: (symbol, what type).
    pub typed: Vec<(String, String)>,
    /// Entry points left untyped: (symbol, why).
    pub untyped: Vec<(String, String)>,
    /// Module BTF files not used: (module, why).
    pub modules_skipped: Vec<(String, String)>,
    /// Per-CPU variables typed from BTF's DATASEC.
    pub percpu_typed: usize,
    /// Symbols added from [`Inputs::extra_symbols`] (not in kallsyms).
    pub extra_symbols: Vec<String>,
    /// `linux_banner`'s runtime address (for checking the banner in the image).
    pub linux_banner_runtime: u64,
}

/// A symbol table as made, before it is written: `base_types`,
/// `user_types` and `enums` as JSON, the symbols compact. Serialises to the
/// same JSON an all-`Value` table did (keys in order), but a symbol costs
/// about 70 bytes instead of two JSON maps (1.4 KB): Debian 12's kernel has
/// 88,582 of them. Built and written in place: nothing is copied whole.
#[derive(Debug, Clone)]
pub struct Table {
    /// `metadata`.
    pub metadata: Value,
    /// `base_types`.
    pub base_types: BTreeMap<String, Value>,
    /// `user_types`.
    pub user_types: BTreeMap<String, Value>,
    /// `enums`.
    pub enums: BTreeMap<String, Value>,
    /// `symbols`.
    pub symbols: BTreeMap<String, Symbol>,
}

/// One symbol of a [`Table`].
#[derive(Debug, Clone, PartialEq)]
pub struct Symbol {
    /// `address` (link-time for the kernel image).
    pub address: u64,
    /// `type`; `None` is written as `void`.
    pub ty: Option<Value>,
    /// `constant_data` (base64), for `linux_banner`.
    pub constant_data: Option<String>,
}

impl serde::Serialize for Symbol {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("address", &self.address)?;
        if let Some(c) = &self.constant_data {
            m.serialize_entry("constant_data", c)?;
        }
        match &self.ty {
            Some(t) => m.serialize_entry("type", t)?,
            None => m.serialize_entry("type", &VoidType)?,
        }
        m.end()
    }
}

/// `{"kind": "base", "name": "void"}`, written without being built.
struct VoidType;

impl serde::Serialize for VoidType {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(2))?;
        m.serialize_entry("kind", "base")?;
        m.serialize_entry("name", "void")?;
        m.end()
    }
}

impl serde::Serialize for Table {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        // Sorted, as serde_json writes an object's keys.
        let mut m = s.serialize_map(Some(5))?;
        m.serialize_entry("base_types", &self.base_types)?;
        m.serialize_entry("enums", &self.enums)?;
        m.serialize_entry("metadata", &self.metadata)?;
        m.serialize_entry("symbols", &self.symbols)?;
        m.serialize_entry("user_types", &self.user_types)?;
        m.end()
    }
}

/// One kallsyms symbol placed for the table.
#[derive(Debug, Clone, Copy)]
struct Placed {
    address: u64,
    global: bool,
}

/// Makes the table; returns it as a JSON value with the report (tests and
/// small tables: a real kernel's is better made with [`generate_table`]
/// and written from that).
///
/// # Errors
/// As [`generate_table`].
pub fn generate(inp: &Inputs<'_>) -> Result<(Value, Report), Error> {
    let (table, report) = generate_table(inp)?;
    let value = serde_json::to_value(&table).map_err(|e| Error::Write(std::io::Error::other(e)))?;
    Ok((value, report))
}

/// Makes the table with the report.
///
/// # Errors
/// [`Error`]: malformed vmlinux BTF, a cyclic type, a required type or
/// symbol missing, zeroed kallsyms.
pub fn generate_table(inp: &Inputs<'_>) -> Result<(Table, Report), Error> {
    let base = Btf::parse(inp.vmlinux).map_err(|source| Error::Btf {
        file: "vmlinux".into(),
        source,
    })?;
    let mut report = Report::default();
    let splits = parse_modules(inp, &base, &mut report);
    let mut views = vec![View {
        base: &base,
        split: None,
    }];
    views.extend(splits.iter().map(|(n, b)| View {
        base: &base,
        split: Some((*n, b)),
    }));
    let types = Types::build(&views, 8)?;
    let missing: Vec<String> = REQUIRED_TYPES
        .iter()
        .filter(|t| !types.user_types.contains_key(**t))
        .map(|t| (*t).to_owned())
        .collect();
    if !missing.is_empty() {
        return Err(Error::MissingTypes(missing));
    }
    report.type_collisions = types.collisions;

    let syms = place_symbols(inp, &mut report)?;
    let mut out: BTreeMap<String, Symbol> = syms
        .iter()
        .map(|(n, p)| {
            (
                n.clone(),
                Symbol {
                    address: p.address,
                    ty: None,
                    constant_data: None,
                },
            )
        })
        .collect();
    let view = views[0];
    type_entry_points(inp, &types, &view, &syms, &mut out, &mut report)?;
    type_percpu(&base, &types, &view, &mut out, &mut report)?;
    // Every other symbol is `void` (`Symbol::ty` `None` is written so):
    // plugins that take an address through `object_from_symbol` work, where
    // no type at all raises TypeError.
    // The banner: what Volatility's banner cache and stackers match on.
    let Some(banner_at) = syms.get("linux_banner") else {
        return Err(Error::MissingSymbols(vec!["linux_banner".into()]));
    };
    out.insert(
        "linux_banner".into(),
        Symbol {
            address: banner_at.address,
            constant_data: Some(base64(inp.banner)),
            ty: Some(
                json!({"kind": "array", "count": inp.banner.len(), "subtype": {"kind": "base", "name": "char"}}),
            ),
        },
    );
    report.symbols = out.len();
    report.user_types = types.user_types.len();
    report.enums = types.enums.len();
    report.base_types = types.base_types.len();
    // Moved, not copied (`json!` of them would have cloned every type).
    let isf = Table {
        metadata: json!({
            "format": "6.2.0",
            "producer": {"name": "forensics-volume capture symbols", "version": inp.producer_version},
            // No hash: the captured kallsyms differs with every KASLR slide,
            // and the table must not (the manifest hashes the file itself).
            "linux": {"symbols": [{"kind": "system-map", "name": "kallsyms"}]}
        }),
        base_types: types.base_types,
        user_types: types.user_types,
        enums: types.enums,
        symbols: out,
    };
    Ok((isf, report))
}

/// The modules' split BTF over `base`: every blob within the parser's
/// limits, and all of them together; a module that would take the total
/// past them, or whose BTF is malformed, is skipped (in the report).
fn parse_modules<'a>(inp: &'a Inputs<'_>, base: &Btf, report: &mut Report) -> Vec<(&'a str, Btf)> {
    let mut splits = Vec::new();
    let (mut items, mut name_bytes) = (base.items(), base.name_bytes());
    for (name, bytes) in inp.modules {
        match Btf::parse_split(bytes, base, inp.vmlinux) {
            Ok(b)
                if items + b.items() > btf::MAX_ITEMS
                    || name_bytes + b.name_bytes() > btf::MAX_NAME_BYTES =>
            {
                report.modules_skipped.push((
                    name.clone(),
                    format!(
                        "with it, the BTF would hold more than {} items or {} name bytes in all (the parser's limits)",
                        btf::MAX_ITEMS,
                        btf::MAX_NAME_BYTES
                    ),
                ));
            }
            Ok(b) => {
                items += b.items();
                name_bytes += b.name_bytes();
                splits.push((name.as_str(), b));
            }
            Err(e) => report.modules_skipped.push((name.clone(), e.to_string())),
        }
    }
    splits
}

/// Types the curated entry points ([`ENTRIES`]) this kernel's BTF can
/// type, refusing a type larger than the gap to the next symbol; the
/// others are listed in the report as untyped, with the reason.
fn type_entry_points(
    inp: &Inputs<'_>,
    types: &Types,
    view: &View<'_>,
    syms: &BTreeMap<String, Placed>,
    out: &mut BTreeMap<String, Symbol>,
    report: &mut Report,
) -> Result<(), Error> {
    let mut addrs: Vec<u64> = syms.values().map(|p| p.address).collect();
    addrs.sort_unstable();
    addrs.dedup();
    let gap = |a: u64| -> Option<u64> {
        let i = addrs.partition_point(|&x| x <= a);
        addrs.get(i).map(|n| n - a)
    };
    for entry in ENTRIES {
        if entry.arch.is_some_and(|a| a != inp.arch) {
            continue;
        }
        let Some(p) = syms.get(entry.symbol) else {
            report
                .untyped
                .push((entry.symbol.into(), "not in kallsyms".into()));
            continue;
        };
        let g = gap(p.address);
        let found = entry
            .types
            .iter()
            .find_map(|s| resolve(types, view, s, g).transpose())
            .transpose()?;
        match found {
            None => report.untyped.push((
                entry.symbol.into(),
                format!("none of {:?} in this kernel's BTF", entry.types),
            )),
            Some((desc, size)) => match (size, g) {
                (Some(s), Some(g)) if g < s => report.untyped.push((
                    entry.symbol.into(),
                    format!(
                        "its type needs {s} bytes but the next symbol is {g} bytes on: implausible, left untyped"
                    ),
                )),
                _ => {
                    report.typed.push((entry.symbol.into(), describe(&desc)));
                    if let Some(o) = out.get_mut(entry.symbol) {
                        o.ty = Some(desc);
                    }
                }
            },
        }
    }
    Ok(())
}

/// Per-CPU variables: the only globals BTF types itself (its DATASECs).
fn type_percpu(
    base: &Btf,
    types: &Types,
    view: &View<'_>,
    out: &mut BTreeMap<String, Symbol>,
    report: &mut Report,
) -> Result<(), Error> {
    for (_, t) in base.iter() {
        let Kind::Datasec(vars) = &t.kind else {
            continue;
        };
        for (var, _, _) in vars {
            let Some(vt) = base.own(*var) else { continue };
            let Kind::Var(ty) = vt.kind else { continue };
            if let Some(o) = out.get_mut(&vt.name)
                && o.ty.is_none()
            {
                o.ty = Some(types.descriptor(view, ty)?);
                report.percpu_typed += 1;
            }
        }
    }
    Ok(())
}

/// kallsyms to link-time addresses, one per name.
fn place_symbols(inp: &Inputs<'_>, report: &mut Report) -> Result<BTreeMap<String, Placed>, Error> {
    let k = kallsyms::parse(inp.kallsyms);
    let health = kallsyms::health(inp.kallsyms);
    if k.symbols.is_empty() {
        return Err(Error::NoSymbols);
    }
    if health.zeroed() {
        return Err(Error::ZeroedKallsyms);
    }
    let find = |n: &str| k.symbols.iter().find(|s| s.name == n).map(|s| s.address);
    let names: std::collections::HashSet<&str> =
        k.symbols.iter().map(|s| s.name.as_str()).collect();
    let mut missing: Vec<String> = ["linux_banner", "init_task", "init_files"]
        .iter()
        .filter(|n| !names.contains(**n))
        .map(|n| (*n).to_owned())
        .collect();
    let dtb: &[&str] = match inp.arch {
        Arch::X86_64 => &["init_top_pgt", "init_level4_pgt", "swapper_pg_dir"],
        Arch::Aarch64 => &["swapper_pg_dir"],
    };
    if !dtb.iter().any(|n| names.contains(*n)) {
        missing.push(dtb.join(" | "));
    }
    if !missing.is_empty() {
        return Err(Error::MissingSymbols(missing));
    }
    // arm64 kallsyms may list `_stext` but not `_text` (same address).
    let text = find("_text")
        .or_else(|| find("_stext"))
        .ok_or_else(|| Error::MissingSymbols(vec!["_text | _stext".into()]))?;
    let mut out: BTreeMap<String, Placed> = BTreeMap::new();
    for s in &k.symbols {
        // Not `_text..=_end`: the image goes on past `_end` (x86_64's
        // `.init.scratch`, `sme_workarea`), and a symbol left slid there
        // made two boots' tables differ. Module, BPF and trampoline
        // symbols carry a `[...]` column and are not here.
        let in_image = s.address >= text;
        let address = if in_image {
            s.address.wrapping_sub(inp.kernel_offset)
        } else {
            s.address
        };
        let global = s.kind.is_ascii_uppercase();
        match out.get_mut(&s.name) {
            None => {
                out.insert(s.name.clone(), Placed { address, global });
            }
            Some(p) => {
                report.duplicate_symbols += 1;
                if global && !p.global {
                    *p = Placed { address, global };
                }
            }
        }
    }
    for (name, runtime) in inp.extra_symbols {
        // Only the kallsyms tables: VMCOREINFO's other SYMBOL()s include
        // macros that are no symbol (x86_64's `swapper_pg_dir` is
        // `init_top_pgt`, `node_online_map` a member of `node_states`,
        // `vmemmap` a constant), which kallsyms rightly does not list.
        if !name.starts_with("kallsyms_") || out.contains_key(name) {
            continue;
        }
        let address = if *runtime >= text {
            runtime.wrapping_sub(inp.kernel_offset)
        } else {
            *runtime
        };
        out.insert(
            name.clone(),
            Placed {
                address,
                global: true,
            },
        );
        report.extra_symbols.push(name.clone());
    }
    if let Some(b) = find("linux_banner") {
        report.linux_banner_runtime = b;
    }
    Ok(out)
}

type Resolved = (Value, Option<u64>);

/// A [`Spec`] as a descriptor and size, if the kernel has the type.
fn resolve(
    types: &Types,
    v: &View<'_>,
    spec: &Spec,
    gap: Option<u64>,
) -> Result<Option<Resolved>, Error> {
    Ok(match spec {
        Spec::Struct(n) => types
            .user_types
            .get(*n)
            .filter(|t| t.get("kind").and_then(Value::as_str) == Some("struct"))
            .map(|t| {
                (
                    json!({"kind": "struct", "name": n}),
                    t.get("size").and_then(Value::as_u64),
                )
            }),
        Spec::Base(n) => types.base_types.get(*n).map(|t| {
            (
                json!({"kind": "base", "name": n}),
                t.get("size").and_then(Value::as_u64),
            )
        }),
        Spec::Typedef(n) => {
            match v
                .base
                .iter()
                .find(|(_, t)| t.name == *n && matches!(t.kind, Kind::Typedef(_)))
            {
                Some((id, _)) => Some((types.descriptor(v, id)?, types.size_of(v, id)?)),
                None => None,
            }
        }
        Spec::Ptr(inner) => resolve(types, v, inner, None)?.map(|(d, _)| {
            (
                json!({"kind": "pointer", "subtype": d}),
                Some(types.pointer_size),
            )
        }),
        Spec::Array(count, inner) => match resolve(types, v, inner, None)? {
            Some((d, Some(elem))) if elem > 0 => {
                let n = match count {
                    Count::Fixed(n) => Some(*n),
                    Count::FromGap => gap.map(|g| (g / elem).clamp(1, 1 << 16)),
                };
                // Checked: a crafted element size times the count can
                // exceed 64 bits; such an array is not typed.
                n.and_then(|n| {
                    let size = n.checked_mul(elem)?;
                    Some((
                        json!({"kind": "array", "count": n, "subtype": d}),
                        Some(size),
                    ))
                })
            }
            _ => None,
        },
        Spec::Shape(members) => {
            let found = v.base.iter().find(|(_, t)| {
                t.name.is_empty()
                    && matches!(&t.kind, Kind::Composite { union: false, members: m, .. }
                        if m.len() == members.len() && m.iter().zip(members.iter()).all(|(a, b)| a.name == *b))
            });
            match found {
                Some((id, _)) => Some((types.descriptor(v, id)?, types.size_of(v, id)?)),
                None => None,
            }
        }
    })
}

/// A short C-like rendering of a descriptor for the report.
pub fn describe(d: &Value) -> String {
    let kind = d.get("kind").and_then(Value::as_str).unwrap_or("?");
    let name = d.get("name").and_then(Value::as_str).unwrap_or("");
    match kind {
        "pointer" => format!("{} *", d.get("subtype").map(describe).unwrap_or_default()),
        "array" => format!(
            "{}[{}]",
            d.get("subtype").map(describe).unwrap_or_default(),
            d.get("count").and_then(Value::as_u64).unwrap_or(0)
        ),
        "base" => name.to_owned(),
        other => format!("{other} {name}"),
    }
}

/// Standard base64 with padding (the ISF's `constant_data`).
pub fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                s.push(char::from(ALPHABET[(n >> (18 - 6 * i)) as usize & 63]));
            } else {
                s.push('=');
            }
        }
    }
    s
}
