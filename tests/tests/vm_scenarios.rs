//! The VM bench (issue 7, `tests/vm/`): a qemu guest running Debian's kernel
//! stands in for a breached EC2 instance, and the rendered SSM documents'
//! scripts run in it, unchanged, against `dist/forensics-volume.img` attached
//! as an NVMe device whose serial is an EBS volume ID. Each test runs one
//! scenario through `tests/vm/bench.sh run NAME`, which prints every check and
//! exits non-zero if any fails; the work directory (console log, evidence
//! read back from the volume image) is `tests/vm/work/NAME`.
//!
//! These tests take minutes and need root, qemu and `./build.sh` output, so
//! they are `#[ignore]`d for a plain `cargo test`; `./build.sh test` runs them
//! with `--include-ignored`. They never skip: a scenario that cannot run
//! (no root, no qemu, no dist/) fails with the reason.

use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Mutex;
use std::time::Instant;

/// One guest at a time: the machine has two cores and the scenarios share
/// the bench's cache and work directories.
static VM_LOCK: Mutex<()> = Mutex::new(());

fn bench() -> PathBuf {
    fv_tests::workspace_root().join("tests/vm/bench.sh")
}

fn is_root() -> bool {
    // /proc/self belongs to the process's effective user.
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

#[expect(
    clippy::panic,
    reason = "test helper: a scenario that cannot run must fail its test, loudly"
)]
fn run_scenario(name: &str) {
    let _guard = VM_LOCK
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    assert!(
        is_root(),
        "vm_{name}: needs root (qemu guests, apt-get downloads of the guest kernel, \
         debugfs on volume images); run as root, e.g. via ./build.sh test"
    );
    let start = Instant::now();
    let status = Command::new(bench())
        .args(["run", name])
        .env("FV_DIST", fv_tests::dist_dir())
        .status()
        .unwrap_or_else(|e| panic!("vm_{name}: cannot run {}: {e}", bench().display()));
    let secs = start.elapsed().as_secs();
    eprintln!("vm_{name}: {secs} s");
    assert!(
        status.success(),
        "vm_{name}: scenario failed ({status}) after {secs} s; checks and console log in \
         tests/vm/work/{name}/"
    );
}

#[test]
#[ignore = "VM bench (minutes, root): ./build.sh test runs it"]
fn vm_boot() {
    run_scenario("boot");
}

#[test]
#[ignore = "VM bench (minutes, root): ./build.sh test runs it"]
fn vm_boot_aarch64() {
    run_scenario("boot-aarch64");
}

#[test]
#[ignore = "VM bench (minutes, root): ./build.sh test runs it"]
fn vm_reference_lime() {
    run_scenario("reference-lime");
}

#[test]
#[ignore = "VM bench (minutes, root): ./build.sh test runs it"]
fn vm_capture() {
    run_scenario("capture");
}

#[test]
#[ignore = "VM bench (minutes, root): ./build.sh test runs it"]
fn vm_lime() {
    run_scenario("lime");
}

#[test]
#[ignore = "VM bench (minutes, root): ./build.sh test runs it"]
fn vm_aarch64() {
    run_scenario("aarch64");
}

#[test]
#[ignore = "VM bench (minutes, root): ./build.sh test runs it"]
fn vm_fail_wrong_id() {
    run_scenario("fail-wrong-id");
}

#[test]
#[ignore = "VM bench (minutes, root): ./build.sh test runs it"]
fn vm_fail_bad_marker() {
    run_scenario("fail-bad-marker");
}

#[test]
#[ignore = "VM bench (minutes, root): ./build.sh test runs it"]
fn vm_fail_too_small() {
    run_scenario("fail-too-small");
}

#[test]
#[ignore = "VM bench (minutes, root): ./build.sh test runs it"]
fn vm_fail_busy_unmount() {
    run_scenario("fail-busy-unmount");
}

/// The whole runbook: the local Automation engine over moto, the guest as the
/// instance, the forensics volume hot-plugged and unplugged over QMP, then the
/// capture scenario's evidence checks (issue 12).
#[test]
#[ignore = "VM bench (minutes, root): ./build.sh test runs it"]
fn vm_runbook() {
    run_scenario("runbook");
}

/// Forensics-StopCapture during a running capture: a finalized, labelled
/// partial image (exit 20, cause interrupted), then a clean unmount (issue 12).
#[test]
#[ignore = "VM bench (minutes, root): ./build.sh test runs it"]
fn vm_stop_capture() {
    run_scenario("stop-capture");
}

/// The break-glass procedure of docs/break-glass.md, its commands as
/// written, in a guest with only the forensics volume attached and no SSM;
/// capture's digests taken off the console anchor the capture on the host
/// (`capture verify --expect-…` says ANCHORED; issue 23).
#[test]
#[ignore = "VM bench (minutes, root): ./build.sh test runs it"]
fn vm_break_glass() {
    run_scenario("break-glass");
}

