//! Test harness for the `capture` binary: a fake forensics volume, fixture
//! `/proc` `/sys` `/dev` trees (kcore ELF built in code, iomem text), the
//! expected LiME stream computed independently, and checks of the image and
//! manifest.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use fv_evidence::manifest::Manifest;
use fv_formats::kcore::{self, Segment};
use fv_formats::lime::Header;
use sha2::{Digest, Sha256};

pub const MARKER: &str = r#"{"toolkit":"forensics-volume","version":"0.1.0","format":1}"#;

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_capture")
}

/// The byte of "physical memory" at `p`: position-dependent, so a byte
/// read from the wrong place is caught.
pub fn mem_byte(p: u64) -> u8 {
    (p.wrapping_mul(0x9E37_79B1) >> 11) as u8 ^ (p >> 12) as u8
}

/// A temp dir with a forensics volume (`vol/`) and fixture roots.
pub struct Fixture {
    pub tmp: tempfile::TempDir,
}

impl Fixture {
    pub fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let f = Self { tmp };
        std::fs::create_dir_all(f.vol()).unwrap();
        std::fs::write(f.vol().join("forensics-volume.json"), MARKER).unwrap();
        for d in ["proc/sys/kernel/random", "proc/self", "sys/kernel", "dev"] {
            std::fs::create_dir_all(f.path().join(d)).unwrap();
        }
        std::fs::write(f.proc().join("version"), "Linux version 6.1.0-test\n").unwrap();
        // /sys/kernel/notes: one NT_GNU_BUILD_ID note.
        let mut notes = Vec::new();
        for w in [4u32, 4, 3] {
            notes.extend_from_slice(&w.to_le_bytes());
        }
        notes.extend_from_slice(b"GNU\0\x4a\x5a\x9b\x0a");
        std::fs::write(f.sys().join("kernel/notes"), notes).unwrap();
        std::fs::write(
            f.proc().join("sys/kernel/random/boot_id"),
            "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0\n",
        )
        .unwrap();
        f
    }
    pub fn path(&self) -> &Path {
        self.tmp.path()
    }
    pub fn vol(&self) -> PathBuf {
        self.path().join("vol")
    }
    pub fn captures(&self) -> PathBuf {
        self.vol().join("captures")
    }
    pub fn proc(&self) -> PathBuf {
        self.path().join("proc")
    }
    pub fn sys(&self) -> PathBuf {
        self.path().join("sys")
    }
    pub fn dev(&self) -> PathBuf {
        self.path().join("dev")
    }
    pub fn iomem(&self, text: &str) {
        std::fs::write(self.proc().join("iomem"), text).unwrap();
    }

    /// A `/proc/iomem` whose System RAM is exactly `ram` (a LiME stream of
    /// this host is checked against it).
    pub fn iomem_ram(&self, ram: &[(u64, u64)]) {
        let text: String = ram
            .iter()
            .map(|(s, e)| format!("{s:08x}-{e:08x} : System RAM\n"))
            .collect();
        self.iomem(&text);
    }

    /// `capture` with the fixture roots, output on the volume, no IMDS,
    /// small frames (so small images still have many frames).
    pub fn cmd(&self, source: &str) -> Command {
        self.cmd_to(source, &self.captures())
    }

    /// [`Fixture::cmd`] with another output root. The fixture's "volume" is a
    /// directory with a marker, not the forensics volume's device, so this
    /// passes `--allow-any-output`; [`Fixture::cmd_strict`] does not.
    pub fn cmd_to(&self, source: &str, output: &Path) -> Command {
        let mut c = self.cmd_strict(source, output);
        c.arg("--allow-any-output");
        c
    }

    /// [`Fixture::cmd_to`] without `--allow-any-output`.
    pub fn cmd_strict(&self, source: &str, output: &Path) -> Command {
        let mut c = Command::new(bin());
        c.arg("--source")
            .arg(source)
            .arg("--output")
            .arg(output)
            .arg("--proc-root")
            .arg(self.proc())
            .arg("--sys-root")
            .arg(self.sys())
            .arg("--dev-root")
            .arg(self.dev())
            .arg("--no-imds")
            .arg("--frame-size")
            .arg("65536")
            .arg("--threads")
            .arg("2");
        c
    }

    /// The single capture directory.
    pub fn capture_dir(&self) -> PathBuf {
        let dirs: Vec<_> = std::fs::read_dir(self.captures())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_dir())
            .collect();
        assert_eq!(dirs.len(), 1, "{dirs:?}");
        dirs.into_iter().next().unwrap()
    }

    /// Entries in the output root besides the lock file.
    pub fn capture_entries(&self) -> Vec<String> {
        match std::fs::read_dir(self.captures()) {
            Ok(rd) => rd
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| n != ".capture.lock")
                .collect(),
            Err(_) => vec![],
        }
    }
}

