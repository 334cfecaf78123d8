//! The system calls `fv-acquire` needs that `nix` does not wrap (or wraps
//! behind features the workspace does not enable): signal handlers that only
//! set a flag, and the module syscalls (`finit_module`, `init_module`,
//! `delete_module`). Every `unsafe` block of the crate is here.

use std::ffi::CStr;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::sync::atomic::{AtomicI32, Ordering};

use nix::errno::Errno;
use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};

/// The last stop signal received (0: none).
pub(crate) static STOP_SIGNAL: AtomicI32 = AtomicI32::new(0);

extern "C" fn on_stop_signal(sig: libc::c_int) {
    // Async-signal-safe: one atomic store.
    STOP_SIGNAL.store(sig, Ordering::SeqCst);
}

/// Installs the flag-setting handler for SIGINT, SIGTERM and SIGHUP, without
/// `SA_RESTART`, so a blocking read returns `EINTR` and the copy loop sees
/// the flag.
///
/// # Errors
/// The `sigaction` error.
pub(crate) fn install_stop_handlers() -> Result<(), Errno> {
    let action = SigAction::new(
        SigHandler::Handler(on_stop_signal),
        SaFlags::empty(),
        SigSet::empty(),
    );
    for sig in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        // SAFETY: the handler only performs an atomic store, which is
        // async-signal-safe; no Rust state is touched from the handler.
        unsafe { sigaction(sig, &action) }?;
    }
    Ok(())
}

/// `finit_module(fd, params, 0)`.
///
/// # Errors
/// The kernel's errno (`ENOSYS` on kernels before 3.8).
pub(crate) fn finit_module(fd: BorrowedFd<'_>, params: &CStr) -> Result<(), Errno> {
    // SAFETY: the fd is open for the duration of the call and `params` is a
    // NUL-terminated string that outlives it; flags are 0.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_finit_module,
            fd.as_raw_fd(),
            params.as_ptr(),
            0 as libc::c_int,
        )
    };
    if rc == 0 { Ok(()) } else { Err(Errno::last()) }
}

/// `init_module(image, len, params)`.
///
/// # Errors
/// The kernel's errno.
pub(crate) fn init_module(image: &[u8], params: &CStr) -> Result<(), Errno> {
    // SAFETY: `image` is a valid buffer of `image.len()` bytes and `params` a
    // NUL-terminated string, both alive for the duration of the call.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_init_module,
            image.as_ptr(),
            image.len() as libc::c_ulong,
            params.as_ptr(),
        )
    };
    if rc == 0 { Ok(()) } else { Err(Errno::last()) }
}

/// `delete_module(name, O_NONBLOCK)`.
///
/// # Errors
/// The kernel's errno.
pub(crate) fn delete_module(name: &CStr) -> Result<(), Errno> {
    // SAFETY: `name` is NUL-terminated and alive for the call.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_delete_module,
            name.as_ptr(),
            libc::O_NONBLOCK as libc::c_uint,
        )
    };
    if rc == 0 { Ok(()) } else { Err(Errno::last()) }
}