/// The extractor the break-glass scenario runs the page with: the Nitro
/// commands in order, only the page's fill-ins set, the Xen and analyst
/// blocks left out; the analyst's command with its placeholders replaced.
/// No root, no qemu.
#[test]
fn vm_break_glass_extractor_runs_the_page_as_written() {
    let root = fv_tests::workspace_root();
    let tool = root.join("tests/vm/host/break_glass.py");
    let doc = root.join("docs/break-glass.md");
    let out = Command::new("python3")
        .arg(&tool)
        .arg("guest")
        .arg(&doc)
        .arg("vol-0123456789abcdef0")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let script = String::from_utf8(out.stdout).unwrap();
    let page = std::fs::read_to_string(&doc).unwrap();
    let lines: Vec<&str> = script.lines().collect();
    assert!(lines.contains(&"VOL=vol-0123456789abcdef0"), "{script}");
    assert!(lines.contains(&"DEV=/dev/\"$VOLUME_DEV\""), "{script}");
    // Every other line of the script is a line of the page, in its order.
    let mut at = 0;
    for l in lines
        .iter()
        .skip(4)
        .filter(|l| !l.starts_with("VOL=") && !l.starts_with("DEV="))
    {
        let found = page[at..]
            .find(&format!("\n{l}\n"))
            .unwrap_or_else(|| panic!("{l:?} is not on the page after byte {at}"));
        at += found + 1;
    }
    assert!(
        !script.contains("--requested-device"),
        "the Xen block is left out: {script}"
    );
    assert!(
        !script.contains("capture verify"),
        "the analyst's block is left out: {script}"
    );
    assert!(script.contains("\"$MP/bin/capture\""), "{script}");
    let out = Command::new("python3")
        .arg(&tool)
        .args(["analyst"])
        .arg(&doc)
        .args(["/evidence/c", "m", "z", "l"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "capture\nverify\n/evidence/c\n--expect-manifest-sha256\nm\n--expect-sha256\nz\n--expect-lime-sha256\nl\n"
    );
}

/// The guest's SSM agent stand-in (tests/vm/guest/agent.sh), which runs the
/// documents' scripts in the runbook scenario, behaves as the agent does:
/// exit codes and statuses, streams apart and whole, its environment, a
/// timeout and a cancel that kill the whole process group. Runs on the host's
/// busybox over a pty: no root, no qemu.
#[test]
fn vm_agent_stand_in_runs_commands_like_the_ssm_agent() {
    let script = fv_tests::workspace_root().join("tests/vm/host/agent_test.py");
    let out = Command::new("python3").arg(&script).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}{text}{}",
        script.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("PASS  timeout-kills-the-process-group"),
        "{text}"
    );
    assert!(text.contains("agent_test: 0 failed"), "{text}");
}

/// The bench's SSM extractor substitutes parameters exactly as SSM does and
/// rejects what SSM rejects. Runs without root or qemu.
#[test]
fn vm_ssm_extractor_substitutes_like_ssm() {
    let dir = tempfile::tempdir().unwrap();
    let doc = dir.path().join("Forensics-Test.json");
    std::fs::write(
        &doc,
        r#"{"schemaVersion":"2.2","description":"t",
        "parameters":{"VolumeId":{"type":"String","allowedPattern":"^vol-[0-9a-f]{8,17}$"},
                      "Level":{"type":"String","default":"3","allowedPattern":"^[0-9]{1,2}$"}},
        "mainSteps":[{"action":"aws:runShellScript","name":"run",
          "inputs":{"runCommand":["FV_VOLUME_ID='{{ VolumeId }}'","FV_LEVEL='{{Level}}'","echo \"$FV_VOLUME_ID $FV_LEVEL\""]}}]}"#,
    )
    .unwrap();
    let extractor = fv_tests::workspace_root().join("tests/vm/host/ssm_extract.py");
    let run = |args: &[&str]| {
        Command::new("python3")
            .arg(&extractor)
            .arg(&doc)
            .args(args)
            .output()
            .unwrap()
    };
    let ok = run(&["VolumeId=vol-0123456789abcdef0"]);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert_eq!(
        String::from_utf8(ok.stdout).unwrap(),
        "FV_VOLUME_ID='vol-0123456789abcdef0'\nFV_LEVEL='3'\necho \"$FV_VOLUME_ID $FV_LEVEL\"\n"
    );
    // allowedPattern is enforced, as the SSM API does before the agent runs anything.
    let bad = run(&["VolumeId=vol-1'; reboot; '"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("allowedPattern"));
    // A required parameter without a value, and an unknown one, are errors.
    assert_eq!(run(&[]).status.code(), Some(2));
    assert_eq!(
        run(&["VolumeId=vol-0123456789abcdef0", "Nope=1"])
            .status
            .code(),
        Some(2)
    );
}
