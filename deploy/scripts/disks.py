"""SnapshotDisks step of Forensics-CaptureInstanceMemory (aws:executeScript,
handler `disks`; docs/deploy.md "Disk snapshots"). With
SnapshotAllVolumes=yes, right after the memory evidence snapshot was
started: one CreateSnapshots call for every EBS volume of the suspect
instance except the forensics volume (crash-consistent across the volumes,
at one point in time), tagged as evidence of this execution so that the
Custody step hands them to the security account with the memory evidence.
Never fails the run: the memory evidence must not wait for or depend on
the disks, so an error is returned in the summary (the step is also
non-critical in the runbook).
"""


def disks(events, context):
    """aws:executeScript entry point."""
    if events.get("Enabled") != "yes":
        return {"SnapshotIds": "", "Summary": "off (SnapshotAllVolumes=no)"}
    import boto3  # provided by the aws:executeScript runtime

    tags = [{"Key": "Name", "Value": "forensics-disk %s %s" % (events["CaseId"], events["InstanceId"])},
            {"Key": "forensics-volume:role", "Value": "evidence"},
            {"Key": "forensics-volume:kind", "Value": "disk"},
            {"Key": "forensics-volume:case-id", "Value": events["CaseId"]},
            {"Key": "forensics-volume:instance-id", "Value": events["InstanceId"]},
            {"Key": "forensics-volume:execution-id", "Value": events["ExecutionId"]}]
    ec2 = boto3.client("ec2")
    try:
        r = ec2.create_snapshots(
            InstanceSpecification={"InstanceId": events["InstanceId"],
                                   "ExcludeDataVolumeIds": [events["ForensicsVolumeId"]]},
            Description=("Disk evidence, case %s, instance %s, execution %s (crash-consistent, all volumes)"
                         % (events["CaseId"], events["InstanceId"], events["ExecutionId"]))[:255],
            TagSpecifications=[{"ResourceType": "snapshot", "Tags": tags}])
    except Exception as e:  # noqa: BLE001  (the memory evidence goes on without the disks)
        return {"SnapshotIds": "", "Summary": "CreateSnapshots failed, no disk snapshots: %s" % e}
    pairs = ["%s=%s" % (s["VolumeId"], s["SnapshotId"]) for s in r.get("Snapshots", [])]
    summary = "%d disk snapshot(s) started, handed over by Custody: %s" % (len(pairs), " ".join(pairs))
    managed = aws_managed_volumes(ec2, boto3.client("kms"), [s["VolumeId"] for s in r.get("Snapshots", [])])
    if managed:
        summary += ("; under the AWS managed key aws/ebs, which cannot be shared, so their snapshots stay in "
                    "this account: %s" % " ".join(managed))
    return {"SnapshotIds": " ".join(pairs), "Summary": summary}


def aws_managed_volumes(ec2, kms, volume_ids):
    """The volumes encrypted with an AWS managed key (aws/ebs), said early;
    Custody checks each snapshot again. Unknown: not listed."""
    found = []
    try:
        volumes = ec2.describe_volumes(VolumeIds=volume_ids)["Volumes"] if volume_ids else []
    except Exception:  # noqa: BLE001  (a note only)
        return found
    for v in volumes:
        try:
            if v.get("KmsKeyId") and kms.describe_key(KeyId=v["KmsKeyId"])["KeyMetadata"]["KeyManager"] == "AWS":
                found.append(v["VolumeId"])
        except Exception:  # noqa: BLE001  (a note only)
            continue
    return found
