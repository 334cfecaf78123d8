"""Custody drills: the rendered runbook run in the local engine with two
accounts in moto (member 123456789012, security 222222222222), proving
issue 13's points there:

  custody      a full run leaves the evidence copy owned by the security
               account, under its key, tagged with case, instance, account,
               region, execution and the capture's digests; a custody record
               locked in compliance mode whose digests are the capture's;
               and nothing of it the member account can delete;
  no-output    the Capture command's output never reached S3: the run says
               so in its outputs and in the record;
  central      the security account starts the run through the member's
               starter role (role chain security -> member starter), and it
               succeeds;
  not-shared   in an account the forensics snapshot was not shared with,
               Plan says "forensics snapshot not shared with this account";
  new-account  accounts that joined after the publish get the snapshot from
               the security account's hourly Forensics-ShareForensicsSnapshot.
  lock         EvidenceLockDays: the copy is locked in compliance mode for
               that many days; a security-account admin's DeleteSnapshot
               fails; the member cannot delete, unshare or lock it (not
               the owner); a failing LockSnapshot is in the record and the
               outputs and the copy stays;
  disks        SnapshotAllVolumes=yes: every EBS volume of the instance but
               the forensics volume is snapshotted (CreateSnapshots) and
               handed over like the memory evidence; a volume under aws/ebs
               is left in the member account and the record says why;
               off by default; a failing CreateSnapshots costs the memory
               evidence nothing; disks still pending at Custody are handed
               over after RestoreInstance (WaitDisks, a further locked
               record naming the first), one in error or still pending when
               the wait ends is recorded as such and the run succeeds, a
               cancel during the wait leaves the memory custody intact;
  capture-failed  a failed capture's and a stopped capture's partial image
               is handed over, tagged and recorded as partial;
  unmount-failed  the snapshot of a volume whose unmount failed is handed
               over like a clean one, tagged and recorded as what it is.

    deploy/automation.sh python deploy/automation/custody_drills.py

Prints PASS/FAIL per check and "N passed, M failed"; exit 1 on a failure.
"""

import datetime
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(1, os.path.join(os.path.dirname(HERE), "tools"))
sys.path.insert(2, os.path.join(os.path.dirname(HERE), "scripts"))

import accounts  # noqa: E402
import backend as backend_mod  # noqa: E402
import engine  # noqa: E402
import run as run_mod  # noqa: E402
import world as world_mod  # noqa: E402

DIGESTS = {"manifest.json": "1" * 64, "memory.lime.zst": "2" * 64, "lime": "3" * 64}
RESULTS = []


def final_line():
    """capture's final line as the Rust binary prints it (run.rs summary_line)."""
    return ("capture: complete: 2.0 GiB of RAM in 3 range(s) from kcore in 41s (50 MiB/s) -> "
            "/run/forensics-volume/vol-0/captures/i-0-20260101T000000Z (600 MiB, 29.3 %%); "
            "sha256 manifest.json=%s memory.lime.zst=%s lime=%s"
            % (DIGESTS["manifest.json"], DIGESTS["memory.lime.zst"], DIGESTS["lime"]))


class AnchoredBackend(backend_mod.ScriptedBackend):
    """The scripted instance, whose capture prints its final line second, as
    capture.sh does."""

    def run_command(self, request):
        result = super().run_command(request)
        if request.document_name == "Forensics-CaptureMemory" and result.status == "Success":
            head, _, rest = result.stdout.partition("\n")
            result.stdout = head + "\n" + final_line() + "\n" + rest
        return result


class DropOutput:
    """The agent ran Capture but its upload to S3 failed (deploy review H4):
    the objects are removed as soon as the step ends."""

    def cancel_during(self, name):
        return False

    def enter(self, name, ex):
        pass

    def leave(self, name, ex):
        if name != "Capture":
            return
        s3 = ex.client("s3")
        import iam  # the fault is the world's doing, not the execution role's
        with iam.acting_as(ex.session, iam.Principal.admin(world_mod.ACCOUNT)):
            for o in s3.list_objects_v2(Bucket=world_mod.BUCKET).get("Contents", []):
                if "/%s/" % ex.values.get("Capture.CommandId") in o["Key"]:
                    s3.delete_object(Bucket=world_mod.BUCKET, Key=o["Key"])


def check(name, ok, detail=""):
    RESULTS.append((name, ok))
    print("%s %s%s" % ("PASS" if ok else "FAIL", name, "" if ok else ": " + detail))


