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

use std::ffi::{CString, OsStr};
use std::fs::File;
use std::io::{self, Read};
use std::net::{TcpStream, ToSocketAddrs};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use fv_core::fs::Dir;
use nix::errno::Errno;
use nix::fcntl::{OFlag, openat};
use nix::sys::stat::Mode;
use sha2::{Digest, Sha256};

use crate::physical::Roots;
use crate::{stop, sys};

/// LiME's module name (for `delete_module`).
pub const MODULE_NAME: &str = "lime";

/// [`LimeSourceError::NoStream`]'s message: never "within 0 s".
fn no_stream(path: &Path, fifo: &str, waited: u64) -> String {
    if waited == 0 {
        format!(
            "{} was loaded, and its init_module returned without writing a dump into {fifo}: is it LiME, built for this kernel, and not already loaded (lsmod | grep lime; rmmod lime)?",
            path.display()
        )
    } else {
        format!(
            "{} was loaded but never wrote its dump into {fifo} within {waited} s",
            path.display()
        )
    }
}

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
    /// `lime-module:auto`: the volume has no module for this kernel.
    #[error(
        "lime-module:auto: no LiME module for kernel {release} on this forensics volume: {path}: {source}. Build LiME for exactly this kernel (LiME's source, or Debian/Ubuntu's lime-forensics-dkms, against the headers of {release}) on a machine running the same kernel, copy lime.ko to {path} and run again; or give --source lime-module:PATH; or, without a module, --source auto (/proc/kcore, /dev/crash, /dev/mem)"
    )]
    NoModule {
        /// Where the module was looked for.
        path: PathBuf,
        /// `uname -r`.
        release: String,
        /// Why it could not be opened.
        #[source]
        source: io::Error,
    },
    /// Nothing listened within the timeout.
    #[error(
        "{addr}: no LiME module listening {} ({source}); is the module loaded with path=tcp:PORT?",
        if *waited == 0 { "(tried once, without waiting)".to_string() } else { format!("after {waited} s") }
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
    /// The module loaded but its stream never came (`waited` 0: its
    /// `init_module` returned before it wrote anything).
    #[error("{}", no_stream(path, fifo, *waited))]
    NoStream {
        /// Module path.
        path: PathBuf,
        /// Where it was to write.
        fifo: String,
        /// Seconds waited.
        waited: u64,
    },
    /// The TCP peer is a process, not LiME's kernel socket.
    #[error(
        "{addr}: the peer is {owner}, not LiME's kernel socket: it could be feeding a fabricated dump (or LiME's port was taken first). Refused; use lime-module, or --trust-lime-peer if you started that process yourself"
    )]
    UserPeer {
        /// Address.
        addr: String,
        /// `pid N (comm)`.
        owner: String,
    },
    /// The FIFO for the module could not be made.
    #[error("making the FIFO for the LiME module under {dir}: {source}")]
    Fifo {
        /// The directory.
        dir: PathBuf,
        /// Cause.
        #[source]
        source: io::Error,
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

/// The process that owns the other end of a loopback TCP connection, if
/// any: the peer's socket (local address = our peer, remote = us) is found
/// in `<proc>/net/tcp` or `tcp6` by address, then its inode among every
/// process's open fds (`readlink` only). LiME's kernel socket belongs to no
/// process; a user-space listener that got there first (to feed a fake
/// dump) does. Returns `pid (comm)`, or `None` when no process holds it.
///
/// # Errors
/// When the connection cannot be found in `net/tcp*` (nothing is proved).
pub fn peer_owner(proc_root: &Path, stream: &TcpStream) -> io::Result<Option<String>> {
    let ours = stream.local_addr()?;
    let peer = stream.peer_addr()?;
    // Until the peer accept()s, its end waits in the listener's queue with
    // no socket inode (0): wait a little for it to be accepted.
    let mut inode = None;
    for _ in 0..50 {
        inode = peer_inode(proc_root, peer, ours).filter(|&i| i != 0);
        if inode.is_some() || stop::requested().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let Some(inode) = inode else {
        return Err(io::Error::other(format!(
            "the connection {ours} -> {peer} was not accepted by a socket in {}/net/tcp within 5 s",
            proc_root.display()
        )));
    };
    let want = format!("socket:[{inode}]");
    for entry in std::fs::read_dir(proc_root)?.filter_map(Result::ok) {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
        else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(entry.path().join("fd")) else {
            continue;
        };
        for fd in fds.filter_map(Result::ok) {
            if std::fs::read_link(fd.path()).is_ok_and(|t| t.as_os_str() == want.as_str()) {
                let comm = std::fs::read_to_string(entry.path().join("comm")).unwrap_or_default();
                return Ok(Some(format!("pid {pid} ({})", comm.trim_end())));
            }
        }
    }
    Ok(None)
}

/// The socket inode of the connection whose local end is `local` and
/// remote end `remote`, from `net/tcp` and `net/tcp6`.
fn peer_inode(
    proc_root: &Path,
    local: std::net::SocketAddr,
    remote: std::net::SocketAddr,
) -> Option<u64> {
    for table in ["net/tcp", "net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(proc_root.join(table)) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            let (Some(l), Some(r), Some(ino)) = (f.get(1), f.get(2), f.get(9)) else {
                continue;
            };
            if parse_proc_addr(l) == Some(local) && parse_proc_addr(r) == Some(remote) {
                return ino.parse().ok();
            }
        }
    }
    None
}

