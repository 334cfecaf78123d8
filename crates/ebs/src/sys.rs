//! Every ioctl the helpers use, and the only `unsafe` in the crate.
//!
//! Request numbers come from nix's `ioctl_*!` macros, which also get the
//! request type right on musl (it differs from glibc):
//! - `NVME_IOCTL_ADMIN_CMD = _IOWR('N', 0x41, struct nvme_admin_cmd)` =
//!   0xC0484E41 (linux/nvme_ioctl.h), 72-byte command.
//! - `BLKGETSIZE64 = _IOR(0x12, 114, size_t)`, `BLKROSET = _IO(0x12, 93)`,
//!   `BLKROGET = _IO(0x12, 94)`, `BLKFLSBUF = _IO(0x12, 97)` (linux/fs.h).
//! - `EXT4_IOC_RESIZE_FS = _IOW('f', 16, __u64)` = 0x40086610.

use std::os::fd::{AsFd, AsRawFd};

use nix::errno::Errno;

use crate::identify::IDENTIFY_LEN;

/// `struct nvme_admin_cmd` (= `nvme_passthru_cmd`), 72 bytes.
#[repr(C)]
#[derive(Debug, Default)]
pub struct NvmeAdminCmd {
    opcode: u8,
    flags: u8,
    rsvd1: u16,
    nsid: u32,
    cdw2: u32,
    cdw3: u32,
    metadata: u64,
    addr: u64,
    metadata_len: u32,
    data_len: u32,
    cdw10: u32,
    cdw11: u32,
    cdw12: u32,
    cdw13: u32,
    cdw14: u32,
    cdw15: u32,
    timeout_ms: u32,
    result: u32,
}

const _: () = assert!(std::mem::size_of::<NvmeAdminCmd>() == 72);

nix::ioctl_readwrite!(nvme_admin_cmd, b'N', 0x41, NvmeAdminCmd);
nix::ioctl_read!(blk_getsize64, 0x12, 114, u64);
nix::ioctl_write_ptr_bad!(blk_roset, nix::request_code_none!(0x12, 93), libc::c_int);
nix::ioctl_read_bad!(blk_roget, nix::request_code_none!(0x12, 94), libc::c_int);
nix::ioctl_none!(blk_flsbuf, 0x12, 97);
nix::ioctl_write_ptr!(ext4_resize_fs, b'f', 16, u64);

/// NVMe admin opcode Identify.
const OPCODE_IDENTIFY: u8 = 0x06;
/// CNS 1: Identify Controller.
const CNS_CONTROLLER: u32 = 1;

/// Sends Identify Controller to the NVMe device open at `fd` (a namespace
/// block device or the controller's character device). Needs CAP_SYS_ADMIN.
///
/// # Errors
/// The errno: `EACCES`/`EPERM` without privilege, `ENOTTY` when `fd` is not
/// an NVMe device, `EIO` when the controller reports an error status.
pub fn nvme_identify_controller(fd: &impl AsFd) -> Result<Vec<u8>, Errno> {
    let mut data = vec![0u8; IDENTIFY_LEN];
    let mut cmd = NvmeAdminCmd {
        opcode: OPCODE_IDENTIFY,
        addr: data.as_mut_ptr() as u64,
        data_len: IDENTIFY_LEN as u32,
        cdw10: CNS_CONTROLLER,
        ..NvmeAdminCmd::default()
    };
    // SAFETY: `cmd` is a valid, exclusively borrowed nvme_admin_cmd whose
    // `addr`/`data_len` describe `data`, a live 4096-byte buffer the kernel
    // writes at most `data_len` bytes into; both outlive the call.
    let status = unsafe { nvme_admin_cmd(fd.as_fd().as_raw_fd(), &mut cmd) }?;
    if status != 0 {
        // A positive return is the NVMe status field: the command failed.
        return Err(Errno::EIO);
    }
    Ok(data)
}

/// Size of the block device open at `fd`, in bytes.
///
/// # Errors
/// The errno (`ENOTTY` for a non-block file).
pub fn block_size_bytes(fd: &impl AsFd) -> Result<u64, Errno> {
    let mut size: u64 = 0;
    // SAFETY: BLKGETSIZE64 writes one u64 to the pointer, which is valid.
    unsafe { blk_getsize64(fd.as_fd().as_raw_fd(), &mut size) }?;
    Ok(size)
}

/// Sets (or clears) the kernel's read-only flag of the block device.
///
/// # Errors
/// The errno (`EACCES` without CAP_SYS_ADMIN).
pub fn block_set_read_only(fd: &impl AsFd, read_only: bool) -> Result<(), Errno> {
    let flag: libc::c_int = libc::c_int::from(read_only);
    // SAFETY: BLKROSET reads one int from the pointer, which is valid.
    unsafe { blk_roset(fd.as_fd().as_raw_fd(), &flag) }?;
    Ok(())
}

/// Whether the kernel's read-only flag of the block device is set.
///
/// # Errors
/// The errno.
pub fn block_is_read_only(fd: &impl AsFd) -> Result<bool, Errno> {
    let mut flag: libc::c_int = 0;
    // SAFETY: BLKROGET writes one int to the pointer, which is valid.
    unsafe { blk_roget(fd.as_fd().as_raw_fd(), &mut flag) }?;
    Ok(flag != 0)
}

/// Writes back and drops the block device's buffer cache (`BLKFLSBUF`).
///
/// # Errors
/// The errno.
pub fn block_flush_buffers(fd: &impl AsFd) -> Result<(), Errno> {
    // SAFETY: BLKFLSBUF takes no argument.
    unsafe { blk_flsbuf(fd.as_fd().as_raw_fd()) }?;
    Ok(())
}

/// Grows the mounted ext4 filesystem (any fd on it, e.g. its root
/// directory) to `blocks` filesystem blocks.
///
/// # Errors
/// The errno (`EINVAL` for a shrink, `EOPNOTSUPP` without resize support).
pub fn ext4_resize(fd: &impl AsFd, blocks: u64) -> Result<(), Errno> {
    // SAFETY: EXT4_IOC_RESIZE_FS reads one u64 from the pointer, which is valid.
    unsafe { ext4_resize_fs(fd.as_fd().as_raw_fd(), &blocks) }?;
    Ok(())
}
