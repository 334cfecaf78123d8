//! Pieces every tool on the forensics volume shares.
//!
//! - [`build`]: which build is running (toolkit name, version, git commit),
//!   recorded in every manifest and printed by `--version`, so a report can
//!   name the exact binary that produced it.
//! - [`fs`]: evidence-safe file and directory creation: `O_CREAT|O_EXCL|O_NOFOLLOW`
//!   relative to a directory fd that was checked, mode 0600/0700, fsync of file
//!   and directory, and page-cache release (`posix_fadvise(DONTNEED)`) so the
//!   tool's own output does not displace the suspect's page cache.
//! - [`progress`]: progress on stderr (a bar on a terminal, a few short
//!   lines otherwise), for `capture` and its analyst subcommands.
//! - [`report`]: the last step of a helper's run, its report on stdout.

pub mod build;
pub mod fs;
pub mod progress;
pub mod volume;

/// The last step of a helper's run.
pub mod report {
    use std::io::Write;

    /// Prints `text` (the report, possibly empty) to stdout and returns
    /// `code`; returns 1 (failure) instead when stdout cannot take it (a
    /// closed pipe, a full disk behind a redirect): whoever runs the helper
    /// was told nothing, so it must not read success.
    pub fn print_and_exit_code(text: &str, code: i32) -> i32 {
        let mut stdout = std::io::stdout().lock();
        match stdout
            .write_all(text.as_bytes())
            .and_then(|()| stdout.flush())
        {
            Ok(()) => code,
            Err(_) => 1,
        }
    }
}
