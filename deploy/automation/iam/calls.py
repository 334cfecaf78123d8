"""What each call asks: the actions, resources and condition keys of an API call."""

import datetime
import math

from .common import _STATE
from .sar import arn_of, resource_types, supported_keys
from .evaluate import Check


class Request:
    """One boto3 call being mapped: service prefix, operation, params, principal."""

    def __init__(self, prefix, operation, params, principal, facts):
        self.prefix, self.op, self.params, self.principal, self.facts = prefix, operation, params, principal, facts
        self.region, self.partition = facts.region, facts.partition
        self.account = principal.account
        self.checks = []

    def arn(self, rtype, account, *ids, prefix=None):
        return arn_of(prefix or self.prefix, rtype, self.partition, self.region, account, *ids)

    def add(self, action, rtype, resource, account=None, context=None, tags=None, policy=None, kind=None,
            shared_with=None, request_tags=None, prefix=None):
        types = resource_types(action)
        if rtype not in types:
            raise ValueError("iam: the Service Authorization Reference lists no %r resource for %s" % (rtype, action))
        ctx = {"aws:RequestedRegion": self.region}
        if action.startswith("ec2:"):
            ctx["ec2:Region"] = self.region
        for k, v in (tags or {}).items():
            ctx["aws:ResourceTag/%s" % k] = v
            ctx["%s:ResourceTag/%s" % (prefix or action.split(":")[0], k)] = v
            if action.startswith("ssm:"):
                ctx["ssm:resourceTag/%s" % k] = v
        if request_tags is not None:
            for k, v in request_tags.items():
                ctx["aws:RequestTag/%s" % k] = v
            ctx["aws:TagKeys"] = list(request_tags)
        ctx.update(context or {})
        keep = supported_keys(action, rtype, ctx)
        ctx = {k: v for k, v in ctx.items() if k in keep}
        self.checks.append(Check(action, resource, rtype, account, ctx, policy, kind, shared_with))

    def star(self, action, context=None):
        self.add(action, "", "*", self.account, context)


def _tags(spec, resource_type):
    out = {}
    for ts in spec or []:
        if ts.get("ResourceType") == resource_type:
            out.update({t["Key"]: t["Value"] for t in ts.get("Tags", [])})
    return out


def _kms_via_ec2(req, key_ref, actions):
    """EBS calls KMS for the caller (ebs/latest/userguide/ebs-encryption.html,
    "How EBS encryption works"; kms:ViaService, kms:GrantIsForAWSResource)."""
    if not key_ref:
        return
    key = req.facts.key(key_ref)
    if key is None:
        return
    arn = key["arn"]
    for action in actions:
        ctx = {"kms:ViaService": "ec2.%s.amazonaws.com" % req.region, "kms:CallerAccount": req.account,
               "aws:ViaAWSService": "true"}
        if action == "kms:CreateGrant":
            ctx["kms:GrantIsForAWSResource"] = "true"
        req.add(action, "key", arn, key["account"], ctx)


MAP = {}


def maps(*names):
    def wrap(fn):
        for n in names:
            MAP[n] = fn
        return fn
    return wrap


@maps("ec2:DescribeInstances", "ec2:DescribeInstanceTypes", "ec2:DescribeVolumes", "ec2:DescribeSnapshots",
      "ec2:DescribeInstanceAttribute", "ec2:DescribeSnapshotAttribute", "ec2:DescribeNetworkInterfaces",
      "ec2:DescribeLockedSnapshots", "ec2:DescribeSecurityGroups", "ec2:DescribeTags",
      "autoscaling:DescribeAutoScalingInstances", "autoscaling:DescribeAutoScalingGroups",
      "ssm:DescribeInstanceInformation", "ssm:ListCommands", "ssm:ListCommandInvocations",
      "ssm:GetCommandInvocation", "sts:GetCallerIdentity", "organizations:ListAccounts",
      "ssm:DescribeAutomationExecutions")
