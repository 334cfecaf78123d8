//! Writes a deterministic, realistic LiME memory image for the benchmark.
//!
//! `fv-bench-gen OUT [--scale N]`: three System RAM records shaped like a
//! small EC2 instance's `/proc/iomem` (the first one ends off a page
//! boundary, as real firmware maps do), 2.25 GiB of RAM at scale 1.
//!
//! Memory is modelled as runs of pages of one kind, the way real RAM is laid
//! out in regions (a file in the page cache, a heap, a free list):
//! zero pages, stale free pages (old data with a zeroed tail), x86-64-like
//! machine code, text (logs, paths, prose), kernel data structures
//! (pointers into the direct map, counters, list heads), page tables, and
//! high-entropy pages (compressed files, ciphertext, keys). Same seed, same
//! bytes, so every tool in the benchmark reads the same input.

use std::io::{BufWriter, Write};
use std::process::ExitCode;

const PAGE: usize = 4096;
const MAGIC: u32 = 0x4C69_4D45;

/// xoshiro256** (public domain), seeded by splitmix64.
struct Rng([u64; 4]);

impl Rng {
    fn new(seed: u64) -> Self {
        let mut z = seed;
        let mut s = [0u64; 4];
        for w in &mut s {
            z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut x = z;
            x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            *w = x ^ (x >> 31);
        }
        Self(s)
    }
    fn next(&mut self) -> u64 {
        let s = &mut self.0;
        let result = s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }
    fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next()) * u128::from(n)) >> 64) as u64
    }
}

#[derive(Clone, Copy, Debug)]
enum Kind {
    Zero,
    Free,
    Code,
    Text,
    Struct,
    PageTable,
    Entropy,
}

/// Share of runs of each kind (percent).
const MIX: [(Kind, u64); 7] = [
    (Kind::Zero, 32),
    (Kind::Free, 14),
    (Kind::Code, 14),
    (Kind::Text, 14),
    (Kind::Struct, 14),
    (Kind::PageTable, 4),
    (Kind::Entropy, 8),
];

const WORDS: &[&str] = &[
    "the",
    "of",
    "and",
    "to",
    "in",
    "is",
    "for",
    "that",
    "with",
    "on",
    "as",
    "by",
    "this",
    "kernel",
    "memory",
    "page",
    "process",
    "file",
    "system",
    "user",
    "root",
    "error",
    "warning",
    "info",
    "debug",
    "connection",
    "request",
    "response",
    "server",
    "client",
    "session",
    "token",
    "instance",
    "volume",
    "device",
    "mount",
    "network",
    "interface",
    "address",
    "packet",
    "received",
    "sent",
    "failed",
    "success",
    "started",
    "stopped",
    "service",
    "daemon",
    "systemd",
    "sshd",
    "nginx",
    "python3",
    "java",
    "GET",
    "POST",
    "HTTP/1.1",
    "200",
    "404",
    "500",
    "/usr/lib/x86_64-linux-gnu/",
    "/var/log/",
    "/etc/",
    "/home/ec2-user/",
    "/proc/self/",
    ".so.6",
    ".conf",
    ".json",
    "Accepted",
    "publickey",
    "for",
    "from",
    "port",
    "ssh2:",
    "RSA",
    "SHA256:",
    "Nov",
    "26",
    "17:42:01",
    "ip-10-0-1-23",
    "amazon",
    "aws",
    "us-east-1",
    "i-0abc123def4567890",
    "{\"level\":",
    "\"msg\":",
    "\"ts\":",
    "null",
    "true",
    "false",
    "return",
    "function",
    "const",
    "let",
    "var",
    "import",
    "def",
    "class",
    "self",
    "value",
    "key",
    "data",
    "buffer",
    "size",
    "length",
    "count",
    "index",
];

