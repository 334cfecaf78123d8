//! The source ladder: what `--source` names ([`spec`]), the physical
//! sources (`/proc/kcore`, `/dev/crash`, `/dev/mem`: [`physical`]), the LiME
//! inputs ([`lime`]), and the one entry that opens whichever was asked
//! ([`open`]).

pub mod lime;
pub mod open;
pub mod physical;
pub mod spec;

pub use open::{LimeInput, Opened, is_regular_file};
pub use spec::SourceSpec;
