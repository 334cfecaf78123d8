//! A LiME module listening in TCP mode (`lime-tcp:ADDR:PORT`, by hand
//! only): the connection ([`connect`]) and who holds its other end
//! ([`peer_owner`]: LiME's kernel socket belongs to no process).

use std::io;
use std::net::{TcpStream, ToSocketAddrs};
use std::path::Path;
use std::time::{Duration, Instant};

use super::error::LimeSourceError;
use crate::stop;

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
pub(super) fn parse_proc_addr(s: &str) -> Option<std::net::SocketAddr> {
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
