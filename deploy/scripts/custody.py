"""Custody step of Forensics-CaptureInstanceMemory (aws:executeScript,
handler `custody`; docs/deploy.md "Custody" has the why). As the security
account's intake role: copy the shared evidence snapshot into the security
account under its key, tagged with the capture's digests; check the Run
Command output objects arrived; write the custody record with Object Lock in
compliance mode (deploy review W2, H4; security review H3). The digests come
from capture's final line, which Forensics-CaptureMemory prints second.
"""

import datetime
import json
import re

DIGESTS = re.compile(r"sha256 manifest\.json=([0-9a-f]{64}) memory\.lime\.zst=([0-9a-f]{64}) lime=([0-9a-f]{64})")
ROLE_SESSION = "forensics-custody"
# Tag values EC2 takes: at most 256 characters.
TAG_MAX = 256


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


def tags(events, manifest_sha, image_sha, lime_sha):
    pairs = [
        ("Name", "forensics-evidence %s %s" % (events["CaseId"], events["InstanceId"])),
        ("forensics-volume:role", "evidence"),
        ("forensics-volume:case-id", events["CaseId"]),
        ("forensics-volume:instance-id", events["InstanceId"]),
        ("forensics-volume:account", events["Account"]),
        ("forensics-volume:region", events["Region"]),
        ("forensics-volume:execution-id", events["ExecutionId"]),
        ("forensics-volume:source-snapshot-id", events["EvidenceSnapshotId"]),
        ("forensics-volume:manifest-sha256", manifest_sha or "not reported"),
        ("forensics-volume:image-sha256", image_sha or "not reported"),
        ("forensics-volume:lime-sha256", lime_sha or "not reported"),
    ]
    return [{"Key": k, "Value": v[:TAG_MAX]} for k, v in pairs]


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


def custody(events, context):
    """aws:executeScript entry point."""
    import boto3  # provided by the aws:executeScript runtime

    now = datetime.datetime.now(datetime.timezone.utc)
    security = events["SecurityAccountId"]
    # The partition of the caller's own ARN (aws, aws-cn, aws-us-gov).
    partition = boto3.client("sts").get_caller_identity()["Arn"].split(":")[1]
    bucket = events.get("CustodyBucket") or "forensics-custody-%s" % security
    role_arn = "arn:%s:iam::%s:role/%s" % (partition, security, events["CustodyRoleName"])
    retention = int(events["RetentionDays"])
    if retention < 1:
        raise CustodyError("RetentionDays %d: custody records must be locked for at least a day" % retention)

    manifest_sha, image_sha, lime_sha, final_line = digests(events.get("CaptureOutput", ""))
    outputs = output_objects(boto3.client("s3"), events["OutputBucket"], events["OutputPrefix"],
                             {"Mount": events.get("MountCommandId", ""),
                              "Capture": events.get("CaptureCommandId", ""),
                              "Unmount": events.get("UnmountCommandId", "")},
                             events["InstanceId"])
    missing = sorted(step for step, o in outputs.items() if not o["arrived"])

    creds = boto3.client("sts").assume_role(RoleArn=role_arn, RoleSessionName=ROLE_SESSION,
                                            DurationSeconds=900)["Credentials"]
    session = boto3.session.Session(aws_access_key_id=creds["AccessKeyId"],
                                    aws_secret_access_key=creds["SecretAccessKey"],
                                    aws_session_token=creds["SessionToken"], region_name=events["Region"])
    ec2 = session.client("ec2")
    copy = ec2.copy_snapshot(
        SourceSnapshotId=events["EvidenceSnapshotId"], SourceRegion=events["Region"], Encrypted=True,
        KmsKeyId=events["KmsKeyId"],
        Description=("forensics evidence case %s instance %s account %s execution %s"
                     % (events["CaseId"], events["InstanceId"], events["Account"], events["ExecutionId"]))[:255],
        TagSpecifications=[{"ResourceType": "snapshot",
                            "Tags": tags(events, manifest_sha, image_sha, lime_sha)}])
    copy_id = copy["SnapshotId"]

    record = {
        "schema": "forensics-volume/custody-record",
        "schema_version": 1,
        "written_utc": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "case_id": events["CaseId"],
        "examiner": events["Examiner"],
        "instance_id": events["InstanceId"],
        "account": events["Account"],
        "region": events["Region"],
        "availability_zone": events["AvailabilityZone"],
        "execution_id": events["ExecutionId"],
        "forensics_volume_id": events["VolumeId"],
        "evidence_snapshot_id": events["EvidenceSnapshotId"],
        "security_snapshot_id": copy_id,
        "security_account": security,
        "kms_key_id": events["KmsKeyId"],
        "plan": events.get("PlanSummary", ""),
        "protect": events.get("ProtectSummary", ""),
        "commands": {step: o["command_id"] for step, o in outputs.items()},
        "capture": {
            "status": events.get("CaptureStatus", ""),
            "response_code": events.get("CaptureResponseCode", ""),
            "final_line": final_line or "",
            "manifest_sha256": manifest_sha or "",
            "image_sha256": image_sha or "",
            "lime_sha256": lime_sha or "",
            "output_head": events.get("CaptureOutput", "")[:2400],
        },
        "run_command_output": outputs,
        "findings": [],
    }
    if not manifest_sha:
        record["findings"].append("the capture's final line with its digests is not in the Capture output: "
                                  "the analyst can check self-consistency only")
    for step in missing:
        record["findings"].append("the Run Command output of %s did not arrive in s3://%s/%s (the agent "
                                  "could not upload it; only the 2,400-character console copy is kept)"
                                  % (step, events["OutputBucket"], events["OutputPrefix"]))
    key = "custody/%s/%s/%s/%s.json" % (events["Account"], events["Region"], events["CaseId"], events["ExecutionId"])
    body = (json.dumps(record, indent=2, sort_keys=True) + "\n").encode()
    until = now + datetime.timedelta(days=retention)
    session.client("s3").put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/json",
                                    ObjectLockMode="COMPLIANCE", ObjectLockRetainUntilDate=until,
                                    ChecksumAlgorithm="SHA256")
    summary = "evidence copied to %s (account %s); custody record s3://%s/%s locked until %s" % (
        copy_id, security, bucket, key, until.strftime("%Y-%m-%d"))
    if record["findings"]:
        summary += "; " + "; ".join(record["findings"])
    return {"SecuritySnapshotId": copy_id, "CustodyRecord": "s3://%s/%s" % (bucket, key),
            "ManifestSha256": manifest_sha or "", "ImageSha256": image_sha or "", "LimeSha256": lime_sha or "",
            "OutputsArrived": "no" if missing else "yes", "Summary": summary}
