"""Custody step of Forensics-CaptureInstanceMemory (aws:executeScript,
handler `custody`; docs/deploy.md "Custody" has the why). Every path of the
runbook that took an evidence snapshot ends here, after RestoreInstance:
the memory evidence of a clean run, the snapshot of a volume whose unmount
failed, a failed or stopped capture's partial image, the instance's own
disks (SnapshotAllVolumes). For each snapshot this execution tagged: share
it with the security account (as this account), then, as the security
account's intake role, copy it into the security account under its key,
tagged with the capture's digests and what the snapshot holds, and lock the
copy (EBS Snapshot Lock, compliance mode) when EvidenceLockDays > 0. Check
the Run Command output objects arrived; write the custody record with
Object Lock in compliance mode (deploy review W2, H4; security review H3),
saying for every snapshot what happened to it and why. The capture's status,
exit code and digests (its final line, which Forensics-CaptureMemory prints
second) come from its command invocation (GetCommandInvocation): a step that
did not succeed has no outputs in Automation, and an output holds at most
512 characters, so the Capture step's outputs cannot carry them.

Disk snapshots (SnapshotAllVolumes) usually take far longer than the memory
evidence, and this step may run 600 s at most, so it never waits for them:
the first round hands over what is completed, marks each member snapshot
with the tag forensics-volume:custody (copy ID, "pending", "waiting" on the
one WaitDisks then waits for, or what became of it) and returns Pending=yes.
In the aws:loop CustodyRounds, WaitDisks waits for the "waiting" snapshot and this
step runs again: a later round handles only the snapshots marked pending or
waiting, and writes a further record naming the first (never overwriting
it). A "waiting" snapshot still pending in a later round means the wait
timed out: every still pending disk is then given up, and the record says so.

EBS copies at most 20 snapshots at once into a Region (ResourceLimitExceeded
beyond that), and every member account and region of a fleet copies into the
security account's: copy_snapshot waits and retries within the round
(QUOTA_WAITS, at most QUOTA_BUDGET of the step's 600 s). A memory snapshot
still refused ends the round with nothing written (Round "queued",
Pending=yes), so CustodyRounds runs it again; a disk still refused waits for
the next round like a pending one. Round LAST_ROUND (the loop's
MaxIterations) gives up whatever is still refused or pending, and says so.
"""

import datetime
import json
import re
import time

DIGESTS = re.compile(r"sha256 manifest\.json=([0-9a-f]{64}) memory\.lime\.zst=([0-9a-f]{64}) lime=([0-9a-f]{64})")
ROLE_SESSION = "forensics-custody"
SESSION_TAG = "forensics-account"
# Tag values EC2 takes: at most 256 characters.
TAG_MAX = 256
TAG = "forensics-volume:"
MARK = TAG + "custody"
WAIT_HOURS = 24  # WaitDisks' timeoutSeconds, 86400
LAST_ROUND = 100  # CustodyRounds' MaxIterations
# CopySnapshot's ResourceLimitExceeded (copy_snapshot): waits between tries,
# at most QUOTA_BUDGET seconds of a round's 600.
QUOTA = "ResourceLimitExceeded"
QUOTA_WAITS = (15, 30, 60, 90, 120, 120)
QUOTA_BUDGET = 435
# A round's outputs when it hands nothing over.
EMPTY = dict(dict.fromkeys(("SecuritySnapshotId", "Copies", "Locked", "CustodyRecord", "ManifestSha256",
                            "ImageSha256", "LimeSha256", "OutputsArrived", "WaitFor"), ""), Pending="no")


class CustodyError(Exception):
    """Custody could not be established; the message says what is missing."""


def digests(capture_output):
    """(manifest, image, lime) SHA-256s and the final line, from the Capture
    step's output; (None, None, None, None) when absent."""
    for line in (capture_output or "").splitlines():
        m = DIGESTS.search(line)
        if m:
            return m.group(1), m.group(2), m.group(3), line.strip()
    return None, None, None, None


