"""Attacker drills (issue 21): the member account's own administrator -- a
principal with AdministratorAccess in the breached account, exactly whom
custody guards against -- tries every step of the attack of security
review 2 (S2, S3) on a finished run, and once during a run. Every call is
evaluated by iam/ against the rendered templates (identity, trust,
resource policies, cross-account, condition keys); S3's conditional writes
(If-None-Match) are moto's own. Each step must be denied by the evaluated
policies, or refused by S3, or leave what `capture verify --custody-record
--custody-versions` detects.

  edit        the admin cannot edit the security account's intake role;
              through their own Forensics-AutomationExecutionRole (its
              trust edited to let them in) they can assume it only with the
              session tag forensics-account = their own account
  fabricate   a fabricated capture's snapshot, shared and copied as the
              intake role with the legitimate run's tags: the copy can only
              be labelled with the member's own account, and the record
              still names the run's copy, not the forgery
  lock        a copy locked for 100 years, or the copy of another account,
              or with an expiration date: denied; 7 days: allowed
  record      a newer custody record with the forgery's digests: denied
              (no If-None-Match) or refused (412); the record stays the
              key's first and only version
  prefix      a record under another account's prefix: denied
  fleet       a fleet record (issue 24): the member's admin and the intake
              role cannot write or replace one, nor can another role of
              the security account; only its responder, once
  retention   a record locked for 100 years: denied
  size        a multi-GB object: multipart denied (no If-None-Match on
              its parts); one PUT over S3's 5 GB: refused (EntityTooLarge)
  preempt     during a run, the admin writes the execution's record first:
              the run writes its own next to it (.contested-) and fails
              saying so; the execution then has two claims, which verify
              refuses

    deploy/automation.sh python deploy/automation/attacker_drills.py

Prints PASS/FAIL per check and "N passed, M failed"; exit 1 on a failure.
"""

import datetime
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import accounts  # noqa: E402
import custody_drills as cd  # noqa: E402
import iam  # noqa: E402
import world as world_mod  # noqa: E402

MEMBER, SECURITY = world_mod.ACCOUNT, accounts.SECURITY
OTHER = "333333333333"  # another account of the organization
ADMIN_ARN = "arn:aws:iam::%s:role/MemberAdministrator" % MEMBER
EXEC_ARN = world_mod.ROLE
INTAKE_ARN = "arn:aws:iam::%s:role/%s" % (SECURITY, accounts.INTAKE_ROLE)
FORGED = {"manifest.json": "a" * 64, "memory.lime.zst": "b" * 64, "lime": "c" * 64}
check = cd.check


def outcome(call, **kw):
    """'ok', or the error code of the refusal."""
    try:
        call(**kw)
        return "ok"
    except Exception as e:  # noqa: BLE001
        return getattr(e, "response", {}).get("Error", {}).get("Code") or type(e).__name__


def denied(code):
    return code in ("AccessDenied", "UnauthorizedOperation", "AccessDeniedException")


class Attacker:
    """The member account's administrator, and the sessions they get."""

    def __init__(self, w):
        self.w = w
        w.iam.add_role(ADMIN_ARN, {"Statement": []}, policies=[iam.ADMINISTRATOR])
        self.admin = iam.Principal(ADMIN_ARN, session_name="attacker", policies=[iam.ADMINISTRATOR])
        key = "AKIAMEMBERADMIN00021"
        iam.register_credentials(key, self.admin)
        self.session = accounts.boto3.session.Session(aws_access_key_id=key, aws_secret_access_key="x",
                                                       region_name=w.region)
        accounts.s3_limits(self.session)

    def take_execution_role(self):
        """The admin edits their own execution role's trust to let them in
        (their account, their right) and assumes it."""
        ok = iam.authorize(self.admin, "iam:UpdateAssumeRolePolicy", EXEC_ARN)
        role = self.w.iam.roles[EXEC_ARN]
        role.trust = {"Statement": list(role.trust.get("Statement", [])) + [{
            "Effect": "Allow", "Principal": {"AWS": ADMIN_ARN}, "Action": ["sts:AssumeRole", "sts:TagSession"]}]}
        return bool(ok), accounts.assume(self.session, EXEC_ARN, "attacker")

    def intake(self, execution, tags, fallback=False):
        """The intake role assumed from the execution role with TAGS (with
        FALLBACK, untagged when that is refused: an attacker takes whatever
        the trust policy lets through)."""
        sts = execution.client("sts")
        try:
            creds = sts.assume_role(RoleArn=INTAKE_ARN, RoleSessionName="forensics-custody",
                                    Tags=[{"Key": k, "Value": v} for k, v in tags.items()])["Credentials"]
        except Exception:  # noqa: BLE001
            if not fallback:
                raise
            creds = sts.assume_role(RoleArn=INTAKE_ARN, RoleSessionName="forensics-custody")["Credentials"]
        s = accounts.boto3.session.Session(aws_access_key_id=creds["AccessKeyId"],
                                           aws_secret_access_key=creds["SecretAccessKey"],
                                           aws_session_token=creds["SessionToken"], region_name=self.w.region)
        accounts.s3_limits(s)
        return s


