//! End-to-end tests of the table on a synthetic kernel: BTF built in code
//! with every type Volatility requires, kallsyms at two KASLR slides.

use serde_json::Value;

use crate::btf::encode::{blob, ty, words};
use crate::entry::Arch;
use crate::isf::{Inputs, REQUIRED_TYPES, generate};
use crate::{Error, base64, write_xz};

/// A BTF builder for fixtures.
#[derive(Default)]
struct Builder {
    types: Vec<u8>,
    strings: Vec<u8>,
    next: u32,
}

impl Builder {
    fn new() -> Self {
        Self {
            types: Vec::new(),
            strings: vec![0],
            next: 1,
        }
    }
    fn s(&mut self, name: &str) -> u32 {
        if name.is_empty() {
            return 0;
        }
        let off = self.strings.len() as u32;
        self.strings.extend_from_slice(name.as_bytes());
        self.strings.push(0);
        off
    }
    fn add(&mut self, name: &str, kind: u32, vlen: u32, flag: bool, st: u32, extra: &[u32]) -> u32 {
        let n = self.s(name);
        ty(&mut self.types, n, kind, vlen, flag, st);
        words(&mut self.types, extra);
        self.next += 1;
        self.next - 1
    }
    fn int(&mut self, name: &str, size: u32, signed: bool) -> u32 {
        let enc = (u32::from(signed) << 24) | (size * 8);
        self.add(name, 1, 0, false, size, &[enc])
    }
    /// A struct with (name, type, bit offset, bitfield size) members.
    fn strukt(&mut self, name: &str, size: u32, members: &[(&str, u32, u32, u32)]) -> u32 {
        let mut extra = Vec::new();
        let flag = members.iter().any(|m| m.3 != 0);
        for (n, t, off, bits) in members {
            extra.extend([self.s(n), *t, off | (bits << 24)]);
        }
        self.add(name, 4, members.len() as u32, flag, size, &extra)
    }
    fn bytes(&self) -> Vec<u8> {
        blob(&self.types, &self.strings)
    }
}

/// The synthetic kernel's BTF: required types, task_struct with a
/// bitfield and an anonymous union, tk_core's anonymous struct, an enum.
fn kernel_btf() -> Vec<u8> {
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
    b.bytes()
}

const TEXT: u64 = 0xffff_ffff_8100_0000;

/// kallsyms of the synthetic kernel at slide `ko`.
fn kallsyms(ko: u64) -> Vec<u8> {
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
    s.push_str("ffffffffc0000000 t loop_init\t[loop]\n");
    s.into_bytes()
}

const BANNER: &[u8] = b"Linux version 6.1.0-test (gcc) #1 SMP\n";

fn make(ko: u64, btf: &[u8], ksyms: &[u8]) -> Result<(Value, crate::Report), Error> {
    generate(&Inputs {
        vmlinux: btf,
        modules: &[],
        kallsyms: ksyms,
        kallsyms_sha256: "00ff",
        banner: BANNER,
        kernel_offset: ko,
        arch: Arch::X86_64,
        producer_version: "0.1.0",
    })
}

#[test]
fn two_kaslr_slides_give_byte_identical_tables() {
    let btf = kernel_btf();
    let (a, _) = make(0x1a00_0000, &btf, &kallsyms(0x1a00_0000)).unwrap();
    let (b, _) = make(0x3c40_0000, &btf, &kallsyms(0x3c40_0000)).unwrap();
    let xa = write_xz(&a, Vec::new()).unwrap();
    let xb = write_xz(&b, Vec::new()).unwrap();
    assert_eq!(xa, xb);
    // And link-time addresses, not runtime ones.
    assert_eq!(a["symbols"]["init_task"]["address"], TEXT + 0x10_0000);
    assert_eq!(a["symbols"]["fixed_percpu_data"]["address"], 0);
    // A table made with the wrong slide differs (the test can fail).
    let (c, _) = make(0, &btf, &kallsyms(0x1a00_0000)).unwrap();
    assert_ne!(write_xz(&c, Vec::new()).unwrap(), xa);
}

