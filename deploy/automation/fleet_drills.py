"""Fleet drills (issue 24): deploy/scripts/fleet.py, run as the security
account's responder, against the local Automation service (service.py:
rate-controlled parents and children in virtual time, the quotas of
world.py), the rendered runbook and templates, IAM evaluated on every call:

  fleet       30 instances named by a tag over 3 member accounts x 2
              regions (5 per location: accounts.MultiWorld), concurrency 10
              and an error budget: one parent per account and region; every
              instance's evidence copied into the security account in its
              own region under the forensics key (that region's replica) and
              recorded; ONE fleet record (locked, If-None-Match) of 30
              entries, each carrying its custody record verbatim with its
              version and SHA-256; totals; the table; exit 0. The first
              region's copy quota is already busy with 17 copies: the
              fleet's copies meet ResourceLimitExceeded there and wait, the
              second region's never do (the quota is per destination region)
  budget      instances that are not managed: the error budget is spent,
              queued instances are never started and reported NotStarted
  account     an account without the starter role: its start is refused and
              reported; the other accounts' instances are still captured
  region      a region without the forensics snapshot parameter: its
              instances fail at Plan, each saying so
  cancel      the parent stopped during the run: running children cancel,
              queued ones never start, the record says which
  quota       the security account's region already holds 20 copies in
              progress: every Custody meets ResourceLimitExceeded, waits,
              and the fleet still ends with every instance in custody
  grants      the forensics key one grant short of KMS's grants per key:
              the runs whose CreateVolume cannot get a grant fail naming
              the limit and leave nothing behind; the others end in custody
  resume      the responder's shell dies after the start: --resume follows
              the same executions and writes the one record; --report-only
              writes nothing

    deploy/automation.sh python deploy/automation/fleet_drills.py

Prints PASS/FAIL per check and "N passed, M failed"; exit 1 on a failure.
"""

import datetime
import hashlib
import io
import json
import os
import shutil
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(1, os.path.join(os.path.dirname(HERE), "tools"))
sys.path.insert(2, os.path.join(os.path.dirname(HERE), "scripts"))

import accounts  # noqa: E402
import custody_drills as cd  # noqa: E402
import fleet  # noqa: E402
import iam  # noqa: E402
import run as run_mod  # noqa: E402
import service as service_mod  # noqa: E402
import world as world_mod  # noqa: E402

CASE = "IR-2026-042"
FLEET_SIZE = 30
# The fleet: three member accounts (world.ACCOUNT first) in two regions.
MEMBERS = [world_mod.ACCOUNT, "333333333333", "444444444444"]
REGIONS = ["eu-west-1", "us-east-1"]
check = cd.check