def run_drills(named, started):
    """Run each (name, drill) of NAMED; a drill that cannot run (any
    exception) is a failure, said with its traceback. Then print the
    totals since STARTED; the exit code."""
    for name, drill in named:
        try:
            drill()
        except Exception as e:  # noqa: BLE001  (a drill that cannot run is a failure, said)
            import traceback

            traceback.print_exc()
            check(name, False, "%s: %s" % (type(e).__name__, e))
    return summary(started)


def summary(started):
    """Print how many checks passed and failed since STARTED; the exit code."""
    failed = sum(1 for _, ok in RESULTS if not ok)
    print("%d passed, %d failed (%.1f s)" % (len(RESULTS) - failed, failed,
                                            (datetime.datetime.now() - started).total_seconds()))
    return 1 if failed else 0


def execute(world, session=None, faults=None, parameters=None, execution_id=None):
    docs = run_mod.rendered_documents()
    if not getattr(world, "documents_created", False):
        world.create_documents(docs)
        world.documents_created = True
    commands = {k: v for k, v in docs.items() if k != run_mod.RUNBOOK}
    params = world.parameters(SecurityAccountId=accounts.SECURITY, **(parameters or {}))
    ex = engine.Execution(docs[run_mod.RUNBOOK], params, session or world.session, AnchoredBackend(), commands,
                          world_mod.ACCOUNT, world.region,
                          execution_id=execution_id or "00000000-0000-4000-8000-000000000013", faults=faults)
    ex.world = world
    return ex.run()


def drill_custody():
    w = accounts.SecurityWorld().start()
    try:
        ex = execute(w)
        check("custody: the run succeeds", ex.status == "Success", "%s %s" % (ex.status, ex.failure_message))
        copy_id = ex.outputs.get("Custody.SecuritySnapshotId")
        snaps = {s["SnapshotId"]: s for s in w.security_snapshots()}
        check("custody: the evidence copy is owned by the security account", copy_id in snaps,
              "%s not in %s" % (copy_id, list(snaps)))
        if copy_id not in snaps:
            return
        s = snaps[copy_id]
        tags = {t["Key"]: t["Value"] for t in s.get("Tags", [])}
        check("custody: the copy is encrypted under the security account's key",
              s.get("Encrypted") and s.get("KmsKeyId") == w.security_key_arn, str(s))
        want = {"forensics-volume:case-id": "IR-2026-042", "forensics-volume:instance-id": w.instance_id,
                "forensics-volume:account": world_mod.ACCOUNT, "forensics-volume:region": w.region,
                "forensics-volume:execution-id": ex.execution_id,
                "forensics-volume:manifest-sha256": DIGESTS["manifest.json"],
                "forensics-volume:image-sha256": DIGESTS["memory.lime.zst"],
                "forensics-volume:lime-sha256": DIGESTS["lime"]}
        check("custody: the copy is tagged with case, instance, account, region, execution and digests",
              all(tags.get(k) == v for k, v in want.items()), json.dumps(tags))
        check("custody: the runbook's outputs carry the digests",
              (ex.outputs.get("Custody.ManifestSha256"), ex.outputs.get("Custody.ImageSha256"),
               ex.outputs.get("Custody.LimeSha256")) == (DIGESTS["manifest.json"], DIGESTS["memory.lime.zst"],
                                                         DIGESTS["lime"]), json.dumps(ex.outputs))
        check("custody: EvidenceLockDays 0 (the default) leaves the copy unlocked and the outputs say off",
              ex.outputs.get("Custody.Locked") == "off" and
              not w.security.client("ec2").describe_locked_snapshots()["Snapshots"], str(ex.outputs.get("Custody.Locked")))
        # The member account cannot delete the security account's copy.
        member_ec2 = w.session.client("ec2")
        try:
            member_ec2.delete_snapshot(SnapshotId=copy_id)
            deleted = True
        except Exception:  # noqa: BLE001
            deleted = False
        check("custody: the member account cannot delete the copy",
              not deleted and copy_id in {x["SnapshotId"] for x in w.security_snapshots()})

        keys = w.custody_records()
        key = "custody/%s/%s/IR-2026-042/%s.json" % (world_mod.ACCOUNT, w.region, ex.execution_id)
        check("custody: one custody record, under the member's account/region/case/execution",
              keys == [key], str(keys))
        if keys != [key]:
            return
        mode, until = w.retain_until(key)
        days = w.days_from_now(until) if until else -1
        check("custody: the record is locked in compliance mode for the retention (3650 days)",
              mode == "COMPLIANCE" and 3648 <= days <= 3650, "%s %s" % (mode, until))
        s3 = w.security.client("s3")
        obj = s3.get_object(Bucket=accounts.CUSTODY_BUCKET, Key=key)
        record = json.loads(obj["Body"].read())
        cap = record["capture"]
        check("custody: the record's digests are the capture's final line's",
              (cap["manifest_sha256"], cap["image_sha256"], cap["lime_sha256"]) ==
              (DIGESTS["manifest.json"], DIGESTS["memory.lime.zst"], DIGESTS["lime"])
              and cap["final_line"] == final_line(), json.dumps(cap))
        fields = ("instance_id", "account", "region", "availability_zone", "case_id", "examiner",
                  "forensics_volume_id", "evidence_snapshot_id", "security_snapshot_id", "commands", "plan",
                  "execution_id", "written_utc")
        check("custody: the record names instance, account, region, AZ, case, examiner, volume, snapshots, "
              "commands, plan", all(record.get(f) for f in fields) and record["security_snapshot_id"] == copy_id
              and record["availability_zone"] == w.region + "a",
              json.dumps({f: record.get(f) for f in fields}))
        check("custody: every Run Command output arrived and the record says so",
              all(o["arrived"] for o in record["run_command_output"].values()) and not record["findings"]
              and ex.outputs.get("Custody.OutputsArrived") == "yes", json.dumps(record["run_command_output"]))
        version = obj.get("VersionId")
        refused = []
        for who, client in (("member", w.session.client("s3")), ("security", s3)):
            try:
                client.delete_object(Bucket=accounts.CUSTODY_BUCKET, Key=key, VersionId=version)
                refused.append(False)
            except Exception:  # noqa: BLE001
                refused.append(True)
        check("custody: neither the member nor the security account can delete the locked record",
              all(refused) and w.custody_records() == [key], str(refused))
    finally:
        w.stop()


