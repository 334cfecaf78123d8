//! A LiME input that may be AVML's compressed image instead (`avml
//! --compress`, which AVML calls "LiME version 2"): told by its first eight
//! bytes, and then read through [`fv_formats::avml::Avml`] as the LiME
//! stream it stands for, so `capture --source lime:FILE` repackages it into
//! a capture like any LiME dump (issue 23). The AVML bytes as read are
//! hashed, so the manifest can name the file that was repackaged.
//!
//! Anything else passes through untouched (and unhashed: the LiME stream's
//! own digest is the image writer's).

use std::cell::RefCell;
use std::io::{self, Read};
use std::rc::Rc;

use fv_formats::avml::{Avml, is_avml};
use sha2::{Digest, Sha256};

/// What an AVML input was, once read.
#[derive(Debug, Default)]
struct Seen {
    hasher: Sha256,
    bytes: u64,
}

/// The first bytes, then the rest of the input; hashed for AVML.
#[derive(Debug)]
struct Prefixed<R> {
    head: [u8; 8],
    len: usize,
    pos: usize,
    inner: R,
    seen: Option<Rc<RefCell<Seen>>>,
}

impl<R: Read> Read for Prefixed<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = if self.pos < self.len {
            let n = (self.len - self.pos).min(buf.len());
            buf[..n].copy_from_slice(&self.head[self.pos..self.pos + n]);
            self.pos += n;
            n
        } else {
            self.inner.read(buf)?
        };
        if let Some(seen) = &self.seen {
            let mut s = seen.borrow_mut();
            s.hasher.update(&buf[..n]);
            s.bytes += n as u64;
        }
        Ok(n)
    }
}

#[derive(Debug)]
enum State<R: Read> {
    Start(Option<R>),
    Lime(Prefixed<R>),
    Avml(Avml<Prefixed<R>>),
}

/// A LiME input, or an AVML compressed image read as one.
#[derive(Debug)]
pub struct LimeOrAvml<R: Read> {
    state: State<R>,
    seen: Rc<RefCell<Seen>>,
}

impl<R: Read> LimeOrAvml<R> {
    /// Wraps `input`; nothing is read yet.
    pub fn new(input: R) -> Self {
        Self {
            state: State::Start(Some(input)),
            seen: Rc::default(),
        }
    }

    /// For an AVML input, what the manifest says of it: the format, the
    /// blocks repackaged, and the SHA-256 of the AVML bytes as read.
    pub fn note(&self) -> Option<String> {
        let State::Avml(a) = &self.state else {
            return None;
        };
        let seen = self.seen.borrow();
        let digest = crate::hex::hex(&seen.hasher.clone().finalize());
        Some(format!(
            "AVML compressed image (avml --compress, its 'LiME version 2': snappy-framed blocks), {} block(s) repackaged as LiME records of the same ranges and bytes; sha256 {digest} of the {} AVML bytes read",
            a.blocks(),
            seen.bytes
        ))
    }
}

impl<R: Read> Read for LimeOrAvml<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let State::Start(input) = &mut self.state {
            let Some(mut inner) = input.take() else {
                return Err(io::Error::other(
                    "the LiME input failed before its first bytes",
                ));
            };
            let mut head = [0u8; 8];
            let mut len = 0;
            while len < head.len() {
                match inner.read(&mut head[len..]) {
                    Ok(0) => break,
                    Ok(n) => len += n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
            let avml = is_avml(&head[..len]);
            let prefixed = Prefixed {
                head,
                len,
                pos: 0,
                inner,
                seen: avml.then(|| Rc::clone(&self.seen)),
            };
            self.state = if avml {
                State::Avml(Avml::new(prefixed))
            } else {
                State::Lime(prefixed)
            };
        }
        match &mut self.state {
            State::Start(_) => Ok(0),
            State::Lime(r) => r.read(buf),
            State::Avml(r) => r.read(buf),
        }
    }
}

/// Whether the file's first eight bytes (read in place, the position
/// untouched) are AVML's.
pub fn file_is_avml(file: &std::fs::File) -> bool {
    use std::os::unix::fs::FileExt;
    let mut head = [0u8; 8];
    matches!(file.read_at(&mut head, 0), Ok(8)) && is_avml(&head)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lime() -> Vec<u8> {
        let mut out = fv_formats::lime::Header::new(0x1000, 0x2fff)
            .to_bytes()
            .to_vec();
        out.extend((0..0x2000u32).map(|i| (i % 251) as u8));
        out
    }

    #[test]
    fn lime_passes_through_and_avml_is_repackaged_with_its_digest() {
        let plain = lime();
        let mut r = LimeOrAvml::new(&plain[..]);
        let mut got = Vec::new();
        r.read_to_end(&mut got).unwrap();
        assert!(got == plain);
        assert!(r.note().is_none());

        let mut avml = Vec::new();
        fv_formats::avml::write_block(&mut avml, 0x1000, 0x2fff, &plain[32..]).unwrap();
        let mut r = LimeOrAvml::new(&avml[..]);
        let mut got = Vec::new();
        r.read_to_end(&mut got).unwrap();
        assert!(got == plain);
        let note = r.note().unwrap();
        let digest = crate::hex::hex(&Sha256::digest(&avml));
        assert!(note.contains(&digest), "{note}");
        assert!(note.contains("1 block(s)"), "{note}");
        assert!(
            note.contains(&format!("the {} AVML bytes", avml.len())),
            "{note}"
        );
    }

    #[test]
    fn short_inputs_pass_through() {
        for input in [&b""[..], &b"LiM"[..]] {
            let mut r = LimeOrAvml::new(input);
            let mut got = Vec::new();
            r.read_to_end(&mut got).unwrap();
            assert_eq!(got, input);
        }
    }
}
