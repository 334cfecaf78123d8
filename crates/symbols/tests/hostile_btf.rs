//! BTF crafted to hurt (security review S6, S8): every byte of
//! `context/btf/` is the suspect's. The parser and the table must refuse it
//! with a named error, within a bounded amount of memory, never panic or
//! ask for gigabytes. Memory is measured by this test binary's own global
//! allocator (peak bytes live at once), which also refuses any allocation
//! past [`HARD_CAP`] so that a regression fails here instead of exhausting
//! the machine. Its own binary, so no other test's allocations count; the
//! tests take a lock so that they measure one at a time.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use fv_symbols::btf::{self, Btf, BtfError};
use fv_symbols::fixture::{kallsyms, kernel_builder};
use fv_symbols::types::TypeError;
use fv_symbols::{Arch, Error, Inputs, generate};

/// Past this many bytes live at once, allocations fail (the process
/// aborts: a test that would have needed more fails).
const HARD_CAP: usize = 1 << 30;

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);
static SERIAL: Mutex<()> = Mutex::new(());

// SAFETY: forwards to the system allocator, only counting the sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let now = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
        if now > HARD_CAP {
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
            return std::ptr::null_mut();
        }
        PEAK.fetch_max(now, Ordering::Relaxed);
        // SAFETY: the caller's layout, as GlobalAlloc requires.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: allocated above with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static A: Counting = Counting;

/// Runs `f`, returning its result and the most bytes it had live at once
/// beyond what was live before.
fn peak_of<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let base = LIVE.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    let r = f();
    let peak = PEAK.load(Ordering::Relaxed) - base;
    eprintln!("peak {:.1} MiB", peak as f64 / MIB as f64);
    (r, peak)
}

fn table(vmlinux: &[u8]) -> Result<(serde_json::Value, fv_symbols::Report), Error> {
    let ks = kallsyms(0x1000_0000);
    generate(&Inputs {
        vmlinux,
        modules: &[],
        kallsyms: &ks,
        extra_symbols: &[],
        banner: b"Linux version 6.1.0-test\n",
        kernel_offset: 0x1000_0000,
        arch: Arch::X86_64,
        producer_version: "0.1.0",
    })
}

const MIB: usize = 1 << 20;

#[test]
fn one_long_name_named_by_every_member_is_refused_without_copying_it() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // The review's S6 input: one 1 MB name, 5,000 members naming it
    // (1.06 MB of BTF): 5 GB of copies before this was bounded.
    let mut b = kernel_builder();
    let long = b.s(&"n".repeat(1 << 20));
    let int = 1;
    let members: Vec<u32> = (0..5000u32).flat_map(|i| [long, int, i * 32]).collect();
    b.add("victim", 4, 5000, false, 5000 * 4, &members);
    let blob = b.bytes();
    assert!(blob.len() < 2 * MIB);
    let (r, peak) = peak_of(|| table(&blob));
    let e = r.unwrap_err();
    assert!(
        matches!(
            e,
            Error::Btf {
                source: BtfError::String(_),
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("longer than 511 bytes"), "{e}");
    // The blob is read in place: at most a few copies of what was parsed.
    assert!(peak < 4 * MIB, "peak {peak} bytes");
}

#[test]
fn names_totalling_more_than_the_limit_are_refused_within_it() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // Names at the kernel's longest (511 bytes), each named by as many
    // members as fit before MAX_NAME_BYTES: 34 MB of name copies at most.
    let mut b = kernel_builder();
    let name = b.s(&"m".repeat(btf::MAX_NAME));
    let n = (btf::MAX_NAME_BYTES / btf::MAX_NAME + 10) as u32;
    // Two structs: a struct has at most 65,535 members (vlen is 16 bits).
    for count in [n / 2, n - n / 2] {
        let members: Vec<u32> = (0..count).flat_map(|i| [name, 1, i * 32]).collect();
        b.add("victim", 4, count, false, count * 4, &members);
    }
    let blob = b.bytes();
    let (r, peak) = peak_of(|| Btf::parse(&blob));
    let e = r.unwrap_err();
    assert!(matches!(e, BtfError::TooLarge(_)), "{e}");
    assert!(
        peak < btf::MAX_NAME_BYTES + 16 * MIB,
        "peak {peak} bytes for {} bytes of names",
        btf::MAX_NAME_BYTES
    );
}

#[test]
fn more_items_than_the_limit_are_refused_within_a_bound() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // MAX_ITEMS + 1 pointers to void: 12 MB of BTF, no names.
    let mut b = kernel_builder();
    for _ in 0..=btf::MAX_ITEMS {
        b.add("", 2, 0, false, 0, &[]);
    }
    let blob = b.bytes();
    let (r, peak) = peak_of(|| Btf::parse(&blob));
    assert!(matches!(r.unwrap_err(), BtfError::TooLarge(_)));
    // docs/analyst.md: the parsed BTF is at most 200 MiB.
    assert!(peak < 200 * MIB, "peak {peak} bytes");
}

#[test]
fn members_of_a_deep_pointer_type_are_refused_before_the_table_is_made() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // A chain of 60 pointers, and 20,000 members of its last: 1.2 million
    // JSON objects (about 800 MB) if converted.
    let mut b = kernel_builder();
    let mut t = 1;
    for _ in 0..60 {
        t = b.add("", 2, 0, false, t, &[]);
    }
    let n = 20_000u32;
    let x = b.s("x");
    let members: Vec<u32> = (0..n).flat_map(|i| [x, t, i * 64]).collect();
    b.add("victim", 4, n, false, n * 8, &members);
    let blob = b.bytes();
    let (r, peak) = peak_of(|| table(&blob));
    let e = r.unwrap_err();
    assert!(matches!(e, Error::Type(TypeError::TooLarge(_))), "{e}");
    assert!(peak < 16 * MIB, "peak {peak} bytes");
}

#[test]
fn a_bitfield_of_a_huge_array_is_an_error_not_a_division_by_zero() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // The review's S8 input: a 2 GiB struct, an array of 2^30 of it (2^61
    // bytes), a 1-bit bitfield of that array: its storage unit in bits
    // (2^64) wrapped to 0 and the division panicked (release) or the
    // multiplication did (debug).
    let mut b = kernel_builder();
    let big = b.strukt("big", 1 << 31, &[]);
    let arr = b.add("", 3, 0, false, 0, &[big, 1, 1 << 30]);
    b.strukt("holder", 8, &[("bit", arr, 0, 1)]);
    let blob = b.bytes();
    let e = table(&blob).unwrap_err();
    assert!(matches!(e, Error::Type(TypeError::Overflow(_))), "{e}");
    // An array whose size does not fit 64 bits: an error as well.
    let mut b = kernel_builder();
    let big = b.strukt("big", 1 << 31, &[]);
    let arr = b.add("", 3, 0, false, 0, &[big, 1, 1 << 30]);
    let arr2 = b.add("", 3, 0, false, 0, &[arr, 1, 1 << 10]);
    b.strukt("holder", 8, &[("bit", arr2, 0, 1)]);
    let e = table(&b.bytes()).unwrap_err();
    assert!(matches!(e, Error::Type(TypeError::Overflow(_))), "{e}");
}