def drill_no_output():
    w = accounts.SecurityWorld().start()
    try:
        ex = execute(w, faults=DropOutput())
        record_key = (w.custody_records() or [None])[0]
        record = json.loads(w.security.client("s3").get_object(Bucket=accounts.CUSTODY_BUCKET, Key=record_key)
                            ["Body"].read()) if record_key else {}
        check("no-output: the missing Capture output is in the outputs and the record",
              ex.outputs.get("Custody.OutputsArrived") == "no"
              and any("Capture did not arrive" in f for f in record.get("findings", []))
              and record["run_command_output"]["Capture"]["arrived"] is False
              and record["run_command_output"]["Mount"]["arrived"] is True,
              json.dumps({"outputs": ex.outputs.get("Custody.Summary"), "findings": record.get("findings")}))
    finally:
        w.stop()


def drill_central():
    """The security account's responder assumes the member's starter role,
    which may start only the member's own runbook with the member's
    execution role (member.json AutomationStarterRole); the execution then
    runs as the member, and custody comes back to the security account."""
    w = accounts.SecurityWorld().start()
    try:
        starter_arn = "arn:aws:iam::%s:role/%s" % (world_mod.ACCOUNT, accounts.STARTER_ROLE)
        starter = accounts.assume(w.security, starter_arn, "central-start")
        who = starter.client("sts").get_caller_identity()
        check("central: the security account's responder becomes the member's starter role",
              who["Account"] == world_mod.ACCOUNT and accounts.STARTER_ROLE in who["Arn"], str(who))
        member = CentralClients(w, starter)
        ex = execute(w, session=member, execution_id="00000000-0000-4000-8000-0000000000c1")
        check("central: the run started centrally succeeds, with custody in the security account",
              ex.status == "Success" and ex.outputs.get("Custody.SecuritySnapshotId") in
              {s["SnapshotId"] for s in w.security_snapshots()}, "%s %s" % (ex.status, ex.failure_message))
    finally:
        w.stop()


class CentralClients(world_mod.Clients):
    """The World's client routing (stand-ins and faults) on the starter
    role's credentials instead of the member's own."""

    def __init__(self, world, session):
        creds = session.get_credentials()
        import boto3

        super().__init__(world.region, boto3.Session(
            region_name=world.region, aws_access_key_id=creds.access_key,
            aws_secret_access_key=creds.secret_key, aws_session_token=creds.token))
        self.world = world


def drill_not_shared():
    """A forensics snapshot in the security account, not shared with the
    member (an account that joined after the last publish)."""
    w = accounts.SecurityWorld().start()
    try:
        sec = w.security.client("ec2")
        vol = sec.create_volume(AvailabilityZone=w.region + "a", Size=1)["VolumeId"]
        snap = sec.create_snapshot(VolumeId=vol)["SnapshotId"]
        ex = execute(w, parameters={"SnapshotId": snap})
        plan = next((s for s in ex.steps if s["name"] == "Plan"), {})
        msg = json.dumps(plan, default=str)
        check("not-shared: Plan says the forensics snapshot is not shared with this account",
              ex.status == "Failed" and "forensics snapshot not shared with this account" in msg, msg[:600])
    finally:
        w.stop()