def _star(req):
    action = "%s:%s" % (req.prefix, req.op)
    if action == "sts:GetCallerIdentity":
        return  # "No permissions are required" (API_GetCallerIdentity)
    types = resource_types(action)
    if "" in types and len(types) == 1:
        req.star(action)
    elif action == "ec2:DescribeInstanceAttribute":
        iid = req.params["InstanceId"]
        inst = req.facts.instance(iid) or {"account": req.account, "tags": {}}
        req.add(action, "instance", req.arn("instance", inst["account"], iid), inst["account"],
                {"ec2:Attribute": req.params.get("Attribute")}, tags=inst["tags"])
    elif action == "ec2:DescribeSnapshotAttribute":
        sid = req.params["SnapshotId"]
        snap = req.facts.snapshot(sid) or {"account": req.account, "tags": {}}
        req.add(action, "snapshot", req.arn("snapshot", "", sid), snap["account"], tags=snap["tags"])
    else:
        raise ValueError("iam: %s has resource types %s: map it" % (action, sorted(types)))


def _instance(req, action, iid, context=None):
    inst = req.facts.instance(iid) or {"account": req.account, "tags": {}}
    req.add(action, "instance", req.arn("instance", inst["account"], iid), inst["account"], context,
            tags=inst["tags"])
    return inst


def _volume(req, action, vid, context=None):
    vol = req.facts.volume(vid) or {"account": req.account, "tags": {}}
    req.add(action, "volume", req.arn("volume", vol["account"], vid), vol["account"], context, tags=vol["tags"])
    return vol


def _snapshot(req, action, sid, context=None, request_tags=None, must_exist=True):
    snap = req.facts.snapshot(sid) if sid else None
    if snap is None:
        snap = {"account": req.account, "tags": {}, "shared_with": set(), "encrypted": False, "kms_key_id": None}
    ctx = {"ec2:Owner": snap["account"], "ec2:Encrypted": str(bool(snap.get("encrypted"))).lower(),
           "ec2:SnapshotID": sid}
    ctx.update(context or {})
    req.add(action, "snapshot", req.arn("snapshot", "", sid or "*"), snap["account"], ctx, tags=snap["tags"],
            shared_with=snap.get("shared_with"), request_tags=request_tags)
    return snap


def _new_snapshot(req, action, request_tags, context=None):
    """A snapshot being created: no ID yet (the ARN's ID part is the new one)."""
    req.add(action, "snapshot", req.arn("snapshot", "", "*"), req.account, context, request_tags=request_tags)


def _create_tags_on_create(req, create_action, rtype, account, request_tags):
    """Tag-on-create: ec2:CreateTags with ec2:CreateAction (ec2 user guide,
    supported-iam-actions-tagging.html: "To tag resources on creation,
    users must have permissions to use the action that creates the
    resource, such as ec2:RunInstances ... also have permission to use the
    ec2:CreateTags action")."""
    if not request_tags:
        return
    arn = req.arn(rtype, "" if rtype == "snapshot" else account, "*")
    req.add("ec2:CreateTags", rtype, arn, account, {"ec2:CreateAction": create_action}, request_tags=request_tags)


@maps("ec2:CreateVolume")
def _create_volume(req):
    p = req.params
    tags = _tags(p.get("TagSpecifications"), "volume")
    ctx = {"ec2:Encrypted": str(bool(p.get("Encrypted"))).lower(), "ec2:VolumeType": p.get("VolumeType", "gp2"),
           "ec2:AvailabilityZone": p.get("AvailabilityZone")}
    if p.get("Size") is not None:
        ctx["ec2:VolumeSize"] = str(p["Size"])
    if p.get("KmsKeyId"):
        ctx["ec2:KmsKeyId"] = p["KmsKeyId"]
    req.add("ec2:CreateVolume", "volume", req.arn("volume", req.account, "*"), req.account, ctx, request_tags=tags)
    snap = None
    if p.get("SnapshotId"):
        snap = _snapshot(req, "ec2:CreateVolume", p["SnapshotId"])
    _create_tags_on_create(req, "CreateVolume", "volume", req.account, tags)
    target = p.get("KmsKeyId") or (snap or {}).get("kms_key_id")
    if p.get("Encrypted") or (snap or {}).get("encrypted"):
        actions = ["kms:CreateGrant", "kms:DescribeKey", "kms:GenerateDataKeyWithoutPlaintext", "kms:Decrypt"]
        _kms_via_ec2(req, target, actions)
        source = (snap or {}).get("kms_key_id")
        if source and target and req.facts.key(source) and req.facts.key(target) and \
                req.facts.key(source)["arn"] != req.facts.key(target)["arn"]:
            _kms_via_ec2(req, source, ["kms:Decrypt", "kms:ReEncryptFrom"])
            _kms_via_ec2(req, target, ["kms:ReEncryptTo"])


