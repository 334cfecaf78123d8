#!/usr/bin/env python3
"""Driver of the VM bench's hot-plug scenarios: the qemu guest as the instance.

    runbook_vm.py runbook   --work DIR --qemu-args FILE --volume-image IMG --ssm-dir DIR
    runbook_vm.py documents --work DIR --qemu-args FILE --volume-image IMG --ssm-dir DIR

`runbook` (run by deploy/automation.sh python: it needs moto): the local
Automation engine (deploy/automation/) executes the rendered runbook
Forensics-CaptureInstanceMemory from DIR unchanged against moto, with the
guest as the instance (VmInstance): moto's instance is the guest, the volume
moto creates is hot-plugged with its ID as the NVMe serial and holds a copy
of IMG, each aws:runCommand runs the rendered document's script in the guest.

`documents` (no engine, no moto): the three Command documents through the
instance backend alone: hot-plug the forensics volume, run
Forensics-MountVolume, -CaptureMemory, -UnmountVolume in the guest, unplug.
What the engine's AttachVolume/aws:runCommand/DetachVolume steps do to the
instance, driven by hand (a smaller test of the backend).

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


RUNBOOK = "Forensics-CaptureInstanceMemory"
GIB = 1 << 30


class DriverError(Exception):
    """The run could not be made (the engine refused the runbook)."""


def load_documents(ssm_dir):
    """Every rendered document (Forensics-*.json) in SSM_DIR, by name."""
    docs = {}
    for f in sorted(os.listdir(ssm_dir)):
        if f.startswith("Forensics-") and f.endswith(".json"):
            with open(os.path.join(ssm_dir, f)) as fh:
                docs[f[:-len(".json")]] = json.load(fh)
    if RUNBOOK not in docs:
        raise SystemExit(f"runbook_vm: no {RUNBOOK}.json in {ssm_dir}")
    return docs


def runbook(args):
    """The whole runbook, the guest as the instance; the report's `checks`
    are what moto's final state says."""
    import engine  # noqa: PLC0415  (deploy/automation: needs moto, from its venv)
    import accounts  # noqa: PLC0415
    import world as world_mod  # noqa: PLC0415

    qemu, qargs = load_args(args.qemu_args)
    docs = load_documents(args.ssm_dir)
    execution_id = "00000000-0000-4000-8000-00000000f12e"
    # t3.nano: 512 MiB, the guest's RAM (Plan sizes the volume and the
    # capture's timeout from DescribeInstanceTypes).
    # Two accounts, as run.execute() sets them up: the member the runbook
    # runs in, the security account that takes custody of the evidence.
    world = accounts.SecurityWorld(instance_type=args.instance_type).start()
    report = {"mode": "runbook", "instance_id": world.instance_id, "region": world.region,
              "execution_id": execution_id, "checks": []}
    vm = None
    try:
        # The runbook as the member stack deploys it: its account's defaults
        # rendered in (fleet.py, like a central start, passes only CaseId
        # and Examiner).
        world.create_documents(member_documents(docs, world))
        ec2 = world.session.client("ec2")

        def volume_source(volume_id):
            # What EBS would put on the volume: the forensics snapshot's
            # bytes (dist/forensics-volume.img), at the volume's size.
            v = ec2.describe_volumes(VolumeIds=[volume_id])["Volumes"][0]
            src = args.volume_image if v.get("SnapshotId") == world.forensics_snapshot else None
            return src, int(v["Size"]) * GIB

        inst = ec2.describe_instances(InstanceIds=[world.instance_id])["Reservations"][0]["Instances"][0]
        root = [m["Ebs"]["VolumeId"] for m in inst.get("BlockDeviceMappings", [])
                if m.get("DeviceName") == inst.get("RootDeviceName") and "Ebs" in m]
        if len(root) != 1:
            raise DriverError(f"moto's instance has no single root EBS volume: {inst.get('BlockDeviceMappings')}")
        report["root_volume_id"] = root[0]
        # The guest's root disk carries the root volume's ID as its serial,
        # as on Nitro.
        vm = vm_instance.VmInstance(instance_id=world.instance_id, qemu=qemu, qemu_args=qargs,
                                    workdir=args.work, volume_source=volume_source,
                                    total_timeout=args.timeout, root_volume_id=root[0])
        report["boot_seconds"] = round(vm.boot_seconds, 1)

        def at_snapshot(params, **_kw):
            # The moment EBS takes the snapshot: what the guest has written
            # to the volume so far (compared with the count at detach).
            vm.observe_volume("at-snapshot", params.get("VolumeId", ""))

        # The engine's ec2 client is this one (the world shares its clients).
        ec2.meta.events.register("before-parameter-build.ec2.CreateSnapshot", at_snapshot)
        # EvidenceLockDays: the security account's copy is locked, as a
        # team keeping evidence for a year would run it.
        params = world.parameters(CaseId="VM-BENCH-RUNBOOK", Examiner="fv-vm-bench",
                                  Note="qemu guest as the instance of a whole runbook run",
                                  Source="kcore", CompressionLevel="1", EvidenceLockDays="365")
        commands = {k: v for k, v in docs.items() if k != RUNBOOK}
        before = world.protection()
        t0 = time.monotonic()
        try:
            ex = engine.Execution(docs[RUNBOOK], params, world.session, vm, commands, world_mod.ACCOUNT,
                                  world.region, execution_id=execution_id)
            ex.world = world  # as run.execute() does: the engine's EBS stand-ins live there
            ex.run()
        except engine.EngineError as e:
            raise DriverError(f"the engine refused the runbook: {e}") from e
        report["execution_seconds"] = round(time.monotonic() - t0, 1)
        print(engine.report(ex), file=sys.stderr)
        report.update({"status": ex.status, "failure": ex.failure_message, "outputs": ex.outputs,
                       "steps": [{k: r.get(k) for k in ("name", "status", "message", "command_status",
                                                         "response_code", "first_line")} for r in ex.steps],
                       "pending_commands": ex.pending_commands})
        volume_id = ex.outputs.get("CreateVolume.VolumeId", "")
        snapshot_id = ex.outputs.get("SnapshotEvidence.EvidenceSnapshotId", "")
        report["volume_id"] = volume_id
        report["snapshot_id"] = snapshot_id
        report["volume_image"] = vm.image_of(volume_id) if volume_id else None
        checks = report["checks"]

        def check(name, ok, detail):
            checks.append([name, bool(ok), str(detail)[:200]])

        run_checks(world, vm, ex, before, check)
        custody(world, ex, args.work, report, check)
        if args.cancel_drill:
            cancel_drill(world, vm, docs, params, before, report, check)
        if args.fleet_drill:
            fleet_drill(world, vm, args, report, check)
    finally:
        if vm is not None:
            report["qemu_exit"] = vm.close()
            report["history"] = vm.history
        world.stop()
        with open(os.path.join(args.work, "driver.json"), "w") as f:
            json.dump(report, f, indent=1, default=str)
    return 0