fn fill_text(rng: &mut Rng, page: &mut [u8]) {
    let mut i = 0;
    while i < page.len() {
        let r = rng.below(100);
        let word: Vec<u8> = if r < 8 {
            format!("{}", rng.below(100_000)).into_bytes()
        } else if r < 11 {
            format!("{:x}", rng.next() >> 16).into_bytes()
        } else {
            WORDS[rng.below(WORDS.len() as u64) as usize]
                .as_bytes()
                .to_vec()
        };
        for &b in word
            .iter()
            .chain(if rng.below(12) == 0 { b"\n" } else { b" " })
        {
            if i < page.len() {
                page[i] = b;
                i += 1;
            }
        }
    }
}

/// Instruction templates: bytes, then how many random immediate bytes.
const INSNS: &[(&[u8], usize)] = &[
    (&[0x55], 0),                         // push rbp
    (&[0x48, 0x89, 0xe5], 0),             // mov rbp, rsp
    (&[0x48, 0x83, 0xec], 1),             // sub rsp, imm8
    (&[0x48, 0x8b, 0x45], 1),             // mov rax, [rbp+d8]
    (&[0x48, 0x89, 0x45], 1),             // mov [rbp+d8], rax
    (&[0x8b, 0x55], 1),                   // mov edx, [rbp+d8]
    (&[0x48, 0x8d, 0x3d], 4),             // lea rdi, [rip+d32]
    (&[0xe8], 4),                         // call rel32
    (&[0x74], 1),                         // je rel8
    (&[0x75], 1),                         // jne rel8
    (&[0x0f, 0x84], 4),                   // je rel32
    (&[0x31, 0xc0], 0),                   // xor eax, eax
    (&[0x48, 0x85, 0xc0], 0),             // test rax, rax
    (&[0x83, 0xf8], 1),                   // cmp eax, imm8
    (&[0xb8], 4),                         // mov eax, imm32
    (&[0x41, 0x54], 0),                   // push r12
    (&[0x41, 0x5c], 0),                   // pop r12
    (&[0x0f, 0x1f, 0x44, 0x00, 0x00], 0), // nop
    (&[0x48, 0x8b, 0x07], 0),             // mov rax, [rdi]
    (&[0x89, 0xc7], 0),                   // mov edi, eax
];

fn fill_code(rng: &mut Rng, page: &mut [u8]) {
    let mut i = 0;
    while i < page.len() {
        // One function: body, epilogue, int3 padding to 16 bytes.
        let body = 4 + rng.below(40);
        let mut out: Vec<u8> = Vec::with_capacity(256);
        for _ in 0..body {
            let (op, imm) = INSNS[rng.below(INSNS.len() as u64) as usize];
            out.extend_from_slice(op);
            let v = rng.next();
            // Displacements and immediates are small: high bytes 0 or 0xff.
            let small = (v >> 8) as i32 % 4096;
            out.extend_from_slice(&small.to_le_bytes()[..imm]);
        }
        out.extend_from_slice(&[0x5d, 0xc3]); // pop rbp; ret
        while !out.len().is_multiple_of(16) {
            out.push(0xcc);
        }
        for b in out {
            if i < page.len() {
                page[i] = b;
                i += 1;
            }
        }
    }
}

fn fill_struct(rng: &mut Rng, page: &mut [u8], layout: u64) {
    // One struct layout per run: a 64- or 128-byte record of pointers into
    // the direct map, counters, flags and padding.
    let size = if layout.is_multiple_of(2) { 64 } else { 128 };
    for rec in page.chunks_mut(size) {
        for (f, field) in rec.chunks_mut(8).enumerate() {
            let v: u64 = match (f as u64 + layout) % 5 {
                0 | 1 => 0xffff_8880_0000_0000 | (rng.below(1 << 31) & !0x3f),
                2 => rng.below(64),
                3 => 0,
                _ => (layout << 32) | rng.below(3),
            };
            field.copy_from_slice(&v.to_le_bytes()[..field.len()]);
        }
    }
}

fn fill_page_table(rng: &mut Rng, page: &mut [u8]) {
    for e in page.chunks_mut(8) {
        let v = if rng.below(4) == 0 {
            0x8000_0000_0000_0063 | (rng.below(1 << 19) << 12)
        } else {
            0
        };
        e.copy_from_slice(&v.to_le_bytes());
    }
}

