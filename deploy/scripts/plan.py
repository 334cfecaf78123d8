"""Plan step of the Forensics-CaptureInstanceMemory runbook (aws:executeScript).

Decides, before anything is created: which snapshot the forensics volume comes
from, how large the volume must be for this instance's RAM, its IOPS and
throughput within gp3's rules, a free device name in /dev/sd[f-p], and the
capture's execution timeout. Every refusal names what to change.

The arithmetic is pure (`make_plan`) and tested offline by deploy/check.sh;
`handler` adds the AWS calls (DescribeInstances, DescribeInstanceTypes,
GetParameter, DescribeSnapshots) with the runbook's assumed role; check.sh
runs it against responses shaped as the API reference documents them.
"""

import math
import re

SNAPSHOT_RE = re.compile(r"^snap-([0-9a-f]{8}|[0-9a-f]{17})$")
DEVICE_LETTERS = "fghijklmnop"
GP3_MIN_IOPS, GP3_MAX_IOPS, GP3_IOPS_PER_GIB = 3000, 80000, 500
GP3_MIN_THROUGHPUT, GP3_MAX_THROUGHPUT, GP3_MIBPS_PER_IOPS = 125, 2000, 0.25
GP3_MAX_GIB = 65536
# The forensics volume's ext4 is built without the 64bit feature (build.sh:
# -O ^64bit, resize limit 2^32-1 blocks): it cannot grow past 2^32 blocks of
# 4 KiB, and mount-helper stops the grow there. A larger EBS volume would be
# space the image can never use (review W5).
FS_MAX_GIB = 16384
# The agent clamps executionTimeout to [5, 172800]; out of range becomes 3600.
MAX_TIMEOUT = 172800
TIMEOUT_FIXED = 900


class PlanError(Exception):
    """A reason not to start: nothing has been created yet."""


def free_device(used_names):
    """First /dev/sdX (X in f..p) whose letter no attached device uses as
    sdX or xvdX. Raises PlanError when all eleven are taken."""
    used = set()
    for name in used_names:
        base = name.rsplit("/", 1)[-1]
        for prefix in ("xvd", "sd"):
            if base.startswith(prefix) and len(base) > len(prefix):
                used.add(base[len(prefix)])
                break
    for letter in DEVICE_LETTERS:
        if letter not in used:
            return "/dev/sd" + letter
    raise PlanError("no free device name in /dev/sd[f-p]: detach a volume or attach by hand")


def make_plan(memory_mib, snapshot_gib, used_devices, iops, throughput,
              size_percent, min_rate_mibps):
    """Volume size, IOPS, throughput, device and timeout for one capture.

    The volume holds the toolkit (the snapshot's size) plus the worst case of
    an image that does not compress at all (RAM x size_percent / 100) plus
    1 GiB for kernel context and the manifest. The timeout allows RAM read at
    min_rate_mibps plus a fixed 15 minutes, capped at the agent's maximum.
    """
    notes = []
    if memory_mib <= 0 or snapshot_gib <= 0:
        raise PlanError("memory %r MiB or snapshot %r GiB is not positive" % (memory_mib, snapshot_gib))
    if not 100 <= size_percent <= 400:
        raise PlanError("VolumeSizePercentOfRam %d is outside 100..400" % size_percent)
    if not 1 <= min_rate_mibps <= 10000:
        raise PlanError("MinCaptureRateMiBps %d is outside 1..10000" % min_rate_mibps)
    ram_gib = math.ceil(memory_mib / 1024)
    size = snapshot_gib + math.ceil(ram_gib * size_percent / 100) + 1
    if size > GP3_MAX_GIB:
        raise PlanError("a %d GiB volume is larger than gp3 allows (%d GiB)" % (size, GP3_MAX_GIB))
    if size > FS_MAX_GIB:
        notes.append("volume capped at %d GiB, the most its ext4 (no 64bit feature) can use, instead of %d GiB"
                     % (FS_MAX_GIB, size))
        size = FS_MAX_GIB
    # How much the plan relies on compression: the room left for the image
    # as a share of RAM (below 100 %, an image that compresses less than
    # that ends partial when the volume is full).
    room = size - snapshot_gib - 1
    room_percent = room * 100 // ram_gib
    if room_percent < 100:
        notes.append("the image must compress to %d%% of RAM (%d GiB of room for %d GiB of RAM) or it ends partial"
                     % (room_percent, room, ram_gib))

    if not GP3_MIN_IOPS <= iops <= GP3_MAX_IOPS:
        raise PlanError("VolumeIops %d is outside gp3's %d..%d" % (iops, GP3_MIN_IOPS, GP3_MAX_IOPS))
    if not GP3_MIN_THROUGHPUT <= throughput <= GP3_MAX_THROUGHPUT:
        raise PlanError("VolumeThroughput %d is outside gp3's %d..%d MiB/s"
                        % (throughput, GP3_MIN_THROUGHPUT, GP3_MAX_THROUGHPUT))
    max_iops = max(GP3_MIN_IOPS, size * GP3_IOPS_PER_GIB)
    if iops > max_iops:
        notes.append("IOPS lowered from %d to %d (gp3: %d per GiB of a %d GiB volume)"
                     % (iops, max_iops, GP3_IOPS_PER_GIB, size))
        iops = max_iops
    max_throughput = int(iops * GP3_MIBPS_PER_IOPS)
    if throughput > max_throughput:
        notes.append("throughput lowered from %d to %d MiB/s (gp3: %s MiB/s per IOPS at %d IOPS)"
                     % (throughput, max_throughput, GP3_MIBPS_PER_IOPS, iops))
        throughput = max_throughput

    timeout = TIMEOUT_FIXED + math.ceil(memory_mib / min_rate_mibps)
    if timeout > MAX_TIMEOUT:
        notes.append("capture timeout capped at %d s (needs %d s at %d MiB/s): a partial image is likely"
                     % (MAX_TIMEOUT, timeout, min_rate_mibps))
        timeout = MAX_TIMEOUT

    return {
        "VolumeSizeGiB": size,
        "ImageRoomPercentOfRam": room_percent,
        "ExpectedSizeGiB": str(size),
        "VolumeIops": iops,
        "VolumeThroughput": throughput,
        "DeviceName": free_device(used_devices),
        "CaptureTimeout": str(timeout),
        "Notes": "; ".join(notes) if notes else "none",
    }


