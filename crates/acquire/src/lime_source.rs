//! LiME inputs: a file or FIFO, stdin, a LiME module listening in TCP mode
//! (`path=tcp:PORT`), or a `lime.ko` we load ourselves in TCP mode on
//! loopback and unload afterwards.
//!
//! Facts (504ensicsLabs/LiME `src/tcp.c`, `doc/README.md`): in TCP mode the
//! module listens and sends the dump to the first client that connects;
//! `init_module` blocks until the dump is sent, so it runs in its own thread
//! while we connect and read.

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::net::{TcpListener, TcpStream, ToSocketAddrs};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use sha2::{Digest, Sha256};

use crate::physical::Roots;
use crate::{stop, sys};

/// LiME's module name (for `delete_module`).
pub const MODULE_NAME: &str = "lime";

/// Why a LiME source could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum LimeSourceError {
    /// The file cannot be opened.
    #[error("{path}: {source}")]
    Open {
        /// Path.
        path: PathBuf,
        /// Cause.
        #[source]
        source: io::Error,
    },
    /// Nothing listened within the timeout.
    #[error(
        "{addr}: no LiME module listening after {waited} s ({source}); is the module loaded with path=tcp:PORT?"
    )]
    Connect {
        /// Address.
        addr: String,
        /// Seconds waited.
        waited: u64,
        /// Last error.
        #[source]
        source: io::Error,
    },
    /// A stop signal came while connecting.
    #[error("interrupted by {0} before the LiME stream started")]
    Interrupted(String),
    /// The kernel refused the module.
    #[error("the kernel refused {path}: {errno}: {explanation}")]
    Refused {
        /// Module path.
        path: PathBuf,
        /// The errno.
        errno: Errno,
        /// What that means and what to do.
        explanation: String,
    },
    /// The module loaded but its stream never came.
    #[error("{path} was loaded but never served its dump on 127.0.0.1:{port} within {waited} s")]
    NoStream {
        /// Module path.
        path: PathBuf,
        /// Port.
        port: u16,
        /// Seconds waited.
        waited: u64,
    },
}

impl LimeSourceError {
    /// Whether the kernel refused the module.
    pub fn is_module_refusal(&self) -> bool {
        matches!(self, Self::Refused { .. } | Self::NoStream { .. })
    }
}

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

/// Connects to `host:port`, retrying every 200 ms until it accepts, the
/// timeout passes, a stop signal arrives, or `give_up` returns an error.
///
/// # Errors
/// [`LimeSourceError::Connect`], [`LimeSourceError::Interrupted`], or what
/// `give_up` returns.
pub fn connect(
    host: &str,
    port: u16,
    timeout: Duration,
    mut give_up: impl FnMut() -> Option<LimeSourceError>,
) -> Result<TcpStream, LimeSourceError> {
    let addr = format!("{host}:{port}");
    let started = Instant::now();
    loop {
        let err = match (host, port).to_socket_addrs() {
            Ok(mut addrs) => match addrs.next() {
                Some(a) => match TcpStream::connect_timeout(&a, Duration::from_secs(1)) {
                    Ok(s) => return Ok(s),
                    Err(e) => e,
                },
                None => io::Error::other("no address"),
            },
            Err(e) => e,
        };
        if let Some(sig) = stop::requested() {
            return Err(LimeSourceError::Interrupted(stop::signal_name(sig)));
        }
        if let Some(e) = give_up() {
            return Err(e);
        }
        if started.elapsed() >= timeout {
            return Err(LimeSourceError::Connect {
                addr,
                waited: started.elapsed().as_secs(),
                source: err,
            });
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A free loopback port for the module to listen on.
///
/// # Errors
/// The bind error.
pub fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// What the kernel's refusal means.
pub fn explain_refusal(errno: Errno, roots: &Roots) -> String {
    let lockdown = crate::physical::lockdown_mode(roots);
    let disabled = crate::physical::read_small(&roots.proc.join("sys/kernel/modules_disabled"), 16)
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
    /// SHA-256 of the module file.
    pub sha256: String,
    /// Parameters given.
    pub params: String,
    /// Port it listens on.
    pub port: u16,
    done: Arc<AtomicBool>,
    thread: Option<JoinHandle<Result<(), Errno>>>,
}

impl Module {
    /// Starts loading `path` with `path=tcp:PORT localhostonly=1
    /// format=lime timeout=0` (stop signals blocked in the loader thread).
    ///
    /// # Errors
    /// [`LimeSourceError::Open`].
    pub fn start(path: &Path, port: u16) -> Result<Self, LimeSourceError> {
        let open_err = |source| LimeSourceError::Open {
            path: path.to_path_buf(),
            source,
        };
        let bytes = std::fs::read(path).map_err(open_err)?;
        let sha256 = crate::output::hex(&Sha256::digest(&bytes));
        let file = File::open(path).map_err(open_err)?;
        // timeout=0: LiME built with LIME_SUPPORTS_TIMING zero-pads the REST
        // of a RAM range, silently, when one page takes over `timeout` ms
        // (default 1000) to go out, and over TCP that includes waiting for
        // us (docs/capture.md). Kernels ignore an unknown parameter with a
        // warning, so a LiME without it still loads.
        let params = format!("path=tcp:{port} localhostonly=1 format=lime timeout=0");
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
            port,
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
                port: self.port,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_explained() {
        let roots = Roots {
            proc: "/nonexistent/proc".into(),
            sys: "/nonexistent/sys".into(),
            dev: "/nonexistent/dev".into(),
        };
        assert!(explain_refusal(Errno::EKEYREJECTED, &roots).contains("signature"));
        assert!(explain_refusal(Errno::EINVAL, &roots).contains("another kernel"));
        assert!(explain_refusal(Errno::ENOEXEC, &roots).contains("architecture"));
        assert!(explain_refusal(Errno::EPERM, &roots).contains("CAP_SYS_MODULE"));
        assert!(explain_refusal(Errno::EEXIST, &roots).contains("rmmod lime"));
        // With lockdown on, EPERM names it.
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(t.path().join("kernel/security")).unwrap();
        std::fs::write(
            t.path().join("kernel/security/lockdown"),
            "none [integrity] confidentiality\n",
        )
        .unwrap();
        let roots = Roots {
            sys: t.path().into(),
            ..roots
        };
        assert!(explain_refusal(Errno::EPERM, &roots).contains("lockdown (integrity)"));
    }
}
