//! Progress: moved to [`fv_core::progress`], shared with the analyst's
//! subcommands (issue 23).

pub use fv_core::progress::{Progress, duration, human};
