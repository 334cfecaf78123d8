//! Checks of what `./build.sh` shipped in `dist/`: static binaries of the right
//! architecture and size that run, and an image whose label, marker and
//! `SHA256SUMS` are right when read back out of it without mounting.
//!
//! These need `./build.sh` to have run first (`./build.sh test` does that).

// Test code: a panic is a failed test, which is what a failed check should be.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

use sha2::{Digest, Sha256};

const BINS: [&str; 3] = ["capture", "mount-helper", "unmount-helper"];
const MAX_SIZE: u64 = 4 * 1024 * 1024;
const EM_X86_64: u16 = 62;
const EM_AARCH64: u16 = 183;
const PT_DYNAMIC: u32 = 2;
const PT_INTERP: u32 = 3;
const DT_NULL: i64 = 0;
const DT_NEEDED: i64 = 1;

fn dist() -> PathBuf {
    let dist = fv_tests::dist_dir();
    assert!(
        dist.join("forensics-volume.img").is_file(),
        "{} has no forensics-volume.img: run ./build.sh first",
        dist.display()
    );
    dist
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes(b[at..at + 2].try_into().unwrap())
}
fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}
fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

/// What the program headers of an ELF64 little-endian executable say.
#[derive(Debug)]
struct ElfFacts {
    machine: u16,
    interpreter: bool,
    needed: usize,
}

fn elf_facts(bytes: &[u8]) -> ElfFacts {
    assert_eq!(&bytes[..4], b"\x7fELF", "not an ELF file");
    assert_eq!(bytes[4], 2, "not ELF64");
    assert_eq!(bytes[5], 1, "not little-endian");
    let machine = u16_at(bytes, 18);
    let phoff = u64_at(bytes, 32) as usize;
    let phentsize = u16_at(bytes, 54) as usize;
    let phnum = u16_at(bytes, 56) as usize;
    let mut facts = ElfFacts {
        machine,
        interpreter: false,
        needed: 0,
    };
    for i in 0..phnum {
        let ph = &bytes[phoff + i * phentsize..phoff + (i + 1) * phentsize];
        match u32_at(ph, 0) {
            PT_INTERP => facts.interpreter = true,
            PT_DYNAMIC => {
                let (off, size) = (u64_at(ph, 8) as usize, u64_at(ph, 32) as usize);
                for entry in bytes[off..off + size].chunks_exact(16) {
                    let tag = u64_at(entry, 0) as i64;
                    if tag == DT_NULL {
                        break;
                    }
                    if tag == DT_NEEDED {
                        facts.needed += 1;
                    }
                }
            }
            _ => {}
        }
    }
    facts
}

fn binary(arch: &str, name: &str) -> PathBuf {
    dist().join("volume/bin").join(arch).join(name)
}

#[test]
fn dist_binaries_are_static_right_arch_and_small() {
    let mut report = String::new();
    for (arch, machine) in [("x86_64", EM_X86_64), ("aarch64", EM_AARCH64)] {
        for name in BINS {
            let path = binary(arch, name);
            let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let facts = elf_facts(&bytes);
            assert_eq!(
                facts.machine,
                machine,
                "{}: wrong architecture",
                path.display()
            );
            assert!(
                !facts.interpreter,
                "{}: has a program interpreter (not static)",
                path.display()
            );
            assert_eq!(
                facts.needed,
                0,
                "{}: has DT_NEEDED entries (not static)",
                path.display()
            );
            let size = bytes.len() as u64;
            report.push_str(&format!("  {arch}/{name}: {size} bytes\n"));
            assert!(
                size < MAX_SIZE,
                "{}: {size} bytes, over the 4 MiB budget",
                path.display()
            );
        }
    }
    // Shown with --nocapture, and in the failure output above.
    println!("binary sizes:\n{report}");
}

