//! The memory formats the forensics volume reads and writes, as pure code over
//! byte slices and `Read`, so every case can be tested from bytes built in code.
//!
//! - [`lime`]: the LiME dump format (504ensicsLabs/LiME `src/lime.h`): 32-byte
//!   little-endian record headers, `magic 0x4C694D45`, version 1, inclusive
//!   end address, payload of exactly `end - start + 1` bytes, nothing after the
//!   last record (Volatility 3 treats any trailing byte as "not LiME").

pub mod lime;