class FleetWorld:
    """The security and member accounts with N instances tagged
    Incident=IR-2026-042 in every member account and region (MEMBERS x
    REGIONS: accounts.MultiWorld; default one member in one region), the
    runbook and templates, and the service."""

    def __init__(self, n, unmanaged=0, seed=0, members=None, regions=None):
        if members or regions:
            self.w = accounts.MultiWorld(members or [world_mod.ACCOUNT], regions or ["eu-west-1"]).start()
        else:
            self.w = accounts.SecurityWorld().start()
        # The runbook as each location's member stack creates it: its
        # fv:defaults (member.json) filled with this world's key (the
        # region's), accounts, bucket and role, so a start needs only CaseId
        # and Examiner (and the target).
        docs = run_mod.rendered_documents()

        def located(account, region, docs):
            docs = json.loads(json.dumps(docs))
            given = self.w.parameters(SecurityAccountId=accounts.SECURITY, KmsKeyId=self.w.key_in(region),
                                      AutomationAssumeRole=world_mod.ROLE.replace(world_mod.ACCOUNT, account))
            for name in ("KmsKeyId", "SecurityAccountId", "OutputS3BucketName", "AutomationAssumeRole"):
                docs[run_mod.RUNBOOK]["parameters"][name]["default"] = given[name]
            return docs

        if isinstance(self.w, accounts.MultiWorld):
            self.w.create_documents(docs, per_location=located)
        else:
            self.w.create_documents(located(world_mod.ACCOUNT, self.w.region, docs))
        self.ids = []
        self.where = {}  # instance -> (account, region)
        for account, region in self.w.locations():
            ec2 = self.w.admin(account, region).client("ec2")
            for i in range(n):
                inst = ec2.run_instances(ImageId="ami-0123456789abcdef0", MinCount=1, MaxCount=1,
                                         InstanceType="t3.micro", TagSpecifications=[{
                                             "ResourceType": "instance", "Tags": [
                                                 {"Key": "Incident", "Value": CASE}]}])["Instances"][0]
                self.ids.append(inst["InstanceId"])
                self.where[inst["InstanceId"]] = (account, region)
        self.w.unmanaged |= set(self.ids[:unmanaged])
        self.svc = service_mod.AutomationService(self.w, backend=cd.AnchoredBackend(), seed=seed).start()
        self.state = tempfile.mkdtemp(prefix="fv-fleet-")
        self._sleep = time.sleep
        # The Custody step's waits for EBS's copy quota (time.sleep in
        # custody.py) run in virtual time: the drill's doing, so that a
        # quota held for an hour costs nothing.
        time.sleep = self.sleep

    def sleep(self, seconds):
        if self.svc.scheduler.current is not None:
            return self.svc.scheduler.sleep(seconds)
        return self._sleep(seconds)

    def fleet(self, *args, region=None):
        out = io.StringIO()
        argv = ["--case", CASE, "--examiner", "jdoe", "--security-account", accounts.SECURITY,
                "--accounts", ",".join(self.w.members), "--regions", region or ",".join(self.w.regions),
                "--state-dir", self.state,
                "--poll", "60"] + list(args)
        if "--resume" in args or "--report-only" in args:
            argv = list(args) + ["--state-dir", self.state, "--poll", "60"]
        elif "--poll" in args:
            argv.remove("60")
            argv.remove("--poll")
        code = fleet.main(argv, session=self.w.security, sleep=self.svc.sleep, out=out,
                          now=lambda: self.svc.scheduler.time)
        return code, out.getvalue()

    def records(self):
        s3 = self.w.security.client("s3")
        keys = [k for k in self.w.custody_records() if k.startswith("fleet/")]
        return [(k, json.loads(s3.get_object(Bucket=accounts.CUSTODY_BUCKET, Key=k)["Body"].read())) for k in keys]

    def stop(self):
        time.sleep = self._sleep
        shutil.rmtree(self.state, ignore_errors=True)
        self.w.stop()


def sound_entry(w, e):
    """An entry in custody: its custody record is the object in the bucket
    (version, SHA-256 of its bytes, content) and names the copy, which the
    security account owns."""
    got = e.get("custody_record") or {}
    s3 = w.security.client("s3")
    try:
        obj = s3.get_object(Bucket=got["bucket"], Key=got["key"], VersionId=got["version_id"])
    except Exception:  # noqa: BLE001
        return False
    body = obj["Body"].read()
    copies = {s["SnapshotId"] for s in w.security_snapshots() if s.get("Region", e["region"]) == e["region"]}
    return (hashlib.sha256(body).hexdigest() == got["sha256"] and json.loads(body) == got["record"]
            and got["record_json"].encode() == body
            and got["record"]["instance_id"] == e["instance_id"] and e["custody_copy"] in copies
            and got["record"]["security_snapshot_id"] == e["custody_copy"])


