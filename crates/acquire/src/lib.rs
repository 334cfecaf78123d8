//! Memory acquisition for `capture`: turns a suspect host's physical memory
//! into evidence on the forensics volume.
//!
//! The command line stops at the top: [`cli::CaptureArgs::plan`] turns it
//! into a typed [`plan::Plan`], and [`run::run`] does one capture of that
//! plan in five phases, each taking only its part, returning an
//! [`run::Outcome`] (complete or labelled partial) or an [`Error`] whose
//! [`Error::exit_code`] is documented in [`exit`]. The folders are what the
//! phases use:
//!
//! - [`run`]: the phases (preflight, source, output, acquire, finalize),
//!   one file each, and the summary line;
//! - [`source`]: the source ladder: [`source::physical`] (`/proc/kcore` via
//!   its ELF segments, `/dev/crash`, `/dev/mem`; guided by `/proc/iomem`
//!   System RAM) and [`source::lime`] (LiME file/FIFO/stdin, TCP, or a
//!   `lime.ko` loaded into a root-only FIFO; AVML's compressed format);
//! - [`stream`]: the LiME stream (one record per RAM range, as the LiME
//!   module writes it), unreadable pages as recorded zeros, and the zero
//!   fill that completes a partial stream;
//! - [`output`]: the output root on the forensics volume (marker file,
//!   device identity), the per-root lock, free-space check and reserve,
//!   atomic writes;
//! - [`host`]: host identity, kernel context and symbols context (from
//!   `/proc` and `/sys` only), IMDSv2 identity with a one-second budget;
//! - [`stop`], [`progress`]: signals to partial images; progress output.
//!
//! Facts relied on, with sources, are in `FACTS.md` (LiME `src/lime.h`,
//! `src/tcp.c`; linux `fs/proc/kcore.c`, `kernel/resource.c`). Every root
//! (`/proc`, `/sys`, `/dev`) is a parameter ([`roots::Roots`]) so tests read
//! fixture trees.

pub mod cli;
pub mod error;
pub mod exit;
pub mod hex;
pub mod host;
pub mod output;
pub mod plan;
pub mod progress;
pub mod roots;
pub mod run;
pub mod source;
pub mod stop;
pub mod stream;
mod sys;
pub mod utc;

pub use cli::CaptureArgs;
pub use error::Error;
pub use plan::Plan;
pub use run::{Outcome, run};
