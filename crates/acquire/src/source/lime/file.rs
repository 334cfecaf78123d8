//! A LiME file or FIFO given by path (`lime:PATH`), opened read-only.

use std::fs::File;
use std::path::Path;

use super::error::LimeSourceError;

/// Opens a LiME file or FIFO read-only.
///
/// # Errors
/// [`LimeSourceError::Open`].
pub fn open_file(path: &Path) -> Result<File, LimeSourceError> {
    File::open(path).map_err(|source| LimeSourceError::Open {
        path: path.to_path_buf(),
        source,
    })
}