def tags(events, manifest_sha, image_sha, lime_sha, source, holds):
    pairs = [
        ("role", "evidence"),
        ("holds", holds),
        ("case-id", events["CaseId"]),
        ("instance-id", events["InstanceId"]),
        ("account", events["Account"]),
        ("region", events["Region"]),
        ("execution-id", events["ExecutionId"]),
        ("source-snapshot-id", source),
        ("manifest-sha256", manifest_sha or "not reported"),
        ("image-sha256", image_sha or "not reported"),
        ("lime-sha256", lime_sha or "not reported"),
    ]
    # EC2 takes any character in a tag; other services (and Recycle Bin's
    # tag filters) only letters, digits, spaces and + - = . _ : / @.
    return [{"Key": k, "Value": re.sub(r"[^\w +\-=.:/@]", "", v)[:TAG_MAX]} for k, v in
            [("Name", "forensics-evidence %s %s" % (events["CaseId"], events["InstanceId"]))]
            + [(TAG + k, v) for k, v in pairs]]


STEPS = {"Forensics-MountVolume": "Mount", "Forensics-CaptureMemory": "Capture",
         "Forensics-UnmountVolume": "Unmount"}


def commands(ssm, instance_id, prefix):
    """{step: command ID} of this execution's Mount, Capture and Unmount (the
    first of each), found by their output prefix: a step whose SendCommand
    never went out has none, and custody must still run then."""
    found = {step: "" for step in STEPS.values()}
    pages = {"InstanceId": instance_id}
    while True:
        resp = ssm.list_commands(**pages)
        for c in sorted(resp.get("Commands", []), key=lambda c: str(c.get("RequestedDateTime", ""))):
            step = STEPS.get(c.get("DocumentName"))
            if step and c.get("OutputS3KeyPrefix", "").strip("/") == prefix.strip("/") and not found[step]:
                found[step] = c["CommandId"]
        if not resp.get("NextToken"):
            return found
        pages["NextToken"] = resp["NextToken"]


def capture_invocation(ssm, command_id, instance_id):
    """CaptureStatus, CaptureResponseCode and CaptureOutput (the head of
    stdout) of the Capture command, from GetCommandInvocation; empty when
    it was never sent or cannot be read (the record then says so)."""
    if not command_id:
        return {"CaptureStatus": "", "CaptureResponseCode": "", "CaptureOutput": ""}
    try:
        inv = ssm.get_command_invocation(CommandId=command_id, InstanceId=instance_id)
    except Exception as e:  # noqa: BLE001  (a finding, not a crash)
        return {"CaptureStatus": "not readable (%s)" % e, "CaptureResponseCode": "", "CaptureOutput": ""}
    return {"CaptureStatus": inv.get("Status", ""), "CaptureResponseCode": str(inv.get("ResponseCode", "")),
            "CaptureOutput": inv.get("StandardOutputContent", "")}


def output_objects(s3, bucket, prefix, command_ids, instance_id):
    """For each step's command: the stdout objects found under the agent's
    key layout PREFIX/COMMAND/INSTANCE/awsrunShellScript/PLUGIN/stdout."""
    found = {}
    for step, command_id in command_ids.items():
        if not command_id:
            found[step] = {"command_id": "", "objects": [], "arrived": False}
            continue
        base = "%s/%s/%s/" % (prefix.strip("/"), command_id, instance_id)
        keys = []
        try:
            resp = s3.list_objects_v2(Bucket=bucket, Prefix=base)
            keys = sorted(o["Key"] for o in resp.get("Contents", []))
        except Exception as e:  # noqa: BLE001  (a missing bucket or no permission is a finding, not a crash)
            found[step] = {"command_id": command_id, "objects": [], "arrived": False,
                           "error": "%s" % e}
            continue
        found[step] = {"command_id": command_id, "objects": keys,
                       "arrived": any(k.endswith("/stdout") for k in keys)}
    return found