#[test]
fn elf_check_would_catch_a_dynamic_binary() {
    // The check above must be able to fail: a dynamically linked host binary
    // has an interpreter and DT_NEEDED entries.
    let facts = elf_facts(&std::fs::read("/bin/sh").unwrap());
    assert!(facts.interpreter && facts.needed > 0, "{facts:?}");
}

fn version_line(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(out.status.success(), "{cmd:?}: {:?}", out);
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn dist_binaries_run_on_both_architectures() {
    let marker = marker_from_image();
    let commit = marker["git_commit"].as_str().unwrap().to_string();
    for name in BINS {
        let native = version_line(Command::new(binary("x86_64", name)).arg("--version"));
        let qemu = Command::new("qemu-aarch64-static")
            .arg("--version")
            .output();
        assert!(
            qemu.is_ok_and(|o| o.status.success()),
            "qemu-aarch64-static is missing: ./build.sh setup installs qemu-user-static"
        );
        let emulated = version_line(
            Command::new("qemu-aarch64-static")
                .arg(binary("aarch64", name))
                .arg("--version"),
        );
        for line in [&native, &emulated] {
            assert!(line.starts_with(name), "{line}");
            assert!(
                line.contains(&commit),
                "{name} --version does not name commit {commit}: {line}"
            );
        }
    }
}

/// Runs `debugfs -R REQUEST IMAGE` and returns stdout (never mounts).
fn debugfs(request: &str) -> Vec<u8> {
    let img = dist().join("forensics-volume.img");
    let out = Command::new("debugfs")
        .arg("-R")
        .arg(request)
        .arg(&img)
        .output()
        .unwrap();
    assert!(out.status.success(), "debugfs -R {request}: {out:?}");
    out.stdout
}

fn marker_from_image() -> serde_json::Value {
    serde_json::from_slice(&debugfs("cat /forensics-volume.json")).unwrap()
}

#[test]
fn dist_image_has_label_features_and_marker() {
    let img = std::fs::read(dist().join("forensics-volume.img")).unwrap();
    let sb = &img[1024..2048];
    assert_eq!(u16_at(sb, 0x38), 0xEF53, "no ext4 superblock");
    assert_eq!(&sb[0x78..0x78 + 16], b"FORENSICS\0\0\0\0\0\0\0", "label");
    let incompat = u32_at(sb, 0x60);
    let ro_compat = u32_at(sb, 0x64);
    assert_eq!(incompat & 0x80, 0, "64bit must be off for old kernels");
    assert_eq!(
        ro_compat & 0x400,
        0,
        "metadata_csum must be off for old kernels"
    );
    let reserved_gdt = u16_at(sb, 0xCE);
    assert!(
        reserved_gdt > 0,
        "no reserved GDT blocks: online grow would be limited"
    );

    let marker = marker_from_image();
    assert_eq!(marker["toolkit"], "forensics-volume");
    assert_eq!(marker["label"], "FORENSICS");
    assert_eq!(marker["format"], 1);
    assert_eq!(marker["version"], env!("CARGO_PKG_VERSION"));
    let commit = marker["git_commit"].as_str().unwrap();
    assert!(
        commit.len() >= 40 && commit[..40].bytes().all(|b| b.is_ascii_hexdigit()),
        "{commit}"
    );
    assert_eq!(
        marker["targets"],
        serde_json::json!(["x86_64-unknown-linux-musl", "aarch64-unknown-linux-musl"])
    );
    // The filesystem UUID is derived from the commit (build.sh), so it names the build.
    let uuid = &sb[0x68..0x78];
    assert_ne!(uuid, &[0u8; 16], "UUID unset");
}

/// Parses `sha256sum` output: path -> hex digest.
fn parse_sums(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .map(|line| {
            let (hash, path) = line
                .split_once("  ")
                .unwrap_or_else(|| panic!("bad line {line:?}"));
            assert_eq!(hash.len(), 64, "{line}");
            (path.to_string(), hash.to_string())
        })
        .collect()
}

#[test]
fn dist_image_sums_verify_against_files_read_from_the_image() {
    let sums = parse_sums(&String::from_utf8(debugfs("cat /SHA256SUMS")).unwrap());
    for arch in ["x86_64", "aarch64"] {
        for name in BINS {
            assert!(
                sums.contains_key(&format!("bin/{arch}/{name}")),
                "SHA256SUMS lacks bin/{arch}/{name}"
            );
        }
    }
    assert!(sums.contains_key("forensics-volume.json"));
    for (path, expected) in &sums {
        let content = debugfs(&format!("cat /{path}"));
        let got = hex(&Sha256::digest(&content));
        assert_eq!(
            &got, expected,
            "{path} read from the image does not match SHA256SUMS"
        );
    }
    // Files are root's.
    let stat = String::from_utf8(debugfs("stat /bin/x86_64/capture")).unwrap();
    assert!(
        stat.contains("User:     0") && stat.contains("Group:     0"),
        "{stat}"
    );
    // The same list as the tree build.sh assembled.
    let tree = std::fs::read_to_string(dist().join("volume/SHA256SUMS")).unwrap();
    assert_eq!(parse_sums(&tree), sums);
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Runs the shipped `name` for `arch` (aarch64 through qemu-aarch64-static).
fn shipped(arch: &str, name: &str) -> Command {
    if arch == std::env::consts::ARCH {
        Command::new(binary(arch, name))
    } else {
        let mut c = Command::new(format!("qemu-{arch}-static"));
        c.arg(binary(arch, name));
        c
    }
}

/// Security review L10: the options that point the tools at fixture `/proc`,
/// `/sys` and `/dev` trees, choose the zstd frame size or skip the helpers'
/// re-exec exist only in test builds (cargo feature `test-hooks`). The
/// shipped binaries reject them as unknown options, whatever comes with them.
#[test]
fn dist_binaries_reject_the_test_hooks() {
    let vol = "vol-0123456789abcdef0";
    let fixture = "/nonexistent/fixture";
    // (binary, leading arguments, hook, its value)
    let mut cases: Vec<(&str, Vec<&str>, &str, &str)> = Vec::new();
    for hook in ["--proc-root", "--sys-root", "--sysfs-root", "--dev-root"] {
        cases.push((
            "capture",
            vec!["--source", "lime:/nonexistent/dump.lime", "--no-imds"],
            hook,
            fixture,
        ));
        for sub in ["locate", "mount"] {
            cases.push((
                "mount-helper",
                vec![sub, "--volume-id", vol, "--wait", "0"],
                hook,
                fixture,
            ));
        }
        cases.push(("unmount-helper", vec!["--volume-id", vol], hook, fixture));
    }
    cases.push((
        "capture",
        vec!["--source", "lime:/nonexistent/dump.lime", "--no-imds"],
        "--frame-size",
        "4096",
    ));
    cases.push((
        "mount-helper",
        vec!["mount", "--volume-id", vol, "--wait", "0"],
        "--reexec",
        "never",
    ));
    cases.push((
        "unmount-helper",
        vec!["--volume-id", vol],
        "--reexec",
        "never",
    ));
    let mut accepted = Vec::new();
    for arch in ["x86_64", "aarch64"] {
        for (name, lead, hook, value) in &cases {
            let out = shipped(arch, name)
                .args(lead)
                .arg(hook)
                .arg(value)
                .output()
                .unwrap_or_else(|e| panic!("{arch}/{name}: {e}"));
            let stderr = String::from_utf8_lossy(&out.stderr);
            if out.status.code() != Some(2)
                || !stderr.contains(&format!("unexpected argument '{hook}'"))
            {
                accepted.push(format!(
                    "{arch}/{name} {} {hook} {value}: {} {}",
                    lead.join(" "),
                    out.status,
                    stderr.lines().next().unwrap_or("")
                ));
            }
        }
    }
    assert!(
        accepted.is_empty(),
        "shipped binaries accept test hooks:\n{}",
        accepted.join("\n")
    );
}
