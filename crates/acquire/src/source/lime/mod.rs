//! LiME inputs: a file or FIFO ([`file`]), stdin, a LiME module listening in
//! TCP mode ([`tcp`]), or a `lime.ko` we load ourselves ([`module`]) writing
//! into a root-only FIFO ([`fifo`]); an AVML compressed image is read as the
//! LiME stream it stands for ([`avml`]).

pub mod avml;
pub mod error;
pub mod fifo;
pub mod file;
pub mod module;
pub mod tcp;

pub use error::LimeSourceError;
pub use fifo::ModuleFifo;
pub use file::open_file;
pub use module::{MODULE_NAME, Module, explain_refusal, read_module};
pub use tcp::{connect, peer_owner};

#[cfg(test)]
mod tests;