def drill_new_account():
    """Accounts join the organization after the publish: the security
    account's Forensics-ShareForensicsSnapshot (run hourly by its schedule)
    shares the forensics snapshot with each of them, 500 per call at most,
    and leaves the others alone; then the new account's Plan sees it."""
    w = accounts.SecurityWorld().start()
    try:
        sec = w.security
        org = sec.client("organizations")
        org.create_organization(FeatureSet="ALL")
        joined = [org.create_account(AccountName="new-%d" % i, Email="n%d@example.com" % i)
                  ["CreateAccountStatus"]["AccountId"] for i in range(3)]
        ec2 = sec.client("ec2")
        vol = ec2.create_volume(AvailabilityZone=w.region + "a", Size=1)["VolumeId"]
        # Tagged as deploy/publish.sh tags it: the share role shares only such a snapshot.
        snap = ec2.create_snapshot(VolumeId=vol, TagSpecifications=[{"ResourceType": "snapshot", "Tags": [
            {"Key": "Name", "Value": "forensics-volume"}]}])["SnapshotId"]
        sec.client("ssm").put_parameter(Name=world_mod.PARAMETER, Type="String", Value=snap)
        ec2.modify_snapshot_attribute(SnapshotId=snap, Attribute="createVolumePermission", OperationType="add",
                                      UserIds=[joined[0]])
        docs = run_mod.rendered_documents()
        name = "Forensics-ShareForensicsSnapshot"
        # The document's default AutomationAssumeRole: security.json's ShareRole.
        ex = engine.Execution(docs[name], {"AutomationAssumeRole": "arn:aws:iam::%s:role/Forensics-ShareSnapshot-%s"
                                           % (accounts.SECURITY, w.region)}, sec, backend_mod.InstanceBackend(), {},
                              accounts.SECURITY, w.region).run()
        perms = ec2.describe_snapshot_attribute(SnapshotId=snap, Attribute="createVolumePermission")
        shared = sorted(p["UserId"] for p in perms["CreateVolumePermissions"])
        check("new-account: the share runbook adds every account that joined, not the security account itself",
              ex.status == "Success" and shared == sorted(joined) and ex.outputs.get("Share.Added") == 2,
              "%s %s %s %s" % (ex.status, ex.failure_message, shared, ex.outputs))
        import share  # deploy/scripts/share.py: the batching, with an organization too large to build here
        many = ["%012d" % (500000000000 + i) for i in range(1203)]
        todo = share.missing_accounts(many + [accounts.SECURITY], set(many[:1]), accounts.SECURITY)
        check("new-account: at most 500 accounts per ModifySnapshotAttribute",
              [len(b) for b in share.batches(todo)] == [500, 500, 202], str([len(b) for b in share.batches(todo)]))
    finally:
        w.stop()


def drill_isolation():
    """IsolationSecurityGroupId: after custody, every interface of the
    instance is in the isolation group only; without it nothing changes."""
    w = accounts.SecurityWorld().start()
    try:
        ec2 = w.session.client("ec2")
        inst = ec2.describe_instances(InstanceIds=[w.instance_id])["Reservations"][0]["Instances"][0]
        vpc = inst["VpcId"]
        before = sorted(g["GroupId"] for g in inst["SecurityGroups"])
        ex = execute(w, execution_id="00000000-0000-4000-8000-0000000000a0")
        inst = ec2.describe_instances(InstanceIds=[w.instance_id])["Reservations"][0]["Instances"][0]
        check("isolation: off by default, the instance keeps its groups",
              ex.status == "Success" and sorted(g["GroupId"] for g in inst["SecurityGroups"]) == before,
              "%s %s" % (ex.status, inst["SecurityGroups"]))
        # Tagged: the execution role moves interfaces only into such a group (member.json).
        sg = ec2.create_security_group(GroupName="forensics-isolation", Description="no rules", VpcId=vpc,
                                       TagSpecifications=[{"ResourceType": "security-group", "Tags": [
                                           {"Key": "forensics-volume:role", "Value": "isolation"}]}])["GroupId"]
        ex = execute(w, parameters={"IsolationSecurityGroupId": sg}, execution_id="00000000-0000-4000-8000-0000000000a1")
        enis = ec2.describe_network_interfaces(Filters=[{"Name": "attachment.instance-id",
                                                          "Values": [w.instance_id]}])["NetworkInterfaces"]
        check("isolation: every interface in the isolation group only, once the evidence snapshot completed; prior groups recorded",
              ex.status == "Success" and enis and all([g["GroupId"] for g in e["Groups"]] == [sg] for e in enis)
              and all(b in ex.outputs.get("Isolate.PriorGroups", "") for b in before)
              and [s["name"] for s in ex.steps].index("Isolate") > [s["name"] for s in ex.steps].index(
                  "AssertSnapshotCompleted"),
              "%s %s %s" % (ex.status, [e["Groups"] for e in enis], ex.outputs.get("Isolate.Summary")))
    finally:
        w.stop()


