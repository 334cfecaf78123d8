//! Issue 23: the documents agree with the binary. What `capture` really
//! names a capture directory, and what its `--help` says a `lime-tcp`
//! source may be, are what README.md, docs/*.md and the volume's README.txt
//! say.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::process::Command;

use common::*;

/// README.md, every docs/*.md, the volume's README.txt and the SSM README.
fn docs() -> Vec<(String, String)> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut files = vec![
        root.join("README.md"),
        root.join("volume-layout/README.txt"),
        root.join("deploy/ssm-README.txt"),
    ];
    for e in std::fs::read_dir(root.join("docs")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "md") {
            files.push(p);
        }
    }
    files
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            (p.display().to_string(), text)
        })
        .collect()
}

/// The directory name every document gives a capture.
const DOCUMENTED_NAME: &str = "<instance-id or hostname>_<UTC YYYYMMDDTHHMMSSZ>";

/// `NAME_YYYYMMDDTHHMMSSZ` with the optional `-N` of a taken name.
fn is_capture_dir_name(name: &str) -> bool {
    let Some((host, rest)) = name.rsplit_once('_') else {
        return false;
    };
    let time = rest.split('-').next().unwrap();
    !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        && time.len() == 16
        && time.as_bytes()[8] == b'T'
        && time.ends_with('Z')
        && time[..8].chars().all(|c| c.is_ascii_digit())
        && time[9..15].chars().all(|c| c.is_ascii_digit())
}

#[test]
fn root_the_capture_directory_is_named_as_documented() {
    require_root();
    let ram = [(0x1000u64, 0x9_ffffu64)];
    // A LiME file is taken as made elsewhere (issue 22): its directory says
    // so instead of naming this host (docs/capture.md).
    let f = Fixture::new();
    let dump = f.path().join("dump.lime");
    std::fs::write(&dump, expected_lime(&ram, |_| true)).unwrap();
    let out = run(&mut f.cmd(&format!("lime:{}", dump.display())));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let name = f
        .capture_dir()
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        name.starts_with("foreign-lime_") && is_capture_dir_name(&name),
        "{name}"
    );
    // A stream of this host (stdin) is named by the host.
    let f = Fixture::new();
    f.iomem_ram(&ram);
    let (out, _) = run_with_stdin(
        &mut f.cmd("lime:-"),
        expected_lime(&ram, |_| true),
        std::time::Duration::ZERO,
        None,
        std::time::Duration::from_secs(60),
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let dir = f.capture_dir();
    let name = dir.file_name().unwrap().to_str().unwrap();
    assert!(is_capture_dir_name(name), "{name}");
    // No IMDS here: the host name stands in for the instance ID.
    let host = nix::sys::utsname::uname().unwrap();
    let host = host.nodename().to_string_lossy().into_owned();
    if !host.is_empty()
        && host != "(none)"
        && host.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    {
        assert!(name.starts_with(&format!("{host}_")), "{name} vs {host}");
    }
    // Every document that shows the name shows this one.
    let mut shown = 0;
    for (path, text) in docs() {
        for (at, _) in text.match_indices("captures/<") {
            let rest = &text[at + "captures/".len()..];
            assert!(
                rest.starts_with(DOCUMENTED_NAME),
                "{path}: captures/{} is not {DOCUMENTED_NAME}",
                &rest[..rest.len().min(50)]
            );
            shown += 1;
        }
        // Examples of a capture directory: NAME_YYYYMMDDTHHMMSSZ.
        for word in text.split(|c: char| c.is_whitespace() || "`/:;,()".contains(c)) {
            let looks_timed =
                word.len() > 17 && word.ends_with('Z') && word.as_bytes()[word.len() - 8] == b'T';
            if looks_timed
                && word[word.len() - 16..word.len() - 8]
                    .chars()
                    .all(|c| c.is_ascii_digit())
            {
                assert!(
                    is_capture_dir_name(word),
                    "{path}: {word} is not a capture directory's name"
                );
            }
        }
    }
    assert!(
        shown >= 2,
        "the naming is documented in README.md and docs/capture.md"
    );
}

#[test]
fn lime_tcp_is_documented_as_the_binary_takes_it() {
    let help = run(Command::new(bin()).arg("--help"));
    let help = String::from_utf8_lossy(&help.stdout).into_owned();
    assert!(help.contains("lime-tcp:ADDR:PORT"), "{help}");
    assert!(help.contains("numeric loopback"), "{help}");
    // What the binary refuses, no document offers.
    for bad in ["lime-tcp:localhost:4444", "lime-tcp:203.0.113.1:4444"] {
        let out = run(Command::new(bin()).args(["--source", bad]));
        assert_eq!(out.status.code(), Some(2), "{bad}: {}", stderr(&out));
    }
    for (path, text) in docs() {
        for (at, _) in text.match_indices("lime-tcp:") {
            let rest = &text[at + "lime-tcp:".len()..];
            assert!(
                ["ADDR:PORT", "127.0.0.1:", "[::1]:"]
                    .iter()
                    .any(|ok| rest.starts_with(ok)),
                "{path}: lime-tcp:{} is not what capture accepts (a numeric loopback address)",
                &rest[..rest.len().min(30)]
            );
        }
    }
}