def holds(snapshot, events):
    """What a snapshot of this execution holds, in words (tag and record)."""
    t = {x["Key"]: x["Value"] for x in snapshot.get("Tags", [])}
    if t.get(TAG + "kind") == "disk":
        return "disk %s of the instance (crash-consistent, with the other disks)" % snapshot.get("VolumeId", "")
    if t.get(TAG + "taken"):
        return "memory image, %s" % t[TAG + "taken"]
    status, code = events.get("CaptureStatus", ""), str(events.get("CaptureResponseCode", ""))
    if status == "Success":
        return "memory image, complete"
    if code == "20":
        return "memory image, partial: capture stopped early (Forensics-StopCapture), finalized"
    return "memory image, partial or none: capture %s (exit %s)" % (status or "did not report", code or "none")


def aws_managed(kms, snap):
    """Is the snapshot under an AWS managed key (aws/ebs)? Unknown: no."""
    try:
        return kms.describe_key(KeyId=snap["KmsKeyId"])["KeyMetadata"]["KeyManager"] == "AWS"
    except Exception:  # noqa: BLE001  (then the share itself says what is wrong)
        return False


def lock(ec2, snapshot_id, days):
    """Lock the copy in compliance mode for DAYS days: (state, finding)."""
    if days <= 0:
        return "off", None
    try:
        r = ec2.lock_snapshot(SnapshotId=snapshot_id, LockMode="compliance", LockDuration=days)
        return "%s until %s" % (r["LockState"], r["LockExpiresOn"].strftime("%Y-%m-%dT%H:%M:%SZ")), None
    except Exception as e:  # noqa: BLE001  (the copy stays; the record says it is not locked)
        return "not locked", ("LockSnapshot failed (%s): the copy is NOT locked; lock it: aws ec2 lock-snapshot "
                              "--snapshot-id %s --lock-mode compliance --lock-duration %d" % (e, snapshot_id, days))


def mark_of(snapshot):
    return {x["Key"]: x["Value"] for x in snapshot.get("Tags", [])}.get(MARK, "")


def first_copy(snapshot):
    """The copy an earlier round made of SNAPSHOT, from its mark; or ""."""
    m = mark_of(snapshot).split(" ")[0]
    return m if m.startswith("snap-") else ""


def custody(events, context):
    """aws:executeScript entry point: the round's outputs, each cut to the
    512 characters an Automation output value holds (the record has all)."""
    return {k: v[:512] if isinstance(v, str) else v for k, v in rounds(events, context).items()}


def rounds(events, context):
    """One custody round (see the module docstring)."""
    import boto3  # provided by the aws:executeScript runtime

    now = datetime.datetime.now(datetime.timezone.utc)
    security = events["SecurityAccountId"]
    member_ec2 = boto3.client("ec2")
    found = member_ec2.describe_snapshots(OwnerIds=["self"], Filters=[
        {"Name": "tag:" + TAG + "execution-id", "Values": [events["ExecutionId"]]}])["Snapshots"]
    # The memory evidence first: a round it cannot copy (EBS's copy quota)
    # has then copied nothing else.
    found.sort(key=lambda x: ({t["Key"]: t["Value"] for t in x.get("Tags", [])}.get(TAG + "kind") == "disk",
                              x.get("StartTime", now), x["SnapshotId"]))
    if not security:
        ids = " ".join(x["SnapshotId"] for x in found) or "none"
        return dict(EMPTY, Round="first", Summary="no SecurityAccountId: the evidence snapshots (%s) stay in "
                    "this account" % ids)
    if not any(mark_of(x) for x in found):
        return handover(events, boto3, member_ec2, found, now, False)
    try:
        return handover(events, boto3, member_ec2, found, now, True)
    except Exception as e:  # noqa: BLE001  (a later round never fails the run, nor loops: the memory evidence is done)
        mem = [first_copy(x) for x in found if holds(x, events).startswith("memory")]
        return dict(EMPTY, SecuritySnapshotId=mem[0] if mem else "", Round="disks", Summary="the disks' custody "
                    "round failed (%s): disks still pending are NOT handed over" % e)


