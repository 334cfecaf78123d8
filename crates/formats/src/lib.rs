//! The memory formats the forensics volume reads and writes, as pure code over
//! byte slices and `Read`, so every case can be tested from bytes built in code.
//!
//! - [`lime`]: the LiME dump format (504ensicsLabs/LiME `src/lime.h`): 32-byte
//!   little-endian record headers, `magic 0x4C694D45`, version 1, inclusive
//!   end address, payload of exactly `end - start + 1` bytes, nothing after the
//!   last record (Volatility 3 treats any trailing byte as "not LiME").
//! - [`iomem`]: `/proc/iomem` (end-inclusive hex ranges, two-space nesting);
//!   the top-level `System RAM` ranges are physical RAM.
//! - [`avml`]: AVML's compressed images (`avml --compress`, "LiME version
//!   2": snappy-framed blocks), read as the LiME stream they stand for.
//! - [`kcore`]: `/proc/kcore`'s ELF64 core header and the map from physical
//!   RAM to file offsets (`p_paddr`, or `p_vaddr - PAGE_OFFSET` before 4.11).

pub mod avml;
pub mod iomem;
pub mod kcore;
pub mod lime;