def record_of(w):
    keys = w.custody_records()
    if len(keys) != 1:
        return {}
    return json.loads(w.security.client("s3").get_object(Bucket=accounts.CUSTODY_BUCKET, Key=keys[0])["Body"].read())


def refused(call, **kw):
    try:
        call(**kw)
        return ""
    except Exception as e:  # noqa: BLE001
        return str(e) or type(e).__name__


def drill_lock():
    w = accounts.SecurityWorld().start()
    try:
        ex = execute(w, parameters={"EvidenceLockDays": "30"})
        copy_id = ex.outputs.get("Custody.SecuritySnapshotId")
        sec = w.security.client("ec2")
        info = sec.describe_locked_snapshots(SnapshotIds=[copy_id or "snap-0"])["Snapshots"]
        days = (info[0]["LockExpiresOn"] - datetime.datetime.now(datetime.timezone.utc)).days if info else -1
        check("lock: the copy is locked in compliance mode for EvidenceLockDays (30), said in outputs and record",
              ex.status == "Success" and info and info[0]["LockState"] == "compliance" and info[0]["LockDuration"]
              == 30 and 29 <= days <= 30 and ex.outputs.get("Custody.Locked", "").startswith("compliance until")
              and record_of(w).get("snapshots", [{}])[0].get("lock", "").startswith("compliance until"),
              "%s %s %s" % (ex.status, info, ex.outputs.get("Custody.Locked")))
        why = refused(sec.delete_snapshot, SnapshotId=copy_id)
        check("lock: the security account's own admin cannot delete the locked copy",
              why and copy_id in {x["SnapshotId"] for x in w.security_snapshots()}, why)
        member = w.session.client("ec2")
        tries = [refused(member.delete_snapshot, SnapshotId=copy_id),
                 refused(member.modify_snapshot_attribute, SnapshotId=copy_id, Attribute="createVolumePermission",
                         OperationType="remove", UserIds=[accounts.SECURITY]),
                 refused(member.lock_snapshot, SnapshotId=copy_id, LockMode="governance", LockDuration=1),
                 refused(member.create_tags, Resources=[copy_id], Tags=[{"Key": "forensics-volume:role",
                                                                          "Value": "x"}])]
        tags = {t["Key"]: t["Value"] for x in w.security_snapshots() if x["SnapshotId"] == copy_id
                for t in x.get("Tags", [])}
        check("lock: the member account cannot delete, unshare, re-lock or retag the copy (not the owner)",
              all(tries[:3]) and tags.get("forensics-volume:role") == "evidence", str(tries))
        check("lock: the lock cannot be shortened or turned into governance mode",
              refused(sec.lock_snapshot, SnapshotId=copy_id, LockMode="governance", LockDuration=1) and
              refused(sec.lock_snapshot, SnapshotId=copy_id, LockMode="compliance", LockDuration=2), "")
    finally:
        w.stop()
    w = accounts.SecurityWorld().start()
    try:
        w.fail_lock = "InternalError"
        ex = execute(w, parameters={"EvidenceLockDays": "3650"}, execution_id="00000000-0000-4000-8000-00000000010c")
        copy_id = ex.outputs.get("Custody.SecuritySnapshotId")
        rec = record_of(w)
        check("lock: a failing LockSnapshot is in the outputs and the record; the copy stays, unlocked",
              copy_id in {x["SnapshotId"] for x in w.security_snapshots()}
              and ex.outputs.get("Custody.Locked") == "not locked"
              and "NOT locked" in ex.outputs.get("Custody.Summary", "")
              and rec.get("snapshots", [{}])[0].get("lock") == "not locked"
              and any("lock-snapshot --snapshot-id %s" % copy_id in f for f in rec.get("findings", []))
              and not w.security.client("ec2").describe_locked_snapshots()["Snapshots"],
              "%s %s" % (ex.outputs, rec.get("findings")))
    finally:
        w.stop()


class FailUnmount(DropOutput):
    """The guest does not release the forensics volume: Unmount fails."""

    def enter(self, name, ex):
        if name == "Unmount":
            ex.backend.force = backend_mod.Outcome("failed", exit_code=1)

    def leave(self, name, ex):
        ex.backend.force = None


