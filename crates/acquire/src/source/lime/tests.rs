//! LiME sources: refusal texts, the module FIFO, the TCP peer check, the
//! module's hash.

use std::io::Read;
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

use nix::errno::Errno;
use sha2::{Digest, Sha256};

use super::error::LimeSourceError;
use super::fifo::ModuleFifo;
use super::module::{explain_refusal, read_module};
use super::tcp::{parse_proc_addr, peer_owner};
use crate::roots::Roots;

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
        crate::hex::hex(&Sha256::digest(b"the module we checked"))
    );
    // The fd loaded still reads what was hashed.
    use std::io::Seek;
    file.rewind().unwrap();
    let mut again = Vec::new();
    file.read_to_end(&mut again).unwrap();
    assert_eq!(again, bytes);
}