def handover(events, boto3, member_ec2, found, now, later):
    """One round: LATER is false for the first (every snapshot), true for a
    round after WaitDisks (only those marked pending or waiting)."""
    security = events["SecurityAccountId"]
    marks = {x["SnapshotId"]: mark_of(x) for x in found}
    # The last round of CustodyRounds (MaxIterations) gives up what is
    # still pending or queued, as a WaitDisks that ended would.
    final = int(events.get("Iteration") or 1) >= LAST_ROUND
    timed_out = final or later and any(marks[x["SnapshotId"]] == "waiting" and x["State"] == "pending" for x in found)
    retention = int(events["RetentionDays"])
    if retention < 1:
        raise CustodyError("RetentionDays %d: custody records must be locked for at least a day" % retention)
    events, outputs, digest = evidence_facts(events, boto3)
    session = intake(events, boto3)
    ec2, budget = session.client("ec2"), [QUOTA_BUDGET]
    findings, handed, pending = [], [], []
    for snap in found:
        if later and marks[snap["SnapshotId"]] not in ("pending", "waiting"):
            continue
        entry = hand_over(events, boto3, member_ec2, ec2, snap, digest, budget, timed_out, findings)
        if entry.pop("queued", False) and not later and entry["holds"].startswith("memory") and not final:
            # The security account's copies in this region are at EBS's
            # quota: nothing of this round is written; the next round (the
            # loop goes on: Pending=yes, WaitFor a completed snapshot) tries again.
            return dict(EMPTY, Round="queued", Pending="yes", WaitFor=entry["snapshot_id"], Summary=entry["why_not_copied"])
        handed.append(entry)
        if entry.pop("later", False):
            pending.append(entry)
    if not found:
        findings.append("this execution took no evidence snapshot")
    not_copied = [h for h in handed if not h["copy_id"] and not h["holds"].startswith("disk")]
    if pending and (not_copied or not found):
        for h in pending:
            h["why_not_copied"] = "pending when Custody ran, which failed: not waited for, NOT handed over"
        pending = []
    wait_for = mark_rounds(member_ec2, handed, pending, marks, findings) if pending or later else ""
    for h in handed:
        h.pop("mark", None)
    for h in pending if wait_for else []:
        findings.append("%s (%s) pending: handed over by a later custody record" % (h["snapshot_id"], h["holds"]))
    bucket = events.get("CustodyBucket") or "forensics-custody-%s" % security
    key = "custody/%s/%s/%s/%s.json" % (events["Account"], events["Region"], events["CaseId"], events["ExecutionId"])
    first = "s3://%s/%s" % (bucket, key)
    memory = [h for h in handed if h["holds"].startswith("memory")]
    if later:
        memory = [{"snapshot_id": x["SnapshotId"], "copy_id": first_copy(x)} for x in found
                  if holds(x, events).startswith("memory")]
    copy_id = memory[0]["copy_id"] if memory else ""
    record = record_of(events, now, memory, copy_id, handed, bucket, outputs, findings, digest)
    if later:
        record["first_record"] = first
        key = key[:-5] + ".disks-%s.json" % now.strftime("%Y%m%dT%H%M%S%fZ")
    elif not digest[0]:
        findings.append("the capture's final line (its digests) is not in the Capture output: only "
                        "self-consistency can be checked")
    for step in [] if later else sorted(s for s, o in outputs.items() if not o["arrived"]):
        findings.append("the Run Command output of %s did not arrive in s3://%s/%s (only the "
                        "2,400-character console copy is kept)"
                        % (step, events["OutputBucket"], events["OutputPrefix"]))
    until = now + datetime.timedelta(days=retention)
    copies = " ".join("%s=%s" % (h["snapshot_id"], h["copy_id"] or "not-copied") for h in handed)
    version = write(session.client("s3"), bucket, key, record, until, now, findings, copies, retention)
    summary = "%s %s copied to account %s; custody record s3://%s/%s (version %s) locked until %s" % (
        "disks" if later else "evidence", copies or "(none)", security, bucket, key, version,
        until.strftime("%Y-%m-%d"))
    if findings:
        summary += "; " + "; ".join(findings)
    if later:
        summary += "; the memory evidence %s=%s is in the first record %s" % (
            memory[0]["snapshot_id"] if memory else "(none)", copy_id or "not-copied", first)
        copies = " ".join("%s=%s" % (x, (m.split(" ")[0] if m.startswith("snap-") else "not-copied"))
                          for x, m in marks.items())
    if not_copied or not found:
        # The run must not report Success with memory evidence outside custody.
        raise CustodyError(summary)
    return {"SecuritySnapshotId": copy_id, "Copies": copies, "CustodyRecord": first,
            "Round": "disks" if later else "first", "Pending": "yes" if wait_for else "no",
            "WaitFor": wait_for or (memory[0]["snapshot_id"] if memory else found[0]["SnapshotId"]),
            "Locked": " ".join(m.split(" ", 1)[1] for m in marks.values() if m.startswith("snap-"))
            if later else " ".join(h["lock"] for h in handed if h["copy_id"]),
            "ManifestSha256": digest[0] or "", "ImageSha256": digest[1] or "", "LimeSha256": digest[2] or "",
            "OutputsArrived": "yes" if all(o["arrived"] for o in outputs.values()) else "no", "Summary": summary}


