//! Issue 23, the analyst's side of `capture` as a process: progress on
//! stderr while `verify` and `extract` run (stdout keeps the result and
//! `--json`), no output into the evidence directory, and one JSON shape for
//! failures (`{"ok": false, ...}`, the helpers' shape) for acquisition and
//! the analyst's subcommands alike.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // helpers outside #[test] fns

mod common;

use std::path::Path;
use std::process::Command;

use common::*;

fn ram() -> Vec<(u64, u64)> {
    vec![(0x1000, 0x9fbff), (0x10_0000, 0x4f_ffff)]
}

/// A capture of a LiME file (many 64 KiB frames) in a fixture volume.
fn captured() -> (Fixture, std::path::PathBuf) {
    let f = Fixture::new();
    let path = f.path().join("dump.lime");
    std::fs::write(&path, expected_lime(&ram(), |_| true)).unwrap();
    let out = run(f.cmd(&format!("lime:{}", path.display())).arg("--json"));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["command"], "capture", "{v}");
    let dir = f.capture_dir();
    (f, dir)
}

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn json(o: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("stdout is not one JSON value ({e}): {}", stdout(o)))
}

/// The helpers' failure shape.
fn assert_failure_shape(v: &serde_json::Value, command: &str, code: i32, kind: &str) {
    assert_eq!(v["ok"], false, "{v}");
    assert_eq!(v["command"], command, "{v}");
    assert_eq!(v["exit_code"], code, "{v}");
    assert_eq!(v["error_kind"], kind, "{v}");
    assert!(v["error"].as_str().is_some_and(|e| !e.is_empty()), "{v}");
}

#[test]
fn root_verify_and_extract_show_progress_on_stderr_only() {
    require_root();
    let (f, dir) = captured();
    // Not a terminal: SSM-sized lines, up to 100 %.
    let o = run(Command::new(bin()).arg("verify").arg(&dir).arg("--json"));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("capture verify: 100%"), "{err}");
    assert!(err.lines().count() <= 12, "{err}");
    assert_eq!(json(&o)["verified"], true, "{}", stdout(&o));

    let out = f.path().join("out.lime");
    let o = run(Command::new(bin())
        .arg("extract")
        .arg(&dir)
        .arg("-o")
        .arg(&out));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("capture extract:  10%"), "{err}");
    assert!(err.contains("capture extract: 100%"), "{err}");
    assert!(!stdout(&o).contains("capture extract:"), "{}", stdout(&o));
    assert_eq!(
        std::fs::read(&out).unwrap(),
        expected_lime(&ram(), |_| true)
    );
}

#[test]
fn root_extract_refuses_the_evidence_directory() {
    require_root();
    let (f, dir) = captured();
    let before: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
    // Run from inside the capture directory with the default output name,
    // as an analyst who `cd`s into it does.
    let o = run(Command::new(bin()).current_dir(&dir).args(["extract", "."]));
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("is inside the capture directory"), "{err}");
    assert!(err.contains("-o "), "{err}");
    // A subdirectory of it, and the image given alone, are refused too.
    for (input, output) in [
        (dir.clone(), dir.join("context/x.lime")),
        (dir.join("memory.lime.zst"), dir.join("x.lime")),
    ] {
        let o = run(Command::new(bin())
            .arg("extract")
            .arg(&input)
            .arg("-o")
            .arg(&output));
        assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
        assert!(!output.exists());
    }
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), before.len());
    // Outside it, as the message says, it works.
    let o = run(Command::new(bin())
        .current_dir(&dir)
        .args(["extract", ".", "-o"])
        .arg(f.path().join("memory.lime")));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

#[test]
fn root_json_failures_have_the_helpers_shape() {
    require_root();
    let f = Fixture::new();
    // Acquisition: a failure before any capture.
    let o = run(f.cmd("lime:/nonexistent/dump.lime").arg("--json"));
    assert_ne!(o.status.code(), Some(0));
    assert_failure_shape(&json(&o), "capture", o.status.code().unwrap(), "no_source");
    // The analyst's subcommands with --json.
    let missing = f.path().join("nothing-here");
    for sub in ["verify", "info"] {
        let o = run(Command::new(bin()).arg(sub).arg(&missing).arg("--json"));
        assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
        assert_failure_shape(&json(&o), sub, 4, "input");
    }
    // Without --json, stdout stays empty.
    let o = run(Command::new(bin()).arg("verify").arg(&missing));
    assert!(o.stdout.is_empty(), "{}", stdout(&o));
}

