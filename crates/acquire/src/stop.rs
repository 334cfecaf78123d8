//! Stopping on SIGINT, SIGTERM and SIGHUP: the handler sets a flag
//! ([`requested`]); the copy loops check it between chunks, and
//! [`StopAware`] makes a blocking read of a pipe, FIFO or socket return
//! within a quarter second of a signal, and time out when the input stalls.
//! The run then finalizes a partial image instead of dying mid-write.

use std::io::{self, Read};
use std::os::fd::AsFd;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{SigSet, SigmaskHow, Signal, pthread_sigmask};

use crate::sys;

/// Installs the handlers (see [`sys::install_stop_handlers`]).
///
/// # Errors
/// The `sigaction` error.
pub fn install() -> Result<(), nix::errno::Errno> {
    sys::install_stop_handlers()
}

/// The stop signal received, if any.
pub fn requested() -> Option<i32> {
    match sys::STOP_SIGNAL.load(Ordering::SeqCst) {
        0 => None,
        n => Some(n),
    }
}

/// Clears the flag (tests run several captures in one process).
pub fn reset() {
    sys::STOP_SIGNAL.store(0, Ordering::SeqCst);
}

/// `SIGTERM`-style name of a signal number.
pub fn signal_name(sig: i32) -> String {
    Signal::try_from(sig).map_or_else(|_| format!("signal {sig}"), |s| s.as_str().to_string())
}

fn stop_set() -> SigSet {
    let mut set = SigSet::empty();
    set.add(Signal::SIGINT);
    set.add(Signal::SIGTERM);
    set.add(Signal::SIGHUP);
    set
}

/// Runs `f` with the stop signals blocked in the calling thread, so threads
/// spawned inside (the writer's pipeline, the module loader) inherit the
/// mask and the signal is delivered to the main thread, whose blocking read
/// it must interrupt.
pub fn with_signals_blocked<T>(f: impl FnOnce() -> T) -> T {
    let set = stop_set();
    let mut old = SigSet::empty();
    let blocked = pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&set), Some(&mut old)).is_ok();
    let out = f();
    if blocked {
        // Restoring the mask cannot fail with a valid set; if it did, the
        // signal would stay pending and be seen at the next check anyway.
        let _ = pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&old), None);
    }
    out
}

/// A reader that waits for data with `poll` in short slices, so it notices a
/// stop signal, and fails with `TimedOut` after `stall` without data.
#[derive(Debug)]
pub struct StopAware<R> {
    inner: R,
    stall: Duration,
}

impl<R> StopAware<R> {
    /// Wraps `inner`.
    pub fn new(inner: R, stall: Duration) -> Self {
        Self { inner, stall }
    }

    /// The wrapped reader.
    pub fn get_ref(&self) -> &R {
        &self.inner
    }
}

impl<R: Read + AsFd> Read for StopAware<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let started = Instant::now();
        loop {
            if let Some(sig) = requested() {
                return Err(io::Error::other(format!(
                    "interrupted by {}",
                    signal_name(sig)
                )));
            }
            let waited = started.elapsed();
            if waited >= self.stall {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("no data for {} s (stalled)", self.stall.as_secs()),
                ));
            }
            let slice = (self.stall - waited).min(Duration::from_millis(250));
            let mut fds = [PollFd::new(self.inner.as_fd(), PollFlags::POLLIN)];
            let timeout = PollTimeout::try_from(slice).unwrap_or(PollTimeout::MAX);
            match poll(&mut fds, timeout) {
                Ok(0) => continue,
                Ok(_) => {}
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(e.into()),
            }
            match self.inner.read(buf) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                other => return other,
            }
        }
    }
}
