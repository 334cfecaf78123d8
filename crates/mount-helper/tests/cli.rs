//! The command line end to end, without root: bad input gets its own exit

#![allow(clippy::unwrap_used, reason = "tests")]
//! code and, with --json, one JSON object on stdout.

use std::process::Command;

fn helper() -> Command {
    Command::new(env!("CARGO_BIN_EXE_mount-helper"))
}

fn run(args: &[&str]) -> (i32, String, String) {
    let out = helper()
        .args(args)
        .env_remove("FV_TEST_ACCEPT_NVME_MODEL")
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn malformed_volume_ids_exit_3() {
    for bad in [
        "vol-XYZ",
        "vol-0123456789abcdef",
        "0123456789abcdef0",
        "vol-0123456789abcdef0;id",
    ] {
        for cmd in ["locate", "mount"] {
            let (code, stdout, stderr) = run(&[cmd, "--volume-id", bad, "--json"]);
            assert_eq!(code, 3, "{cmd} {bad}: {stderr}");
            let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
            assert_eq!(v["ok"], false);
            assert_eq!(v["exit_code"], 3);
            assert_eq!(v["error_kind"], "bad_input");
            assert!(stderr.contains("malformed volume ID"), "{stderr}");
        }
    }
}

#[test]
fn malformed_device_names_and_protect_ids_exit_3() {
    let (code, _, stderr) = run(&[
        "locate",
        "--volume-id",
        "vol-0123456789abcdef0",
        "--requested-device",
        "nvme1n1",
    ]);
    assert_eq!(code, 3, "{stderr}");
    assert!(stderr.contains("malformed requested device"), "{stderr}");
    let (code, _, stderr) = run(&[
        "locate",
        "--volume-id",
        "vol-0123456789abcdef0",
        "--protect",
        "vol-1",
    ]);
    assert_eq!(code, 3, "{stderr}");
}

#[test]
fn the_target_in_protect_is_bad_input() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(tmp.path().join("sys/block")).unwrap();
    std::fs::create_dir_all(tmp.path().join("proc/self")).unwrap();
    std::fs::write(tmp.path().join("proc/self/mountinfo"), "").unwrap();
    let sys = tmp.path().join("sys").display().to_string();
    let proc = tmp.path().join("proc").display().to_string();
    let id = "vol-0123456789abcdef0";
    let (code, _, stderr) = run(&[
        "locate",
        "--volume-id",
        id,
        "--protect",
        id,
        "--wait",
        "0",
        "--sysfs-root",
        &sys,
        "--proc-root",
        &proc,
    ]);
    assert_eq!(code, 3, "{stderr}");
    assert!(
        stderr.contains("both the volume to locate and a --protect volume"),
        "{stderr}"
    );
}

#[test]
fn not_found_lists_devices_and_exits_4() {
    let tmp = tempfile::tempdir().unwrap();
    let block = tmp.path().join("sys/block/nvme0n1");
    std::fs::create_dir_all(block.join("device")).unwrap();
    std::fs::write(block.join("dev"), "259:0\n").unwrap();
    std::fs::write(block.join("size"), "16777216\n").unwrap();
    std::fs::write(
        block.join("device/model"),
        "Amazon EC2 NVMe Instance Storage        \n",
    )
    .unwrap();
    std::fs::write(block.join("device/serial"), "AWS1234             \n").unwrap();
    std::fs::create_dir_all(tmp.path().join("proc/self")).unwrap();
    std::fs::write(tmp.path().join("proc/self/mountinfo"), "").unwrap();
    let sys = tmp.path().join("sys").display().to_string();
    let proc = tmp.path().join("proc").display().to_string();
    let (code, stdout, stderr) = run(&[
        "locate",
        "--volume-id",
        "vol-0123456789abcdef0",
        "--wait",
        "1",
        "--json",
        "--sysfs-root",
        &sys,
        "--proc-root",
        &proc,
    ]);
    assert_eq!(code, 4, "{stderr}");
    assert!(stderr.contains("after waiting 1 s"), "{stderr}");
    assert!(
        stderr.contains(
            "nvme0n1 (259:0, 8589934592 bytes) model \"Amazon EC2 NVMe Instance Storage\""
        ),
        "{stderr}"
    );
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["error_kind"], "not_found");
    assert_eq!(v["candidates"]["candidates"][0]["device"], "nvme0n1");
    assert_eq!(
        v["candidates"]["candidates"][0]["reasons"][0],
        "instance store (never chosen)"
    );
}