@maps("ec2:AttachVolume", "ec2:DetachVolume")
def _attach(req):
    action = "ec2:" + req.op
    if req.params.get("InstanceId"):
        _instance(req, action, req.params["InstanceId"])
    _volume(req, action, req.params["VolumeId"])


@maps("ec2:DeleteVolume")
def _delete_volume(req):
    _volume(req, "ec2:DeleteVolume", req.params["VolumeId"])


@maps("ec2:CreateSnapshot")
def _create_snapshot(req):
    tags = _tags(req.params.get("TagSpecifications"), "snapshot")
    vol = _volume(req, "ec2:CreateSnapshot", req.params["VolumeId"])
    _new_snapshot(req, "ec2:CreateSnapshot", tags, {"ec2:ParentVolume": req.arn("volume", vol["account"],
                                                                               req.params["VolumeId"])})
    _create_tags_on_create(req, "CreateSnapshot", "snapshot", req.account, tags)


@maps("ec2:CreateSnapshots")
def _create_snapshots(req):
    p = req.params
    tags = _tags(p.get("TagSpecifications"), "snapshot")
    iid = p["InstanceSpecification"]["InstanceId"]
    _instance(req, "ec2:CreateSnapshots", iid)
    excluded = set(p["InstanceSpecification"].get("ExcludeDataVolumeIds") or [])
    for vid in _instance_volumes(req, iid):
        if vid not in excluded:
            _volume(req, "ec2:CreateSnapshots", vid)
    _new_snapshot(req, "ec2:CreateSnapshots", tags)
    _create_tags_on_create(req, "CreateSnapshots", "snapshot", req.account, tags)


def _instance_volumes(req, iid):
    for account in req.facts.accounts:
        backend = req.facts._ec2(account)
        for reservation in backend.reservations.values():
            for inst in reservation.instances:
                if inst.id == iid:
                    return [m.volume_id for m in inst.block_device_mapping.values()]
    return []


@maps("ec2:ModifySnapshotAttribute")
def _modify_snapshot_attribute(req):
    p = req.params
    ctx = {"ec2:Attribute": p.get("Attribute")}
    perm = p.get("CreateVolumePermission") or {}
    adds = [x.get("UserId") for x in perm.get("Add", []) if x.get("UserId")] + list(p.get("UserIds") or [])
    removes = [x.get("UserId") for x in perm.get("Remove", []) if x.get("UserId")]
    if adds and p.get("OperationType", "add") != "remove":
        ctx["ec2:Add/userId"] = adds
    if removes or (p.get("OperationType") == "remove" and p.get("UserIds")):
        ctx["ec2:Remove/userId"] = removes or list(p.get("UserIds"))
    groups = [x.get("Group") for x in perm.get("Add", []) if x.get("Group")] + list(p.get("GroupNames") or [])
    if groups:
        ctx["ec2:Add/group"] = groups
    _snapshot(req, "ec2:ModifySnapshotAttribute", p["SnapshotId"], ctx)


