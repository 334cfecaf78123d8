"""STAND-IN: EBS Snapshot Lock, and the moto refusals the drill world adds
(CreateSnapshots honouring ExcludeDataVolumeIds, DeleteSnapshot refused
while a lock holds, AttachVolume refusing a device or volume in use,
EnterStandby below the group's minimum): installed by world.World through
lock_stand_in()."""

import datetime


# ---- STAND-IN: EBS Snapshot Lock ------------------------------------------------------
#
# What it keeps, from the EC2 API reference (LockSnapshot, UnlockSnapshot,
# DescribeLockedSnapshots) and the EBS user guide ("Amazon EBS snapshot
# lock concepts", "Lock an Amazon EBS snapshot"):
#   https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_LockSnapshot.html
#   https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_UnlockSnapshot.html
#   https://docs.aws.amazon.com/ebs/latest/userguide/snapshot-lock-concepts.html
#   https://docs.aws.amazon.com/ebs/latest/userguide/lock-snapshot.html
# - "A locked snapshot can't be deleted." Compliance mode without a
#   cooling-off period is locked at once; with one (CoolOffPeriod, hours) it
#   is "compliance-cooloff" until then, "compliance" after: then no one can
#   unlock it, change the mode or shorten the lock, only lengthen it; it is
#   "expired" (deletable again) when the duration ends.
# - Only the owner locks it: another account's snapshot is not found.
# - A snapshot can be locked while pending or completed.
# - LockDuration or ExpirationDate, one of them; CoolOffPeriod only with
#   compliance (InvalidParameterCombination otherwise).
# The error code DeleteSnapshot returns for a locked snapshot is not in the
# documentation available here: the stand-in answers LOCKED_CODE (a label);
# the drills assert that the deletion fails and the snapshot stays, not the
# code.
LOCKED_CODE = "SnapshotLocked"
_LOCK = {"world": None, "saved": None}


def _now():
    return datetime.datetime.now(datetime.timezone.utc)


def lock_state(lock, now=None):
    now = now or _now()
    if now >= lock["LockExpiresOn"]:
        return "expired"
    if lock["LockMode"] == "governance":
        return "governance"
    cool = lock.get("CoolOffPeriodExpiresOn")
    return "compliance-cooloff" if cool and now < cool else "compliance"


def _lock_info(snapshot, lock):
    info = {k: v for k, v in lock.items() if k != "LockMode"}
    info.update(SnapshotId=snapshot.id, LockState=lock_state(lock))
    return info


def _lock_snapshot(self):
    from moto.core.responses import ActionResult
    from moto.ec2.exceptions import EC2ClientError

    snapshot = self.ec2_backend.get_snapshot(self._get_param("SnapshotId"))  # the caller's own, or NotFound
    mode = self._get_param("LockMode")
    days = self._get_int_param("LockDuration")
    cool = self._get_int_param("CoolOffPeriod")
    until = self._get_param("ExpirationDate")
    self.error_on_dryrun()
    world = _LOCK["world"]
    if world is not None and world.fail_lock:
        code, world.fail_lock = world.fail_lock, None
        raise EC2ClientError(code, "LockSnapshot failed (injected by the drill)")
    if (days is None) == (until is None):
        raise EC2ClientError("InvalidParameterCombination", "Specify either LockDuration or ExpirationDate")
    # botocore checks the model's minimums, not its maximums: EC2 does.
    if days is not None and not 1 <= days <= 36500:
        raise EC2ClientError("InvalidParameterValue", "LockDuration must be 1 to 36500 days")
    if cool is not None and not 1 <= cool <= 72:
        raise EC2ClientError("InvalidParameterValue", "CoolOffPeriod must be 1 to 72 hours")
    if cool and mode != "compliance":
        raise EC2ClientError("InvalidParameterCombination", "CoolOffPeriod is for compliance mode only")
    now = _now()
    if days:
        expires = now + datetime.timedelta(days=days)
    else:  # moto's _get_param already parses an ISO 8601 value into a datetime
        expires = until if isinstance(until, datetime.datetime) else \
            datetime.datetime.fromisoformat(until.replace("Z", "+00:00"))
        expires = expires if expires.tzinfo else expires.replace(tzinfo=datetime.timezone.utc)
    old = getattr(snapshot, "fv_lock", None)
    if old and lock_state(old, now) == "compliance" and (mode != "compliance" or expires < old["LockExpiresOn"]):
        raise EC2ClientError(LOCKED_CODE, "Snapshot %s is locked in compliance mode: the lock can only be "
                                          "extended" % snapshot.id)
    lock = {"LockMode": mode, "LockCreatedOn": now, "LockDurationStartTime": now, "LockExpiresOn": expires,
            "LockDuration": days or max(1, (expires - now).days)}
    if cool:
        lock.update(CoolOffPeriod=cool, CoolOffPeriodExpiresOn=now + datetime.timedelta(hours=cool))
    snapshot.fv_lock = lock
    return ActionResult(_lock_info(snapshot, lock))


