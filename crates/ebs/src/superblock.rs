//! Filesystem identity read from the superblock, without mounting:
//! ext2/3/4 (superblock at byte 1024: magic 0xEF53 @1080, UUID @1128,
//! label @1144; FACTS.md) and XFS (magic `XFSB` @0, big-endian; for
//! evidence mode). Pure over `Read + Seek`.

use std::io::{Read, Seek, SeekFrom};

use serde::Serialize;

/// Which filesystem.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FsKind {
    /// ext2, ext3 or ext4 (mounted as `ext4`).
    Ext4,
    /// XFS.
    Xfs,
}

impl FsKind {
    /// The type name for mount(2).
    pub fn mount_type(self) -> &'static str {
        match self {
            Self::Ext4 => "ext4",
            Self::Xfs => "xfs",
        }
    }
}

/// What the superblock says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Superblock {
    /// Filesystem kind.
    pub kind: FsKind,
    /// Volume label, trimmed of NULs.
    pub label: String,
    /// UUID, lowercase 8-4-4-4-12.
    pub uuid: String,
    /// Filesystem block size in bytes.
    pub block_size: u64,
    /// Filesystem size in blocks.
    pub blocks: u64,
    /// ext4: the journal needs replay (an unclean shutdown); XFS: unknown (false).
    pub needs_recovery: bool,
    /// ext4 `64bit` feature (block counts beyond 2^32); XFS: true.
    pub bit64: bool,
}

impl Superblock {
    /// Filesystem size in bytes.
    pub fn size_bytes(&self) -> u64 {
        self.blocks.saturating_mul(self.block_size)
    }
}

/// The superblock could not be read or is not one we know.
#[derive(Debug, thiserror::Error)]
pub enum SuperblockError {
    /// Reading failed (or the device is too short).
    #[error("cannot read the superblock: {0}")]
    Io(#[from] std::io::Error),
    /// Neither ext2/3/4 nor XFS.
    #[error(
        "no ext4 or XFS filesystem (ext4 magic at byte 1080 is {ext4_magic:#06x}, XFS magic at 0 is {xfs_magic:?})"
    )]
    Unknown {
        /// What was at the ext4 magic offset.
        ext4_magic: u16,
        /// What was at the XFS magic offset.
        xfs_magic: String,
    },
    /// The ext4 block size field is out of range.
    #[error("ext4 superblock has an impossible block size (log {0})")]
    BadBlockSize(u32),
}

const EXT4_MAGIC: u16 = 0xEF53;
const EXT4_INCOMPAT_RECOVER: u32 = 0x4;
const EXT4_INCOMPAT_64BIT: u32 = 0x80;

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn be64(b: &[u8], at: usize) -> u64 {
    (u64::from(be32(b, at)) << 32) | u64::from(be32(b, at + 4))
}