def drill_fleet():
    f = FleetWorld(FLEET_SIZE // (len(MEMBERS) * len(REGIONS)), members=MEMBERS, regions=REGIONS)
    try:
        # Each region takes 15 copies of this fleet, at most 5 at once (the
        # concurrency split): within EBS's 20 alone. The first region's is
        # already busy with 17 copies of another case, so there the fleet's
        # own copies meet the quota; the second region's is not (the quota is
        # per destination region).
        world_mod.QUOTAS.copy_seconds = 1800.0
        busy = f.w.security_in(REGIONS[0]).client("ec2")
        vol = busy.create_volume(AvailabilityZone=REGIONS[0] + "a", Size=1)["VolumeId"]
        base = busy.create_snapshot(VolumeId=vol)["SnapshotId"]
        for _ in range(world_mod.COPY_QUOTA - 3):
            busy.copy_snapshot(SourceSnapshotId=base, SourceRegion=REGIONS[0])
        code, out = f.fleet("--tag", "Incident=" + CASE, "--max-concurrency", "10", "--max-errors", "1")
        recs = f.records()
        rec = recs[0][1] if len(recs) == 1 else {}
        entries = rec.get("entries", [])
        hit = [r for r in world_mod.QUOTAS.refused if r[0] == "CopySnapshot" and r[3] == "ResourceLimitExceeded"]
        copies = {c["SnapshotId"]: c for c in f.w.security_snapshots()}
        placed = [e for e in entries if f.where.get(e["instance_id"]) == (e["account"], e["region"])
                  and copies.get(e["custody_copy"], {}).get("Region") == e["region"]
                  and copies[e["custody_copy"]].get("KmsKeyId") == f.w.key_in(e["region"])]
        check("fleet: %d instances by tag over %d accounts x %d regions, concurrency 10: every instance's evidence "
              "copied into the security account in its own region under the forensics key (the region's replica), "
              "each entry its custody record verbatim (version, SHA-256), ONE fleet record with %d entries, totals "
              "right, exit 0; on the way EBS's 20 concurrent copies were full in %s only (%d refusals, waited "
              "out)" % (FLEET_SIZE, len(MEMBERS), len(REGIONS), FLEET_SIZE,
                        ", ".join(sorted({r[2] for r in hit})) or "no region", len(hit)),
              code == 0 and len(recs) == 1 and len(f.ids) == FLEET_SIZE
              and sorted(e["instance_id"] for e in entries) == sorted(f.ids) and len(placed) == FLEET_SIZE
              and {(e["account"], e["region"]) for e in entries} == set(f.w.locations())
              and all(e["status"] == "Success" and e["capture_status"] == "complete" and sound_entry(f.w, e)
                      for e in entries)
              and rec["totals"] == {"instances": FLEET_SIZE, "in_custody": FLEET_SIZE, "failed": 0,
                                    "complete": FLEET_SIZE, "partial": 0, "not_started": 0}
              and {(r[1], r[2]) for r in hit} == {(accounts.SECURITY, REGIONS[0])},
              "exit %s records %s placed %d\n%s" % (code, [k for k, _ in recs], len(placed), out[-3000:]))
        if recs:
            key = recs[0][0]
            mode, until = f.w.retain_until(key)
            kids = [r for r in f.svc.executions.values() if r.parent_id]
            parents = {r.parent_id for r in kids}
            check("fleet: the record is fleet/CASE/FLEET_ID.json, locked in compliance mode; one parent per "
                  "account and region, their children never more than 10 at once; the table lists every instance",
                  key == "fleet/%s/%s.json" % (CASE, rec["fleet_id"]) and mode == "COMPLIANCE"
                  and len(parents) == len(f.w.locations())
                  and {(f.svc.executions[p].account, f.svc.executions[p].region) for p in parents}
                  == set(f.w.locations())
                  and f_overlap(kids) <= 10 and all(i in out for i in f.ids)
                  and "%d instance(s), %d in custody" % (FLEET_SIZE, FLEET_SIZE) in out,
                  "%s %s overlap %d\n%s" % (key, mode, f_overlap(kids), out))
        # KMS grants (world.Quotas, GRANTS): one per CreateVolume and per
        # CopySnapshot under the region's replica of the forensics key; the
        # volumes' grants retired with the volumes.
        per_region = FLEET_SIZE // len(REGIONS)
        made = {r: world_mod.QUOTAS.grants_made.get(world_mod.QUOTAS.grant_key(f.w.key_in(r), r), 0)
                for r in REGIONS}
        held = {r: world_mod.QUOTAS.grants.get(world_mod.QUOTAS.grant_key(f.w.key_in(r), r), 0) for r in REGIONS}
        check("fleet: KMS grants on the forensics key, per region's replica: %s made, %s still held at the end, "
              "of the %d grants per KMS key: far below the quota"
              % (made, held, world_mod.QUOTAS.grant_quota),
              made == {r: 2 * per_region for r in REGIONS} and held == {r: per_region for r in REGIONS}
              and max(held.values()) * 100 < world_mod.QUOTAS.grant_quota, "made %s held %s" % (made, held))
        # IAM resolved each region's security stack: the replica's key
        # policy lets EBS use it only through EC2 in its own region.
        role = iam.Principal("arn:aws:iam::%s:role/Forensics-AutomationExecutionRole" % MEMBERS[2], session_name="x")
        grants = {(key, via): bool(iam.authorize(role, "kms:CreateGrant", f.w.key_in(key), {
            "kms:ViaService": "ec2.%s.amazonaws.com" % via, "kms:GrantIsForAWSResource": "true",
            "kms:CallerAccount": MEMBERS[2], "aws:ViaAWSService": "true"})) for key in REGIONS for via in REGIONS}
        check("fleet: IAM holds each region's own key policy: a third member's execution role may have EBS use the "
              "key in a region only through EC2 in that region",
              grants == {(key, via): key == via for key in REGIONS for via in REGIONS}, grants)
    finally:
        world_mod.QUOTAS.copy_seconds = 900.0
        f.stop()


def f_overlap(records):
    spans = [(r.start, r.end) for r in records if r.start is not None]
    return max((sum(1 for a, b in spans if a <= t < b) for t, _ in spans), default=0)


def drill_budget():
    f = FleetWorld(6, unmanaged=3)
    try:
        code, out = f.fleet("--instances", ",".join(f.ids), "--max-concurrency", "1", "--max-errors", "1")
        rec = (f.records() or [(None, {})])[0][1]
        by = {e["instance_id"]: e for e in rec.get("entries", [])}
        failed = [i for i in f.ids if by.get(i, {}).get("status") == "Failed"]
        queued = [i for i in f.ids if by.get(i, {}).get("status") == "NotStarted"]
        check("budget: MaxErrors 1 with instances that are not managed: after the second failure no more are "
              "started; the queued ones are reported NotStarted with why, the failed ones with the runbook's "
              "message; exit 1",
              code == 1 and len(failed) == 2 and len(queued) == 4
              and all("MaxErrors" in by[i]["failure"] for i in queued)
              and all(by[i]["custody_record"] is None and "CheckManagedAndOnline" in by[i]["failure"] for i in failed)
              and rec["totals"]["not_started"] == len(queued) and rec["totals"]["failed"] == 2,
              "exit %s %s\n%s" % (code, {i: (by.get(i, {}).get("status"), (by.get(i, {}).get("failure") or "")[:80])
                                          for i in f.ids}, out))
    finally:
        f.stop()


def drill_account():
    f = FleetWorld(2)
    try:
        code, out = f.fleet("--accounts", "%s,%s" % (world_mod.ACCOUNT, "333333333333"), "--tag", "Incident=" + CASE)
        rec = (f.records() or [(None, {})])[0][1]
        entries = rec.get("entries", [])
        other = [e for e in entries if e["account"] == "333333333333"]
        mine = [e for e in entries if e["account"] == world_mod.ACCOUNT]
        check("account: an account without the starter role is reported NotStarted with why (could not assume); "
              "the other account's instances are still captured; exit 1",
              code == 1 and len(other) == 1 and other[0]["status"] == "NotStarted"
              and "could not assume" in (other[0]["failure"] or "") and len(mine) == 2
              and all(sound_entry(f.w, e) for e in mine), "exit %s %s\n%s" % (code, entries, out))
    finally:
        f.stop()


def drill_region():
    f = FleetWorld(2)
    try:
        f.w.session.client("ssm").delete_parameter(Name=world_mod.PARAMETER)
        code, out = f.fleet("--tag", "Incident=" + CASE, "--max-errors", "2")
        rec = (f.records() or [(None, {})])[0][1]
        entries = rec.get("entries", [])
        check("region: without the forensics snapshot parameter every instance of the region fails at Plan, "
              "saying so; nothing is left behind; exit 1",
              code == 1 and len(entries) == 2 and all(e["status"] == "Failed" and "Plan" in (e["failure"] or "")
                                                      for e in entries)
              and not f.w.session.client("ec2").describe_volumes(Filters=[
                  {"Name": "tag:forensics-volume:role", "Values": ["forensics-volume"]}])["Volumes"],
              "exit %s %s\n%s" % (code, [(e["status"], e["failure"]) for e in entries], out))
    finally:
        f.stop()


def drill_cancel():
    f = FleetWorld(6)
    try:
        original = f.svc.sleep
        stopped = []

        def sleep_then_stop(seconds):
            original(seconds)
            if not stopped:
                parents = [r for r in f.svc.executions.values() if r.rate]
                kids = [r for r in f.svc.executions.values() if r.parent_id and r.status == "InProgress"]
                if parents and kids:
                    starter = accounts.assume(f.w.security, "arn:aws:iam::%s:role/%s" % (
                        world_mod.ACCOUNT, accounts.STARTER_ROLE), "responder")
                    starter.client("ssm").stop_automation_execution(AutomationExecutionId=parents[0].id)
                    stopped.append(parents[0].id)

        f.svc.sleep = sleep_then_stop
        code, out = f.fleet("--tag", "Incident=" + CASE, "--max-concurrency", "2", "--max-errors", "5", "--poll", "10")
        rec = (f.records() or [(None, {})])[0][1]
        entries = rec.get("entries", [])
        statuses = sorted(e["status"] for e in entries)
        check("cancel: the parent stopped mid-run: its running children end Cancelled, its queued targets "
              "NotStarted, each entry says so; one fleet record; exit 1",
              code == 1 and stopped and len(entries) == 6 and "Cancelled" in statuses and "NotStarted" in statuses
              and all(e["failure"] for e in entries if e["status"] != "Success"),
              "exit %s stopped %s %s\n%s" % (code, stopped, [(e["status"], e["failure"]) for e in entries], out))
    finally:
        f.stop()


def drill_quota():
    f = FleetWorld(4)
    try:
        # Twenty copies already in progress in the security account's region
        # (another case's evidence, a publish): the quota is full.
        world_mod.QUOTAS.copy_seconds = 1800.0
        sec = f.w.security.client("ec2")
        vol = sec.create_volume(AvailabilityZone=f.w.region + "a", Size=1)["VolumeId"]
        base = sec.create_snapshot(VolumeId=vol)["SnapshotId"]
        for _ in range(world_mod.COPY_QUOTA):
            sec.copy_snapshot(SourceSnapshotId=base, SourceRegion=f.w.region)
        refused_before = len(world_mod.QUOTAS.refused)
        code, out = f.fleet("--tag", "Incident=" + CASE, "--max-concurrency", "4")
        rec = (f.records() or [(None, {})])[0][1]
        entries = rec.get("entries", [])
        hit = [r for r in world_mod.QUOTAS.refused[refused_before:] if r[0] == "CopySnapshot"
               and r[3] == "ResourceLimitExceeded"]
        check("quota: with 20 copies already in progress the Custody steps meet ResourceLimitExceeded, wait and "
              "retry: every instance ends in custody, none lost to the quota; exit 0",
              hit and code == 0 and len(entries) == 4 and all(sound_entry(f.w, e) for e in entries),
              "refused %d exit %s %s\n%s" % (len(hit), code, [(e["status"], (e["failure"] or "")[:200])
                                                             for e in entries], out[-2000:]))
    finally:
        world_mod.QUOTAS.copy_seconds = 900.0
        f.stop()


def drill_grants():
    f = FleetWorld(4)
    try:
        # The forensics key already holds all but one of its grants (other
        # cases' volumes and copies): one run gets the last grant, its
        # volume's grant is retired with the volume before its copy needs
        # one; the others' CreateVolume meets KMS's quota.
        quotas = world_mod.QUOTAS
        key = quotas.grant_key(f.w.key_in(f.w.region), f.w.region)
        quotas.grants[key] = quotas.grant_quota - 1
        code, out = f.fleet("--tag", "Incident=" + CASE, "--max-concurrency", "4", "--max-errors", "4")
        rec = (f.records() or [(None, {})])[0][1]
        entries = rec.get("entries", [])
        done = [e for e in entries if e["status"] == "Success"]
        failed = [e for e in entries if e["status"] == "Failed"]
        ec2 = f.w.session.client("ec2")
        left = ec2.describe_volumes(Filters=[{"Name": "tag:forensics-volume:role",
                                              "Values": ["forensics-volume"]}])["Volumes"]
        evidence = [s for s in ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]
                    if s["SnapshotId"] != f.w.forensics_snapshot]
        records = " ".join(e["custody_record"]["record_json"] for e in done if e.get("custody_record"))
        check("grants: the forensics key one grant short of its quota: the runs that cannot get a grant fail at "
              "CreateVolume naming the KMS limit, leave no volume and lose no evidence (every evidence snapshot "
              "the fleet took is in custody), the fleet record says why; the others finish in custody; exit 1",
              code == 1 and len(entries) == 4 and done and failed and len(done) + len(failed) == 4
              and all(sound_entry(f.w, e) for e in done)
              and all("CreateVolume" in (e["failure"] or "") and "Grants per KMS key" in (e["failure"] or "")
                      and e["custody_record"] is None for e in failed)
              and rec["totals"]["failed"] == len(failed) and rec["totals"]["in_custody"] == len(done)
              and not left and len(evidence) == len(done)
              and all(s["SnapshotId"] in records for s in evidence)
              and quotas.grants[key] <= quotas.grant_quota,
              "exit %s %s left %s evidence %s\n%s"
              % (code, [(e["status"], (e["failure"] or "")[:300]) for e in entries],
                 [v["VolumeId"] for v in left], [s["SnapshotId"] for s in evidence], out[-2000:]))
    finally:
        f.stop()
    f = FleetWorld(1)
    try:
        # Other cases take every grant that frees up once the run has its
        # volume: its copy meets the quota in Custody.
        quotas = world_mod.QUOTAS
        key = quotas.grant_key(f.w.key_in(f.w.region), f.w.region)
        quotas.grants[key] = quotas.grant_quota - 1
        retire = quotas.retire_volume_grant

        def others_take_grants(parsed, context):
            retire(parsed, context)
            quotas.grants[key] = max(quotas.grants[key], quotas.grant_quota)

        quotas.retire_volume_grant = others_take_grants
        try:
            code, out = f.fleet("--tag", "Incident=" + CASE)
        finally:
            del quotas.retire_volume_grant
        rec = (f.records() or [(None, {})])[0][1]
        e = (rec.get("entries") or [{}])[0]
        ec2 = f.w.session.client("ec2")
        evidence = [s for s in ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]
                    if s["SnapshotId"] != f.w.forensics_snapshot]
        said = (e.get("failure") or "") + json.dumps(e.get("custody_record"))
        check("grants: the key full when the run's evidence is copied: Custody fails naming the KMS limit, the "
              "evidence snapshot stays in the member account, named in the fleet record; no volume left; exit 1",
              code == 1 and e.get("status") == "Failed" and "Grants per KMS key" in said
              and len(evidence) == 1 and evidence[0]["State"] == "completed" and evidence[0]["SnapshotId"] in said
              and not f.w.volumes_of(e.get("execution_id") or "-")
              and not [c for c in f.w.security_snapshots() if c["SnapshotId"] != f.w.forensics_snapshot],
              "exit %s %s evidence %s\n%s" % (code, e, [s["SnapshotId"] for s in evidence], out[-2000:]))
    finally:
        f.stop()


