//! `/proc/kallsyms` as captured in `context/kallsyms`: `ADDRESS TYPE NAME`
//! lines, with a tab and `[module]` after the name for module symbols.
//!
//! Facts relied on (linux `kernel/kallsyms.c`, `scripts/kallsyms.c`):
//! - addresses print as zeros when the reader may not see them
//!   (`kptr_restrict`, no CAP_SYSLOG): detected, never "fixed";
//! - data symbols (types `d D b B r R`) are listed only with
//!   `CONFIG_KALLSYMS_ALL=y`; without them `init_task` and every other
//!   entry point of Volatility is missing;
//! - the kernel image starts at `_text` (and goes on past `_end`:
//!   `.init.scratch`); per-CPU symbols have
//!   small absolute values (`CONFIG_KALLSYMS_ABSOLUTE_PERCPU`) and are left
//!   as they are when un-sliding.

/// One kernel-image symbol (module symbols are not kept).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Symbol {
    /// Name.
    pub name: String,
    /// Runtime address as listed.
    pub address: u64,
    /// The type letter (`T`, `d`, `B`, ...).
    pub kind: char,
}

/// What [`parse`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Kallsyms {
    /// Kernel-image symbols in file order.
    pub symbols: Vec<Symbol>,
    /// Lines of module symbols skipped.
    pub module_lines: usize,
    /// Lines that are not `ADDRESS TYPE NAME`.
    pub malformed_lines: usize,
}

/// The health of a kallsyms listing, as the capture records it and as
/// `capture info`/`symbols` report it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Health {
    /// Symbols listed.
    pub symbols: usize,
    /// Of them with a non-zero address.
    pub nonzero: usize,
    /// Of them data symbols (`d D b B r R`).
    pub data: usize,
    /// `init_task` is listed (a data symbol every kernel has: a few data
    /// symbols, e.g. arm64's `__start_rodata`, are listed even without
    /// `CONFIG_KALLSYMS_ALL`).
    pub init_task: bool,
}

impl Health {
    /// Every address is zero: `kptr_restrict` hid them.
    pub fn zeroed(&self) -> bool {
        self.symbols > 0 && self.nonzero == 0
    }

    /// No data symbols worth the name (no `init_task`): `CONFIG_KALLSYMS_ALL`
    /// is off.
    pub fn no_data(&self) -> bool {
        self.symbols > 0 && !self.init_task
    }

    /// The manifest warnings this listing deserves (empty when healthy).
    pub fn warnings(&self) -> Vec<String> {
        let mut w = Vec::new();
        if self.symbols == 0 {
            w.push(
                "context/kallsyms lists no symbol: no Volatility symbol table can be made from this capture (`capture symbols`)"
                    .into(),
            );
        } else if self.zeroed() {
            w.push(format!(
                "context/kallsyms: all {} addresses are zero (kernel.kptr_restrict, or no CAP_SYSLOG): no Volatility symbol table can be made from this capture; the setting was left unchanged",
                self.symbols
            ));
        } else if self.no_data() {
            w.push(format!(
                "context/kallsyms: {} symbols but no data symbols ({} listed, none of them init_task: kernel built without CONFIG_KALLSYMS_ALL): `capture symbols` cannot place init_task and the other structures Volatility starts from",
                self.symbols, self.data
            ));
        }
        w
    }
}

/// Whether a kallsyms type letter is a data symbol.
pub fn is_data(kind: char) -> bool {
    matches!(kind, 'd' | 'D' | 'b' | 'B' | 'r' | 'R')
}

/// Parses a kallsyms listing. Pure; never fails (odd lines are counted).
pub fn parse(text: &[u8]) -> Kallsyms {
    let mut out = Kallsyms::default();
    for line in text.split(|&b| b == b'\n') {
        if line.is_empty() {
            continue;
        }
        let Ok(line) = std::str::from_utf8(line) else {
            out.malformed_lines += 1;
            continue;
        };
        let mut parts = line.split_ascii_whitespace();
        let (Some(addr), Some(kind), Some(name)) = (parts.next(), parts.next(), parts.next())
        else {
            out.malformed_lines += 1;
            continue;
        };
        if parts.next().is_some() {
            out.module_lines += 1;
            continue;
        }
        let (Ok(address), Some(kind)) = (u64::from_str_radix(addr, 16), single_char(kind)) else {
            out.malformed_lines += 1;
            continue;
        };
        out.symbols.push(Symbol {
            name: name.to_owned(),
            address,
            kind,
        });
    }
    out
}

fn single_char(s: &str) -> Option<char> {
    let mut c = s.chars();
    let first = c.next()?;
    c.next().is_none().then_some(first)
}

/// The health of a kallsyms listing (streaming-friendly: line by line).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HealthCounter {
    symbols: usize,
    nonzero: usize,
    data: usize,
    init_task: bool,
}