@maps("ec2:CopySnapshot")
def _copy_snapshot(req):
    p = req.params
    tags = _tags(p.get("TagSpecifications"), "snapshot")
    source = req.facts.snapshot(p["SourceSnapshotId"]) or {}
    size = {"ec2:VolumeSize": str(source["volume_size"])} if source.get("volume_size") else {}
    src = _snapshot(req, "ec2:CopySnapshot", p["SourceSnapshotId"], size, request_tags=tags)
    _new_snapshot(req, "ec2:CopySnapshot", tags)
    _create_tags_on_create(req, "CopySnapshot", "snapshot", req.account, tags)
    if src.get("encrypted") or p.get("Encrypted"):
        target = p.get("KmsKeyId") or src.get("kms_key_id")
        _kms_via_ec2(req, src.get("kms_key_id"), ["kms:Decrypt", "kms:ReEncryptFrom", "kms:DescribeKey"])
        _kms_via_ec2(req, target, ["kms:CreateGrant", "kms:DescribeKey", "kms:GenerateDataKeyWithoutPlaintext",
                                   "kms:ReEncryptTo"])


@maps("ec2:LockSnapshot")
def _lock_snapshot(req):
    p = req.params
    ctx = {}
    if p.get("LockDuration") is not None:
        ctx["ec2:SnapshotLockDuration"] = str(p["LockDuration"])
    if p.get("CoolOffPeriod") is not None:
        ctx["ec2:SnapshotCoolOffPeriod"] = str(p["CoolOffPeriod"])
    _snapshot(req, "ec2:LockSnapshot", p["SnapshotId"], ctx)


@maps("ec2:DeleteSnapshot", "ec2:UnlockSnapshot")
def _snapshot_only(req):
    _snapshot(req, "ec2:" + req.op, req.params["SnapshotId"])


@maps("ec2:CreateTags", "ec2:DeleteTags")
def _create_tags(req):
    action = "ec2:" + req.op
    tags = {t["Key"]: t.get("Value", "") for t in req.params.get("Tags", [])}
    for rid in req.params["Resources"]:
        kind = rid.split("-", 1)[0]
        if kind == "snap":
            _snapshot(req, action, rid, request_tags=tags)
        elif kind == "vol":
            vol = req.facts.volume(rid) or {"account": req.account, "tags": {}}
            req.add(action, "volume", req.arn("volume", vol["account"], rid), vol["account"], tags=vol["tags"],
                    request_tags=tags)
        elif kind == "i":
            inst = req.facts.instance(rid) or {"account": req.account, "tags": {}}
            req.add(action, "instance", req.arn("instance", inst["account"], rid), inst["account"],
                    tags=inst["tags"], request_tags=tags)
        else:
            raise ValueError("iam: CreateTags on %s is not mapped" % rid)


@maps("ec2:ModifyInstanceAttribute")
def _modify_instance_attribute(req):
    p = req.params
    attrs = [k for k in p if k not in ("InstanceId", "DryRun", "Attribute", "Value")]
    attr = p.get("Attribute") or (attrs[0] if len(attrs) == 1 else None)
    # The reference's ec2:Attribute values are the API's attribute names
    # with a lower-case first letter (disableApiTermination, userData, ...).
    name = attr[0].lower() + attr[1:] if attr else None
    ctx = {"ec2:Attribute": name} if name else {}
    if name:
        value = p.get(attr, {})
        value = value.get("Value") if isinstance(value, dict) else p.get("Value", value)
        ctx["ec2:Attribute/%s" % name] = str(value).lower() if isinstance(value, bool) else str(value)
    _instance(req, "ec2:ModifyInstanceAttribute", p["InstanceId"], ctx)
    for gid in p.get("Groups", []) or []:
        req.add("ec2:ModifyInstanceAttribute", "security-group", req.arn("security-group", req.account, gid),
                req.account, tags=_ec2_tags(req, gid))


@maps("ec2:ModifyNetworkInterfaceAttribute")
def _modify_eni(req):
    p = req.params
    eni = p["NetworkInterfaceId"]
    attrs = [k for k in p if k not in ("NetworkInterfaceId", "DryRun")]
    ctx = {"ec2:Attribute": attrs[0][0].lower() + attrs[0][1:]} if len(attrs) == 1 else {}
    req.add("ec2:ModifyNetworkInterfaceAttribute", "network-interface",
            req.arn("network-interface", req.account, eni), req.account, ctx, tags=_ec2_tags(req, eni))
    for gid in p.get("Groups", []) or []:
        req.add("ec2:ModifyNetworkInterfaceAttribute", "security-group", req.arn("security-group", req.account, gid),
                req.account, tags=_ec2_tags(req, gid))


