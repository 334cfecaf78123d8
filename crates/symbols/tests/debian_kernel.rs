//! Real data: what `capture` took in two boots of Debian 12's
//! `6.1.0-57-amd64` under the VM bench (KASLR slides 0x29400000 and
//! 0x400000): the kernel's BTF with its loaded modules' split BTF, both
//! boots' kallsyms and VMCOREINFO notes. The two tables must be
//! byte-identical, at link-time addresses, with Volatility's entry points
//! typed. (This test caught symbols past `_end`, `.init.scratch`, left at
//! their runtime address.)

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Read;
use std::path::{Path, PathBuf};

use fv_symbols::{Arch, Inputs, generate, vmcoreinfo, write_xz};

fn data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/debian-6.1.0-57-amd64")
}

fn unxz(name: &str) -> Vec<u8> {
    let mut out = Vec::new();
    liblzma::read::XzDecoder::new(std::fs::File::open(data().join(name)).unwrap())
        .read_to_end(&mut out)
        .unwrap();
    out
}

#[test]
fn two_boots_of_debian_6_1_give_one_table() {
    let btf = unxz("vmlinux.btf.xz");
    let mut modules: Vec<(String, Vec<u8>)> = std::fs::read_dir(data().join("modules"))
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().into_string().unwrap(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    modules.sort();
    let banner = std::fs::read(data().join("version")).unwrap();
    let mut tables = Vec::new();
    for boot in ["boot-a", "boot-b"] {
        let ks = unxz(&format!("{boot}.kallsyms.xz"));
        let info =
            vmcoreinfo::parse(&std::fs::read(data().join(format!("{boot}.vmcoreinfo"))).unwrap());
        let ko = info.kernel_offset.unwrap();
        let (isf, report) = generate(&Inputs {
            vmlinux: &btf,
            modules: &modules,
            kallsyms: &ks,
            extra_symbols: &info.symbols,
            banner: &banner,
            kernel_offset: ko,
            arch: Arch::X86_64,
            producer_version: "0.1.0",
        })
        .unwrap();
        assert!(
            report.modules_skipped.is_empty(),
            "{:?}",
            report.modules_skipped
        );
        // Link-time: Debian's x86_64 kernel links _text at 0xffffffff81000000.
        assert_eq!(isf["symbols"]["_text"]["address"], 0xffff_ffff_8100_0000u64);
        assert_eq!(isf["symbols"]["init_task"]["type"]["name"], "task_struct");
        assert_eq!(
            isf["symbols"]["init_task"]["address"],
            0xffff_ffff_82a1_aa40u64
        );
        for must in [
            "init_task",
            "init_files",
            "init_mm",
            "modules",
            "net_namespace_list",
            "socket_file_ops",
            "sockfs_dentry_operations",
            "tk_core",
            "taint_flags",
            "__start___tracepoints_ptrs",
            "idt_table",
        ] {
            assert!(
                report.typed.iter().any(|(n, _)| n == must),
                "{must} untyped: {:?}",
                report.untyped
            );
        }
        // Issue 26: globals dwarf2json types and we left `void`.
        let sct = &isf["symbols"]["sys_call_table"]["type"];
        assert_eq!(sct["kind"], "array", "{sct}");
        // 451 system calls, one slot of padding before vdso_mapping.
        assert_eq!(sct["count"], 452, "{sct}");
        assert_eq!(sct["subtype"]["kind"], "pointer", "{sct}");
        assert_eq!(sct["subtype"]["subtype"]["kind"], "function", "{sct}");
        assert_eq!(
            isf["symbols"]["nr_cpu_ids"]["type"],
            serde_json::json!({"kind": "base", "name": "unsigned int"})
        );
        assert_eq!(
            isf["symbols"]["ftrace_ops_trampoline_list"]["type"]["name"],
            "list_head"
        );
        // The kallsyms tables, which kallsyms leaves out and VMCOREINFO
        // lists (linux.kallsyms and linux.pscallstack read them): at
        // link-time addresses (boot-a's runtime 0xffffffffab5bdab8 minus
        // its slide 0x29400000), kallsyms_num_syms typed (Volatility reads
        // its size), a name kallsyms has is not taken from VMCOREINFO.
        assert_eq!(
            isf["symbols"]["kallsyms_num_syms"]["address"],
            0xffff_ffff_821b_dab8u64
        );
        assert_eq!(
            isf["symbols"]["kallsyms_num_syms"]["type"],
            serde_json::json!({"kind": "base", "name": "unsigned int"})
        );
        for k in [
            "kallsyms_names",
            "kallsyms_offsets",
            "kallsyms_relative_base",
            "kallsyms_token_table",
            "kallsyms_token_index",
        ] {
            assert!(report.extra_symbols.iter().any(|n| n == k), "{k}");
        }
        assert!(!report.extra_symbols.iter().any(|n| n == "init_top_pgt"));
        // check_afinfo's seq_operations (2.28.2 crashed on them untyped).
        for ops in [
            "tcp4_seq_ops",
            "raw_seq_ops",
            "udp_seq_ops",
            "arp_seq_ops",
            "unix_seq_ops",
            "tcp6_seq_ops",
            "packet_seq_ops",
        ] {
            assert_eq!(
                isf["symbols"][ops]["type"]["name"], "seq_operations",
                "{ops}"
            );
        }
        // 6.1: tk_core is the anonymous { seq, timekeeper } struct.
        let tk = &isf["symbols"]["tk_core"]["type"]["name"];
        assert!(tk.as_str().unwrap().starts_with("unnamed_struct_"), "{tk}");
        // A module-only type, from split BTF.
        assert!(isf["user_types"].get("loop_device").is_some());
        assert_eq!(isf["base_types"]["long unsigned int"]["size"], 8);
        tables.push(write_xz(&isf, Vec::new()).unwrap());
    }
    assert!(
        tables[0] == tables[1],
        "two KASLR slides of one kernel gave different tables"
    );
}