def check_instance(instance):
    """Refuse instances the flow cannot capture: not running, Windows, or an
    architecture with no binaries on the volume."""
    state = instance.get("State", {}).get("Name")
    if state != "running":
        raise PlanError("instance is %s, not running: its memory is gone or unreachable" % state)
    if instance.get("Platform") == "windows":
        raise PlanError("instance runs Windows: the forensics volume is for Linux")
    arch = instance.get("Architecture")
    if arch not in ("x86_64", "arm64"):
        raise PlanError("architecture %s has no binaries on the forensics volume (x86_64, arm64)" % arch)


def resolve_snapshot_id(snapshot_id, parameter_value):
    """The SnapshotId input if given, else the value of the SSM parameter."""
    chosen = snapshot_id or (parameter_value or "").strip()
    if not SNAPSHOT_RE.match(chosen):
        raise PlanError("forensics volume snapshot %r is not a snapshot ID: pass SnapshotId, "
                        "or publish a volume (deploy/publish.sh) to set the parameter" % chosen)
    return chosen


def describe_forensics_snapshot(ec2, snapshot_id):
    """The forensics volume snapshot, or a PlanError that says why it cannot
    be seen: EBS answers InvalidSnapshot.NotFound both for a snapshot that
    does not exist and for one not shared with this account, which is what
    an account added to the organization after the last publish sees
    (deploy review B2)."""
    try:
        return ec2.describe_snapshots(SnapshotIds=[snapshot_id])["Snapshots"][0]
    except Exception as e:  # botocore's ClientError; the runtime's boto3 is imported lazily
        code = getattr(e, "response", {}).get("Error", {}).get("Code", "")
        if code in ("InvalidSnapshot.NotFound", "InvalidSnapshotID.NotFound"):
            raise PlanError("forensics snapshot not shared with this account (%s is not visible here): run "
                            "deploy/publish.sh --share-with-organization in the security account, or wait for "
                            "its re-share on account creation (docs/deploy.md)" % snapshot_id) from e
        raise


def handler(events, context):
    """aws:executeScript entry point."""
    import boto3  # provided by the aws:executeScript runtime

    ec2 = boto3.client("ec2")
    instance = ec2.describe_instances(InstanceIds=[events["InstanceId"]])["Reservations"][0]["Instances"][0]
    check_instance(instance)
    itype = ec2.describe_instance_types(InstanceTypes=[instance["InstanceType"]])["InstanceTypes"][0]
    memory_mib = int(itype["MemoryInfo"]["SizeInMiB"])

    parameter_value = ""
    if not events.get("SnapshotId"):
        parameter = boto3.client("ssm").get_parameter(Name=events["SnapshotParameter"])
        parameter_value = parameter["Parameter"]["Value"]
    snapshot_id = resolve_snapshot_id(events.get("SnapshotId", ""), parameter_value)
    snapshot = describe_forensics_snapshot(ec2, snapshot_id)
    if snapshot["State"] != "completed":
        raise PlanError("forensics volume snapshot %s is %s, not completed" % (snapshot_id, snapshot["State"]))

    used = [m["DeviceName"] for m in instance.get("BlockDeviceMappings", [])]
    plan = make_plan(memory_mib, int(snapshot["VolumeSize"]), used,
                     int(events["VolumeIops"]), int(events["VolumeThroughput"]),
                     int(events["VolumeSizePercentOfRam"]), int(events["MinCaptureRateMiBps"]))
    plan["SnapshotId"] = snapshot_id
    plan["Share"] = "yes" if events.get("SecurityAccountId") else "no"
    plan["MemoryMiB"] = memory_mib
    plan["Hypervisor"] = itype.get("Hypervisor", "bare-metal")
    plan["Summary"] = ("%s: %d MiB RAM, %s; volume %d GiB gp3 %d IOPS %d MiB/s from %s at %s "
                       "(image room %d%% of RAM); capture timeout %s s; notes: %s"
                       % (events["InstanceId"], memory_mib, plan["Hypervisor"], plan["VolumeSizeGiB"],
                          plan["VolumeIops"], plan["VolumeThroughput"], snapshot_id, plan["DeviceName"],
                          plan["ImageRoomPercentOfRam"], plan["CaptureTimeout"], plan["Notes"]))
    return plan