def run_checks(world, vm, ex, before, check):
    """What moto's final state and the guest's history say about the single
    run EX: the flow, the instance's protections, the commands, the volume
    hot-plugged and unplugged, the evidence snapshot completed and shared,
    no volume left."""
    import world as world_mod  # noqa: PLC0415

    ec2 = world.session.client("ec2")
    volume_id = ex.outputs.get("CreateVolume.VolumeId", "")
    snapshot_id = ex.outputs.get("SnapshotEvidence.EvidenceSnapshotId", "")
    execution_id = ex.execution_id
    check("runbook-execution-success", ex.status == "Success",
          f"{ex.status} {ex.failure_message}".strip())
    ran = [r["name"] for r in ex.steps]
    flow = ["Plan", "CreateVolume", "AttachVolume", "Mount", "Capture", "Unmount", "DetachVolume"]
    ok_steps = [r["name"] for r in ex.steps if r["status"] == "Success" and r["name"] in flow]
    check("runbook-flow-steps-succeeded-in-order", ok_steps == flow, " -> ".join(ran))
    cleanup = [n for n in ran if n.startswith(("Cleanup", "Cancel", "SnapshotInUse"))]
    check("runbook-no-failure-or-cancel-path", not cleanup, f"clean-up steps run: {cleanup or 'none'}")
    protection = world.protection()
    check("instance-protection-restored", protection == before, f"before {before}, after {protection}")
    cmd = {r["name"]: r for r in ex.steps if r.get("command_status")}
    for step in ("Mount", "Capture", "Unmount"):
        r = cmd.get(step, {})
        check(f"runbook-{step.lower()}-command-success", r.get("command_status") == "Success",
              f"{r.get('command_status')} exit {r.get('response_code')}: {r.get('first_line')}")
    check("runbook-capture-outputs", ex.outputs.get("Capture.Status") == "Success"
          and ex.outputs.get("Capture.ResponseCode") == 0,
          f"Capture.Status {ex.outputs.get('Capture.Status')}, ResponseCode {ex.outputs.get('Capture.ResponseCode')}")
    hotplugged = [h for h in vm.history if h["what"] == "attach"]
    check("moto-volume-is-the-hotplugged-disk",
          bool(volume_id) and len(hotplugged) == 1 and volume_id.replace("-", "") in hotplugged[0]["detail"],
          f"CreateVolume {volume_id}; {hotplugged[0]['detail'] if hotplugged else 'never hot-plugged'}")
    unplugged = [h for h in vm.history if h["what"] == "detach" and "unplugged" in h["detail"]]
    check("volume-unplugged-on-detach", len(unplugged) == 1,
          unplugged[0]["detail"] if unplugged else "never unplugged")
    snaps = world.snapshots_of(volume_id) if volume_id else []
    snap = next((s for s in snaps if s["SnapshotId"] == snapshot_id), None)
    check("evidence-snapshot-completed", snap is not None and snap["State"] == "completed",
          f"{snapshot_id}: {snap['State'] if snap else 'missing'} of {volume_id}")
    if snap is not None:
        perms = ec2.describe_snapshot_attribute(SnapshotId=snapshot_id, Attribute="createVolumePermission")
        users = [p.get("UserId") for p in perms.get("CreateVolumePermissions", [])]
        check("evidence-snapshot-shared", world_mod.SECURITY_ACCOUNT in users, f"createVolumePermission {users}")
    left = [v["VolumeId"] + ":" + v["State"] for v in world.volumes_of(execution_id)]
    check("no-volume-left-behind", not left, f"volumes of the execution left: {left or 'none'}")


