//! Memory acquisition for `capture`: turns a suspect host's physical memory
//! into evidence on the forensics volume.
//!
//! - [`run::run`] does one capture from a [`cli::CaptureArgs`] and returns
//!   an [`run::Outcome`] (complete or labelled partial) or an [`Error`]
//!   whose [`Error::exit_code`] is documented in [`exit`].
//! - Sources: [`physical`] (`/proc/kcore` via its ELF segments, `/dev/crash`,
//!   `/dev/mem`; guided by `/proc/iomem` System RAM) and [`lime_source`]
//!   (LiME file/FIFO/stdin, TCP, or a `lime.ko` loaded in TCP mode).
//! - [`stream`]: the LiME stream (one record per RAM range, as the LiME
//!   module writes it), unreadable pages as recorded zeros, and the zero
//!   fill that completes a partial stream.
//! - [`output`]: the output root on the forensics volume (marker file), the
//!   per-root lock, free-space check and reserve, atomic writes.
//! - [`host`], [`imds`]: host identity, kernel context (from `/proc` and
//!   `/sys` only), IMDSv2 identity with a one-second budget.
//! - [`symbols_context`]: BTF, the VMCOREINFO note and a kallsyms check,
//!   for the analyst's `capture symbols`.
//! - [`stop`], [`progress`]: signals to partial images; progress output.
//!
//! Facts relied on, with sources, are in `FACTS.md` (LiME `src/lime.h`,
//! `src/tcp.c`; linux `fs/proc/kcore.c`, `kernel/resource.c`). Every root
//! (`/proc`, `/sys`, `/dev`) is a parameter so tests read fixture trees.

pub mod avml_input;
pub mod cli;
pub mod error;
pub mod exit;
pub mod host;
pub mod imds;
pub mod lime_source;
pub mod output;
pub mod physical;
pub mod progress;
pub mod run;
pub mod spec;
pub mod stop;
pub mod stream;
pub mod symbols_context;
mod sys;
pub mod utc;

pub use cli::CaptureArgs;
pub use error::Error;
pub use run::{Outcome, run};