def forged_snapshot(attacker, execution_id):
    """The fabricated capture (`capture --source lime:FILE` on a volume of
    the admin's own): its snapshot, tagged as the legitimate run's evidence
    and shared with the security account."""
    ec2 = attacker.session.client("ec2")
    vol = ec2.create_volume(AvailabilityZone=attacker.w.region + "a", Size=2)["VolumeId"]
    snap = ec2.create_snapshot(VolumeId=vol, TagSpecifications=[{"ResourceType": "snapshot", "Tags": [
        {"Key": "forensics-volume:execution-id", "Value": execution_id},
        {"Key": "forensics-volume:role", "Value": "evidence"}]}])["SnapshotId"]
    shared = outcome(ec2.modify_snapshot_attribute, SnapshotId=snap, Attribute="createVolumePermission",
                     OperationType="add", UserIds=[SECURITY])
    return snap, shared


def run_tags(w, ex, account, source):
    """The tags the legitimate run put on its copy, with the forgery's
    digests and ACCOUNT as the label."""
    import custody

    events = {"CaseId": "IR-2026-042", "InstanceId": w.instance_id, "Account": account, "Region": w.region,
              "ExecutionId": ex.execution_id}
    return custody.tags(events, FORGED["manifest.json"], FORGED["memory.lime.zst"], FORGED["lime"], source,
                        "memory image, complete")


def record_key(w, execution_id, account=MEMBER):
    return "custody/%s/%s/IR-2026-042/%s.json" % (account, w.region, execution_id)


def versions(w, prefix):
    r = w.security.client("s3").list_object_versions(Bucket=accounts.CUSTODY_BUCKET, Prefix=prefix)
    return r.get("Versions", []), r.get("DeleteMarkers", [])