def evidence_facts(events, boto3):
    """The execution's commands, the capture's invocation and digests, and
    which Run Command outputs arrived."""
    command_ids = commands(boto3.client("ssm"), events["InstanceId"], events["OutputPrefix"])
    events = dict(events, **capture_invocation(boto3.client("ssm"), command_ids["Capture"], events["InstanceId"]))
    outputs = output_objects(boto3.client("s3"), events["OutputBucket"], events["OutputPrefix"], command_ids,
                             events["InstanceId"])
    return events, outputs, digests(events.get("CaptureOutput", ""))


def intake(events, boto3):
    """A session as the security account's intake role. Its trust policy
    requires the session tag to be the caller's own account
    (aws:PrincipalAccount); its permissions scope every copy's label and
    record key by it (docs/deploy.md "Custody")."""
    partition = boto3.client("sts").get_caller_identity()["Arn"].split(":")[1]
    role_arn = "arn:%s:iam::%s:role/%s" % (partition, events["SecurityAccountId"], events["CustodyRoleName"])
    creds = boto3.client("sts").assume_role(RoleArn=role_arn, RoleSessionName=ROLE_SESSION, DurationSeconds=900,
                                            Tags=[{"Key": SESSION_TAG, "Value": events["Account"]}])["Credentials"]
    return boto3.session.Session(aws_access_key_id=creds["AccessKeyId"],
                                 aws_secret_access_key=creds["SecretAccessKey"],
                                 aws_session_token=creds["SessionToken"], region_name=events["Region"])


