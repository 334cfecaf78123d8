//! The host context: who the captured host is ([`identity`]), what of its
//! kernel is copied for the analyst ([`context`], [`symbols`]), and its
//! IMDSv2 instance identity ([`imds`]). Only `/proc`, `/sys` and IMDS are
//! read, never the suspect's disks.

pub mod context;
mod copy;
pub mod identity;
pub mod imds;
pub mod symbols;

pub use context::{Context, ContextJob, build_id, write_context};
pub use copy::CONTEXT_CAP;
pub use identity::{Uname, boot_id, peak_rss, self_exe, uname};
