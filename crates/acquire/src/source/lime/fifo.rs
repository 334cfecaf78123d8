//! Where the LiME FIFO is opened: [`ModuleFifo`] makes a root-only
//! directory under `/run` and a FIFO in it, opens our end before the module
//! is loaded, and waits for the module to open it for writing.

use std::ffi::OsStr;
use std::fs::File;
use std::io;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use fv_core::fs::Dir;
use nix::errno::Errno;
use nix::fcntl::{OFlag, openat};
use nix::sys::stat::Mode;

use super::error::LimeSourceError;
use crate::stop;

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