#[test]
fn table_has_schema_shape_types_and_typed_entry_points() {
    let (isf, report) = make(0x200_0000, &kernel_btf(), &kallsyms(0x200_0000)).unwrap();
    let m = &isf["metadata"];
    assert_eq!(m["format"], "6.2.0");
    assert_eq!(m["linux"]["symbols"][0]["kind"], "system-map");
    assert!(m["linux"].get("types").is_none());
    // Aliases Volatility casts to.
    for b in [
        "void",
        "pointer",
        "long unsigned int",
        "unsigned int",
        "char",
    ] {
        assert!(isf["base_types"].get(b).is_some(), "{b}");
    }
    assert_eq!(isf["base_types"]["pointer"]["size"], 8);
    let task = &isf["user_types"]["task_struct"]["fields"];
    assert_eq!(task["comm"]["type"]["kind"], "array");
    assert_eq!(task["comm"]["offset"], 24);
    assert_eq!(task["flags"]["type"]["kind"], "bitfield");
    assert_eq!(task["flags"]["type"]["bit_length"], 3);
    assert_eq!(task["flags"]["offset"], 4);
    assert_eq!(task["unnamed_field_4"]["anonymous"], true);
    // typedef seqcount_raw_spinlock_t resolved to the struct.
    let tk = report.typed.iter().find(|(n, _)| n == "tk_core").unwrap();
    assert!(tk.1.starts_with("struct unnamed_struct_"), "{tk:?}");
    assert_eq!(isf["symbols"]["init_task"]["type"]["name"], "task_struct");
    assert_eq!(isf["symbols"]["modules"]["type"]["name"], "list_head");
    assert_eq!(isf["enums"]["state"]["constants"]["MINUS"], -1);
    // Banner as constant_data.
    assert_eq!(
        isf["symbols"]["linux_banner"]["constant_data"],
        base64(BANNER)
    );
    // Global wins over a static of the same name.
    assert_eq!(isf["symbols"]["local_dup"]["address"], TEXT + 0x100);
    assert_eq!(report.duplicate_symbols, 1);
    // Entry points absent from this kernel are reported.
    assert!(
        report
            .untyped
            .iter()
            .any(|(n, why)| n == "init_mm" && why == "not in kallsyms")
    );
    // init_files: files_struct is 8 bytes, 0x100 to the next symbol: typed.
    assert!(report.typed.iter().any(|(n, _)| n == "init_files"));
}

#[test]
fn implausible_gap_leaves_a_symbol_untyped() {
    // init_task (128 bytes) with only 0x10 bytes to the next symbol.
    let ks = String::from_utf8(kallsyms(0))
        .unwrap()
        .replace(
            "ffffffff81100100 D init_files",
            "ffffffff81100010 D init_files",
        )
        .into_bytes();
    let (isf, report) = make(0, &kernel_btf(), &ks).unwrap();
    assert!(isf["symbols"]["init_task"].get("type").is_none());
    let why = &report
        .untyped
        .iter()
        .find(|(n, _)| n == "init_task")
        .unwrap()
        .1;
    assert!(why.contains("needs 128 bytes"), "{why}");
}

#[test]
fn refusals_name_the_cause() {
    let btf = kernel_btf();
    let zero: Vec<u8> = b"0000000000000000 T _text\n0000000000000000 D init_task\n".to_vec();
    assert!(matches!(make(0, &btf, &zero), Err(Error::ZeroedKallsyms)));
    let text_only = b"ffffffff81000000 T _text\nffffffff81000100 T start_kernel\n".to_vec();
    let e = make(0, &btf, &text_only).unwrap_err();
    assert!(
        matches!(&e, Error::MissingSymbols(m) if m.contains(&"init_task".to_string())),
        "{e}"
    );
    assert!(e.to_string().contains("CONFIG_KALLSYMS_ALL"));
    // BTF without the types Volatility needs.
    let mut b = Builder::new();
    b.int("int", 4, true);
    let e = make(0, &b.bytes(), &kallsyms(0)).unwrap_err();
    assert!(matches!(&e, Error::MissingTypes(m) if m.contains(&"task_struct".to_string())));
    // Malformed BTF.
    let e = make(0, b"garbage garbage garbage garbage", &kallsyms(0)).unwrap_err();
    assert!(
        e.to_string().contains("context/btf/vmlinux: BTF: no magic"),
        "{e}"
    );
}

#[test]
fn cyclic_typedefs_are_refused() {
    let mut b = Builder::new();
    // 1: typedef a -> 2, 2: typedef b -> 1; a struct member of type 1.
    b.add("a", 8, 0, false, 2, &[]);
    b.add("b", 8, 0, false, 1, &[]);
    b.strukt("task_struct", 8, &[("x", 1, 0, 0)]);
    let e = make(0, &b.bytes(), &kallsyms(0)).unwrap_err();
    assert!(matches!(e, Error::Type(_)), "{e}");
}

#[test]
fn base64_matches_rfc4648() {
    assert_eq!(base64(b""), "");
    assert_eq!(base64(b"f"), "Zg==");
    assert_eq!(base64(b"fo"), "Zm8=");
    assert_eq!(base64(b"foo"), "Zm9v");
    assert_eq!(base64(b"foobar"), "Zm9vYmFy");
}
