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
