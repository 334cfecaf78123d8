//! Arbitrary bytes as BTF: parsed as base BTF and as split BTF over the
//! synthetic kernel's, then (when they parse) turned into a Volatility
//! symbol table with the synthetic kallsyms. A table or a named error,
//! never a panic, a stack overflow on a cyclic type, or a hang.
#![no_main]

use fv_symbols::btf::Btf;
use fv_symbols::{Arch, Inputs, fixture, generate};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let kallsyms = fixture::kallsyms(0x1000_0000);
    let _ = generate(&Inputs {
        vmlinux: data,
        modules: &[],
        kallsyms: &kallsyms,
        extra_symbols: &[],
        banner: b"Linux version fuzz\n",
        kernel_offset: 0x1000_0000,
        arch: Arch::X86_64,
        producer_version: "0.1.0",
    });
    // The same bytes as a module's split BTF over a valid base.
    let base = fixture::kernel_btf();
    let modules = vec![("fuzz".to_string(), data.to_vec())];
    let _ = generate(&Inputs {
        vmlinux: &base,
        modules: &modules,
        kallsyms: &kallsyms,
        extra_symbols: &[],
        banner: b"Linux version fuzz\n",
        kernel_offset: 0x1000_0000,
        arch: Arch::X86_64,
        producer_version: "0.1.0",
    });
    if let Ok(b) = Btf::parse(data) {
        assert!(b.next_id() >= 1);
    }
});