def drill_after_the_run():
    w = accounts.SecurityWorld().start()
    try:
        ex = cd.execute(w, parameters={"EvidenceLockDays": "7"}, execution_id="00000000-0000-4000-8000-000000000021")
        copy_id = ex.outputs.get("Custody.SecuritySnapshotId")
        key = record_key(w, ex.execution_id)
        original = w.security.client("s3").get_object(Bucket=accounts.CUSTODY_BUCKET, Key=key)["Body"].read()
        check("attacker: the legitimate run (every call evaluated) succeeds, its copy locked 7 days",
              ex.status == "Success" and copy_id and ex.outputs.get("Custody.Locked", "").startswith("compliance"),
              "%s %s %s" % (ex.status, ex.failure_message, ex.outputs.get("Custody.Summary")))
        a = Attacker(w)

        # -- edit or assume the intake role ---------------------------------------------------
        edit = [bool(iam.authorize(a.admin, act, INTAKE_ARN)) for act in
                ("iam:UpdateAssumeRolePolicy", "iam:PutRolePolicy", "iam:AttachRolePolicy")]
        direct = outcome(a.session.client("sts").assume_role, RoleArn=INTAKE_ARN, RoleSessionName="x",
                         Tags=[{"Key": "forensics-account", "Value": MEMBER}])
        mine, execution = a.take_execution_role()
        tries = {}
        for name, tags in (("untagged", {}), ("tagged as the security account", {"forensics-account": SECURITY}),
                           ("tagged as another account", {"forensics-account": OTHER}),
                           ("with a second tag", {"forensics-account": MEMBER, "forensics-volume:account": OTHER})):
            tries[name] = outcome(a.intake, execution=execution, tags=tags)
        check("attacker edit: the admin cannot edit the intake role nor assume it directly; through their own "
              "execution role (trust edited) only with forensics-account = their own account",
              not any(edit) and denied(direct) and mine and all(denied(c) for c in tries.values()),
              "edit %s direct %s own-role %s %s" % (edit, direct, mine, tries))
        intake = a.intake(execution, {"forensics-account": MEMBER}, fallback=True)
        ec2, s3 = intake.client("ec2"), intake.client("s3")

        # -- fabricate, share, copy with the run's tags ----------------------------------------
        forged, shared = forged_snapshot(a, ex.execution_id)
        as_other = outcome(ec2.copy_snapshot, SourceSnapshotId=forged, SourceRegion=w.region, Encrypted=True,
                           KmsKeyId=w.security_key_arn, TagSpecifications=[{"ResourceType": "snapshot", "Tags":
                                                                            run_tags(w, ex, OTHER, forged)}])
        untagged = outcome(ec2.copy_snapshot, SourceSnapshotId=forged, SourceRegion=w.region, Encrypted=True,
                           KmsKeyId=w.security_key_arn)
        fake = ec2.copy_snapshot(SourceSnapshotId=forged, SourceRegion=w.region, Encrypted=True,
                                 KmsKeyId=w.security_key_arn, TagSpecifications=[{"ResourceType": "snapshot",
                                                                                  "Tags": run_tags(w, ex, MEMBER,
                                                                                                   forged)}])
        fake = fake["SnapshotId"]
        record = json.loads(original)
        label = {t["Key"]: t["Value"] for s in w.security_snapshots() if s["SnapshotId"] == fake
                 for t in s.get("Tags", [])}.get("forensics-volume:account")
        check("attacker fabricate: the forgery's copy can be labelled with the member's own account only (another "
              "account's label, or none: denied), and the record still names the run's copy, not the forgery",
              shared == "ok" and denied(as_other) and denied(untagged) and label == MEMBER
              and record["security_snapshot_id"] == copy_id != fake,
              "share %s other %s untagged %s label %s record %s fake %s" % (shared, as_other, untagged, label,
                                                                           record["security_snapshot_id"], fake))

        # -- lock for 100 years ----------------------------------------------------------------
        far = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=36500)
        sec = w.security.client("ec2")
        # Another account's evidence copy in the security account.
        vol = sec.create_volume(AvailabilityZone=w.region + "a", Size=1)["VolumeId"]
        theirs = sec.create_snapshot(VolumeId=vol, TagSpecifications=[{"ResourceType": "snapshot", "Tags": [
            {"Key": "forensics-volume:role", "Value": "evidence"},
            {"Key": "forensics-volume:account", "Value": OTHER}]}])["SnapshotId"]
        locks = {"100 years": outcome(ec2.lock_snapshot, SnapshotId=fake, LockMode="compliance", LockDuration=36500),
                 "until 2126": outcome(ec2.lock_snapshot, SnapshotId=fake, LockMode="compliance", ExpirationDate=far),
                 "cooling-off": outcome(ec2.lock_snapshot, SnapshotId=fake, LockMode="compliance", LockDuration=7,
                                        CoolOffPeriod=72),
                 "another account's copy": outcome(ec2.lock_snapshot, SnapshotId=theirs, LockMode="compliance",
                                                   LockDuration=7)}
        week = outcome(ec2.lock_snapshot, SnapshotId=fake, LockMode="compliance", LockDuration=7)
        check("attacker lock: a copy locked for 100 years, until 2126, with a cooling-off period, or another "
              "account's copy: denied; the member's own for 7 days: allowed",
              all(denied(c) for c in locks.values()) and week == "ok", "%s 7 days %s" % (locks, week))

        # -- a newer record with the forgery's digests ------------------------------------------
        forged_record = dict(record, capture=dict(record["capture"], manifest_sha256=FORGED["manifest.json"],
                                                  image_sha256=FORGED["memory.lime.zst"], lime_sha256=FORGED["lime"]),
                             security_snapshot_id=fake)
        body = json.dumps(forged_record).encode()
        until = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=3650)
        put = {"Bucket": accounts.CUSTODY_BUCKET, "Body": body, "ObjectLockMode": "COMPLIANCE",
               "ObjectLockRetainUntilDate": until}
        plain = outcome(s3.put_object, Key=key, **put)
        conditional = outcome(s3.put_object, Key=key, IfNoneMatch="*", **put)
        vs, marks = versions(w, key)
        now = w.security.client("s3").get_object(Bucket=accounts.CUSTODY_BUCKET, Key=key)["Body"].read()
        check("attacker record: a newer record with the forgery's digests is denied (no If-None-Match) or refused "
              "(412); the record stays its key's first and only version",
              denied(plain) and conditional == "PreconditionFailed" and len(vs) == 1 and not marks
              and now == original, "plain %s conditional %s versions %d markers %d" % (plain, conditional,
                                                                                         len(vs), len(marks)))

        # -- another account's prefix ------------------------------------------------------------
        other = {"another account's record": outcome(s3.put_object, Key=record_key(w, ex.execution_id, OTHER),
                                                     IfNoneMatch="*", **put),
                 "outside custody/": outcome(s3.put_object, Key="index.json", IfNoneMatch="*", **put),
                 "the security account's prefix": outcome(s3.put_object, Key=record_key(w, "x", SECURITY),
                                                          IfNoneMatch="*", **put)}
        check("attacker prefix: records under another account's prefix, the security account's or outside "
              "custody/: denied", all(denied(c) for c in other.values()), str(other))

        drill_fleet_record(w, a, s3, put)  # issue 24

        # -- 100 years of retention ----------------------------------------------------------------
        long_put = dict(put, ObjectLockRetainUntilDate=far)
        spare = "custody/%s/%s/IR-2026-042/spare.json" % (MEMBER, w.region)
        long = outcome(s3.put_object, Key=spare, IfNoneMatch="*", **long_put)
        extend = outcome(s3.put_object_retention, Bucket=accounts.CUSTODY_BUCKET, Key=key,
                         Retention={"Mode": "COMPLIANCE", "RetainUntilDate": far})
        check("attacker retention: a record locked for 100 years, or the run's record's lock extended to 100 "
              "years: denied", denied(long) and denied(extend), "put %s extend %s" % (long, extend))

        # -- a multi-GB object -------------------------------------------------------------------
        big = "custody/%s/%s/IR-2026-042/big.json" % (MEMBER, w.region)
        multipart = outcome(s3.create_multipart_upload, Bucket=accounts.CUSTODY_BUCKET, Key=big,
                            ObjectLockMode="COMPLIANCE", ObjectLockRetainUntilDate=until)
        single = outcome(s3.put_object, Key=big, IfNoneMatch="*", ContentLength=6 << 30, **put)
        check("attacker size: a multi-GB object: multipart denied (its parts cannot carry If-None-Match), one "
              "PUT of 6 GiB refused (S3 takes 5 GB at most in one PUT)",
              denied(multipart) and single == "EntityTooLarge", "multipart %s single %s" % (multipart, single))
    finally:
        w.stop()


