//! The LiME stream being produced: its [`Layout`] (one record per RAM
//! range, or per [`RECORD_MAX`] of it), the copy loops from a physical
//! source ([`copy_physical`]) or a LiME input ([`ingest_lime`]) into a
//! [`Sink`], and what turns a stopped run into a valid stream ([`cut`],
//! [`fill_zeros`]): the current record is completed with zeros, later
//! records are left out and listed, so a stop costs at most one record of
//! zero-fill whatever the RAM size.
//!
//! Kept apart from the image writer so the source side is tested against a
//! plain `Vec<u8>` sink: the bytes must equal what the LiME module writes.

mod copied;
mod copy;
mod cut;
mod gaps;
mod ingest;
mod layout;
mod sink;

pub use copied::{Copied, MAX_UNREADABLE, Stop, describe_io};
pub use copy::{CHUNK, PAGE, copy_physical};
pub use cut::{Cut, clip_unreadable, cut, fill_zeros, not_captured};
pub use gaps::{NO_RECORD, headers_from, ram_gaps};
pub use ingest::{MAX_RECORDS, ingest_lime};
pub use layout::{Layout, RECORD_MAX, piece_end};
pub use sink::{PhysRead, Sink};

#[cfg(test)]
mod tests;
