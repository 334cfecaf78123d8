//! Volatility 3 symbol tables (ISF) made from what `capture` saved of the
//! live kernel: its BTF (`context/btf/`), its kallsyms, its banner and its
//! KASLR slide (`context/vmcoreinfo-kcore`). No debug package, no
//! dwarf2json: `capture symbols` turns a capture into evidence Volatility's
//! Linux plugins can read.
//!
//! - [`btf`]: our BTF parser (base and split BTF), fuzzed;
//! - [`types`]: BTF types as ISF `base_types`, `user_types`, `enums`;
//! - [`kallsyms`]: the listing, and its health (zeroed, no data symbols),
//!   which the capture also records as manifest warnings;
//! - [`elfnote`]: the ELF note walker shared with `capture`;
//! - [`vmcoreinfo`]: the VMCOREINFO note (`KERNELOFFSET`, `phys_base`);
//! - [`entry`]: the curated table of typed entry-point symbols;
//! - [`isf`]: the table itself ([`isf::generate`]), [`write_xz`] to store it.
//!
//! Why `liblzma` (the maintained fork of `xz2`, MIT/Apache-2.0) for `.xz`:
//! Volatility reads `.json.xz` through Python's `lzma`, i.e. real xz
//! streams; the pure-Rust `lzma-rs` writes only literal-coded (barely
//! compressed) streams. `liblzma` builds xz from source and links it
//! statically, exactly as the `zstd` crate already does for zstd, so the
//! static musl binaries need nothing new; single-threaded encoding is
//! deterministic, which the byte-identical-ISF test relies on.
//!
//! Facts and sources: shared/design/VOLATILITY-SYMBOLS.md.

pub mod btf;
pub mod elfnote;
pub mod entry;
mod error;
#[doc(hidden)]
pub mod fixture;
pub mod isf;
pub mod kallsyms;
pub mod types;
pub mod vmcoreinfo;

use std::io::Write;

pub use entry::Arch;
pub use error::Error;
pub use isf::{Inputs, Report, Symbol, Table, base64, generate, generate_table};

/// xz preset used. Measured on a 14 MB kernel table (6.18): preset 6 (xz's
/// default) 1.37 MB in 8 s of CPU, preset 3 1.69 MB in about 1.7 s, preset
/// 1 1.87 MB in 0.7 s; 3 keeps the table small without making the analyst
/// wait.
pub const XZ_PRESET: u32 = 3;

/// Writes the table as compact JSON, xz-compressed, into `out`.
///
/// # Errors
/// [`Error::Write`] when writing fails.
pub fn write_xz<T: serde::Serialize + ?Sized, W: Write>(isf: &T, out: W) -> Result<W, Error> {
    // serde_json writes in small pieces: buffer them before the encoder.
    let enc = liblzma::write::XzEncoder::new(out, XZ_PRESET);
    let mut w = std::io::BufWriter::with_capacity(1 << 20, enc);
    serde_json::to_writer(&mut w, isf).map_err(|e| Error::Write(std::io::Error::other(e)))?;
    let enc = w.into_inner().map_err(|e| Error::Write(e.into_error()))?;
    enc.finish().map_err(Error::Write)
}

/// Writes the table as compact JSON into `out`.
///
/// # Errors
/// [`Error::Write`] when writing fails.
pub fn write_json<T: serde::Serialize + ?Sized, W: Write>(isf: &T, out: W) -> Result<W, Error> {
    let mut w = std::io::BufWriter::with_capacity(1 << 20, out);
    serde_json::to_writer(&mut w, isf).map_err(|e| Error::Write(std::io::Error::other(e)))?;
    w.into_inner().map_err(|e| Error::Write(e.into_error()))
}

#[cfg(test)]
mod tests;
