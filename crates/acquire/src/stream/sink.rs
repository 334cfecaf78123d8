//! Where the LiME stream goes ([`Sink`]: the image writer, or a `Vec<u8>`
//! in tests) and where physical memory comes from ([`PhysRead`]).

use std::io;

/// Where the LiME stream goes.
pub trait Sink {
    /// The error type (the image writer's, or `io::Error` for tests).
    type Error: std::error::Error + Send + Sync + 'static;
    /// Appends stream bytes.
    ///
    /// # Errors
    /// The sink's own; the copy loops stop and hand it back.
    fn write(&mut self, bytes: &[u8]) -> Result<(), Self::Error>;
    /// Appends what `fill` writes into room the sink gives it (at most
    /// `max` bytes, maybe less, never none): the source reads straight into
    /// the sink's buffer, without a copy. `fill` returns how many bytes it
    /// wrote; so does this.
    ///
    /// # Errors
    /// As [`Sink::write`].
    fn write_with(
        &mut self,
        max: usize,
        fill: impl FnOnce(&mut [u8]) -> usize,
    ) -> Result<usize, Self::Error>;
    /// Stream bytes accepted so far.
    fn offset(&self) -> u64;
}

impl Sink for Vec<u8> {
    type Error = io::Error;
    fn write(&mut self, bytes: &[u8]) -> Result<(), io::Error> {
        self.extend_from_slice(bytes);
        Ok(())
    }
    fn write_with(
        &mut self,
        max: usize,
        fill: impl FnOnce(&mut [u8]) -> usize,
    ) -> Result<usize, io::Error> {
        let at = self.len();
        // Tests hand out odd-sized room, as the image writer does at the
        // end of each frame.
        self.resize(at + max.min(100_003), 0);
        let n = self.get_mut(at..).map_or(0, fill);
        self.truncate(at + n);
        Ok(n)
    }
    fn offset(&self) -> u64 {
        self.len() as u64
    }
}

/// Reads physical memory at an address.
pub trait PhysRead {
    /// Fills `buf` with the bytes at physical `phys`.
    ///
    /// # Errors
    /// Why the span cannot be read (the copy loop retries page by page and
    /// records what still fails).
    fn read_phys(&mut self, phys: u64, buf: &mut [u8]) -> io::Result<()>;
    /// Releases read input from the page cache, where that applies.
    fn drop_cache(&mut self) {}
}