def hand_over(events, boto3, member_ec2, ec2, snap, digest, budget, timed_out, findings):
    """One snapshot: share it, copy it as the intake role (EC2), lock the
    copy. The entry says what happened; "later" marks one for a later
    round, "queued" one CopySnapshot refused for EBS's copy quota."""
    sid, what = snap["SnapshotId"], holds(snap, events)
    entry = {"snapshot_id": sid, "holds": what, "state": snap["State"], "copy_id": "", "lock": ""}
    why = None
    if what.startswith("disk") and snap.get("Encrypted") and aws_managed(boto3.client("kms"), snap):
        why = ("under the AWS managed key aws/ebs, which EBS does not share: it stays here; "
               "hand over a copy under a customer managed key")
    elif what.startswith("disk") and snap["State"] == "pending" and not timed_out:
        entry["why_not_copied"], entry["later"] = ("pending when Custody ran: WaitDisks waits for it, a further "
                                                   "custody record hands it over"), True
        return entry
    elif what.startswith("disk") and snap["State"] == "pending":
        entry["mark"] = why = ("still pending when WaitDisks ended (after %d h at most) or in round %d: NOT "
                               "handed over; hand it over once completed" % (WAIT_HOURS, LAST_ROUND))
    elif snap["State"] == "error":
        why = "the snapshot failed (state error): EBS could not complete it"
    elif snap["State"] != "completed":
        why = "the snapshot is %s, CopySnapshot needs it completed" % snap["State"]
    if why:
        entry["why_not_copied"] = why
        findings.append("%s (%s) NOT copied: %s" % (sid, what, why))
        return entry
    try:
        member_ec2.modify_snapshot_attribute(SnapshotId=sid, Attribute="createVolumePermission",
                                             OperationType="add", UserIds=[events["SecurityAccountId"]])
        copy = copy_snapshot(ec2, budget, SourceSnapshotId=sid, SourceRegion=events["Region"], Encrypted=True,
                             KmsKeyId=events["KmsKeyId"],
                             Description=("forensics evidence case %s instance %s account %s execution %s: %s"
                                          % (events["CaseId"], events["InstanceId"], events["Account"],
                                             events["ExecutionId"], what))[:255],
                             TagSpecifications=[{"ResourceType": "snapshot",
                                                 "Tags": tags(events, digest[0], digest[1], digest[2], sid, what)}])
    except Exception as e:  # noqa: BLE001  (said in the record; the step then fails)
        entry["why_not_copied"] = "%s" % e
        if QUOTA in str(e) and not timed_out:
            entry["why_not_copied"] = ("CopySnapshot refused for %d s (%s: the security account's concurrent "
                                       "copies in this region): retried by the next round" % (QUOTA_BUDGET, e))
            entry["queued"] = entry["later"] = True
            return entry
        findings.append("%s (%s) NOT copied: %s" % (sid, what, e))
        return entry
    entry["copy_id"] = copy["SnapshotId"]
    entry["lock"], finding = lock(ec2, copy["SnapshotId"], int(events.get("LockDays") or 0))
    if finding:
        findings.append(finding)
    return entry


def copy_snapshot(ec2, budget, **request):
    """CopySnapshot, waiting while EBS refuses it for its quota of 20
    concurrent snapshot copies per destination Region (ResourceLimitExceeded:
    "wait for one or more of the copy requests to complete, and then make a
    new request", https://docs.aws.amazon.com/ebs/latest/userguide/ebs-copy-snapshot.html).
    Every member account and region of a fleet copies into the security
    account's region, so the quota is shared. BUDGET[0] is what is left of
    this round's QUOTA_BUDGET seconds (the step runs 600 s at most); then the
    refusal is raised and the snapshot waits for the next round."""
    for wait in QUOTA_WAITS:
        try:
            return ec2.copy_snapshot(**request)
        except Exception as e:  # noqa: BLE001
            if QUOTA not in str(e) or wait > budget[0]:
                raise
            budget[0] -= wait
            time.sleep(wait)
    return ec2.copy_snapshot(**request)