def member_documents(docs, world):
    """DOCS with the runbook's parameter defaults the member stack renders
    in (deploy/cloudformation/member.json "fv:defaults"), for this world."""
    runbook = json.loads(json.dumps(docs[RUNBOOK]))
    given = world.parameters()
    for name in ("KmsKeyId", "SecurityAccountId", "OutputS3BucketName", "AutomationAssumeRole"):
        runbook["parameters"][name]["default"] = given[name]
    return dict(docs, **{RUNBOOK: runbook})


class GuestAs:
    """The guest standing in for another instance of the fleet (issue 24:
    one guest captured as separate instances): the engine's calls for
    INSTANCE_ID go to the guest as its own, its console blocks labelled
    PREFIX. The fleet runs one instance at a time (MaxConcurrency 1), so
    the guest holds one forensics volume at a time, as in the single run."""

    def __init__(self, vm, instance_id, prefix):
        self.vm, self.instance_id, self.prefix = vm, instance_id, prefix

    def _as_guest(self, instance_id):
        if instance_id != self.instance_id:
            raise vm_instance.VmError(f"instance {instance_id} is not {self.instance_id}")
        self.vm.label_prefix = self.prefix
        return self.vm.instance_id

    def on_attach(self, volume_id, instance_id, device):
        return self.vm.on_attach(volume_id, self._as_guest(instance_id), device)

    def on_detach(self, volume_id, instance_id, force):
        return self.vm.on_detach(volume_id, self._as_guest(instance_id), force)

    def run_command(self, request):
        import dataclasses  # noqa: PLC0415

        return self.vm.run_command(dataclasses.replace(request, instance_id=self._as_guest(request.instance_id)))


FLEET_CASE = "VM-BENCH-FLEET"