class CaptureEnds(DropOutput):
    """Capture ends with EXIT (20: stopped early with Forensics-StopCapture,
    a finalized partial image; 1: failed)."""

    def __init__(self, exit_code):
        self.exit_code = exit_code

    def enter(self, name, ex):
        if name == "Capture":
            ex.backend.force = backend_mod.Outcome("failed", exit_code=self.exit_code)

    def leave(self, name, ex):
        ex.backend.force = None


def drill_capture_failed():
    for code, says in ((1, "memory image, partial or none: capture Failed (exit 1)"),
                       (20, "memory image, partial: capture stopped early")):
        w = accounts.SecurityWorld().start()
        try:
            ex = execute(w, faults=CaptureEnds(code), execution_id="00000000-0000-4000-8000-0000000002%02d" % code)
            rec = record_of(w)
            copy_id = ex.outputs.get("Custody.SecuritySnapshotId")
            tags = {t["Key"]: t["Value"] for x in w.security_snapshots() if x["SnapshotId"] == copy_id
                    for t in x.get("Tags", [])}
            check("capture-failed (exit %d): the partial image's snapshot is in the security account, tagged and "
                  "recorded as what it is; the run fails" % code,
                  ex.status == "Failed" and copy_id and tags.get("forensics-volume:holds", "").startswith(
                      says.replace(",", "").replace("(", "").replace(")", ""))
                  and rec.get("snapshots", [{}])[0].get("holds", "").startswith(says),
                  "%s %s %s" % (ex.status, tags, rec.get("snapshots")))
        finally:
            w.stop()


def drill_unmount_failed():
    w = accounts.SecurityWorld().start()
    try:
        ex = execute(w, faults=FailUnmount(), execution_id="00000000-0000-4000-8000-0000000000f1")
        rec = record_of(w)
        snaps = {x["SnapshotId"]: {t["Key"]: t["Value"] for t in x.get("Tags", [])} for x in w.security_snapshots()}
        source = ex.outputs.get("SnapshotInUse.EvidenceSnapshotId")
        copies = [sid for sid, t in snaps.items() if t.get("forensics-volume:source-snapshot-id") == source]
        check("unmount-failed: the attached volume's snapshot is copied into the security account, tagged "
              "as taken while mounted, and the record says so; the run still fails",
              ex.status == "Failed" and len(copies) == 1 and "unmount failed" in
              snaps[copies[0]].get("forensics-volume:holds", "") and rec.get("snapshots")
              and rec["snapshots"][0]["copy_id"] == copies[0] and "unmount failed" in rec["snapshots"][0]["holds"],
              "%s %s %s %s" % (ex.status, source, snaps, rec.get("snapshots")))
    finally:
        w.stop()


class FailDisks(DropOutput):
    """CreateSnapshots fails (ServiceUnavailable) when SnapshotDisks calls it."""

    def enter(self, name, ex):
        if name == "SnapshotDisks":
            ex.world.fail_calls = 1

    def leave(self, name, ex):
        ex.world.fail_calls = 0


def suspect_disks(w):
    """A data volume under the security key and one under aws/ebs, attached
    to the suspect next to its root volume."""
    ec2, kms = w.session.client("ec2"), w.session.client("kms")
    ebs_key = kms.describe_key(KeyId="alias/aws/ebs")["KeyMetadata"]
    w.aws_managed_keys.add(ebs_key["KeyId"])
    data = ec2.create_volume(AvailabilityZone=w.region + "a", Size=2, Encrypted=True,
                             KmsKeyId=w.security_key_arn)["VolumeId"]
    managed = ec2.create_volume(AvailabilityZone=w.region + "a", Size=2, Encrypted=True,
                                KmsKeyId=ebs_key["Arn"])["VolumeId"]
    ec2.attach_volume(VolumeId=data, InstanceId=w.instance_id, Device="/dev/sdg")
    ec2.attach_volume(VolumeId=managed, InstanceId=w.instance_id, Device="/dev/sdh")
    root = [m["Ebs"]["VolumeId"] for r in ec2.describe_instances(InstanceIds=[w.instance_id])["Reservations"]
            for i in r["Instances"] for m in i["BlockDeviceMappings"] if m["DeviceName"] == "/dev/sda1"]
    return root + [data], managed