def drill_fleet_record(w, a, s3, put):
    """Only the security account's responder writes a fleet record, once:
    not the member's admin, not its intake session (S3 client S3), not
    another role of the security account (issue 24)."""
    fleet_key = "fleet/IR-2026-042/20260101T000000Z-0123abcd.json"
    fput = dict(put, Body=b'{"schema": "forensics-volume/fleet-record", "entries": []}\n')
    responder = w.security.client("s3")
    wrote = outcome(responder.put_object, Key=fleet_key, IfNoneMatch="*", **fput)
    iam.register_credentials("AKIASECURITYADMIN024", iam.Principal(
        "arn:aws:iam::%s:role/SecurityAdmin" % SECURITY, session_name="admin", policies=[iam.ADMINISTRATOR]))
    sec_admin = accounts.boto3.session.Session(aws_access_key_id="AKIASECURITYADMIN024",
                                               aws_secret_access_key="x", region_name=w.region).client("s3")
    tries = {"intake role, new key": outcome(s3.put_object, Key="fleet/IR-2026-042/forged.json",
                                             IfNoneMatch="*", **fput),
             "intake role, the fleet's key": outcome(s3.put_object, Key=fleet_key, **fput),
             "member admin": outcome(a.session.client("s3").put_object, Key="fleet/IR-2026-042/forged.json",
                                     IfNoneMatch="*", **fput),
             "another security-account role": outcome(sec_admin.put_object, Key="fleet/IR-2026-042/other.json",
                                                      IfNoneMatch="*", **fput)}
    again = outcome(responder.put_object, Key=fleet_key, IfNoneMatch="*", **fput)
    fvs, fmarks = versions(w, "fleet/")
    check("attacker fleet: only the security account's responder writes a fleet record, once; a member (its "
          "admin or the intake role) or another security-account role cannot write or replace one (denied), "
          "and the responder's second write is refused (412)",
          wrote == "ok" and all(denied(c) for c in tries.values()) and again == "PreconditionFailed"
          and [v["Key"] for v in fvs] == [fleet_key] and not fmarks,
          "responder %s tries %s again %s versions %s" % (wrote, tries, again, [v["Key"] for v in fvs]))