def mark_rounds(member_ec2, handed, pending, marks, findings):
    """The marks carry the rounds: the next round handles what is marked
    pending or waiting, and finds the earlier copies here. Returns the
    snapshot WaitDisks waits for ("" when none: the loop ends)."""
    wait_for = pending[0]["snapshot_id"] if pending else ""
    for h in handed:
        h.setdefault("mark", ("%s %s" % (h["copy_id"], h["lock"]) if h["copy_id"] else
                              "waiting" if h["snapshot_id"] == wait_for else
                              "pending" if h in pending else "not copied"))
    try:
        for h in handed:
            member_ec2.create_tags(Resources=[h["snapshot_id"]], Tags=[{"Key": MARK, "Value": h["mark"][:TAG_MAX]}])
    except Exception as e:  # noqa: BLE001  (without the marks a later round could not tell; do not wait)
        findings.append("marking the snapshots' custody failed (%s): disks still pending are NOT waited "
                        "for nor handed over" % e)
        wait_for = ""
    for h in handed:
        marks[h["snapshot_id"]] = h.pop("mark")
    return wait_for


def record_of(events, now, memory, copy_id, handed, bucket, outputs, findings, digest):
    """The custody record (schema forensics-volume/custody-record 2)."""
    return {
        "schema": "forensics-volume/custody-record",
        "schema_version": 2,
        "written_utc": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "case_id": events["CaseId"],
        "examiner": events["Examiner"],
        "instance_id": events["InstanceId"],
        "account": events["Account"],
        "region": events["Region"],
        "availability_zone": events["AvailabilityZone"],
        "execution_id": events["ExecutionId"],
        "forensics_volume_id": events["VolumeId"],
        "evidence_snapshot_id": memory[0]["snapshot_id"] if memory else "",
        "security_snapshot_id": copy_id,
        "snapshots": handed,
        "security_account": events["SecurityAccountId"],
        "custody_bucket": bucket,
        "kms_key_id": events["KmsKeyId"],
        "lock_days": int(events.get("LockDays") or 0),
        "plan": events.get("PlanSummary", ""),
        "protect": events.get("ProtectSummary", ""),
        "commands": {step: o["command_id"] for step, o in outputs.items()},
        "capture": {
            "status": events.get("CaptureStatus", ""),
            "response_code": events.get("CaptureResponseCode", ""),
            "final_line": digest[3] or "",
            "manifest_sha256": digest[0] or "",
            "image_sha256": digest[1] or "",
            "lime_sha256": digest[2] or "",
            "output_head": events.get("CaptureOutput", "")[:2400],
        },
        "run_command_output": outputs,
        "findings": findings,
    }


def write(s3, bucket, key, record, until, now, findings, copies, retention):
    """PUT the record, locked, with If-None-Match: * (S3 conditional
    writes): a key is written once; the bucket policy refuses any PUT
    without it, so no record ever gets a second version. Returns its
    VersionId."""

    def put(where):
        record["record_key"] = where
        body = (json.dumps(record, indent=2, sort_keys=True) + "\n").encode()
        return s3.put_object(Bucket=bucket, Key=where, Body=body, ContentType="application/json",
                             ObjectLockMode="COMPLIANCE", ObjectLockRetainUntilDate=until,
                             ChecksumAlgorithm="SHA256", IfNoneMatch="*")

    try:
        return put(key).get("VersionId", "?")
    except Exception as e:  # noqa: BLE001  (the message says what it means; the step fails)
        if "PreconditionFailed" not in str(e):
            raise CustodyError("writing s3://%s/%s failed (%s; RetentionDays %d over the security stack's cap?); "
                               "%s" % (bucket, key, e, retention, copies))
    # Someone holding this account's execution role wrote the key first:
    # the run's own record goes next to it, so that the execution has two
    # claims and capture verify trusts neither.
    findings.append("s3://%s/%s existed before this run wrote it" % (bucket, key))
    other = key[:-5] + ".contested-%s.json" % now.strftime("%Y%m%dT%H%M%S%fZ")
    try:
        put(other)
    except Exception as e2:  # noqa: BLE001
        other = "not written (%s)" % e2
    raise CustodyError("FORGED custody record? %s; this run's: %s; %s" % (findings[-1], other, copies))