def drill_disks():
    w = accounts.SecurityWorld().start()
    try:
        shared, managed = suspect_disks(w)
        ex = execute(w, parameters={"SnapshotAllVolumes": "yes", "EvidenceLockDays": "7"},
                     execution_id="00000000-0000-4000-8000-0000000000d1")
        rec = record_of(w)
        by_volume = {}
        member = w.session.client("ec2")
        for snap in member.describe_snapshots(OwnerIds=["self"])["Snapshots"]:
            by_volume.setdefault(snap["VolumeId"], []).append(snap["SnapshotId"])
        entries = {e["snapshot_id"]: e for e in rec.get("snapshots", [])}
        copied = [by_volume.get(v, [None])[0] for v in shared]
        forensics = ex.outputs.get("CreateVolume.VolumeId")
        check("disks: root and data volume snapshotted, handed over and locked; the forensics volume only once "
              "(its memory evidence snapshot)",
              ex.status == "Success" and all(c in entries and entries[c]["copy_id"] and entries[c]["holds"]
                                             .startswith("disk") and entries[c]["lock"].startswith("compliance")
                                             for c in copied)
              and len(by_volume.get(forensics, [])) == 1 and "disk snapshot(s) started" in
              ex.outputs.get("SnapshotDisks.Summary", ""),
              "%s %s %s %s" % (ex.status, ex.failure_message, ex.outputs.get("SnapshotDisks.Summary"),
                               json.dumps(rec.get("snapshots"))))
        m = by_volume.get(managed, [None])[0]
        check("disks: the aws/ebs volume's snapshot stays in the member account, the record says why, and the run "
              "still succeeds with the memory evidence in custody",
              m in entries and not entries[m]["copy_id"] and "aws/ebs" in entries[m].get("why_not_copied", "")
              and "aws/ebs" in ex.outputs.get("SnapshotDisks.Summary", "") and managed in
              ex.outputs.get("SnapshotDisks.Summary", "").split("aws/ebs")[-1]
              and any("aws/ebs" in f for f in rec.get("findings", []))
              and ex.outputs.get("Custody.SecuritySnapshotId"), json.dumps(entries.get(m)))
    finally:
        w.stop()
    w = accounts.SecurityWorld().start()
    try:
        suspect_disks(w)
        ex = execute(w, execution_id="00000000-0000-4000-8000-0000000000d2")
        rec = record_of(w)
        check("disks: off by default: only the memory evidence is snapshotted and handed over",
              ex.status == "Success" and [e["holds"][:6] for e in rec.get("snapshots", [])] == ["memory"]
              and ex.outputs.get("SnapshotDisks.Summary", "").startswith("off"), json.dumps(rec.get("snapshots")))
    finally:
        w.stop()
    w = accounts.SecurityWorld().start()
    try:
        suspect_disks(w)
        ex = execute(w, faults=FailDisks(), parameters={"SnapshotAllVolumes": "yes"},
                     execution_id="00000000-0000-4000-8000-0000000000d3")
        rec = record_of(w)
        check("disks: a failing CreateSnapshots is said in the outputs; the memory evidence is handed over "
              "as usual and the run succeeds",
              ex.status == "Success" and "CreateSnapshots failed" in ex.outputs.get("SnapshotDisks.Summary", "")
              and [e["holds"][:6] for e in rec.get("snapshots", [])] == ["memory"]
              and ex.outputs.get("Custody.SecuritySnapshotId"),
              "%s %s %s" % (ex.status, ex.outputs.get("SnapshotDisks.Summary"), json.dumps(rec.get("snapshots"))))
    finally:
        w.stop()


class PendingDisks:
    """The disks' snapshots are still pending when Custody first runs (real
    disks take far longer than the memory evidence); while WaitDisks waits
    they complete ("complete"), one fails ("error"), none finishes within
    the wait ("timeout"), or the run is cancelled ("cancel")."""

    def __init__(self, mode, error_volume=None):
        self.mode = mode
        self.error_volume = error_volume  # "error": the disk whose snapshot fails
        self.disks = []

    def cancel_during(self, name):
        return self.mode == "cancel" and name == "WaitDisks"

    def enter(self, name, ex):
        w = ex.world
        if name == "Custody" and not self.disks:
            self.disks = sorted((s["VolumeId"] == self.error_volume, s["SnapshotId"]) for s in w.session.client(
                "ec2").describe_snapshots(OwnerIds=["self"], Filters=[{"Name": "tag:forensics-volume:kind",
                                                                       "Values": ["disk"]}])["Snapshots"])
            self.disks = [sid for _, sid in self.disks]
            w.snapshot_overlay.update({sid: "pending" for sid in self.disks})
        if name == "WaitDisks" and self.mode in ("complete", "error"):
            for sid in self.disks:
                w.snapshot_overlay.pop(sid, None)
            if self.mode == "error":
                w.snapshot_overlay[self.disks[-1]] = "error"

    def leave(self, name, ex):
        pass