/// An address of `/proc/net/tcp*`: hex IP in host byte order (IPv4: one
/// u32; IPv6: four), `:` hex port.
fn parse_proc_addr(s: &str) -> Option<std::net::SocketAddr> {
    let (ip, port) = s.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let ip: std::net::IpAddr = match ip.len() {
        8 => std::net::Ipv4Addr::from(u32::from_str_radix(ip, 16).ok()?.to_ne_bytes()).into(),
        32 => {
            let mut b = [0u8; 16];
            for (i, chunk) in b.chunks_mut(4).enumerate() {
                let w = u32::from_str_radix(ip.get(i * 8..i * 8 + 8)?, 16).ok()?;
                chunk.copy_from_slice(&w.to_ne_bytes());
            }
            let v6 = std::net::Ipv6Addr::from(b);
            v6.to_ipv4_mapped().map_or(v6.into(), Into::into)
        }
        _ => return None,
    };
    Some(std::net::SocketAddr::new(ip, port))
}

/// The FIFO a module we load writes its dump into: `/run/fv-lime.<pid>.<n>/
/// lime.fifo`, the directory made fresh with mode 0700 (so only root can
/// open the FIFO), the FIFO 0600; our end is open for reading before the
/// module is loaded. Both are removed when this is dropped.
#[derive(Debug)]
pub struct ModuleFifo {
    parent: Dir,
    name: String,
    dir: Dir,
    /// Path of the FIFO (the module's `path=` parameter).
    pub path: PathBuf,
    /// Our end, read-only and non-blocking (see [`ModuleFifo::wait_for_writer`]).
    pub reader: File,
}

/// The FIFO's name in its directory.
const FIFO_NAME: &str = "lime.fifo";

impl ModuleFifo {
    /// Makes the directory and the FIFO under `run` (`/run`), and opens our
    /// end.
    ///
    /// # Errors
    /// [`LimeSourceError::Fifo`].
    pub fn create(run: &Path) -> Result<Self, LimeSourceError> {
        let err = |source: io::Error| LimeSourceError::Fifo {
            dir: run.to_path_buf(),
            source,
        };
        let parent = Dir::open(run).map_err(|e| err(io::Error::other(e.to_string())))?;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let name = format!("fv-lime.{}.{nanos}", std::process::id());
        let dir = parent
            .create_dir(OsStr::new(&name))
            .map_err(|e| err(io::Error::other(e.to_string())))?;
        let made = nix::unistd::mkfifoat(&dir, FIFO_NAME, Mode::from_bits_truncate(0o600))
            .map_err(io::Error::from)
            .and_then(|()| {
                openat(
                    &dir,
                    FIFO_NAME,
                    OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                    Mode::empty(),
                )
                .map_err(io::Error::from)
            });
        let reader = match made {
            Ok(fd) => File::from(fd),
            Err(e) => {
                let _ = dir.remove_file(OsStr::new(FIFO_NAME));
                let _ = parent.remove_dir(OsStr::new(&name));
                return Err(err(e));
            }
        };
        // A larger pipe buffer: fewer wake-ups between LiME and us (best
        // effort; the default 64 KiB works too).
        let _ = nix::fcntl::fcntl(&reader, nix::fcntl::FcntlArg::F_SETPIPE_SZ(1 << 20));
        let path = run.join(&name).join(FIFO_NAME);
        Ok(Self {
            parent,
            name,
            dir,
            path,
            reader,
        })
    }

    /// Waits until the module has opened the FIFO for writing (its data, or
    /// its end, is readable), retrying every 200 ms until `timeout`, a stop
    /// signal, or `give_up` returns an error. A FIFO whose writer never came
    /// does not read as ended (Linux `pipe_poll`: no hang-up before a first
    /// writer), so this cannot mistake a module that failed for an empty
    /// dump.
    ///
    /// # Errors
    /// [`LimeSourceError::NoStream`] (with `module`), [`LimeSourceError::
    /// Interrupted`], or what `give_up` returns.
    pub fn wait_for_writer(
        &self,
        module: &Path,
        timeout: Duration,
        mut give_up: impl FnMut() -> Option<LimeSourceError>,
    ) -> Result<(), LimeSourceError> {
        use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
        let started = Instant::now();
        loop {
            let mut fds = [PollFd::new(self.reader.as_fd(), PollFlags::POLLIN)];
            match poll(&mut fds, PollTimeout::from(200u16)) {
                Ok(n) if n > 0 => return Ok(()),
                Ok(_) | Err(Errno::EINTR) => {}
                Err(e) => {
                    return Err(LimeSourceError::Fifo {
                        dir: self.path.clone(),
                        source: e.into(),
                    });
                }
            }
            if let Some(sig) = stop::requested() {
                return Err(LimeSourceError::Interrupted(stop::signal_name(sig)));
            }
            if let Some(e) = give_up() {
                return Err(e);
            }
            if started.elapsed() >= timeout {
                return Err(LimeSourceError::NoStream {
                    path: module.to_path_buf(),
                    fifo: self.path.display().to_string(),
                    waited: started.elapsed().as_secs(),
                });
            }
        }
    }
}

