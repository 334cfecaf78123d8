#!/usr/bin/env python3
"""Driver of the VM bench's hot-plug scenarios: the qemu guest as the instance.

    runbook_vm.py documents --work DIR --qemu-args FILE --volume-image IMG --ssm-dir DIR

`documents`: the three Command documents through the instance backend alone,
without the Automation engine: hot-plug the forensics volume (QMP), run
Forensics-MountVolume, -CaptureMemory, -UnmountVolume in the guest through the
agent stand-in, unplug. What the engine's AttachVolume/aws:runCommand/
DetachVolume steps do to the instance, driven by hand.

FILE holds the qemu program and its arguments, NUL-separated (lib.sh
vm_args). The result, for host/scenarios.sh to check, is DIR/driver.json:
what each call returned, the volume image's path, the guest's timings. The
guest's console (the @@FV protocol) is DIR/console.log. Exit 0 when the
driver ran to the end (the checks decide whether the flow was right), 1 when
the bench itself failed.
"""
import argparse
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import ssm_extract  # noqa: E402
import vm_instance  # noqa: E402
from backend import CommandRequest  # noqa: E402  (deploy/automation, via vm_instance's path)

INSTANCE_ID = "i-0123456789abcdef0"
VOLUME_ID = "vol-0123456789abcdef0"
DOCS = ("MountVolume", "CaptureMemory", "UnmountVolume")


def load_args(path):
    with open(path, "rb") as f:
        parts = f.read().split(b"\0")
    parts = [p.decode() for p in parts if p]
    if not parts:
        raise SystemExit(f"runbook_vm: {path} holds no qemu command")
    return parts[0], parts[1:]


def execution_timeout(doc, values, name):
    """The aws:runShellScript step's timeoutSeconds after substitution (the
    agent's default 3600 when absent)."""
    step, _ = ssm_extract.shell_step(doc, name)
    raw = str(step.get("inputs", {}).get("timeoutSeconds", "3600"))
    resolved = ssm_extract.resolve(doc, values, name)
    return int(ssm_extract.PARAM_RE.sub(lambda m: resolved[m.group(1)], raw))


def documents(args):
    qemu, qargs = load_args(args.qemu_args)
    size = args.volume_mib * 1048576
    offered = {
        "VolumeId": VOLUME_ID, "CaseId": "VM-BENCH-HOTPLUG", "Examiner": "fv-vm-bench",
        "Note": "qemu guest standing in for an EC2 instance", "Source": "kcore",
        "CompressionLevel": "1", "ExecutionTimeout": "1200",
    }
    report = {"mode": "documents", "volume_id": VOLUME_ID, "calls": []}
    vm = vm_instance.VmInstance(
        instance_id=INSTANCE_ID, qemu=qemu, qemu_args=qargs, workdir=args.work,
        volume_source=lambda vid: (args.volume_image, size), total_timeout=args.timeout)
    try:
        vm.on_attach(VOLUME_ID, INSTANCE_ID, "/dev/sdf")
        report["calls"].append({"call": "attach"})
        for short in DOCS:
            name = f"Forensics-{short}"
            with open(os.path.join(args.ssm_dir, f"{name}.json")) as f:
                doc = json.load(f)
            declared = doc.get("parameters") or {}
            values = {k: v for k, v in offered.items() if k in declared}
            req = CommandRequest(document_name=name, document=doc, parameters=values,
                                 instance_id=INSTANCE_ID,
                                 execution_timeout=execution_timeout(doc, values, name),
                                 delivery_timeout=120)
            res = vm.run_command(req)
            report["calls"].append({"call": name, "status": res.status, "response_code": res.response_code,
                                    "seconds": round(res.duration, 1), "stdout_chars": len(res.stdout),
                                    "stderr_chars": len(res.stderr), "verdict": res.stdout.split("\n", 1)[0]})
            if res.status != "Success" and short != "UnmountVolume":
                break
        busy = vm.on_detach(VOLUME_ID, INSTANCE_ID, False)
        report["calls"].append({"call": "detach", "busy": busy})
    finally:
        report["qemu_exit"] = vm.close()
        report["boot_seconds"] = round(getattr(vm, "boot_seconds", 0), 1)
        report["volume_image"] = vm.image_of(VOLUME_ID)
        report["history"] = vm.history
        with open(os.path.join(args.work, "driver.json"), "w") as f:
            json.dump(report, f, indent=1)
    return 0


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("mode", choices=["documents"])
    p.add_argument("--work", required=True)
    p.add_argument("--qemu-args", required=True)
    p.add_argument("--volume-image", required=True)
    p.add_argument("--ssm-dir", required=True)
    p.add_argument("--volume-mib", type=int, default=1536)
    p.add_argument("--timeout", type=int, default=1200, help="qemu's whole life, seconds")
    args = p.parse_args()
    t0 = time.monotonic()
    try:
        rc = documents(args)
    except (vm_instance.VmError, OSError, ssm_extract.DocError) as e:
        print(f"runbook_vm: FAIL: {e}", file=sys.stderr)
        return 1
    print(f"runbook_vm: {args.mode} done in {time.monotonic() - t0:.0f} s", file=sys.stderr)
    return rc


if __name__ == "__main__":
    sys.exit(main())