def _ec2_tags(req, rid):
    for account in req.facts.accounts:
        tags = req.facts._ec2(account).tags.get(rid)
        if tags:
            return dict(tags)
    return {}


@maps("autoscaling:EnterStandby", "autoscaling:ExitStandby", "autoscaling:SetInstanceProtection",
      "autoscaling:SuspendProcesses", "autoscaling:ResumeProcesses", "autoscaling:DetachInstances",
      "autoscaling:AttachInstances")
def _asg(req):
    action = "autoscaling:" + req.op
    group = req.facts.auto_scaling_group(req.params["AutoScalingGroupName"], req.account)
    arn = group["arn"] if group else req.arn("autoScalingGroup", req.account, "*", req.params["AutoScalingGroupName"])
    tags = group["tags"] if group else {}
    ctx = {"autoscaling:ResourceTag/%s" % k: v for k, v in tags.items()}
    req.add(action, "autoScalingGroup", arn, req.account, ctx, tags=tags)


@maps("kms:DescribeKey", "kms:Decrypt", "kms:CreateGrant", "kms:Encrypt", "kms:GenerateDataKey",
      "kms:ScheduleKeyDeletion", "kms:DisableKey", "kms:PutKeyPolicy", "kms:GetKeyPolicy")
def _kms(req):
    ref = req.params["KeyId"]
    key = req.facts.key(ref)
    arn = key["arn"] if key else ref
    account = key["account"] if key else req.account
    req.add("kms:" + req.op, "key", arn, account, {"kms:CallerAccount": req.account})


def _bucket_arn(req, bucket, key=None):
    return "arn:%s:s3:::%s%s" % (req.partition, bucket, "" if key is None else "/" + key)


# A multipart upload is authorized as s3:PutObject at each of its calls
# (Service Authorization Reference, Amazon S3: CreateMultipartUpload,
# UploadPart and CompleteMultipartUpload map to s3:PutObject). Only
# PutObject and CompleteMultipartUpload accept If-None-Match ("Enforce
# conditional writes on Amazon S3 buckets",
# https://docs.aws.amazon.com/AmazonS3/latest/userguide/conditional-writes-enforce.html),
# so the others carry no s3:if-none-match. (s3:ObjectCreationOperation,
# which policies may use to exempt them, is not modelled: no template uses it.)
MULTIPART = ("CreateMultipartUpload", "UploadPart", "CompleteMultipartUpload")


@maps("s3:PutObject", "s3:GetObject", "s3:HeadObject", "s3:DeleteObject", "s3:PutObjectRetention",
      "s3:PutObjectAcl", "s3:PutObjectLegalHold", *("s3:" + op for op in MULTIPART))
