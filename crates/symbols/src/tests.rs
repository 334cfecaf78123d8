//! End-to-end tests of the table on a synthetic kernel: BTF built in code
//! with every type Volatility requires, kallsyms at two KASLR slides.

use serde_json::Value;

use crate::entry::Arch;
use crate::fixture::{Builder, TEXT, kallsyms, kernel_btf};
use crate::isf::{Inputs, generate};
use crate::{Error, base64, write_xz};

const BANNER: &[u8] = b"Linux version 6.1.0-test (gcc) #1 SMP\n";

fn make(ko: u64, btf: &[u8], ksyms: &[u8]) -> Result<(Value, crate::Report), Error> {
    generate(&Inputs {
        vmlinux: btf,
        modules: &[],
        kallsyms: ksyms,
        extra_symbols: &[],
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
    assert_eq!(isf["symbols"]["init_task"]["type"]["name"], "void");
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
    // Arrays of each other: sizing them must end, not overflow the stack.
    let mut b = Builder::new();
    let int = b.int("int", 4, true);
    b.add("", 3, 0, false, 0, &[3, int, 2]); // 2: array of 3
    b.add("", 3, 0, false, 0, &[2, int, 2]); // 3: array of 2
    b.strukt("task_struct", 8, &[("x", 2, 0, 0)]);
    let btf = crate::btf::Btf::parse(&b.bytes()).unwrap();
    let view = crate::types::View {
        base: &btf,
        split: None,
    };
    assert!(matches!(
        crate::types::Types::build(&[view], 8),
        Err(crate::types::TypeError::Chain(_))
    ));
    let types = crate::types::Types::default();
    assert!(matches!(
        types.size_of(&view, 2),
        Err(crate::types::TypeError::Chain(_))
    ));
    assert!(make(0, &b.bytes(), &kallsyms(0)).is_err());
}

#[test]
fn base64_matches_rfc4648() {
    assert_eq!(base64(b""), "");
    assert_eq!(base64(b"f"), "Zg==");
    assert_eq!(base64(b"fo"), "Zm8=");
    assert_eq!(base64(b"foo"), "Zm9v");
    assert_eq!(base64(b"foobar"), "Zm9vYmFy");
}

#[test]
fn aarch64_needs_swapper_pg_dir_and_skips_x86_entries() {
    let btf = kernel_btf();
    let mut ks = kallsyms(0x80_0000);
    let args = |ks: &[u8]| {
        generate(&Inputs {
            vmlinux: &btf,
            modules: &[],
            kallsyms: ks,
            extra_symbols: &[],
            banner: BANNER,
            kernel_offset: 0x80_0000,
            arch: Arch::Aarch64,
            producer_version: "0.1.0",
        })
    };
    // init_top_pgt is x86_64's: arm64 stacks on swapper_pg_dir.
    let e = args(&ks).unwrap_err();
    assert!(e.to_string().contains("swapper_pg_dir"), "{e}");
    ks.extend_from_slice(
        format!("{:016x} D swapper_pg_dir\n", TEXT + 0x80_0000 + 0x10_0600).as_bytes(),
    );
    let (isf, report) = args(&ks).unwrap();
    assert_eq!(
        isf["symbols"]["swapper_pg_dir"]["address"],
        TEXT + 0x10_0600
    );
    assert!(
        !report
            .untyped
            .iter()
            .any(|(n, _)| n == "idt_table" || n == "vmemmap_base")
    );
}

#[test]
fn vmcoreinfo_adds_only_the_kallsyms_tables_kallsyms_lacks() {
    let ko = 0x200_0000;
    let extra = vec![
        ("kallsyms_names".to_owned(), TEXT + ko + 0x30_0008),
        // A macro, not a symbol (x86_64: the vmemmap base), and an alias.
        ("vmemmap".to_owned(), 0xffff_ea00_0000_0000),
        ("swapper_pg_dir".to_owned(), TEXT + ko + 0x10_0400),
        // kallsyms has it: kallsyms wins.
        ("kallsyms_num_syms".to_owned(), TEXT + ko + 0x30_0000),
    ];
    let ks = [
        kallsyms(ko),
        format!("{:016x} D kallsyms_num_syms\n", TEXT + ko + 0x30_0010).into_bytes(),
    ]
    .concat();
    let (isf, report) = generate(&Inputs {
        vmlinux: &kernel_btf(),
        modules: &[],
        kallsyms: &ks,
        extra_symbols: &extra,
        banner: BANNER,
        kernel_offset: ko,
        arch: Arch::X86_64,
        producer_version: "0.1.0",
    })
    .unwrap();
    assert_eq!(report.extra_symbols, vec!["kallsyms_names".to_owned()]);
    assert_eq!(
        isf["symbols"]["kallsyms_names"]["address"],
        TEXT + 0x30_0008
    );
    assert_eq!(
        isf["symbols"]["kallsyms_num_syms"]["address"],
        TEXT + 0x30_0010
    );
    assert!(isf["symbols"].get("vmemmap").is_none());
    assert!(isf["symbols"].get("swapper_pg_dir").is_none());
}