/// `lime-module:auto` on a volume without a module for this kernel: what was
/// looked for and what to do, not only "No such file or directory".
#[test]
fn root_lime_module_auto_without_a_module_says_what_to_do() {
    require_root();
    let f = Fixture::new();
    let bin_dir = f.vol().join("bin/x86_64");
    std::fs::create_dir_all(&bin_dir).unwrap();
    let exe = bin_dir.join("capture");
    std::fs::copy(bin(), &exe).unwrap();
    let o = run(Command::new(&exe)
        .args(["--source", "lime-module:auto", "--no-imds", "--json"])
        .arg("--allow-any-output")
        .arg("--proc-root")
        .arg(f.proc())
        .arg("--sys-root")
        .arg(f.sys())
        .arg("--dev-root")
        .arg(f.dev()));
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(11), "{err}");
    assert!(err.contains("no LiME module for kernel"), "{err}");
    let looked = f.vol().join("modules");
    assert!(err.contains(&looked.display().to_string()), "{err}");
    assert!(err.contains("lime.ko"), "{err}");
    assert!(err.contains("lime-module:PATH"), "{err}");
    assert_failure_shape(&json(&o), "capture", 11, "no_source");
    assert!(!Path::new(&f.captures()).exists() || f.capture_entries().is_empty());
}

/// AVML's own compressed output (`avml --compress`, "LiME version 2":
/// snappy-framed blocks) was reported as a damaged LiME image: `--source
/// lime:FILE` now repackages it, the manifest naming the AVML file by its
/// SHA-256, and the capture verifies with the LiME stream it stands for.
#[test]
fn root_avml_compressed_output_is_repackaged() {
    require_root();
    let f = Fixture::new();
    let lime = expected_lime(&ram(), |_| true);
    // As AVML writes it: blocks of at most 16 MiB (here smaller, so a
    // range spans several), each a header, a snappy stream, its length.
    let mut avml = Vec::new();
    for (s, e) in ram() {
        let mut at = s;
        while at <= e {
            let end = (at + 0x4_0000 - 1).min(e);
            let data: Vec<u8> = (at..=end).map(mem_byte).collect();
            fv_formats::avml::write_block(&mut avml, at, end, &data).unwrap();
            at = end + 1;
        }
    }
    let path = f.path().join("memory.avml");
    std::fs::write(&path, &avml).unwrap();
    let out = run(&mut f.cmd(&format!("lime:{}", path.display())));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let dir = f.capture_dir();
    // The LiME stream has one record per AVML block, same bytes.
    let mut want = Vec::new();
    let mut records = Vec::new();
    for (s, e) in ram() {
        let mut at = s;
        while at <= e {
            let end = (at + 0x4_0000 - 1).min(e);
            want.extend_from_slice(&fv_formats::lime::Header::new(at, end).to_bytes());
            want.extend((at..=end).map(mem_byte));
            records.push((at, end));
            at = end + 1;
        }
    }
    assert_eq!(decompress(&dir.join("memory.lime.zst")), want);
    let m = manifest(&dir);
    assert_eq!(m.ranges.len(), records.len());
    let detail = m.source.detail.clone().unwrap_or_default();
    assert!(detail.contains("AVML compressed image"), "{detail}");
    assert!(detail.contains(&sha_hex(&avml)), "{detail}");
    let v = run(Command::new(bin()).arg("verify").arg(&dir));
    assert_eq!(v.status.code(), Some(0), "{}", stdout(&v));
    // The same memory as the plain LiME dump of it, record by record.
    let payload = |s: &[u8]| -> Vec<u8> {
        let mut out = Vec::new();
        let mut at = 0;
        while at < s.len() {
            let h =
                fv_formats::lime::Header::parse(s[at..at + 32].try_into().unwrap(), 0, 0).unwrap();
            let n = (h.end - h.start + 1) as usize;
            out.extend_from_slice(&s[at + 32..at + 32 + n]);
            at += 32 + n;
        }
        out
    };
    assert_eq!(payload(&want), payload(&lime));

    // A damaged AVML file: what came before the damage is kept as a
    // partial capture (as for any LiME input that fails midway), the block
    // named.
    let mut bad = avml.clone();
    let at = bad.len() / 2;
    bad[at] ^= 0x55;
    let badp = f.path().join("bad.avml");
    std::fs::write(&badp, &bad).unwrap();
    let g = Fixture::new();
    let out = run(&mut g.cmd(&format!("lime:{}", badp.display())));
    assert_eq!(out.status.code(), Some(22), "{}", stderr(&out));
    let line = String::from_utf8_lossy(&out.stdout);
    assert!(
        line.contains("PARTIAL") && line.contains("AVML block"),
        "{line}"
    );
    assert_eq!(
        manifest(&g.capture_dir()).status,
        fv_evidence::manifest::Status::Partial
    );
}