def _describe_locked_snapshots(self):
    from moto.core.responses import ActionResult

    ids = self._get_param("SnapshotIds", [])
    found = []
    for snapshot in self.ec2_backend.snapshots.values():
        lock = getattr(snapshot, "fv_lock", None)
        if lock and (not ids or snapshot.id in ids):
            info = _lock_info(snapshot, lock)
            info["OwnerId"] = snapshot.owner_id
            found.append(info)
    return ActionResult({"Snapshots": found})


def _excluding_create_snapshots(original):
    # STAND-IN: CreateSnapshots' ExcludeDataVolumeIds (module docstring).
    def create_snapshots(self, instance_spec, description, tags):
        excluded = set(instance_spec.get("ExcludeDataVolumeIds") or [])
        instance = self.get_instance(instance_spec["InstanceId"])
        saved = dict(instance.block_device_mapping)
        try:
            for device, mapping in saved.items():
                if mapping.volume_id in excluded:
                    del instance.block_device_mapping[device]
            snapshots = original(self, instance_spec, description, tags)
            for snap in snapshots:
                # moto leaves out the key of a snapshot of an encrypted
                # volume; EC2 reports the volume's.
                if snap.encrypted and not getattr(snap, "kms_key_id", None):
                    snap.kms_key_id = snap.volume.kms_key_id
            return snapshots
        finally:
            instance.block_device_mapping.clear()
            instance.block_device_mapping.update(saved)

    return create_snapshots


def _refusing_delete(original):
    def delete_snapshot(self, snapshot_id):
        from moto.ec2.exceptions import EC2ClientError

        lock = getattr(self.snapshots.get(snapshot_id), "fv_lock", None)
        if lock and lock_state(lock) != "expired":
            raise EC2ClientError(LOCKED_CODE, "Snapshot %s is locked (%s) until %s and cannot be deleted"
                                 % (snapshot_id, lock_state(lock), lock["LockExpiresOn"].isoformat()))
        return original(self, snapshot_id)

    return delete_snapshot


def _refusing_attach(original):
    """STAND-IN: moto 5.2.5's AttachVolume overwrites an instance's device
    mapping and re-attaches an attached volume. EC2 refuses both (API
    reference, errors-overview.html: "VolumeInUse: The specified EBS volume
    is attached to an instance", and InvalidParameterValue for a device
    name in use, "Attachment point ... is already in use"): two executions
    planning the same free device on one instance collide, as on AWS."""

    def attach_volume(self, volume_id, instance_id, device_path, delete_on_termination=False):
        from moto.ec2.exceptions import EC2ClientError

        volume = self.get_volume(volume_id)
        if volume is not None and volume.attachment is not None:
            raise EC2ClientError("VolumeInUse", "%s is already attached to an instance" % volume_id)
        instance = self.get_instance(instance_id)
        if instance is not None and device_path in instance.block_device_mapping:
            raise EC2ClientError("InvalidParameterValue", "Invalid value '%s' for unixDevice. Attachment point %s "
                                 "is already in use" % (device_path, device_path))
        return original(self, volume_id, instance_id, device_path, delete_on_termination)

    return attach_volume


def _refusing_standby(original):
    # STAND-IN: EnterStandby below the minimum (module docstring).
    def enter_standby_instances(self, group_name, instance_ids, should_decrement):
        from moto.autoscaling.exceptions import ValidationError

        group = self.autoscaling_groups[group_name]
        if should_decrement and group.desired_capacity - len(instance_ids) < group.min_size:
            raise ValidationError("AutoScalingGroup %s has min-size=%d, max-size=%d, and desired-size=%d. To place "
                                  "into standby %d instances, please update the AutoScalingGroup sizes "
                                  "appropriately." % (group_name, group.min_size, group.max_size,
                                                      group.desired_capacity, len(instance_ids)))
        return original(self, group_name, instance_ids, should_decrement)

    return enter_standby_instances


def lock_stand_in(world):
    """Install the Snapshot Lock and CreateSnapshots stand-ins for WORLD
    (None: remove them)."""
    from moto.autoscaling.models import AutoScalingBackend
    from moto.ec2.models.elastic_block_store import EBSBackend
    from moto.ec2.responses import EC2Response

    if world is None:
        if _LOCK["saved"] is not None:
            EBSBackend.delete_snapshot, EBSBackend.create_snapshots, AutoScalingBackend.enter_standby_instances, \
                EBSBackend.attach_volume = _LOCK["saved"]
            del EC2Response.lock_snapshot, EC2Response.describe_locked_snapshots
        _LOCK.update(world=None, saved=None)
        return
    if _LOCK["saved"] is None:
        _LOCK["saved"] = (EBSBackend.delete_snapshot, EBSBackend.create_snapshots,
                          AutoScalingBackend.enter_standby_instances, EBSBackend.attach_volume)
        EBSBackend.attach_volume = _refusing_attach(_LOCK["saved"][3])
        AutoScalingBackend.enter_standby_instances = _refusing_standby(_LOCK["saved"][2])
        EBSBackend.delete_snapshot = _refusing_delete(_LOCK["saved"][0])
        EBSBackend.create_snapshots = _excluding_create_snapshots(_LOCK["saved"][1])
        EC2Response.lock_snapshot = _lock_snapshot
        EC2Response.describe_locked_snapshots = _describe_locked_snapshots
    _LOCK["world"] = world