def fleet_drill(world, vm, args, report, check):
    """Issue 24's VM proof: two more instances of the member account, both
    the guest, captured through the fleet path on the same boot: fleet.py
    (deploy/scripts) in the security account starts ONE rate-controlled
    execution (service.py) through the member's starter role, each child is
    the whole runbook with the guest as its instance, and fleet.py writes
    the fleet record. Saved for the host (scenarios.sh check_fleet): the
    fleet record (WORK/fleet.json), its versions listing, each entry's
    custody record listing and volume image; the host then runs
    `capture verify --custody-record fleet.json` on each image."""
    import io  # noqa: PLC0415

    import accounts  # noqa: PLC0415
    import service as service_mod  # noqa: PLC0415
    import world as world_mod  # noqa: PLC0415

    sys.path.insert(0, os.path.join(HERE, "..", "..", "..", "deploy", "scripts"))
    import fleet as fleet_mod  # noqa: PLC0415

    ec2 = world.session.client("ec2")
    ids = [ec2.run_instances(ImageId="ami-0123456789abcdef0", InstanceType=args.instance_type, MinCount=1,
                             MaxCount=1, Placement={"AvailabilityZone": world.region + "a"},
                             TagSpecifications=[{"ResourceType": "instance",
                                                 "Tags": [{"Key": "Incident", "Value": FLEET_CASE}]}]
                             )["Instances"][0]["InstanceId"] for _ in range(2)]
    prefixes = {iid: f"fleet{n}-" for n, iid in enumerate(ids, 1)}
    svc = service_mod.AutomationService(
        world, backend=lambda iid: GuestAs(vm, iid, prefixes.get(iid, "fleet-"))).start()
    out = io.StringIO()
    t0 = time.monotonic()
    rc = fleet_mod.main(["--case", FLEET_CASE, "--examiner", "fv-vm-bench", "--security-account", accounts.SECURITY,
                         "--accounts", world_mod.ACCOUNT, "--regions", world.region, "--instances", ",".join(ids),
                         "--max-concurrency", "1", "--max-errors", "0", "--state-dir", args.work],
                        session=world.security, sleep=svc.sleep, out=out)
    print(out.getvalue(), file=sys.stderr)
    fleet = {"instances": ids, "exit": rc, "seconds": round(time.monotonic() - t0, 1), "entries": []}
    report["fleet"] = fleet
    check("fleet-start-exit-0", rc == 0, f"fleet.py exit {rc}: {out.getvalue().strip().splitlines()[-1:]}")
    s3 = world.security.client("s3")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=accounts.CUSTODY_BUCKET, Prefix="fleet/").get("Contents", [])]
    check("fleet-one-record", len(keys) == 1, f"{keys}")
    if len(keys) != 1:
        return
    mode, until = world.retain_until(keys[0])
    check("fleet-record-locked-in-compliance-mode", mode == "COMPLIANCE" and until is not None,
          f"{keys[0]}: {mode} until {until}")
    body = s3.get_object(Bucket=accounts.CUSTODY_BUCKET, Key=keys[0])["Body"].read()
    fleet["record"] = os.path.join(args.work, "fleet.json")
    with open(fleet["record"], "wb") as f:
        f.write(body)

    def listing(key, path):
        got = s3.list_object_versions(Bucket=accounts.CUSTODY_BUCKET, Prefix=key[:-len("json")])
        got.pop("ResponseMetadata", None)
        with open(path, "w") as f:
            json.dump(got, f, default=lambda d: d.isoformat())
        return path

    fleet["versions"] = listing(keys[0], os.path.join(args.work, "fleet-versions.json"))
    record = json.loads(body)
    copies = {x["SnapshotId"] for x in world.security_snapshots()}
    for n, e in enumerate(record.get("entries", []), 1):
        ex = svc.executions.get(e.get("execution_id") or "")
        vol = ex.ex.outputs.get("CreateVolume.VolumeId", "") if ex is not None else ""
        custody = e.get("custody_record") or {}
        fleet["entries"].append({
            "instance_id": e.get("instance_id"), "execution_id": e.get("execution_id"), "status": e.get("status"),
            "capture_status": e.get("capture_status"), "volume_id": vol,
            "volume_image": vm.image_of(vol) if vol else None,
            "custody_versions": listing(custody["key"], os.path.join(args.work, f"fleet-custody-versions-{n}.json"))
            if custody.get("key") else None})
    entries = record.get("entries", [])
    check("fleet-record-every-instance-success-complete-in-custody",
          sorted(e.get("instance_id") or "" for e in entries) == sorted(ids)
          and all(e.get("status") == "Success" and e.get("capture_status") == "complete"
                  and e.get("custody_copy") in copies and e.get("custody_record") for e in entries),
          "; ".join(f"{e.get('instance_id')} {e.get('status')} {e.get('capture_status')} {e.get('custody_copy')} "
                    f"{(e.get('failure') or '')[:60]}" for e in entries))
    hot = [h for h in vm.history if h["what"] == "attach"]
    check("fleet-each-instance-a-volume-of-its-own-hotplugged",
          len({x["volume_id"] for x in fleet["entries"]}) == 2
          and all(x["volume_id"] and any(x["volume_id"].replace("-", "") in h["detail"] for h in hot)
                  and x["volume_image"] for x in fleet["entries"]),
          "; ".join(f"{x['instance_id']}: {x['volume_id']}" for x in fleet["entries"]))