class Preempt:
    """During the run, before Custody: the admin, through their execution
    role and the intake role, writes the execution's record with the
    forgery's digests."""

    def __init__(self):
        self.wrote = None

    def cancel_during(self, name):
        return False

    def enter(self, name, ex):
        if name != "Custody" or self.wrote is not None:
            return
        w = ex.world
        a = Attacker(w)
        _, execution = a.take_execution_role()
        s3 = a.intake(execution, {"forensics-account": MEMBER}, fallback=True).client("s3")
        record = {"schema": "forensics-volume/custody-record", "execution_id": ex.execution_id, "account": MEMBER,
                  "region": w.region, "case_id": "IR-2026-042",
                  "capture": {"manifest_sha256": FORGED["manifest.json"], "image_sha256": FORGED["memory.lime.zst"],
                              "lime_sha256": FORGED["lime"]}}
        until = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=30)
        self.wrote = outcome(s3.put_object, Bucket=accounts.CUSTODY_BUCKET, Key=record_key(w, ex.execution_id),
                             Body=json.dumps(record).encode(), IfNoneMatch="*", ObjectLockMode="COMPLIANCE",
                             ObjectLockRetainUntilDate=until)

    def leave(self, name, ex):
        pass


def drill_preempt():
    w = accounts.SecurityWorld().start()
    try:
        faults = Preempt()
        ex = cd.execute(w, faults=faults, execution_id="00000000-0000-4000-8000-000000000121")
        key = record_key(w, ex.execution_id)
        vs, _ = versions(w, key[:-len("json")])
        keys = sorted(v["Key"] for v in vs)
        contested = [k for k in keys if ".contested-" in k]
        said = "%s %s" % (ex.failure_message, " ".join(str(v) for v in ex.outputs.values()))
        check("attacker preempt: a record written before the run's own: the run fails saying FORGED, writes its own "
              "under .contested-, and the execution has two claims (capture verify --custody-versions refuses both)",
              faults.wrote == "ok" and ex.status == "Failed" and "FORGED" in said and len(contested) == 1
              and key in keys and len(keys) == 2 and ex.outputs.get("Custody.SecuritySnapshotId", "") == "",
              "wrote %s status %s keys %s said %s" % (faults.wrote, ex.status, keys, said[:600]))
    finally:
        w.stop()


def main(argv):
    started = datetime.datetime.now()
    return cd.run_drills([(d.__name__, d) for d in (drill_after_the_run, drill_preempt)], started)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
