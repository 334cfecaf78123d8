//! Documented exit codes of `capture verify|extract|info`.

/// Success: verified, extracted, summarised.
pub const OK: u8 = 0;
/// The evidence is damaged or disagrees with its manifest, sidecar or the
/// digest given, is an aborted capture (no manifest), or has a symlink,
/// FIFO or device where a capture's file should be (verify reports every
/// finding; extract and info stop at the first).
pub const EVIDENCE_BAD: u8 = 1;
/// Usage: bad arguments (clap uses 2 as well), an input that is not a
/// capture directory, seekable image, zstd or LiME file, or a range that
/// covers no captured memory.
pub const USAGE: u8 = 2;
/// The output could not be written: it exists (and `--force` was not
/// given, or it is the evidence itself), or creating/writing it failed.
pub const OUTPUT: u8 = 3;
/// The input could not be read (missing, permission, I/O error).
pub const INPUT: u8 = 4;
/// `symbols`: the capture lacks what a symbol table needs (no BTF,
/// zeroed kallsyms, no data symbols, a type Volatility requires), or
/// its BTF is malformed.
pub const NO_SYMBOLS: u8 = 5;