def custody(world, ex, work, report, check):
    """Issue 13 on a real capture: the evidence ends in the security
    account's ownership, locked, with a locked custody record whose digests
    are the ones the guest's capture printed. The record is saved as
    WORK/custody.json; the host then runs `capture verify --custody-record`
    on the volume image against it (scenarios.sh check_custody), so the
    digests are proved to be the image's, not only the record's own."""
    import accounts  # noqa: PLC0415

    copy_id = ex.outputs.get("Custody.SecuritySnapshotId") or ""
    copies = {x["SnapshotId"]: x for x in world.security_snapshots()}
    check("custody-copy-owned-by-the-security-account", copy_id in copies,
          f"Custody.SecuritySnapshotId {copy_id or 'missing'}; the security account owns {sorted(copies)}")
    sec = world.security.client("ec2")
    locks = sec.describe_locked_snapshots(SnapshotIds=[copy_id])["Snapshots"] if copy_id else []
    check("custody-copy-locked-in-compliance-mode",
          len(locks) == 1 and locks[0].get("LockState") == "compliance" and locks[0].get("LockDuration") == 365,
          f"{[(x.get('LockState'), x.get('LockDuration')) for x in locks]}; Custody.Locked {ex.outputs.get('Custody.Locked')}")
    try:
        world.session.client("ec2").delete_snapshot(SnapshotId=copy_id)
        member_deleted = True
    except Exception:  # noqa: BLE001  (any refusal will do: the member is not the owner)
        member_deleted = False
    check("custody-copy-not-deletable-by-the-member", copy_id and not member_deleted
          and copy_id in {x["SnapshotId"] for x in world.security_snapshots()}, f"member DeleteSnapshot {copy_id}")
    keys = world.custody_records()
    check("custody-one-record", len(keys) == 1, f"{keys}")
    if len(keys) != 1:
        return
    mode, until = world.retain_until(keys[0])
    check("custody-record-locked-in-compliance-mode", mode == "COMPLIANCE" and until is not None,
          f"{keys[0]}: {mode} until {until}")
    body = world.security.client("s3").get_object(Bucket=accounts.CUSTODY_BUCKET, Key=keys[0])["Body"].read()
    path = os.path.join(work, "custody.json")
    with open(path, "wb") as f:
        f.write(body)
    # What `aws s3api list-object-versions --prefix custody/.../EXECUTION.
    # --output json` prints (issue 21): verify checks the record is its key's
    # first and only version from it.
    listing = world.security.client("s3").list_object_versions(Bucket=accounts.CUSTODY_BUCKET,
                                                                Prefix=keys[0][:-len("json")])
    listing.pop("ResponseMetadata", None)
    with open(os.path.join(work, "custody-versions.json"), "w") as f:
        json.dump(listing, f, default=lambda d: d.isoformat())
    record = json.loads(body)
    cap = record.get("capture") or {}
    digests = (cap.get("manifest_sha256"), cap.get("image_sha256"), cap.get("lime_sha256"))
    outputs = (ex.outputs.get("Custody.ManifestSha256"), ex.outputs.get("Custody.ImageSha256"),
               ex.outputs.get("Custody.LimeSha256"))
    check("custody-record-digests-are-the-runbook-outputs", all(digests) and digests == outputs,
          f"record {digests}, outputs {outputs}")
    report["custody_record"] = path


