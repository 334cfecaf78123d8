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
    try:
        r = boto3.client("ec2").create_snapshots(
            InstanceSpecification={"InstanceId": events["InstanceId"],
                                   "ExcludeDataVolumeIds": [events["ForensicsVolumeId"]]},
            Description=("Disk evidence, case %s, instance %s, execution %s (crash-consistent, all volumes)"
                         % (events["CaseId"], events["InstanceId"], events["ExecutionId"]))[:255],
            TagSpecifications=[{"ResourceType": "snapshot", "Tags": tags}])
    except Exception as e:  # noqa: BLE001  (the memory evidence goes on without the disks)
        return {"SnapshotIds": "", "Summary": "CreateSnapshots failed, no disk snapshots: %s" % e}
    pairs = ["%s=%s" % (s["VolumeId"], s["SnapshotId"]) for s in r.get("Snapshots", [])]
    return {"SnapshotIds": " ".join(pairs),
            "Summary": "%d disk snapshot(s) started, handed over by Custody: %s" % (len(pairs), " ".join(pairs))}