impl HealthCounter {
    /// Counts one line.
    pub fn line(&mut self, line: &[u8]) {
        let mut parts = line
            .split(|b| b.is_ascii_whitespace())
            .filter(|p| !p.is_empty());
        let (Some(addr), Some(kind), name) = (parts.next(), parts.next(), parts.next()) else {
            return;
        };
        let Some(&k) = kind.first().filter(|_| kind.len() == 1) else {
            return;
        };
        if !addr.iter().all(u8::is_ascii_hexdigit) {
            return;
        }
        self.symbols += 1;
        if addr.iter().any(|&b| b != b'0') {
            self.nonzero += 1;
        }
        if is_data(char::from(k)) {
            self.data += 1;
        }
        if name == Some(b"init_task".as_slice()) && parts.next().is_none() {
            self.init_task = true;
        }
    }

    /// The counts so far.
    pub fn health(&self) -> Health {
        Health {
            symbols: self.symbols,
            nonzero: self.nonzero,
            data: self.data,
            init_task: self.init_task,
        }
    }
}

/// [`HealthCounter`] over a whole listing.
pub fn health(text: &[u8]) -> Health {
    let mut c = HealthCounter::default();
    for line in text.split(|&b| b == b'\n') {
        c.line(line);
    }
    c.health()
}

/// Where the kernel's compressed name table ends, and the `kallsyms_markers`
/// it implies: walks `num_syms` entries of `kallsyms_names` (each a length,
/// one byte, or two when the first has bit 7 set, since linux 6.1's "big"
/// symbols: `(b0 & 0x7f) | b1 << 7`; then that many bytes) and notes the
/// offset of every 256th entry, which is what `kallsyms_markers[i]` holds.
/// `scripts/kallsyms.c` writes `kallsyms_markers` right after the names
/// (aligned to 8 on 64-bit), in every layout from 4.20 to 6.12; it is the
/// one table of the walk neither kallsyms nor VMCOREINFO lists.
///
/// Returns `None` when `names` ends before `num_syms` entries (read more).
pub fn walk_names(names: &[u8], num_syms: u32) -> Option<(usize, Vec<u32>)> {
    let mut off = 0usize;
    let mut markers = Vec::with_capacity((num_syms as usize).div_ceil(256));
    for i in 0..num_syms {
        if i % 256 == 0 {
            markers.push(u32::try_from(off).ok()?);
        }
        let b0 = *names.get(off)?;
        let (len, head) = if b0 & 0x80 != 0 {
            let b1 = *names.get(off + 1)?;
            (usize::from(b0 & 0x7f) | usize::from(b1) << 7, 2)
        } else {
            (usize::from(b0), 1)
        };
        off = off.checked_add(head + len)?;
        if off > names.len() {
            return None;
        }
    }
    Some((off, markers))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &[u8] = b"0000000000000000 A fixed_percpu_data\n\
ffffffff9a000000 T _text\n\
ffffffff9b000000 D init_task\n\
ffffffff9b100000 B _end\n\
ffffffffc0a00000 t loop_probe\t[loop]\n\
garbage\n";

    #[test]
    fn parses_symbols_and_skips_modules() {
        let k = parse(SAMPLE);
        assert_eq!(k.symbols.len(), 4);
        assert_eq!(
            k.symbols[1],
            Symbol {
                name: "_text".into(),
                address: 0xffff_ffff_9a00_0000,
                kind: 'T'
            }
        );
        assert_eq!(k.module_lines, 1);
        assert_eq!(k.malformed_lines, 1);
    }

    #[test]
    fn health_detects_zeroed_and_text_only_listings() {
        let h = health(SAMPLE);
        assert_eq!((h.symbols, h.nonzero, h.data), (5, 4, 2));
        assert!(h.warnings().is_empty());
        let zero = health(b"0000000000000000 T _text\n0000000000000000 D init_task\n");
        assert!(zero.zeroed());
        assert!(zero.warnings()[0].contains("kptr_restrict"));
        let text_only = health(b"ffffffff81000000 T _text\nffffffff81000100 t foo\nffffffff81800000 R __start_rodata\n");
        assert!(text_only.no_data());
        assert!(text_only.warnings()[0].contains("CONFIG_KALLSYMS_ALL"));
        assert!(health(b"").warnings()[0].contains("no symbol"));
    }

    #[test]
    fn walks_names_and_finds_markers() {
        // 300 entries: short ones, and one "big" two-byte length at 257.
        let mut names = Vec::new();
        let mut want = Vec::new();
        for i in 0..300u32 {
            if i % 256 == 0 {
                want.push(names.len() as u32);
            }
            if i == 257 {
                names.extend_from_slice(&[0x80 | 4, 1]); // (4 | 1 << 7) = 132
                names.extend(std::iter::repeat_n(b'x', 132));
            } else {
                names.extend_from_slice(&[3, b'a', b'b', b'c']);
            }
        }
        let (end, markers) = walk_names(&names, 300).unwrap();
        assert_eq!(end, names.len());
        assert_eq!(markers, want);
        assert_eq!(markers[1], 256 * 4);
        // Too short: ask for more.
        assert_eq!(walk_names(&names[..names.len() - 1], 300), None);
        assert_eq!(walk_names(&[], 1), None);
        assert_eq!(walk_names(&[], 0), Some((0, vec![])));
    }
}