def cancel_drill(world, vm, docs, params, before, report, check):
    """A second execution on the same boot, cancelled while Capture runs
    (StopAutomationExecution): SSM cancels the command, the agent SIGKILLs
    the capture's process group, and the runbook's onCancel path must
    snapshot the volume, restore the instance and unmount the volume in the
    guest. The capture is killed, not finalized: that is why
    Forensics-StopCapture exists (the stop-capture scenario)."""
    import engine  # noqa: PLC0415
    import run as run_mod  # noqa: PLC0415  (deploy/automation/run.py: CancelDuring)
    import world as world_mod  # noqa: PLC0415

    execution_id = "00000000-0000-4000-8000-00000000ca2c"
    vm.label_prefix = "cancel-"
    commands = {k: v for k, v in docs.items() if k != RUNBOOK}
    ex = engine.Execution(docs[RUNBOOK], params, world.session, vm, commands, world_mod.ACCOUNT,
                          world.region, execution_id=execution_id, faults=run_mod.CancelDuring("Capture"))
    ex.world = world
    ex.run()
    print(engine.report(ex), file=sys.stderr)
    volume_id = ex.outputs.get("CreateVolume.VolumeId", "")
    report["cancel"] = {"status": ex.status, "failure": ex.failure_message, "outputs": ex.outputs,
                        "steps": [{k: r.get(k) for k in ("name", "status", "message", "command_status",
                                                          "response_code")} for r in ex.steps],
                        "volume_id": volume_id,
                        "volume_image": vm.image_of(volume_id) if volume_id else None}
    ran = " -> ".join(f"{r['name']}:{r['status']}" for r in ex.steps)
    check("cancel-execution-cancelled", ex.status == "Cancelled", f"{ex.status}: {ran}")
    cap = next((r for r in ex.steps if r["name"] == "Capture"), {})
    check("cancel-capture-command-cancelled", cap.get("command_status") == "Cancelled",
          f"{cap.get('command_status')} exit {cap.get('response_code')}")
    snapshot_id = ex.outputs.get("CancelSnapshotEvidence.EvidenceSnapshotId", "")
    snaps = world.snapshots_of(volume_id) if volume_id else []
    snap = next((x for x in snaps if x["SnapshotId"] == snapshot_id), None)
    check("cancel-evidence-snapshot-completed", snap is not None and snap["State"] == "completed",
          f"{snapshot_id or 'no snapshot output'}: {snap['State'] if snap else 'missing'} of {volume_id}")
    protection = world.protection()
    check("cancel-instance-protection-restored", protection == before, f"before {before}, after {protection}")
    mountpoint = vm.mountpoint_of(volume_id) if volume_id in vm.attached else "(not attached)"
    check("cancel-volume-unmounted-in-guest", mountpoint in ("", "(not attached)"),
          f"{volume_id} mounted at '{mountpoint}'")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("mode", choices=["runbook", "documents"])
    p.add_argument("--work", required=True)
    p.add_argument("--qemu-args", required=True)
    p.add_argument("--volume-image", required=True)
    p.add_argument("--ssm-dir", required=True)
    p.add_argument("--volume-mib", type=int, default=1536)
    p.add_argument("--instance-type", default="t3.nano", help="moto's instance (its RAM should be the guest's)")
    p.add_argument("--cancel-drill", action="store_true",
                   help="runbook: then a second execution on the same boot, cancelled during Capture")
    p.add_argument("--fleet-drill", action="store_true",
                   help="runbook: then two more instances, both the guest, through fleet.py (issue 24)")
    p.add_argument("--timeout", type=int, default=1200, help="qemu's whole life, seconds")
    args = p.parse_args()
    t0 = time.monotonic()
    try:
        rc = runbook(args) if args.mode == "runbook" else documents(args)
    except (DriverError, vm_instance.VmError, vm_instance.AgentError, vm_instance.qmp.QmpError, OSError,
            ssm_extract.DocError) as e:
        print(f"runbook_vm: FAIL: {e}", file=sys.stderr)
        return 1
    print(f"runbook_vm: {args.mode} done in {time.monotonic() - t0:.0f} s", file=sys.stderr)
    return rc


if __name__ == "__main__":
    sys.exit(main())