/// Formats 16 bytes as a UUID.
pub fn format_uuid(b: &[u8]) -> String {
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    if hex.len() != 32 {
        return hex;
    }
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

fn label(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|b| *b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

/// Reads the superblock of the filesystem on `dev` (a block device or image).
///
/// # Errors
/// [`SuperblockError`].
pub fn read<R: Read + Seek>(dev: &mut R) -> Result<Superblock, SuperblockError> {
    let mut head = [0u8; 2048];
    dev.seek(SeekFrom::Start(0))?;
    dev.read_exact(&mut head)?;
    let sb = &head[1024..];
    let ext4_magic = u16::from_le_bytes([sb[56], sb[57]]);
    if ext4_magic == EXT4_MAGIC {
        let log = le32(sb, 24);
        if log > 6 {
            return Err(SuperblockError::BadBlockSize(log));
        }
        let incompat = le32(sb, 0x60);
        let mut blocks = u64::from(le32(sb, 4));
        if incompat & EXT4_INCOMPAT_64BIT != 0 {
            blocks |= u64::from(le32(sb, 0x150)) << 32;
        }
        return Ok(Superblock {
            kind: FsKind::Ext4,
            label: label(&sb[0x78..0x88]),
            uuid: format_uuid(&sb[0x68..0x78]),
            block_size: 1024u64 << log,
            blocks,
            needs_recovery: incompat & EXT4_INCOMPAT_RECOVER != 0,
            bit64: incompat & EXT4_INCOMPAT_64BIT != 0,
        });
    }
    if &head[0..4] == b"XFSB" {
        return Ok(Superblock {
            kind: FsKind::Xfs,
            label: label(&head[108..120]),
            uuid: format_uuid(&head[32..48]),
            block_size: u64::from(be32(&head, 4)),
            blocks: be64(&head, 8),
            needs_recovery: false,
            bit64: true,
        });
    }
    Err(SuperblockError::Unknown {
        ext4_magic,
        xfs_magic: String::from_utf8_lossy(&head[0..4]).into_owned(),
    })
}

/// Builds an ext4 superblock image (first 2048 bytes), for tests.
pub fn build_ext4(label: &str, uuid: [u8; 16], log_block: u32, blocks: u64) -> Vec<u8> {
    let mut img = vec![0u8; 2048];
    let sb = &mut img[1024..];
    sb[56..58].copy_from_slice(&EXT4_MAGIC.to_le_bytes());
    sb[24..28].copy_from_slice(&log_block.to_le_bytes());
    sb[4..8].copy_from_slice(&((blocks & 0xffff_ffff) as u32).to_le_bytes());
    if blocks > u64::from(u32::MAX) {
        sb[0x60..0x64].copy_from_slice(&EXT4_INCOMPAT_64BIT.to_le_bytes());
        sb[0x150..0x154].copy_from_slice(&((blocks >> 32) as u32).to_le_bytes());
    }
    sb[0x68..0x78].copy_from_slice(&uuid);
    let n = label.len().min(16);
    sb[0x78..0x78 + n].copy_from_slice(&label.as_bytes()[..n]);
    img
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    const UUID: [u8; 16] = [
        0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd,
        0xef,
    ];

    #[test]
    fn ext4_fields_at_their_absolute_offsets() {
        let img = build_ext4("FORENSICS", UUID, 2, 262_144);
        assert_eq!(&img[1080..1082], &[0x53, 0xef]);
        assert_eq!(&img[1128..1144], &UUID);
        assert_eq!(&img[1144..1153], b"FORENSICS");
        let sb = read(&mut Cursor::new(img)).unwrap();
        assert_eq!(sb.kind, FsKind::Ext4);
        assert_eq!(sb.label, "FORENSICS");
        assert_eq!(sb.uuid, "12345678-9abc-def0-0123-456789abcdef");
        assert_eq!(sb.block_size, 4096);
        assert_eq!(sb.size_bytes(), 1 << 30);
        assert!(!sb.needs_recovery);
        assert!(!sb.bit64);
    }

    #[test]
    fn ext4_64bit_block_count_and_full_label() {
        let img = build_ext4("ABCDEFGHIJKLMNOP", UUID, 2, (1 << 32) + 5);
        let sb = read(&mut Cursor::new(img)).unwrap();
        assert_eq!(sb.blocks, (1 << 32) + 5);
        assert!(sb.bit64);
        assert_eq!(sb.label, "ABCDEFGHIJKLMNOP");
    }

    #[test]
    fn xfs() {
        let mut img = vec![0u8; 2048];
        img[0..4].copy_from_slice(b"XFSB");
        img[4..8].copy_from_slice(&4096u32.to_be_bytes());
        img[8..16].copy_from_slice(&1000u64.to_be_bytes());
        img[32..48].copy_from_slice(&UUID);
        img[108..112].copy_from_slice(b"data");
        let sb = read(&mut Cursor::new(img)).unwrap();
        assert_eq!(sb.kind, FsKind::Xfs);
        assert_eq!(sb.label, "data");
        assert_eq!(sb.blocks, 1000);
        assert_eq!(sb.uuid, "12345678-9abc-def0-0123-456789abcdef");
    }

    #[test]
    fn unknown_short_and_bad() {
        let err = read(&mut Cursor::new(vec![0u8; 4096])).unwrap_err();
        assert!(
            matches!(err, SuperblockError::Unknown { ext4_magic: 0, .. }),
            "{err}"
        );
        let err = read(&mut Cursor::new(vec![0u8; 1500])).unwrap_err();
        assert!(matches!(err, SuperblockError::Io(_)), "{err}");
        let img = build_ext4("X", UUID, 40, 1);
        assert!(matches!(
            read(&mut Cursor::new(img)),
            Err(SuperblockError::BadBlockSize(40))
        ));
    }
}