impl Drop for ModuleFifo {
    fn drop(&mut self) {
        let _ = self.dir.remove_file(OsStr::new(FIFO_NAME));
        let _ = self.parent.remove_dir(OsStr::new(&self.name));
    }
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
    let sha256 = crate::output::hex(&Sha256::digest(&bytes));
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 23: a module whose init_module returned without writing is not
    /// said to have been waited for "within 0 s".
    #[test]
    fn no_stream_without_a_wait_says_what_happened() {
        let e = LimeSourceError::NoStream {
            path: "/v/modules/6.1.0/lime.ko".into(),
            fifo: "/run/fv-lime.1.0/lime.fifo".into(),
            waited: 0,
        };
        let text = e.to_string();
        assert!(!text.contains("0 s"), "{text}");
        assert!(text.contains("returned without writing a dump"), "{text}");
        let e = LimeSourceError::NoStream {
            path: "/m/lime.ko".into(),
            fifo: "f".into(),
            waited: 60,
        };
        assert!(e.to_string().contains("within 60 s"), "{e}");
    }

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

    /// H2: the module's FIFO lives in a fresh directory only root can
    /// enter, is gone afterwards, and reads as "no writer yet" (not as an
    /// empty dump) until something opens it for writing.
    #[test]
    fn root_module_fifo_is_private_and_waits_for_its_writer() {
        use std::os::unix::fs::{FileTypeExt, MetadataExt};
        let run = tempfile::tempdir().unwrap();
        let fifo = ModuleFifo::create(run.path()).unwrap();
        let dir = fifo.path.parent().unwrap().to_path_buf();
        let dmeta = std::fs::symlink_metadata(&dir).unwrap();
        assert_eq!(dmeta.mode() & 0o777, 0o700);
        assert_eq!(dmeta.uid(), 0);
        let fmeta = std::fs::symlink_metadata(&fifo.path).unwrap();
        assert!(fmeta.file_type().is_fifo());
        assert_eq!(fmeta.mode() & 0o777, 0o600);
        // Nobody writing: no data, no end of stream; the wait times out.
        let err = fifo
            .wait_for_writer(Path::new("lime.ko"), Duration::from_millis(300), || None)
            .unwrap_err();
        assert!(matches!(err, LimeSourceError::NoStream { .. }), "{err}");
        // A writer comes, writes, leaves: readable, then the stream ends.
        let path = fifo.path.clone();
        let w = std::thread::spawn(move || {
            let mut f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
            std::io::Write::write_all(&mut f, b"EMiL").unwrap();
        });
        fifo.wait_for_writer(Path::new("lime.ko"), Duration::from_secs(10), || None)
            .unwrap();
        w.join().unwrap();
        let mut got = Vec::new();
        let mut r = &fifo.reader;
        let _ = r.read_to_end(&mut got);
        assert_eq!(got, b"EMiL");
        drop(fifo);
        assert!(!dir.exists(), "the directory is removed afterwards");
    }

    /// H2: a user-space TCP peer (this test process) is found as the owner
    /// of the other end; parsing of /proc/net/tcp addresses.
    #[test]
    fn a_user_space_peer_is_named() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let s = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (_accepted, _) = l.accept().unwrap();
        let owner = peer_owner(Path::new("/proc"), &s).unwrap();
        let me = format!("pid {} (", std::process::id());
        assert!(
            owner.as_deref().is_some_and(|o| o.starts_with(&me)),
            "{owner:?}"
        );
        assert_eq!(
            parse_proc_addr("0100007F:115C"),
            Some("127.0.0.1:4444".parse().unwrap())
        );
        assert_eq!(
            parse_proc_addr("00000000000000000000000001000000:115C"),
            Some("[::1]:4444".parse().unwrap())
        );
    }

    /// L6: the module's hash is of the bytes read through the fd that is
    /// loaded, even when the path is replaced after opening.
    #[test]
    fn module_is_hashed_through_the_fd_it_is_loaded_from() {
        let t = tempfile::tempdir().unwrap();
        let ko = t.path().join("lime.ko");
        std::fs::write(&ko, b"the module we checked").unwrap();
        let (mut file, bytes, sha) = read_module(&ko).unwrap();
        std::fs::write(t.path().join("other"), b"something else").unwrap();
        std::fs::rename(t.path().join("other"), &ko).unwrap();
        assert_eq!(bytes, b"the module we checked");
        assert_eq!(
            sha,
            crate::output::hex(&Sha256::digest(b"the module we checked"))
        );
        // The fd loaded still reads what was hashed.
        use std::io::Seek;
        file.rewind().unwrap();
        let mut again = Vec::new();
        file.read_to_end(&mut again).unwrap();
        assert_eq!(again, bytes);
    }
}