def _s3_object(req):
    p = req.params
    action = {"HeadObject": "s3:GetObject"}.get(req.op, "s3:" + req.op)
    if req.op in MULTIPART:
        action = "s3:PutObject"
    if req.op == "DeleteObject" and p.get("VersionId"):
        action = "s3:DeleteObjectVersion"
    if req.op == "GetObject" and p.get("VersionId"):
        action = "s3:GetObjectVersion"
    ctx = {}
    if req.op in ("PutObject", "PutObjectRetention") + MULTIPART:
        if p.get("ObjectLockMode"):
            ctx["s3:object-lock-mode"] = p["ObjectLockMode"]
        if p.get("ObjectLockRetainUntilDate"):
            until = p["ObjectLockRetainUntilDate"]
            until = until if isinstance(until, str) else until.astimezone(datetime.timezone.utc).strftime(
                "%Y-%m-%dT%H:%M:%SZ")
            ctx["s3:object-lock-retain-until-date"] = until
        if p.get("Retention"):
            ctx["s3:object-lock-mode"] = p["Retention"].get("Mode")
        until = p.get("ObjectLockRetainUntilDate") or (p.get("Retention") or {}).get("RetainUntilDate")
        if until is not None:
            if isinstance(until, str):
                until = datetime.datetime.fromisoformat(until.replace("Z", "+00:00"))
            if until.tzinfo is None:
                until = until.replace(tzinfo=datetime.timezone.utc)
            left = (until - datetime.datetime.now(datetime.timezone.utc)).total_seconds()
            ctx["s3:object-lock-remaining-retention-days"] = str(max(0, math.ceil(left / 86400)))
        if p.get("ObjectLockLegalHoldStatus"):
            ctx["s3:object-lock-legal-hold"] = p["ObjectLockLegalHoldStatus"]
        if p.get("ServerSideEncryption"):
            ctx["s3:x-amz-server-side-encryption"] = p["ServerSideEncryption"]
        if p.get("SSEKMSKeyId"):
            ctx["s3:x-amz-server-side-encryption-aws-kms-key-id"] = p["SSEKMSKeyId"]
        if p.get("ACL"):
            ctx["s3:x-amz-acl"] = p["ACL"]
        if p.get("IfNoneMatch"):
            ctx["s3:if-none-match"] = p["IfNoneMatch"]
        if p.get("IfMatch"):
            ctx["s3:if-match"] = p["IfMatch"]
    account = req.facts.bucket_account(p["Bucket"], req.account)
    req.add(action, "object", _bucket_arn(req, p["Bucket"], p["Key"]), account, ctx, prefix="s3")
    if req.op == "PutObject" and (p.get("ACL") or any(k.startswith("Grant") for k in p)):
        # An ACL in the upload needs s3:PutObjectAcl too (S3 API reference,
        # PutObject, Permissions).
        req.add("s3:PutObjectAcl", "object", _bucket_arn(req, p["Bucket"], p["Key"]), account,
                {"s3:x-amz-acl": p["ACL"]} if p.get("ACL") else {}, prefix="s3")


@maps("s3:ListObjectsV2", "s3:ListObjects", "s3:ListObjectVersions", "s3:GetBucketEncryption",
      "s3:GetObjectLockConfiguration", "s3:CreateBucket", "s3:PutObjectLockConfiguration", "s3:GetBucketPolicy")
def _s3_bucket(req):
    p = req.params
    action = {"ListObjectsV2": "s3:ListBucket", "ListObjects": "s3:ListBucket",
              "ListObjectVersions": "s3:ListBucketVersions", "GetBucketEncryption": "s3:GetEncryptionConfiguration",
              "GetObjectLockConfiguration": "s3:GetBucketObjectLockConfiguration",
              "PutObjectLockConfiguration": "s3:PutBucketObjectLockConfiguration"}.get(req.op, "s3:" + req.op)
    ctx = {}
    if "Prefix" in p:
        ctx["s3:prefix"] = p["Prefix"]
    if "Delimiter" in p:
        ctx["s3:delimiter"] = p["Delimiter"]
    if "MaxKeys" in p:
        ctx["s3:max-keys"] = str(p["MaxKeys"])
    account = req.facts.bucket_account(p["Bucket"], req.account)
    req.add(action, "bucket", _bucket_arn(req, p["Bucket"]), account, ctx, prefix="s3")


@maps("ssm:GetParameter")
def _get_parameter(req):
    name = req.params["Name"]
    if name.startswith("arn:"):
        arn, account = name, name.split(":")[4]
    else:
        arn, account = req.arn("parameter", req.account, name.lstrip("/")), req.account
    req.add("ssm:GetParameter", "parameter", arn, account)


@maps("ssm:PutParameter")
def _put_parameter(req):
    name = req.params["Name"]
    req.add("ssm:PutParameter", "parameter", req.arn("parameter", req.account, name.lstrip("/")), req.account)


@maps("ssm:SendCommand")
def _send_command(req):
    """SendCommand is authorized on the document and on each target
    instance (ssm user guide, run-command-setting-up.html)."""
    p = req.params
    name = p["DocumentName"]
    req.add("ssm:SendCommand", "document", req.arn("document", req.account, name), req.account)
    for iid in p.get("InstanceIds", []):
        inst = req.facts.instance(iid) or {"account": req.account, "tags": {}}
        req.add("ssm:SendCommand", "instance", req.arn("instance", inst["account"], iid, prefix="ec2"),
                inst["account"], tags=inst["tags"])
    if p.get("OutputS3BucketName"):
        pass  # the bucket is written by the instance's role (the agent), authorized at the upload