/// A kcore segment with the memory it maps (`fill`: write `mem_byte` of
/// its physical range at its offset; `alt`: write 0xEE instead, for
/// aliases that must not be the ones read).
pub struct Seg {
    pub seg: Segment,
    pub phys: Option<u64>,
    pub fill: Fill,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Fill {
    Memory,
    Marker,
    Nothing,
}

pub fn load(vaddr: u64, paddr: u64, len: u64, offset: u64) -> Segment {
    Segment {
        p_type: kcore::PT_LOAD,
        flags: 7,
        offset,
        vaddr,
        paddr,
        filesz: len,
        memsz: len,
    }
}

/// Writes `proc/kcore`: header + segment data.
pub fn write_kcore(f: &Fixture, machine: u16, segs: &[Seg]) {
    let mut all = vec![Segment {
        p_type: kcore::PT_NOTE,
        flags: 0,
        offset: 0x800,
        vaddr: 0,
        paddr: 0,
        filesz: 0x40,
        memsz: 0,
    }];
    all.extend(segs.iter().map(|s| s.seg));
    let header = kcore::encode(machine, &all);
    let file = File::create(f.proc().join("kcore")).unwrap();
    file.write_all_at(&header, 0).unwrap();
    for s in segs {
        let len = s.seg.filesz as usize;
        let data: Vec<u8> = match (s.fill, s.phys) {
            (Fill::Memory, Some(p)) => (0..len as u64).map(|i| mem_byte(p + i)).collect(),
            (Fill::Marker, _) => vec![0xEE; len],
            _ => continue,
        };
        file.write_all_at(&data, s.seg.offset).unwrap();
    }
}

/// The LiME stream the module would write for `ram`, with `readable(p)`
/// deciding whether a byte is memory or zero.
pub fn expected_lime(ram: &[(u64, u64)], readable: impl Fn(u64) -> bool) -> Vec<u8> {
    let mut out = Vec::new();
    for &(s, e) in ram {
        out.extend_from_slice(&Header::new(s, e).to_bytes());
        for p in s..=e {
            out.push(if readable(p) { mem_byte(p) } else { 0 });
        }
    }
    out
}

pub fn sha_hex(b: &[u8]) -> String {
    Sha256::digest(b)
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

pub fn decompress(path: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    zstd::stream::read::Decoder::new(File::open(path).unwrap())
        .unwrap()
        .read_to_end(&mut out)
        .unwrap();
    out
}

pub fn manifest(dir: &Path) -> Manifest {
    Manifest::from_json(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap()
}

/// Checks the image against the expected stream and the manifest against
/// both: hashes, lengths, ranges (with LiME offsets), sidecar, file list.
pub fn check_capture(dir: &Path, expected: &[u8], ram: &[(u64, u64)]) -> Manifest {
    let image = dir.join("memory.lime.zst");
    let got = decompress(&image);
    assert_eq!(got.len(), expected.len(), "LiME stream length");
    if got != expected {
        let first = got.iter().zip(expected).position(|(a, b)| a != b).unwrap();
        panic!("LiME stream differs first at stream offset {first:#x}");
    }
    let m = manifest(dir);
    assert_eq!(m.image.lime_sha256, sha_hex(expected));
    assert_eq!(m.image.lime_length, expected.len() as u64);
    let zst = std::fs::read(&image).unwrap();
    assert_eq!(m.image.compressed_sha256, sha_hex(&zst));
    assert_eq!(m.image.compressed_length, zst.len() as u64);
    let sidecar = std::fs::read_to_string(dir.join("memory.lime.zst.sha256")).unwrap();
    assert_eq!(sidecar, format!("{}  memory.lime.zst\n", sha_hex(&zst)));
    assert_eq!(m.ranges.len(), ram.len());
    let mut off = 0u64;
    for (r, &(s, e)) in m.ranges.iter().zip(ram) {
        assert_eq!(
            (r.start, r.end, r.length, r.lime_offset),
            (s, e, e - s + 1, off)
        );
        off += 32 + r.length;
    }
    for f in &m.files {
        let bytes = std::fs::read(dir.join(&f.path)).unwrap();
        assert_eq!(f.size, bytes.len() as u64, "{}", f.path);
        assert_eq!(f.sha256, sha_hex(&bytes), "{}", f.path);
    }
    assert!(m.files.iter().any(|f| f.path == "memory.lime.zst"));
    assert!(!dir.join(".reserve").exists(), "reserve released");
    m
}

pub fn run(c: &mut Command) -> Output {
    let out = c.output().unwrap();
    eprintln!(
        "--- exit {:?}\n--- stdout\n{}--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn require_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "needs root: capture refuses to run otherwise (run the tests as root, as CI does)"
    );
}

/// Runs `c` with `input` on its stdin (kept open for `hold` afterwards, as
/// a stalled peer would), sending SIGTERM after `term` if given; kills it
/// and fails the test if it has not ended `deadline` after the input went
/// in. Returns its output and how long it ran after the input.
pub fn run_with_stdin(
    c: &mut Command,
    input: Vec<u8>,
    hold: std::time::Duration,
    term: Option<std::time::Duration>,
    deadline: std::time::Duration,
) -> (Output, std::time::Duration) {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = c
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let feeder = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
        std::thread::sleep(hold);
    });
    let t = std::time::Instant::now();
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let mut termed = false;
    loop {
        if let Some(_st) = child.try_wait().unwrap() {
            break;
        }
        if let Some(after) = term
            && !termed
            && t.elapsed() >= after
        {
            nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
            termed = true;
        }
        if t.elapsed() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "still running {} s after its input: {}",
                deadline.as_secs(),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let took = t.elapsed();
    let out = child.wait_with_output().unwrap();
    drop(feeder);
    (out, took)
}
