//! LiME inputs: a file or FIFO, stdin, a LiME module listening in TCP mode
//! (`path=tcp:PORT`), or a `lime.ko` we load ourselves and unload
//! afterwards.
//!
//! A module we load writes in LiME's disk mode into a FIFO in a fresh
//! root-only directory under `/run` ([`ModuleFifo`]), never to a TCP port:
//! in TCP mode LiME sends the dump to the first client that connects, so
//! any local user who connects first gets all of physical memory, and one
//! who binds the port first feeds us a fake dump. Only root can reach the
//! FIFO's directory.
//!
//! Facts (504ensicsLabs/LiME `src/disk.c`, `src/tcp.c`, `doc/README.md`):
//! in disk mode the module `filp_open`s `path` write-only and writes the
//! dump with `kernel_write`, which a FIFO accepts (blocking while it is
//! full, so the dump goes at our pace); `init_module` blocks until the
//! dump is written, so it runs in its own thread while we read.

use std::ffi::CString;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use sha2::{Digest, Sha256};

use super::error::LimeSourceError;
use crate::hex::hex;
use crate::roots::{Roots, read_small};
use crate::source::physical::lockdown_mode;
use crate::{stop, sys};

/// LiME's module name (for `delete_module`).
pub const MODULE_NAME: &str = "lime";

/// What the kernel's refusal means.
pub fn explain_refusal(errno: Errno, roots: &Roots) -> String {
    let lockdown = lockdown_mode(roots);
    let disabled = read_small(&roots.proc.join("sys/kernel/modules_disabled"), 16)
        .ok()
        .is_some_and(|b| b.starts_with(b"1"));
    match errno {
        Errno::EKEYREJECTED => "the module's signature was rejected: this kernel enforces module signatures (Secure Boot or module.sig_enforce); a LiME module signed with a key the kernel trusts is needed".into(),
        Errno::EBADMSG => "the module's signature is malformed".into(),
        Errno::ENOKEY => "the module is signed with a key the kernel does not have".into(),
        Errno::EPERM if disabled => "module loading is disabled (kernel.modules_disabled=1); it stays disabled until reboot".into(),
        Errno::EPERM => match lockdown {
            Some(mode) => format!("kernel lockdown ({mode}) forbids loading unsigned modules"),
            None => "not permitted (needs CAP_SYS_MODULE; or an LSM denies it)".into(),
        },
        Errno::ENOEXEC => "not a loadable module for this kernel (wrong architecture or not an ELF module)".into(),
        Errno::EINVAL => "built for another kernel: version magic or symbol versions do not match the running kernel (dmesg says which); build LiME against this exact kernel release".into(),
        Errno::EEXIST => "a module named lime is already loaded; unload it (rmmod lime) and retry".into(),
        Errno::ENOSYS => "this kernel cannot load modules at all (built without CONFIG_MODULES, or a sandbox that blocks the module syscalls)".into(),
        Errno::ENOENT => "the module needs a symbol this kernel does not export (unknown symbol; see dmesg)".into(),
        _ => "see dmesg for the kernel's reason".into(),
    }
}

/// A `lime.ko` being loaded in its own thread.
#[derive(Debug)]
pub struct Module {
    /// Path of the module.
    pub path: PathBuf,
    /// SHA-256 of the module file, as loaded.
    pub sha256: String,
    /// Parameters given.
    pub params: String,
    /// Where it writes.
    pub fifo: PathBuf,
    done: Arc<AtomicBool>,
    thread: Option<JoinHandle<Result<(), Errno>>>,
}

/// Opens a module file once and reads it whole through that fd: the bytes
/// hashed are the bytes `finit_module` loads (it reads the same open file
/// from offset 0), whatever happens to the path meanwhile.
///
/// # Errors
/// The open or read error.
pub fn read_module(path: &Path) -> io::Result<(File, Vec<u8>, String)> {
    let mut file = File::open(path)?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    let sha256 = hex(&Sha256::digest(&bytes));
    Ok((file, bytes, sha256))
}

impl Module {
    /// Starts loading `path` in LiME's disk mode, writing into `fifo`
    /// (`path=FIFO format=lime timeout=0`), stop signals blocked in the
    /// loader thread.
    ///
    /// # Errors
    /// [`LimeSourceError::Open`].
    pub fn start(path: &Path, fifo: &Path) -> Result<Self, LimeSourceError> {
        let open_err = |source| LimeSourceError::Open {
            path: path.to_path_buf(),
            source,
        };
        let (file, bytes, sha256) = read_module(path).map_err(open_err)?;
        // timeout=0: LiME built with LIME_SUPPORTS_TIMING zero-pads the REST
        // of a RAM range, silently, when one page takes over `timeout` ms
        // (default 1000) to go out, and that includes waiting for us
        // (docs/capture.md). Kernels ignore an unknown parameter with a
        // warning, so a LiME without it still loads.
        let params = format!("path={} format=lime timeout=0", fifo.display());
        let cparams = CString::new(params.clone()).map_err(|e| open_err(io::Error::other(e)))?;
        let done = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&done);
        let thread = stop::with_signals_blocked(|| {
            std::thread::Builder::new()
                .name("lime-insmod".into())
                .spawn(move || {
                    let r = match sys::finit_module(file.as_fd(), &cparams) {
                        Err(Errno::ENOSYS) => sys::init_module(&bytes, &cparams),
                        other => other,
                    };
                    flag.store(true, Ordering::SeqCst);
                    r
                })
        })
        .map_err(open_err)?;
        Ok(Self {
            path: path.to_path_buf(),
            sha256,
            params,
            fifo: fifo.to_path_buf(),
            done,
            thread: Some(thread),
        })
    }

    /// If loading already failed, the refusal (consumes the result).
    pub fn refusal(&mut self, roots: &Roots) -> Option<LimeSourceError> {
        if !self.done.load(Ordering::SeqCst) {
            return None;
        }
        let t = self.thread.take()?;
        match t.join() {
            Ok(Err(errno)) => Some(LimeSourceError::Refused {
                path: self.path.clone(),
                errno,
                explanation: explain_refusal(errno, roots),
            }),
            // Loaded and returned without us connecting: it has nothing
            // more to send.
            Ok(Ok(())) | Err(_) => Some(LimeSourceError::NoStream {
                path: self.path.clone(),
                fifo: self.fifo.display().to_string(),
                waited: 0,
            }),
        }
    }

    /// Waits (up to `wait`) for `init_module` to return, then unloads the
    /// module. Returns a line for the manifest.
    pub fn finish(mut self, wait: Duration) -> String {
        let started = Instant::now();
        while !self.done.load(Ordering::SeqCst) && started.elapsed() < wait {
            std::thread::sleep(Duration::from_millis(100));
        }
        let load = match self.thread.take() {
            Some(t) if self.done.load(Ordering::SeqCst) => match t.join() {
                Ok(Ok(())) => "init_module returned 0".to_string(),
                Ok(Err(e)) => format!("init_module returned {e}"),
                Err(_) => "loader thread failed".to_string(),
            },
            Some(_) => format!("init_module still blocked after {} s", wait.as_secs()),
            None => "init_module result already reported".to_string(),
        };
        let unload = match CString::new(MODULE_NAME) {
            Ok(name) => match sys::delete_module(&name) {
                Ok(()) => "module unloaded".to_string(),
                Err(Errno::ENOENT) => "module not loaded (nothing to unload)".to_string(),
                Err(e) => format!("unloading the module failed: {e} (run rmmod lime)"),
            },
            Err(_) => "bad module name".to_string(),
        };
        format!("{load}; {unload}")
    }
}