@maps("ssm:StartAutomationExecution")
def _start_automation(req):
    p = req.params
    name = p["DocumentName"]
    version = p.get("DocumentVersion", "$DEFAULT")
    tags = {t["Key"]: t["Value"] for t in p.get("Tags", [])}
    req.add("ssm:StartAutomationExecution", "automation-definition",
            req.arn("automation-definition", req.account, name, version), req.account, request_tags=tags)
    req.add("ssm:StartAutomationExecution", "document", req.arn("document", req.account, name), req.account,
            request_tags=tags)
    req.add("ssm:StartAutomationExecution", "automation-execution",
            req.arn("automation-execution", req.account, "*"), req.account, request_tags=tags)


@maps("ssm:GetAutomationExecution", "ssm:StopAutomationExecution")
def _automation_execution(req):
    eid = req.params["AutomationExecutionId"]
    tags = req.facts.overrides.get("automation-execution:" + eid, {}).get("tags", {})
    req.add("ssm:" + req.op, "automation-execution", req.arn("automation-execution", req.account, eid),
            req.account, tags=tags)


@maps("ssm:DescribeAutomationStepExecutions")
def _describe_steps(req):
    eid = req.params["AutomationExecutionId"]
    tags = req.facts.overrides.get("automation-execution:" + eid, {}).get("tags", {})
    types = resource_types("ssm:DescribeAutomationStepExecutions")
    if "automation-execution" in types:
        req.add("ssm:DescribeAutomationStepExecutions", "automation-execution",
                req.arn("automation-execution", req.account, eid), req.account, tags=tags)
    else:
        req.star("ssm:DescribeAutomationStepExecutions")


@maps("ssm:CreateDocument")
def _create_document(req):
    req.add("ssm:CreateDocument", "document", req.arn("document", req.account, req.params["Name"]), req.account)


@maps("sts:AssumeRole")
def _assume_role(req):
    p = req.params
    role = p["RoleArn"]
    tags = {t["Key"]: t["Value"] for t in p.get("Tags", [])}
    ctx = {"sts:RoleSessionName": p.get("RoleSessionName")}
    if p.get("ExternalId") is not None:
        ctx["sts:ExternalId"] = p["ExternalId"]
    if p.get("SourceIdentity"):
        ctx["sts:SourceIdentity"] = p["SourceIdentity"]
    if p.get("TransitiveTagKeys"):
        ctx["sts:TransitiveTagKeys"] = p["TransitiveTagKeys"]
    req.add("sts:AssumeRole", "role", role, role.split(":")[4], ctx, request_tags=tags if tags else None,
            kind="trust")
    if tags:
        # Session tags need sts:TagSession in the trust policy too (id_session-tags.html).
        req.add("sts:TagSession", "role", role, role.split(":")[4], request_tags=tags, kind="trust")


@maps("iam:PassRole")
def _pass_role(req):
    p = req.params
    req.add("iam:PassRole", "role", p["RoleArn"], p["RoleArn"].split(":")[4],
            {"iam:PassedToService": p["Service"]})


def _resource_types_or_none(action):
    try:
        return resource_types(action)
    except KeyError:
        return None


def checks(prefix, operation, params, principal, facts=None):
    """The authorization requests one call makes (an action may bring
    others: tag-on-create, EBS's KMS calls)."""
    facts = facts or _STATE["facts"]
    fn = MAP.get("%s:%s" % (prefix, operation))
    if fn is None and set(_resource_types_or_none("%s:%s" % (prefix, operation)) or {"?"}) == {""}:
        fn = _star  # the reference names no resource for it: Resource "*"
    if fn is None:
        raise ValueError("iam: %s:%s is not mapped to its actions and resources (deploy/automation/iam/calls.py)"
                         % (prefix, operation))
    req = Request(prefix, operation, params, principal, facts)
    fn(req)
    return req.checks
