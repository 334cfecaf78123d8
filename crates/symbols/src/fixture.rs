//! A synthetic kernel for tests (here and in the `capture` binary's CLI
//! tests): BTF built in code with every type Volatility requires, and
//! kallsyms at any KASLR slide. Not used by the tool itself.

use crate::btf::encode::{blob, ty, words};
use crate::isf::REQUIRED_TYPES;

/// A BTF builder for fixtures.
#[derive(Debug, Default)]
pub struct Builder {
    types: Vec<u8>,
    strings: Vec<u8>,
    next: u32,
}

impl Builder {
    pub fn new() -> Self {
        Self {
            types: Vec::new(),
            strings: vec![0],
            next: 1,
        }
    }
    pub fn s(&mut self, name: &str) -> u32 {
        if name.is_empty() {
            return 0;
        }
        let off = self.strings.len() as u32;
        self.strings.extend_from_slice(name.as_bytes());
        self.strings.push(0);
        off
    }
    pub fn add(
        &mut self,
        name: &str,
        kind: u32,
        vlen: u32,
        flag: bool,
        st: u32,
        extra: &[u32],
    ) -> u32 {
        let n = self.s(name);
        ty(&mut self.types, n, kind, vlen, flag, st);
        words(&mut self.types, extra);
        self.next += 1;
        self.next - 1
    }
    pub fn int(&mut self, name: &str, size: u32, signed: bool) -> u32 {
        let enc = (u32::from(signed) << 24) | (size * 8);
        self.add(name, 1, 0, false, size, &[enc])
    }
    /// A struct with (name, type, bit offset, bitfield size) members.
    pub fn strukt(&mut self, name: &str, size: u32, members: &[(&str, u32, u32, u32)]) -> u32 {
        let mut extra = Vec::new();
        let flag = members.iter().any(|m| m.3 != 0);
        for (n, t, off, bits) in members {
            extra.extend([self.s(n), *t, off | (bits << 24)]);
        }
        self.add(name, 4, members.len() as u32, flag, size, &extra)
    }
    pub fn bytes(&self) -> Vec<u8> {
        blob(&self.types, &self.strings)
    }
}

/// The synthetic kernel's BTF: required types, task_struct with a
/// bitfield and an anonymous union, tk_core's anonymous struct, an enum.
pub fn kernel_btf() -> Vec<u8> {
    kernel_builder().bytes()
}

/// [`kernel_btf`] still open, for tests that add types to it (its first
/// four types are `int`, `unsigned long`, `unsigned int`, `char`).
pub fn kernel_builder() -> Builder {
    let mut b = Builder::new();
    let int = b.int("int", 4, true);
    let ulong = b.int("unsigned long", 8, false); // clang's spelling
    let uint = b.int("unsigned int", 4, false);
    let ch = b.int("char", 1, true);
    let list = b.strukt("list_head", 16, &[]);
    let comm = b.add("", 3, 0, false, 0, &[ch, int, 16]);
    let (a, c) = (b.s("a"), b.s("c"));
    let u = b.add("", 5, 2, false, 8, &[a, ulong, 0, c, int, 0]);
    b.strukt(
        "task_struct",
        128,
        &[
            ("pid", int, 0, 0),
            ("flags", uint, 32, 3),
            ("tasks", list, 64, 0),
            ("comm", comm, 192, 0),
            ("", u, 320, 0),
        ],
    );
    for name in REQUIRED_TYPES {
        if *name != "task_struct" && *name != "list_head" {
            b.strukt(name, 8, &[("x", ulong, 0, 0)]);
        }
    }
    let tk = b.strukt("timekeeper", 16, &[("x", ulong, 0, 0)]);
    let seq = b.strukt("seqcount_raw_spinlock", 4, &[("x", uint, 0, 0)]);
    let seq_t = b.add("seqcount_raw_spinlock_t", 8, 0, false, seq, &[]);
    b.strukt("", 24, &[("seq", seq_t, 0, 0), ("timekeeper", tk, 64, 0)]);
    let one = b.s("ONE");
    let minus = b.s("MINUS");
    b.add("state", 6, 2, true, 4, &[one, 1, minus, (-1i32) as u32]);
    b
}

pub const TEXT: u64 = 0xffff_ffff_8100_0000;

/// kallsyms of the synthetic kernel at slide `ko`.
pub fn kallsyms(ko: u64) -> Vec<u8> {
    let mut s = String::new();
    let mut line = |addr: u64, k: char, n: &str| s.push_str(&format!("{addr:016x} {k} {n}\n"));
    line(0, 'A', "fixed_percpu_data");
    line(TEXT + ko, 'T', "_text");
    line(TEXT + ko + 0x100, 't', "local_dup");
    line(TEXT + ko + 0x10_0000, 'D', "init_task");
    line(TEXT + ko + 0x10_0100, 'D', "init_files");
    line(TEXT + ko + 0x10_0200, 'D', "tk_core");
    line(TEXT + ko + 0x10_0220, 'D', "modules");
    line(TEXT + ko + 0x10_0300, 'R', "linux_banner");
    line(TEXT + ko + 0x10_0400, 'D', "init_top_pgt");
    line(TEXT + ko + 0x10_0500, 'd', "local_dup");
    line(TEXT + ko + 0x20_0000, 'B', "_end");
    // The kernel image goes on past _end (x86_64's .init.scratch).
    line(TEXT + ko + 0x20_1000, 'B', "__init_scratch_begin");
    s.push_str("ffffffffc0000000 t loop_init\t[loop]\n");
    s.into_bytes()
}