def drill_resume():
    f = FleetWorld(2)
    try:
        original = f.svc.sleep

        def die(seconds):
            raise KeyboardInterrupt

        f.svc.sleep = die
        code, out = f.fleet("--tag", "Incident=" + CASE)
        fleet_id = next((line.split()[1].rstrip(":") for line in out.splitlines() if line.startswith("fleet ")), "")
        f.svc.sleep = original
        report_code, report = f.fleet("--report-only", fleet_id)
        none_yet = not f.records()
        f.svc.run()
        code2, out2 = f.fleet("--resume", fleet_id)
        code3, out3 = f.fleet("--resume", fleet_id)
        recs = f.records()
        check("resume: an interrupted fleet (exit 4) goes on in AWS; --report-only writes nothing; --resume "
              "follows the same executions and writes the one record; a second --resume leaves it as it is",
              code == 4 and "--resume " + fleet_id in out and report_code == 0 and none_yet and code2 == 0
              and len(recs) == 1 and recs[0][1]["fleet_id"] == fleet_id and code3 == 0
              and "already written" in out3 and len([r for r in f.svc.executions.values() if r.rate]) == 1,
              "codes %s %s %s %s records %s\n%s\n%s\n%s" % (code, report_code, code2, code3, [k for k, _ in recs],
                                                            out, out2, out3))
    finally:
        f.stop()


def main(argv):
    started = datetime.datetime.now()
    drills = {"fleet": drill_fleet, "budget": drill_budget, "account": drill_account, "region": drill_region,
              "cancel": drill_cancel, "quota": drill_quota, "grants": drill_grants, "resume": drill_resume}
    return cd.run_drills([(name, drills[name]) for name in argv or list(drills)], started)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
