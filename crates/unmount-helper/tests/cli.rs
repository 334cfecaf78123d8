//! The command line without root: exit codes for bad input.

#![allow(clippy::unwrap_used, reason = "tests")]

use std::process::Command;

fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_unmount-helper"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn needs_a_target() {
    assert_eq!(run(&[]).0, 2);
    // Both together are allowed since L5 (the mountpoint must then be a
    // mount of the volume): a malformed ID is still bad input.
    assert_eq!(
        run(&[
            "--mountpoint",
            "/run/x",
            "--volume-id",
            "vol-01234",
            "--reexec",
            "never"
        ])
        .0,
        3
    );
}

#[test]
fn malformed_volume_id_exits_3_with_json() {
    let (code, stdout, stderr) = run(&["--volume-id", "vol-01234", "--json", "--reexec", "never"]);
    assert_eq!(code, 3, "{stderr}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["ok"], false);
    assert_eq!(v["safe_to_detach"], false);
    assert_eq!(v["error_kind"], "bad_input");
}

#[test]
fn reexec_is_hidden_from_help() {
    let (code, stdout, _) = run(&["--help"]);
    assert_eq!(code, 0);
    assert!(
        stdout.contains("--mountpoint")
            && !stdout.contains("reexec")
            && !stdout.contains("sysfs-root"),
        "{stdout}"
    );
}

#[test]
fn a_report_that_cannot_be_printed_is_a_failure() {
    // stdout on a full device: the JSON report is lost, so the exit code
    // must not be the report's own (3 here) but the failure code, 1.
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_unmount-helper"))
        .args(["--volume-id", "vol-01234", "--json", "--reexec", "never"])
        .stdout(full)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
}