fn fill_entropy(rng: &mut Rng, page: &mut [u8]) {
    for w in page.chunks_mut(8) {
        w.copy_from_slice(&rng.next().to_le_bytes());
    }
}

fn fill(rng: &mut Rng, kind: Kind, layout: u64, page: &mut [u8]) {
    match kind {
        Kind::Zero => page.fill(0),
        Kind::Free => {
            // Stale: whatever the page last held, with a zeroed tail.
            let old = [Kind::Code, Kind::Text, Kind::Struct, Kind::Entropy][rng.below(4) as usize];
            fill(rng, old, layout, page);
            let keep = rng.below(PAGE as u64) as usize;
            page[keep..].fill(0);
        }
        Kind::Code => fill_code(rng, page),
        Kind::Text => fill_text(rng, page),
        Kind::Struct => fill_struct(rng, page, layout),
        Kind::PageTable => fill_page_table(rng, page),
        Kind::Entropy => fill_entropy(rng, page),
    }
}

fn pick(rng: &mut Rng) -> Kind {
    let total: u64 = MIX.iter().map(|m| m.1).sum();
    let mut r = rng.below(total);
    for (k, w) in MIX {
        if r < w {
            return k;
        }
        r -= w;
    }
    Kind::Zero
}

fn header(start: u64, end: u64) -> [u8; 32] {
    let mut h = [0u8; 32];
    h[0..4].copy_from_slice(&MAGIC.to_le_bytes());
    h[4..8].copy_from_slice(&1u32.to_le_bytes());
    h[8..16].copy_from_slice(&start.to_le_bytes());
    h[16..24].copy_from_slice(&end.to_le_bytes());
    h
}

fn run(out: &str, scale: u64) -> std::io::Result<u64> {
    // iomem-like System RAM ranges (inclusive ends).
    let ranges = [
        (0x1000u64, 0x9fbffu64),
        (0x10_0000, 0x7ffd_9fff),
        (0x1_0000_0000, 0x1_0000_0000 + scale * 0x1000_0000 - 1),
    ];
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(out)?;
    let mut w = BufWriter::with_capacity(1 << 20, file);
    let mut rng = Rng::new(0x0fe5_e1c5_2026);
    let mut page = vec![0u8; PAGE];
    let (mut kind, mut layout, mut left) = (Kind::Zero, 0u64, 0u64);
    let mut total = 0u64;
    for (start, end) in ranges {
        w.write_all(&header(start, end))?;
        let mut remaining = end - start + 1;
        while remaining > 0 {
            if left == 0 {
                kind = pick(&mut rng);
                layout = rng.below(1000);
                // Runs of 1 to 1024 pages, short ones more common.
                let bits = rng.below(11);
                left = 1 + rng.below(1 << bits);
            }
            fill(&mut rng, kind, layout, &mut page);
            left -= 1;
            let n = remaining.min(PAGE as u64) as usize;
            w.write_all(&page[..n])?;
            remaining -= n as u64;
        }
        total += 32 + (end - start + 1);
    }
    w.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    Ok(total)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (out, scale) = match args.as_slice() {
        [out] => (out.clone(), 1),
        [out, flag, n] if flag == "--scale" => match n.parse::<u64>() {
            Ok(n) if n >= 1 => (out.clone(), n),
            _ => {
                eprintln!("fv-bench-gen: --scale takes a positive integer");
                return ExitCode::from(2);
            }
        },
        _ => {
            eprintln!(
                "usage: fv-bench-gen OUT [--scale N]   (writes a new LiME file; refuses to overwrite)"
            );
            return ExitCode::from(2);
        }
    };
    match run(&out, scale) {
        Ok(n) => {
            println!("{out}: {n} bytes of LiME");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("fv-bench-gen: {out}: {e}");
            ExitCode::FAILURE
        }
    }
}
