//! Seek-table entries in bounded memory.
//!
//! One entry per frame is 12 bytes: 24 TiB of RAM in 1 MiB frames would be
//! 300 MiB of entries, so they cannot simply stay in a `Vec`. The first
//! [`MEM_ENTRIES`] live in memory; past that, full batches are appended to an
//! anonymous spill file next to the output (created with `O_EXCL|O_NOFOLLOW`
//! through [`Dir`], then unlinked at once so a crash leaves nothing behind)
//! and read back in order when the table is written.

use std::ffi::OsString;
use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;

use fv_core::fs::{Dir, FsError};

use crate::seektable::{Entry, TableWriteError, TableWriter, entry_len};

/// Entries kept in memory before spilling: 768 KiB, i.e. 64 GiB of stream in
/// 1 MiB frames. Most captures never touch the spill file.
pub(super) const MEM_ENTRIES: usize = 64 * 1024;

const ENTRY_LEN: usize = entry_len(true);

/// Why the entry store failed.
#[derive(Debug, thiserror::Error)]
pub enum EntriesError {
    /// Creating the spill file failed.
    #[error("creating the seek-table spill file: {0}")]
    Create(#[source] FsError),
    /// Reading or writing the spill file failed.
    #[error("{path}: seek-table spill file: {op}: {source}")]
    Io {
        /// The spill file's (already unlinked) name.
        path: PathBuf,
        /// `write`, `read` or `truncate`.
        op: &'static str,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// Writing the table failed.
    #[error(transparent)]
    Table(#[from] TableWriteError),
}

impl EntriesError {
    /// The OS error, if any (e.g. `ENOSPC`).
    pub fn raw_os_error(&self) -> Option<i32> {
        match self {
            Self::Create(e) => e.raw_os_error(),
            Self::Io { source, .. } => source.raw_os_error(),
            Self::Table(TableWriteError::Io(e)) => e.raw_os_error(),
            Self::Table(_) => None,
        }
    }
}

/// The open spill file: a write handle and a read handle to one unlinked inode.
#[derive(Debug)]
struct Spill {
    write: File,
    read: File,
}

/// Seek-table entries, in order.
#[derive(Debug)]
pub(super) struct Entries {
    mem: Vec<Entry>,
    mem_cap: usize,
    spill: Option<Spill>,
    /// Entries in the spill file (all before `mem`).
    spilled: u64,
    dir: Dir,
    spill_name: OsString,
}

impl Entries {
    /// An empty store whose spill file, if ever needed, goes into `dir`
    /// under `spill_name`.
    pub(super) fn new(dir: Dir, spill_name: OsString, mem_cap: usize) -> Self {
        let mem_cap = mem_cap.max(1);
        Self {
            mem: Vec::with_capacity(mem_cap.min(4096)),
            mem_cap,
            spill: None,
            spilled: 0,
            dir,
            spill_name,
        }
    }

    fn spill_path(&self) -> PathBuf {
        self.dir.path().join(&self.spill_name)
    }

    fn io(&self, op: &'static str, source: io::Error) -> EntriesError {
        EntriesError::Io {
            path: self.spill_path(),
            op,
            source,
        }
    }

    /// Number of entries.
    pub(super) fn len(&self) -> u64 {
        self.spilled + self.mem.len() as u64
    }

    /// Whether a spill file was needed.
    #[cfg(test)]
    pub(super) fn spilled(&self) -> bool {
        self.spill.is_some()
    }

    fn open_spill(&mut self) -> Result<&Spill, EntriesError> {
        if self.spill.is_none() {
            let write = self
                .dir
                .create_file(&self.spill_name)
                .map_err(EntriesError::Create)?;
            let read = self.dir.open_file(&self.spill_name);
            // Unlink first, whatever the open did: the file must not outlive us.
            let removed = self.dir.remove_file(&self.spill_name);
            let read = read.map_err(EntriesError::Create)?;
            removed.map_err(EntriesError::Create)?;
            self.spill = Some(Spill { write, read });
        }
        match &self.spill {
            Some(s) => Ok(s),
            None => Err(self.io("open", io::Error::other("spill file vanished"))),
        }
    }

    /// Appends an entry; spills the in-memory batch first when it is full.
    ///
    /// # Errors
    /// Creating or writing the spill file.
    pub(super) fn push(&mut self, entry: Entry) -> Result<(), EntriesError> {
        if self.mem.len() == self.mem_cap {
            let mut buf = Vec::with_capacity(self.mem.len() * ENTRY_LEN);
            for e in &self.mem {
                buf.extend_from_slice(&encode(e));
            }
            let at = self.spilled * ENTRY_LEN as u64;
            let res = self.open_spill()?.write.write_all_at(&buf, at);
            res.map_err(|e| self.io("write", e))?;
            self.spilled += self.mem.len() as u64;
            self.mem.clear();
        }
        self.mem.push(entry);
        Ok(())
    }

    /// Keeps the first `n` entries.
    ///
    /// # Errors
    /// Reading back or truncating the spill file.
    pub(super) fn truncate(&mut self, n: u64) -> Result<(), EntriesError> {
        if n >= self.spilled {
            let keep = usize::try_from(n - self.spilled).unwrap_or(usize::MAX);
            self.mem.truncate(keep);
            return Ok(());
        }
        // The cut falls inside the spill file: bring its last partial batch
        // back into memory (at most `mem_cap` entries) and shorten the file.
        let batch_start = n - n % self.mem_cap as u64;
        let back = usize::try_from(n - batch_start).unwrap_or(0);
        let mut buf = vec![0u8; back * ENTRY_LEN];
        if let Some(spill) = &self.spill {
            let at = batch_start * ENTRY_LEN as u64;
            let res = spill.read.read_exact_at(&mut buf, at);
            res.map_err(|e| self.io("read", e))?;
            let res = spill.write.set_len(at);
            res.map_err(|e| self.io("truncate", e))?;
        }
        self.mem.clear();
        self.mem.extend(buf.chunks_exact(ENTRY_LEN).map(decode));
        self.spilled = batch_start;
        Ok(())
    }

    /// Pushes every entry, in order, into `table`.
    ///
    /// # Errors
    /// Reading the spill file or writing the table.
    pub(super) fn write_table<W: Write>(
        &self,
        table: &mut TableWriter<W>,
    ) -> Result<(), EntriesError> {
        if let Some(spill) = &self.spill {
            let mut buf = vec![0u8; 4096 * ENTRY_LEN];
            let mut done = 0u64;
            while done < self.spilled {
                let n = usize::try_from((self.spilled - done).min(4096)).unwrap_or(4096);
                let chunk = &mut buf[..n * ENTRY_LEN];
                let res = spill.read.read_exact_at(chunk, done * ENTRY_LEN as u64);
                res.map_err(|e| self.io("read", e))?;
                for raw in chunk.chunks_exact(ENTRY_LEN) {
                    table.push(decode(raw))?;
                }
                done += n as u64;
            }
        }
        for e in &self.mem {
            table.push(*e)?;
        }
        Ok(())
    }
}

fn encode(e: &Entry) -> [u8; ENTRY_LEN] {
    let mut b = [0u8; ENTRY_LEN];
    b[0..4].copy_from_slice(&e.compressed.to_le_bytes());
    b[4..8].copy_from_slice(&e.decompressed.to_le_bytes());
    b[8..12].copy_from_slice(&e.checksum.unwrap_or(0).to_le_bytes());
    b
}

fn decode(b: &[u8]) -> Entry {
    let word = |i: usize| {
        let mut w = [0u8; 4];
        if let Some(s) = b.get(i..i + 4) {
            w.copy_from_slice(s);
        }
        u32::from_le_bytes(w)
    };
    Entry {
        compressed: word(0),
        decompressed: word(4),
        checksum: Some(word(8)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(i: u32) -> Entry {
        Entry {
            compressed: i * 3 + 1,
            decompressed: 1 << 20,
            checksum: Some(i ^ 0xdead_beef),
        }
    }

    fn collect(e: &Entries) -> Vec<Entry> {
        let n = e.len();
        let mut t = TableWriter::new(Vec::new(), n, true).unwrap();
        e.write_table(&mut t).unwrap();
        let bytes = t.finish().unwrap();
        bytes[8..bytes.len() - 9]
            .chunks_exact(ENTRY_LEN)
            .map(decode)
            .collect()
    }

    #[test]
    fn spills_past_the_memory_cap_and_reads_back_in_order() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = Dir::open(tmp.path()).unwrap();
        let mut e = Entries::new(dir, OsString::from(".spill"), 5);
        for i in 0..23 {
            e.push(entry(i)).unwrap();
        }
        assert!(e.spilled());
        // The spill file is anonymous: nothing is left in the directory.
        assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
        let want: Vec<Entry> = (0..23).map(entry).collect();
        assert_eq!(collect(&e), want);
    }

    #[test]
    fn truncate_inside_memory_and_inside_the_spill() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = Dir::open(tmp.path()).unwrap();
        let mut e = Entries::new(dir, OsString::from(".spill"), 4);
        for i in 0..18 {
            e.push(entry(i)).unwrap();
        }
        e.truncate(17).unwrap();
        assert_eq!(collect(&e), (0..17).map(entry).collect::<Vec<_>>());
        e.truncate(6).unwrap();
        assert_eq!(e.len(), 6);
        assert_eq!(collect(&e), (0..6).map(entry).collect::<Vec<_>>());
        for i in 6..13 {
            e.push(entry(i + 100)).unwrap();
        }
        let want: Vec<Entry> = (0..6).chain(106..113).map(entry).collect();
        assert_eq!(collect(&e), want);
        e.truncate(0).unwrap();
        assert_eq!(e.len(), 0);
        assert!(collect(&e).is_empty());
    }

    #[test]
    fn small_stores_never_create_a_file() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = Dir::open(tmp.path()).unwrap();
        let mut e = Entries::new(dir, OsString::from(".spill"), MEM_ENTRIES);
        for i in 0..1000 {
            e.push(entry(i)).unwrap();
        }
        assert!(!e.spilled());
        assert_eq!(collect(&e).len(), 1000);
    }
}
