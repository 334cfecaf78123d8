//! Pieces every tool on the forensics volume shares.
//!
//! - [`build`]: which build is running (toolkit name, version, git commit),
//!   recorded in every manifest and printed by `--version`, so a report can
//!   name the exact binary that produced it.
//! - [`fs`]: evidence-safe file and directory creation: `O_CREAT|O_EXCL|O_NOFOLLOW`
//!   relative to a directory fd that was checked, mode 0600/0700, fsync of file
//!   and directory, and page-cache release (`posix_fadvise(DONTNEED)`) so the
//!   tool's own output does not displace the suspect's page cache.

pub mod build;
pub mod fs;
pub mod volume;
