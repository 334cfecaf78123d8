//! Why no symbol table can be made.

use crate::{btf, types};

/// Why no symbol table can be made.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The BTF is malformed.
    #[error("context/btf/{file}: {source}")]
    Btf {
        /// The file under `context/btf/`.
        file: String,
        /// What is wrong.
        #[source]
        source: btf::BtfError,
    },
    /// A type chain is cyclic.
    #[error("context/btf: {0}")]
    Type(#[from] types::TypeError),
    /// Types Volatility needs at load time are not in the BTF.
    #[error(
        "the kernel's BTF lacks types Volatility 3 needs to load any Linux symbol table: {}",
        .0.join(", ")
    )]
    MissingTypes(Vec<String>),
    /// kallsyms lists nothing.
    #[error("context/kallsyms lists no symbol")]
    NoSymbols,
    /// kallsyms addresses are all zero.
    #[error(
        "context/kallsyms: every address is zero (kernel.kptr_restrict or no CAP_SYSLOG when captured): symbols cannot be placed"
    )]
    ZeroedKallsyms,
    /// Symbols Volatility starts from are absent.
    #[error(
        "context/kallsyms lacks {} (a kernel without CONFIG_KALLSYMS_ALL lists no data symbols): Volatility cannot find the kernel without them",
        .0.join(", ")
    )]
    MissingSymbols(Vec<String>),
    /// Serialising or compressing failed.
    #[error("writing the symbol table: {0}")]
    Write(#[source] std::io::Error),
}
