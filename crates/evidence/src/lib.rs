//! The evidence image and what proves it.
//!
//! - [`seektable`]: the zstd seekable format's seek table (facebook/zstd
//!   `contrib/seekable_format/zstd_seekable_compression_format.md`): a
//!   skippable frame (magic `0x184D2A5E`) after the data frames, holding one
//!   entry per frame and a 9-byte footer ending in `0x8F92EAB1`. `zstd -d`
//!   skips it, so decompression yields exactly the LiME stream.
//! - [`inprogress`]: the `INCOMPLETE` marker a capture directory holds until
//!   its manifest is written, so an aborted capture is never taken for one.
//! - [`manifest`]: the versioned capture manifest (`manifest.json`, schema in
//!   `docs/manifest.md`) that `capture` writes last and `verify` checks.
//! - [`reader`]: reading a seekable image without trusting it: the checked
//!   seek table, random access by LiME stream offset, and parallel in-order
//!   decoding with per-frame checks ([`xxh64`] is the per-frame checksum).
//! - [`writer`]: the capture side: [`writer::ImageWriter`] compresses the LiME
//!   stream in 1 MiB frames on all threads, writes them in order, hashes both
//!   the stream and the file after each write (so digests always match what is
//!   on disk, also after [`writer::ImageWriter::recover`] from a full disk),
//!   and keeps memory and page cache bounded whatever the RAM size.

pub mod inprogress;
pub mod manifest;
pub mod reader;
pub mod seektable;
pub mod writer;
pub mod xxh64;