def records_of(w, execution_id):
    """The execution's custody records, first one first."""
    s3 = w.security.client("s3")
    recs = [json.loads(s3.get_object(Bucket=accounts.CUSTODY_BUCKET, Key=k)["Body"].read())
            for k in w.custody_records() if execution_id in k]
    return sorted(recs, key=lambda r: (bool(r.get("first_record")), r.get("written_utc", "")))


def drill_pending_disks():
    import drills  # I8, the fault drills' custody invariant
    for n, mode in enumerate(("complete", "error", "timeout", "cancel")):
        w = accounts.SecurityWorld().start()
        try:
            shared, managed = suspect_disks(w)
            faults = PendingDisks(mode, shared[0])
            ex = execute(w, faults=faults, parameters={"SnapshotAllVolumes": "yes", "EvidenceLockDays": "7"},
                         execution_id="00000000-0000-4000-8000-0000000000e%d" % n)
            recs = records_of(w, ex.execution_id)
            copies = {}
            for s in w.security_snapshots():
                t = {x["Key"]: x["Value"] for x in s.get("Tags", [])}
                if t.get("forensics-volume:execution-id") == ex.execution_id:
                    copies.setdefault(t["forensics-volume:source-snapshot-id"], []).append(s["SnapshotId"])
            last = {}
            for r in recs:
                last.update({e["snapshot_id"]: e for e in r.get("snapshots", [])})
            by_volume = {}
            for snap in w.session.client("ec2").describe_snapshots(OwnerIds=["self"])["Snapshots"]:
                by_volume.setdefault(snap["VolumeId"], []).append(snap["SnapshotId"])
            disks = [by_volume.get(v, [None])[0] for v in shared]
            memory = ex.outputs.get("SnapshotEvidence.EvidenceSnapshotId")
            first = recs[0] if recs else {}
            later = recs[1:]
            said = " ".join(str(v) for v in ex.outputs.values())
            v = drills.custody_invariant(ex, w, said)
            base = (len(copies.get(memory, [])) == 1 and ex.outputs.get("Custody.SecuritySnapshotId") ==
                    copies.get(memory, [None])[0] and first.get("security_snapshot_id") == copies[memory][0]
                    and bool(first) and all("pending" in {e["snapshot_id"]: e for e in first.get("snapshots", [])}
                                            .get(d, {}).get("why_not_copied", "") for d in disks)
                    and not v)
            detail = "%s %s %s %s %s" % (ex.status, ex.failure_message, v, json.dumps(recs)[:1500],
                                         engine.report(ex)[-1500:])
            if mode == "complete":
                check("disks pending at Custody: the memory evidence is handed over and the instance restored "
                      "first, then the disks once completed (copied once, locked, a second record that names "
                      "the first); the outputs say so",
                      ex.status == "Success" and base and all(len(copies.get(d, [])) == 1 for d in disks)
                      and all(last[d]["lock"].startswith("compliance") for d in disks) and len(later) == 1
                      and later[0].get("first_record") == ex.outputs.get("Custody.CustodyRecord")
                      and all(w.retain_until(k)[0] == "COMPLIANCE" for k in w.custody_records())
                      and all(copies[d][0] in ex.outputs.get("Custody.Copies", "") for d in disks)
                      and [r["name"] for r in ex.steps].index("RestoreInstance")
                      < [r["name"] for r in ex.steps].index("WaitDisks"), detail)
            elif mode == "error":
                check("disks pending at Custody, one ends in error: the others are handed over, the record "
                      "says the failed one is in error, the run succeeds with the memory evidence in custody",
                      ex.status == "Success" and base and not copies.get(disks[0])
                      and "error" in last[disks[0]].get("why_not_copied", "")
                      and len(copies.get(disks[1], [])) == 1, detail)
            elif mode == "timeout":
                check("disks still pending when WaitDisks times out: the record and the outputs say so, the "
                      "run still succeeds with the memory evidence in custody",
                      ex.status == "Success" and base and not any(copies.get(d) for d in disks)
                      and all("still pending" in last[d].get("why_not_copied", "") for d in disks)
                      and "still pending" in ex.outputs.get("Custody.Summary", ""), detail)
            else:
                check("a cancel while waiting for the disks leaves the memory evidence's custody intact and the "
                      "record saying the disks were pending",
                      ex.status == "Cancelled" and base and not any(copies.get(d) for d in disks), detail)
        finally:
            w.stop()


def main(argv):
    started = datetime.datetime.now()
    for d in (drill_custody, drill_no_output, drill_central, drill_not_shared, drill_new_account, drill_isolation,
              drill_lock, drill_capture_failed, drill_unmount_failed, drill_disks, drill_pending_disks):
        try:
            d()
        except engine.EngineError as e:
            check(d.__name__, False, "engine error: %s" % e)
    return summary(started)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