#[test]
fn test_roots_are_hidden_from_help() {
    let out = helper().args(["locate", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("--volume-id"));
    assert!(!help.contains("sysfs-root"), "{help}");
    let out = helper().arg("--version").output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("mount-helper "));
}

/// Issue 23: a volume that is not there (wrong ID, not attached yet) is
/// not a silent wait. The first line says at once what is awaited, how
/// long, and what is seen instead; progress lines follow (not a terminal
/// here: a few short lines, as SSM would keep them).
#[test]
fn waiting_says_at_once_what_for_and_shows_progress() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    use std::time::{Duration, Instant};
    let tmp = tempfile::tempdir().unwrap();
    let block = tmp.path().join("sys/block/nvme0n1");
    std::fs::create_dir_all(block.join("device")).unwrap();
    std::fs::write(block.join("dev"), "259:0\n").unwrap();
    std::fs::write(block.join("size"), "16777216\n").unwrap();
    std::fs::write(block.join("device/model"), "Amazon Elastic Block Store\n").unwrap();
    std::fs::write(block.join("device/serial"), "vol0aaaaaaaaaaaaaaaa\n").unwrap();
    // Unused loop devices (no medium) are counted, not listed first.
    for n in 0..8 {
        let lo = tmp.path().join(format!("sys/block/loop{n}"));
        std::fs::create_dir_all(&lo).unwrap();
        std::fs::write(lo.join("dev"), format!("7:{n}\n")).unwrap();
        std::fs::write(lo.join("size"), "0\n").unwrap();
    }
    std::fs::create_dir_all(tmp.path().join("proc/self")).unwrap();
    std::fs::write(tmp.path().join("proc/self/mountinfo"), "").unwrap();
    let sys = tmp.path().join("sys").display().to_string();
    let proc = tmp.path().join("proc").display().to_string();
    let start = Instant::now();
    let mut child = helper()
        .args([
            "locate",
            "--volume-id",
            "vol-0123456789abcdef0",
            "--requested-device",
            "sdf",
            "--wait",
            "4",
            "--sysfs-root",
            &sys,
            "--proc-root",
            &proc,
        ])
        .env_remove("FV_TEST_ACCEPT_NVME_MODEL")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "the first line came after {:?}",
        start.elapsed()
    );
    assert!(first.contains("waiting up to 4 s"), "{first}");
    assert!(first.contains("serial vol0123456789abcdef0"), "{first}");
    assert!(first.contains("xvdf"), "{first}");
    assert!(
        first.contains("nvme0n1 (another volume (vol-0aaaaaaaaaaaaaaaa)), 8 without a medium"),
        "{first}"
    );
    let rest: Vec<String> = lines.map(Result::unwrap).collect();
    let code = child.wait().unwrap().code();
    assert_eq!(code, Some(4), "{rest:?}");
    let progress: Vec<&String> = rest
        .iter()
        .filter(|l| l.contains("still waiting"))
        .collect();
    assert!((1..=6).contains(&progress.len()), "{rest:?}");
    assert!(progress.iter().all(|l| l.len() < 300), "{progress:?}");
}

/// Issue 23: the documents name one mountpoint, the one the binary and the
/// SSM documents use (`/run/forensics-volume/<volume id>`), not `/run/fv`
/// or `/mnt/forensics` (the old break-glass text and examples).
#[test]
fn documented_mount_paths_are_the_binarys() {
    let out = helper().args(["mount", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(help.contains("/run/forensics-volume/<volume id>"), "{help}");
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
    for p in &files {
        let text = std::fs::read_to_string(p).unwrap();
        assert!(
            !text.contains("/mnt/forensics"),
            "{}: /mnt/forensics",
            p.display()
        );
        // `/run/fv-…` names the helpers' own files under /run; `/run/fv`
        // alone was the old break-glass mountpoint.
        for (at, _) in text.match_indices("/run/fv") {
            let next = text[at + "/run/fv".len()..].chars().next();
            assert_eq!(
                next,
                Some('-'),
                "{}: {}",
                p.display(),
                &text[at..(at + 30).min(text.len())]
            );
        }
    }
    let page = std::fs::read_to_string(root.join("docs/break-glass.md")).unwrap();
    assert!(page.contains("MP=/run/forensics-volume/$VOL"));
    let doc = std::fs::read_to_string(root.join("docs/mount-helper.md")).unwrap();
    assert!(doc.contains("default `/run/forensics-volume/<volume id>`"));
}
